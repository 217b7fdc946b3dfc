import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { createDatabase, migrateToLatest } from '../src/index.js'
import { createServerDatabase, serverBackend } from './support/backends.js'
import { recordingLogger } from './support/recording-logger.js'
import { repoRoot, runNode } from './support/outside-project.js'
import { ALL_MIGRATIONS } from './support/specification.js'

/** Every example runs on the embedded defaults, as a newcomer would first run it. */
const embedded = { DATABASE_URL: undefined, MQTT_URL: undefined }
const tsx = ['--import', 'tsx']

describe('examples', () => {
  it('demo: a day of a greenhouse over MQTT, with alerts, rejects and duplicates in the summary', async () => {
    const result = await runNode([...tsx, 'examples/demo.ts'], { cwd: repoRoot, env: embedded })
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^Basil .*⚠ soil moisture below 25$/m)
    expect(result.stdout).toContain('ingestion: 5,750 readings written, 12 duplicates skipped')
    expect(result.stdout).toContain('rejected:  device_mismatch 6, decode_failed 4')
    expect(result.stdout.split('\n').filter((line) => /^\S.* [▁▂▃▄▅▆▇█ ]{24,} /.test(line))).toHaveLength(10)
  })

  it('quickstart: migrates, writes readings, prints the latest one, hourly buckets and the alert', async () => {
    const result = await runNode([...tsx, 'examples/quickstart.ts'], { cwd: repoRoot, env: embedded })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^latest reading of Boston fern: soil 28\.4% at /m)
    expect(result.stdout.match(/ readings {2}soil avg /g)?.length).toBeGreaterThanOrEqual(3)
    expect(result.stdout).toContain('alerts: soil_moisture below 30 (was 29.2)')
  })

  it('provision-device: prints the credentials once and a Mosquitto password file', async () => {
    const result = await runNode([...tsx, 'examples/provision-device.ts', 'AA-BB-CC-00-11-22'], {
      cwd: repoRoot,
      env: embedded,
    })
    expect(result.code).toBe(0)
    const id = /^device (dev_[a-z2-7]{16}) \(MAC aa:bb:cc:00:11:22\)$/m.exec(result.stdout)?.[1]
    expect(id).toBeDefined()
    expect(result.stdout).toMatch(/^MQTT password: [A-Za-z0-9_-]{32} {3}<- shown once/m)
    expect(result.stdout).toMatch(new RegExp(`^${id}:\\$7\\$210000\\$`, 'm'))
  })

  /** Where the kysely-ctl example runs: an embedded database in a directory, and the server when there is one. */
  const ctlTargets = [
    {
      name: 'embedded',
      async open() {
        const dir = await mkdtemp(join(tmpdir(), 'plantops-ctl-'))
        return {
          env: { ...embedded, PLANTOPS_DATA_DIR: dir },
          db: () => createDatabase({ dataDir: dir }),
          drop: () => rm(dir, { recursive: true, force: true }),
        }
      },
    },
    ...(serverBackend.enabled
      ? [
          {
            name: 'postgres',
            async open() {
              const server = await createServerDatabase()
              return {
                env: { DATABASE_URL: server.url, MQTT_URL: undefined },
                db: () => createDatabase({ connectionString: server.url, logger: false }),
                drop: () => server.drop(),
              }
            },
          },
        ]
      : []),
  ]

  for (const target of ctlTargets) {
    it(`kysely-ctl [${target.name}]: host migrations and migrateToLatest alternate on one database, both quiet`, async () => {
      const place = await target.open()
      const ctl = () =>
        runNode(
          [
            join(repoRoot, 'node_modules/kysely-ctl/dist/bin.mjs'),
            'migrate:latest',
            '--no-outdated-check',
            '-c',
            'examples/kysely-ctl/kysely.config.ts',
          ],
          { cwd: repoRoot, env: place.env },
        )
      const ours = async () => {
        const db = place.db()
        const logger = recordingLogger()
        try {
          return { report: await migrateToLatest(db, { logger }), logger }
        } finally {
          await db.destroy()
        }
      }
      try {
        const first = await ours()
        expect(first.report.applied).toEqual(ALL_MIGRATIONS)
        for (let round = 0; round < 2; round++) {
          const result = await ctl()
          expect(result.code, result.stderr).toBe(0)
          expect(`${result.stdout}${result.stderr}`).not.toMatch(/corrupted|does not know|unknown|warn/i)
          const again = await ours()
          expect(again.report).toMatchObject({ applied: [], unknown: [], alreadyApplied: ALL_MIGRATIONS })
          expect(again.logger.entries.filter((e) => e.level !== 'info')).toEqual([])
        }
        const db = place.db()
        try {
          const host = await sql<{ name: string }>`SELECT name FROM host_migrations ORDER BY name`.execute(db)
          expect(host.rows.map((r) => r.name)).toEqual(['001_create_watering_log'])
          const own = await sql<{ name: string }>`SELECT name FROM plantops_migrations ORDER BY name`.execute(db)
          expect(own.rows.map((r) => r.name)).toEqual(ALL_MIGRATIONS)
          const table = await sql<{ t: string | null }>`SELECT to_regclass('watering_log')::text AS t`.execute(db)
          expect(table.rows).toEqual([{ t: 'watering_log' }])
        } finally {
          await db.destroy()
        }
      } finally {
        await place.drop()
      }
    })
  }

  it("kysely-ctl: on a fresh database, applies plantops-db's migrations and then the host's", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plantops-ctl-'))
    try {
      const bin = join(repoRoot, 'node_modules/kysely-ctl/dist/bin.mjs')
      const args = [bin, 'migrate:latest', '--no-outdated-check', '-c', 'examples/kysely-ctl/kysely.config.ts']
      const result = await runNode(args, { cwd: repoRoot, env: { ...embedded, PLANTOPS_DATA_DIR: dir } })
      expect(result.code, result.stderr).toBe(0)
      const db = createDatabase({ dataDir: dir })
      const { rows } = await sql<{ name: string }>`SELECT name FROM plantops_migrations ORDER BY name`.execute(db)
      expect(rows.map((r) => r.name)).toEqual(ALL_MIGRATIONS)
      const host = await sql<{ name: string }>`SELECT name FROM host_migrations ORDER BY name`.execute(db)
      expect(host.rows.map((r) => r.name)).toEqual(['001_create_watering_log'])
      await db.destroy()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('app-startup: serves its endpoints while ingesting, and drains and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [...tsx, 'examples/app-startup.ts'], {
      cwd: repoRoot,
      env: { ...process.env, ...embedded, PORT: '0' } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    const deadline = Date.now() + 30_000
    while (!/listening on (http:\S+),/.test(output) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50))
    const base = /listening on (http:\S+),/.exec(output)?.[1]
    expect(base, output).toBeDefined()

    const missing = await fetch(`${base}/plants/plant_nope/alerts`)
    expect([missing.status, await missing.json()]).toEqual([404, { error: 'plant "plant_nope" does not exist' }])
    expect((await fetch(`${base}/nowhere`)).status).toBe(404)

    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(output).toContain('drained and stopped')
  })
})
