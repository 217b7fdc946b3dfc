import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { createRepositories } from '../../src/index.js'
import { serverBackend } from '../support/backends.js'
import { runCli, startCli, type CliProcess } from '../support/cli.js'
import { eventually } from '../support/eventually.js'
import { randomMac } from '../support/migrated.js'
import { mosquittoEnabled, startMosquitto } from '../support/mosquitto.js'
import { startProxiedServer } from '../support/proxied-server.js'
import { publishPaced } from '../support/publishers.js'

async function readyz(
  port: number,
): Promise<{ status: number; body: { ready: boolean; checks: Record<string, string> } }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`)
  return {
    status: response.status,
    body: (await response.json()) as { ready: boolean; checks: Record<string, string> },
  }
}

async function portOf(service: CliProcess): Promise<number> {
  await eventually(() => service.logLines().some((l) => typeof l.port === 'number'), 'the service listens', 30_000)
  return service.logLines().find((l) => typeof l.port === 'number')!.port as number
}

/** A Prometheus value by exact name (no labels). */
async function metric(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  return line === undefined ? undefined : Number(line.split(' ').at(-1))
}
/**
 * `plantops-db ingest` spools by default. These run it as a process against
 * a stock-config Mosquitto of their own and PostgreSQL behind a proxy they
 * cut, and kill it.
 */
;(mosquittoEnabled && serverBackend.enabled ? describe : describe.skip)(
  'plantops-db ingest with its spool [stock-config mosquitto, postgres through a proxy]',
  () => {
    const cleanups: (() => Promise<unknown>)[] = []
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    })

    async function setUp() {
      const broker = await startMosquitto({ stock: true })
      cleanups.push(() => broker.stop())
      const server = await startProxiedServer()
      cleanups.push(() => server.close())
      const state = await mkdtemp(join(tmpdir(), 'plantops-cli-spool-'))
      cleanups.push(() => rm(state, { recursive: true, force: true }))
      const repos = createRepositories(server.direct, { passwordIterations: 1_000 })
      const ids: string[] = []
      for (let i = 0; i < 20; i += 1)
        ids.push((await repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })).device.id)
      const clientId = `cli-spool-${randomBytes(3).toString('hex')}`
      const prefix = `spool-${randomBytes(3).toString('hex')}`
      const start = () => {
        const service = startCli(
          [
            'ingest',
            '--database-url',
            server.proxiedUrl,
            '--mqtt-url',
            broker.url,
            '--port',
            '0',
            '--client-id',
            clientId,
            '--topic-prefix',
            prefix,
          ],
          { STATE_DIRECTORY: state },
        )
        cleanups.push(async () => {
          if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGKILL')
        })
        return service
      }
      const stored = async () => {
        const { rows } = await sql<{ n: number; distinct: number }>`
          SELECT count(*)::int AS n, count(DISTINCT (device_id, time))::int AS distinct
          FROM telemetry WHERE device_id = ANY(${ids})`.execute(server.direct)
        return rows[0]!
      }
      return { broker, server, state, ids, prefix, start, stored }
    }

    it('SIGKILLed while spooling through a database outage and started again: every acknowledged message stored exactly once', async () => {
      const { broker, server, ids, prefix, start, stored } = await setUp()
      let service = start()
      const port = await portOf(service)
      await eventually(async () => (await readyz(port)).status === 200, '/readyz says ready', 30_000)
      await server.proxy.cut()
      const t0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000
      // 2,400 messages over 8 s; the service is killed after 3 s, in the middle of them. At 300 msg/s the
      // broker's queue of 1,000 for the session holds the seconds the process takes to start again.
      const publishing = publishPaced(broker.url, {
        clients: 2,
        rate: 300,
        seconds: 8,
        message: (i) => [
          `${prefix}/${ids[i % ids.length]}/telemetry`,
          JSON.stringify({ time: t0 + i, humidity: i % 100 }),
        ],
      })
      await new Promise((resolve) => setTimeout(resolve, 3_000))
      const spooled = await metric(port, 'plantops_spool_records')
      expect(spooled).toBeGreaterThan(500) // spooling, nothing committed: the database is away
      service.child.kill('SIGKILL')
      await service.exited
      service = start() // the same spool directory, the same session
      await portOf(service)
      const published = await publishing
      expect(published.acked.size).toBe(2_400)
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      await server.proxy.restore()
      await eventually(async () => (await stored()).n >= 2_400, 'all 2,400 stored', 60_000).catch(() => {})
      expect(broker.log()).not.toMatch(/dropped/i)
      expect(await stored()).toEqual({ n: 2_400, distinct: 2_400 })
      const opened = service.logLines().find((l) => String(l.msg).startsWith('spool opened with'))
      expect(opened?.records).toBeGreaterThan(0)
      service.child.kill('SIGTERM')
      expect(await service.exited).toBe(0)
    }, 120_000)

    it('a second ingest on the same spool directory exits 1 and says which process owns it', async () => {
      const { broker, server, state, start } = await setUp()
      const first = start()
      await portOf(first)
      await eventually(
        () => first.logLines().some((l) => String(l.msg).startsWith('MQTT ingestor subscribed')),
        'the first one runs',
        30_000,
      )
      const second = await runCli(
        [
          'ingest',
          '--database-url',
          server.proxiedUrl,
          '--mqtt-url',
          broker.url,
          '--port',
          '0',
          '--client-id',
          `second-${randomBytes(3).toString('hex')}`,
        ],
        { STATE_DIRECTORY: state },
      )
      expect(second.code).toBe(1)
      expect(second.stderr).toContain(
        `the spool directory ${join(state, 'spool')} is in use by process ${first.child.pid}`,
      )
      first.child.kill('SIGTERM')
      expect(await first.exited).toBe(0)
    }, 60_000)

    it('/readyz stays ready while the spool absorbs a database outage, and says the database is degraded', async () => {
      const { server, start } = await setUp()
      const service = start()
      const port = await portOf(service)
      await eventually(async () => (await readyz(port)).status === 200, '/readyz says ready', 30_000)
      expect((await readyz(port)).body).toEqual({
        ready: true,
        checks: { database: 'ok', broker: 'ok', writer: 'ok', spool: 'ok' },
      })
      await server.proxy.cut()
      let during = await readyz(port)
      await eventually(async () => {
        during = await readyz(port)
        return during.body.checks.database !== 'ok'
      }, '/readyz notices the database is away')
      expect(during.status).toBe(200)
      expect(during.body.ready).toBe(true)
      expect(during.body.checks.database).toMatch(/^degraded: (unreachable|no answer)/)
      expect(during.body.checks.spool).toBe('ok')
      await server.proxy.restore()
      await eventually(async () => (await readyz(port)).body.checks.database === 'ok', 'the database is back', 30_000)
      service.child.kill('SIGTERM')
      expect(await service.exited).toBe(0)
    }, 90_000)
  },
)
