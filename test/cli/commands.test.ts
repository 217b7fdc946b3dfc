import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRepositories, createTelemetryWriter, migrations } from '../../src/index.js'
import { cliDatabaseKinds, runCli, type CliDatabase } from '../support/cli.js'
import { serverBackend } from '../support/backends.js'
import { randomMac } from '../support/migrated.js'

const KNOWN = Object.keys(migrations).sort()

for (const kind of cliDatabaseKinds) {
  ;(kind.enabled ? describe : describe.skip)(`plantops-db command line [${kind.name}]`, () => {
    let database: CliDatabase
    const cli = (...args: string[]) => runCli([...database.args, ...args])
    beforeAll(async () => {
      database = await kind.create()
    })
    afterAll(async () => {
      await database?.drop()
    })

    it('migrate: status lists pending, migrate applies them in order, down and to revert, exit 0', async () => {
      const before = await cli('migrate', 'status', '--json')
      expect(before.code).toBe(0)
      expect(JSON.parse(before.stdout)).toMatchObject({ applied: [], pending: KNOWN, unknown: [] })

      const up = await cli('migrate')
      expect(up).toMatchObject({ code: 0, stderr: '' })
      expect(up.stdout.split('\n').filter((l) => l.startsWith('applied '))).toEqual(KNOWN.map((n) => `applied ${n}`))

      const again = await cli('migrate', 'latest', '--json')
      expect(JSON.parse(again.stdout)).toMatchObject({ applied: [], alreadyApplied: KNOWN })

      const down = await cli('migrate', 'down')
      expect(down.code).toBe(0)
      expect(down.stdout).toContain(`reverted ${KNOWN.at(-1)}`)
      const status = await cli('migrate', 'status')
      expect(status.stdout).toContain(`pending  ${KNOWN.at(-1)}`)
      expect(status.stdout).toContain(`${KNOWN.length - 1} applied, 1 pending, 0 unknown (table plantops_migrations)`)

      const to = await cli('migrate', 'to', '003_create_telemetry', '--json')
      expect(to.code).toBe(0)
      expect(JSON.parse(to.stdout).applied).toEqual(KNOWN.slice(3, -1).reverse())
      const tables = await database.inspect(async (db) => (await db.introspection.getTables()).map((t) => t.name))
      expect(tables).toContain('telemetry')
      expect(tables).not.toContain('alerts')

      const unknown = await cli('migrate', 'to', 'bogus')
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toContain('unknown migration "bogus"')
      expect((await cli('migrate')).code).toBe(0)
    })

    it('devices: provision prints credentials that verify, rotate replaces them, password-file writes 0600 and signals the broker', async () => {
      expect((await cli('migrate')).code).toBe(0)
      const mac = randomMac()
      const provisioned = await cli(
        'devices',
        'provision',
        '--mac',
        mac,
        '--sensor',
        'soil_moisture',
        '--sensor',
        'humidity',
        '--firmware',
        '2.0.1',
        '--json',
      )
      expect(provisioned).toMatchObject({ code: 0, stderr: '' })
      const { device, credentials } = JSON.parse(provisioned.stdout)
      const stored = await database.inspect(async (db) => {
        const { devices } = createRepositories(db, { passwordIterations: 1_000 })
        return {
          device: await devices.get(device.id),
          ok: await devices.verifyCredentials(credentials.username, credentials.password),
        }
      })
      expect(stored.device).toMatchObject({ mac_address: mac.toLowerCase(), firmware_version: '2.0.1' })
      expect(stored.device.sensor_types).toEqual(['soil_moisture', 'humidity'])
      expect(stored.ok?.id).toBe(device.id)

      const rotated = await cli('devices', 'rotate', device.id)
      expect(rotated.code).toBe(0)
      const password = /password\s+(\S+)/.exec(rotated.stdout)![1]!
      expect(password).not.toBe(credentials.password)
      const verified = await database.inspect(async (db) => {
        const { devices } = createRepositories(db)
        return [
          await devices.verifyCredentials(credentials.username, credentials.password),
          await devices.verifyCredentials(credentials.username, password),
        ]
      })
      expect(verified[0]).toBeNull()
      expect(verified[1]?.id).toBe(device.id)

      const dir = await mkdtemp(join(tmpdir(), 'plantops-pw-'))
      try {
        // A stand-in broker: reports the SIGHUP it receives.
        const broker = spawn(process.execPath, [
          '-e',
          "process.on('SIGHUP', () => { console.log('reload'); process.exit(0) }); setInterval(() => {}, 1000); console.log('up')",
        ])
        const reloaded = new Promise((resolve) => broker.on('close', resolve))
        let said = ''
        broker.stdout.on('data', (chunk) => (said += chunk))
        while (!said.includes('up')) await new Promise((r) => setTimeout(r, 10))
        const file = join(dir, 'passwd')
        const written = await cli('devices', 'password-file', '--out', file, '--sighup', String(broker.pid))
        expect(written.code).toBe(0)
        await reloaded
        expect(said).toContain('reload')
        expect((await stat(file)).mode & 0o777).toBe(0o600)
        const expected = await database.inspect((db) => createRepositories(db).devices.mosquittoPasswordFile())
        expect(await readFile(file, 'utf8')).toBe(expected)
        expect(expected).toContain(`${credentials.username}:$7$`)
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })

    it('rejects: list shows the waiting dead letters by reason, newest first; replay writes those whose cause is fixed', async () => {
      expect((await cli('migrate')).code).toBe(0)
      const base = Date.now() - 3_600_000
      await database.inspect(async (db) => {
        const writer = createTelemetryWriter(db, { logger: false })
        const arrived = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1_000)
        await writer.write(
          { deviceId: 'dev_cli_later', time: new Date(base), humidity: 40 },
          { receivedAt: arrived(3) },
        )
        await writer.write(
          { deviceId: 'dev_cli_later', time: new Date(base + 1_000), humidity: 41 },
          { receivedAt: arrived(2) },
        )
        await writer.writeRaw('not a packet', { source: 'cli-test', receivedAt: arrived(1) })
        await writer.close()
      })
      const listed = await cli('rejects', 'list')
      expect(listed.code).toBe(0)
      const lines = listed.stdout.trim().split('\n')
      expect(lines[0]).toBe('waiting, by reason: unknown_device 2, schema 1')
      expect(lines.slice(1).map((l) => l.split('  ')[1])).toEqual(['schema', 'unknown_device', 'unknown_device'])

      const only = JSON.parse((await cli('rejects', 'list', '--reason', 'unknown_device', '--json')).stdout)
      expect(only.items.map((r: { device_id: string }) => r.device_id)).toEqual(['dev_cli_later', 'dev_cli_later'])

      const { device } = await database.inspect((db) =>
        createRepositories(db, { passwordIterations: 1_000 }).devices.provision({
          macAddress: randomMac(),
          sensorTypes: [],
        }),
      )
      await database.inspect(async (db) => {
        await db
          .updateTable('telemetry_rejects')
          .set({ device_id: device.id })
          .where('device_id', '=', 'dev_cli_later')
          .execute()
        await db
          .updateTable('telemetry_rejects')
          .set({ payload: Buffer.from(JSON.stringify({ time: base, humidity: 40 })) })
          .where('device_id', '=', device.id)
          .execute()
      })
      const replayed = await cli('rejects', 'replay', '--reason', 'unknown_device', '--json')
      expect(replayed.code).toBe(0)
      expect(JSON.parse(replayed.stdout)).toEqual({ replayed: 2, written: 1, duplicates: 1, rejectedAgain: 0 })
      const rows = await database.inspect(async (db) =>
        db.selectFrom('telemetry').select(['humidity']).where('device_id', '=', device.id).execute(),
      )
      expect(rows).toEqual([{ humidity: 40 }])
      expect((await cli('rejects', 'list')).stdout.split('\n')[0]).toBe('waiting, by reason: schema 1')
    })
  })
}

