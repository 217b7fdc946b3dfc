import { randomBytes } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { createDatabase, createRepositories, migrateToLatest, type Database } from '../../src/index.js'
import { startAedes } from '../support/aedes.js'
import { createServerDatabase, serverBackend } from '../support/backends.js'
import { aedesBroker, machineBroker } from '../support/brokers.js'
import { cliDatabaseKinds, startCli, type CliProcess } from '../support/cli.js'
import { eventually } from '../support/eventually.js'
import { randomMac } from '../support/migrated.js'
import { startTcpProxy } from '../support/tcp-proxy.js'

/** Prometheus text as `name{labels}` → value. */
async function scrape(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line)
    if (match)
      values.set(
        `${match[1]}${(match[2] ?? '').replace(/,?otel_scope_name="[^"]*"/, '').replace('{}', '')}`,
        Number(match[3]),
      )
  }
  return values
}

async function readyz(
  port: number,
): Promise<{ status: number; body: { ready: boolean; checks: Record<string, string> } }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`)
  return {
    status: response.status,
    body: (await response.json()) as { ready: boolean; checks: Record<string, string> },
  }
}

/** The port the service logged, once it listens. */
async function portOf(service: CliProcess): Promise<number> {
  await eventually(() => service.logLines().some((l) => typeof l.port === 'number'), 'the service listens', 30_000)
  return service.logLines().find((l) => typeof l.port === 'number')!.port as number
}

const count = (db: Kysely<Database>, table: 'telemetry' | 'telemetry_rejects') =>
  sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(table)}`.execute(db).then((r) => r.rows[0]!.n)

/** Connects as each of the service's sessions: a message the broker still holds unacknowledged comes back at once. */
async function redeliveredTo(url: string, clientIds: readonly string[], protocolVersion: 4 | 5): Promise<number> {
  let redelivered = 0
  for (const clientId of clientIds) {
    const client = await mqtt.connectAsync(url, { clientId, clean: false, protocolVersion, reconnectPeriod: 0 })
    client.on('message', () => (redelivered += 1))
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    await client.endAsync()
  }
  return redelivered
}

/** Ends the service's sessions, so nothing is left on a shared broker, whatever the test found. */
async function forgetSessions(url: string, clientIds: readonly string[], protocolVersion: 4 | 5): Promise<void> {
  for (const clientId of clientIds) {
    const client = await mqtt.connectAsync(url, {
      clientId,
      clean: true,
      protocolVersion,
      reconnectPeriod: 0,
      ...(protocolVersion === 5 && { properties: { sessionExpiryInterval: 0 } }),
    })
    await client.endAsync()
  }
}