describe('plantops-db command line: usage and failures', () => {
  it('--help on every command, exit 0', async () => {
    for (const command of [
      [],
      ['migrate'],
      ['migrate', 'status'],
      ['migrate', 'to'],
      ['migrate', 'down'],
      ['devices', 'provision'],
      ['devices', 'rotate'],
      ['devices', 'password-file'],
      ['rejects', 'list'],
      ['rejects', 'replay'],
      ['ingest'],
    ]) {
      const result = await runCli([...command, '--help'])
      expect(result.code, command.join(' ')).toBe(0)
      expect(result.stdout).toContain(`Usage: plantops-db${command.length > 0 ? ` ${command.join(' ')}` : ''}`)
    }
  })

  it('exit 2 for a usage error, with what was wrong', async () => {
    const cases: [string[], string][] = [
      [['migrate', 'sideways', '--data-dir', '/tmp/x'], 'unknown migrate command "sideways"'],
      [
        ['devices', 'provision', '--sensor', 'humidity', '--data-dir', '/tmp/x'],
        "required option '--mac <address>' not specified",
      ],
      [['rejects', 'list', '--limit', '0', '--data-dir', '/tmp/x'], '--limit must be a whole number from 1 to 1000'],
      [['rejects', 'list', '--nope'], "unknown option '--nope'"],
      [['migrate', 'status'], 'no database: pass --database-url <url> or set DATABASE_URL'],
      [['ingest', '--data-dir', '/tmp/x'], "required option '--mqtt-url <url>' not specified"],
      [['frobnicate'], "unknown command 'frobnicate'"],
      [
        ['ingest', '--data-dir', '/tmp/x', '--mqtt-url', 'mqtt://127.0.0.1:1', '--spool-max-bytes', 'lots'],
        '--spool-max-bytes must be a size of at least 1048576 bytes, such as 512MiB or 2GiB.',
      ],
      [['migrate', '--data-dir', '/tmp/x', '--database-url', 'postgres://x@127.0.0.1:1/x'], 'not both'],
    ]
    for (const [args, message] of cases) {
      const result = await runCli(args)
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr, args.join(' ')).toContain(message)
    }
  })

  it('exit 2 for a value the library refuses (a malformed MAC address), with its message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plantops-cli-'))
    try {
      const result = await runCli([
        'devices',
        'provision',
        '--mac',
        'not-a-mac',
        '--sensor',
        'humidity',
        '--data-dir',
        dir,
      ])
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/macAddress/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  ;(serverBackend.enabled ? it : it.skip)('exit 1 for a database that is not there, naming it', async () => {
    const url = new URL(process.env.DATABASE_URL!)
    url.pathname = '/plantops_no_such_database'
    const result = await runCli(['migrate', 'status'], { DATABASE_URL: url.toString() })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('database "plantops_no_such_database" does not exist')
  })

  it('--data-dir wins over a DATABASE_URL that is only in the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plantops-cli-'))
    try {
      const result = await runCli(['migrate', 'status', '--data-dir', dir], {
        DATABASE_URL: 'postgres://x@127.0.0.1:1/x',
      })
      expect(result).toMatchObject({ code: 0, stderr: '' })
      expect(result.stdout).toContain(`0 applied, ${KNOWN.length} pending`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('exit 1 when ingest cannot reach its broker, after saying where it listens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plantops-cli-'))
    try {
      const result = await runCli(['ingest', '--data-dir', dir, '--mqtt-url', 'mqtt://127.0.0.1:1', '--port', '0'])
      expect(result.code).toBe(1)
      expect(result.stderr).toContain('ECONNREFUSED 127.0.0.1:1')
      expect(JSON.parse(result.stdout.split('\n')[0]!)).toMatchObject({ level: 'info', host: '0.0.0.0' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('exit 1 for a server that does not answer', async () => {
    const result = await runCli(['migrate', '--database-url', 'postgres://postgres@127.0.0.1:1/postgres'])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('ECONNREFUSED 127.0.0.1:1')
  })
})