for (const broker of [aedesBroker, machineBroker]) {
  for (const database of cliDatabaseKinds) {
    ;(broker.enabled && database.enabled ? describe : describe.skip)(
      `plantops-db ingest [${broker.name}, ${database.name}]`,
      () => {
        const cleanups: (() => Promise<unknown>)[] = []
        afterAll(async () => {
          for (const cleanup of cleanups.reverse()) await cleanup()
        })

        it('stores a fleet; /metrics equals the tables; SIGTERM exits 0 with every message stored and acknowledged', async () => {
          const { url, stop } = await broker.start()
          cleanups.push(stop)
          const db = await database.create()
          cleanups.push(() => db.drop())
          const devices = await db.inspect(async (k) => {
            await migrateToLatest(k, { logger: false })
            const repos = createRepositories(k, { passwordIterations: 1_000 })
            return Promise.all(
              [0, 1, 2].map(
                async () => (await repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })).device.id,
              ),
            )
          })
          const clientId = `cli-ingest-${randomBytes(4).toString('hex')}`
          const prefix = `plantops-${randomBytes(3).toString('hex')}`
          const service = startCli([
            'ingest',
            ...db.args,
            '--mqtt-url',
            url,
            '--port',
            '0',
            '--client-id',
            clientId,
            '--topic-prefix',
            prefix,
          ])
          let protocolVersion: 4 | 5 = 5
          cleanups.push(async () => {
            if (service.child.exitCode === null) service.child.kill('SIGKILL')
            await forgetSessions(url, [clientId, `${clientId}-2`], protocolVersion)
          })
          const port = await portOf(service)
          await eventually(async () => (await readyz(port)).status === 200, '/readyz says ready', 30_000)
          const subscribed = service.logLines().find((l) => String(l.msg).startsWith('MQTT ingestor subscribed'))!
          protocolVersion = subscribed.protocolVersion as 4 | 5
          const connections = subscribed.connections as number

          const publisher = await mqtt.connectAsync(url, { clientId: `pub-${randomBytes(3).toString('hex')}` })
          const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000
          const publishReadings = async (from: number, n: number) => {
            for (let i = from; i < from + n; i += 1) {
              for (const device of devices) {
                await publisher.publishAsync(
                  `${prefix}/${device}/telemetry`,
                  JSON.stringify({ time: base + i * 1000, humidity: 50 }),
                  { qos: 1 },
                )
              }
            }
          }
          await publishReadings(0, 50)
          await publisher.publishAsync(`${prefix}/${devices[0]}/telemetry`, '{not json', { qos: 1 })
          await publisher.publishAsync(`${prefix}/${devices[1]}/status`, 'offline', { qos: 1 })
          let metrics = new Map<string, number>()
          await eventually(async () => {
            metrics = await scrape(port)
            return (
              metrics.get('plantops_writer_rows_written_total') === 150 &&
              metrics.get('plantops_writer_status_updates_total') === 1
            )
          }, '/metrics counts 150 rows and 1 status')
          const consumed = [...metrics].filter(([name]) => name.startsWith('messaging_client_consumed_messages_total'))
          expect(consumed.map(([, v]) => v)).toEqual([152])
          expect(metrics.get('plantops_writer_rejected_total{plantops_reject_reason="decode_failed"}')).toBe(1)
          expect(metrics.get('plantops_mqtt_dead_lettered_total')).toBe(1)
          expect(metrics.get('plantops_writer_buffered_rows')).toBe(0)
          expect(metrics.get(`plantops_mqtt_connected{messaging_client_id="${clientId}"}`)).toBe(1)
          expect(
            metrics.get(
              'db_client_operation_duration_count{db_system_name="postgresql",db_collection_name="telemetry",db_operation_name="BATCH INSERT"}',
            ),
          ).toBe(metrics.get('plantops_writer_batches_total'))
          if (db.shared) {
            expect(await db.inspect((k) => count(k, 'telemetry'))).toBe(
              metrics.get('plantops_writer_rows_written_total'),
            )
            expect(await db.inspect((k) => count(k, 'telemetry_rejects'))).toBe(1)
          }

          // The drain: signalled the moment the last message is read, before it can be durable.
          await publishReadings(50, 100)
          await eventually(
            async () => {
              const now = await scrape(port)
              return [...now].some(
                ([name, v]) => name.startsWith('messaging_client_consumed_messages_total') && v === 452,
              )
            },
            'every message of the second round is read',
            30_000,
          )
          service.child.kill('SIGTERM')
          expect(await service.exited).toBe(0)
          await publisher.endAsync()
          expect(service.logLines().some((l) => String(l.msg).startsWith('drained'))).toBe(true)
          expect(await db.inspect((k) => count(k, 'telemetry'))).toBe(450)
          expect(await db.inspect((k) => count(k, 'telemetry_rejects'))).toBe(1)
          const ids = connections === 1 ? [clientId] : [clientId, `${clientId}-2`]
          expect(await redeliveredTo(url, ids, protocolVersion)).toBe(0)
        })
      },
    )
  }
}

;(serverBackend.enabled ? describe : describe.skip)(
  'plantops-db ingest --no-spool /readyz [aedes, postgres through a proxy]',
  () => {
    it('without a spool: turns unready when the database goes away and ready when it returns; /healthz stays up', async () => {
      const { url: mqttUrl, stop } = await startAedes()
      const server = await createServerDatabase()
      const target = new URL(server.url)
      const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
      const proxied = new URL(server.url)
      proxied.port = String(proxy.port)
      const k = createDatabase({ connectionString: server.url, logger: false })
      let service: CliProcess | undefined
      try {
        await migrateToLatest(k, { logger: false })
        service = startCli([
          'ingest',
          '--database-url',
          proxied.toString(),
          '--mqtt-url',
          mqttUrl,
          '--port',
          '0',
          '--client-id',
          `readyz-${randomBytes(3).toString('hex')}`,
          '--no-spool',
        ])
        const port = await portOf(service)
        await eventually(async () => (await readyz(port)).status === 200, '/readyz says ready', 30_000)
        expect((await readyz(port)).body).toEqual({
          ready: true,
          checks: { database: 'ok', broker: 'ok', writer: 'ok' },
        })

        await proxy.cut()
        let down = await readyz(port)
        await eventually(async () => {
          down = await readyz(port)
          return down.status === 503
        }, '/readyz says unready')
        expect(down.body.ready).toBe(false)
        expect(down.body.checks.database).toMatch(/^(unreachable|no answer)/)
        expect(down.body.checks.broker).toBe('ok')
        expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)

        await proxy.restore()
        await eventually(async () => (await readyz(port)).status === 200, '/readyz says ready again', 30_000)
        service.child.kill('SIGTERM')
        expect(await service.exited).toBe(0)
      } finally {
        if (service && service.child.exitCode === null) service.child.kill('SIGKILL')
        await proxy.close()
        await k.destroy()
        await server.drop()
        await stop()
      }
    })
  },
)
