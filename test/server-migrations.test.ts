import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sql } from 'kysely'
import { afterEach, beforeEach, expect, it } from 'vitest'
import pg from 'pg'
import { MigrationError, createDatabase, migrateToLatest } from '../src/index.js'
import { eventually } from './support/eventually.js'
import { createServerDatabase, describeServer } from './support/backends.js'
import { describeTable, tablesIn } from './support/catalog.js'
import { RUNTIME_DEPENDENCIES, outsideProject, repoRoot, runNode } from './support/outside-project.js'
import { ALL_MIGRATIONS, specification } from './support/specification.js'

const PROCESSES = 10

/** Each process connects first, then all start migrating at the same instant. */
const STARTUP_SCRIPT = `
import { createDatabase, migrateToLatest } from 'plantops-db'
const db = createDatabase({ min: 1, max: 2 })
await db.selectNoFrom((eb) => eb.lit(1).as('ready')).execute()
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(process.env.START_AT) - Date.now())))
const report = await migrateToLatest(db, { logger: false })
console.log(JSON.stringify(report))
await db.destroy()
`

describeServer('migrations on a real server', () => {
  let server: { url: string; drop(): Promise<void> }
  beforeEach(async () => {
    server = await createServerDatabase()
  })
  afterEach(async () => {
    await server.drop()
  })

  it(`applies each migration exactly once when ${PROCESSES} processes start together`, async () => {
    const project = await outsideProject(RUNTIME_DEPENDENCIES)
    try {
      await writeFile(join(project.dir, 'startup.mjs'), STARTUP_SCRIPT)
      const startAt = String(Date.now() + 3_000)
      const results = await Promise.all(
        Array.from({ length: PROCESSES }, () =>
          runNode(['startup.mjs'], { cwd: project.dir, env: { DATABASE_URL: server.url, START_AT: startAt } }),
        ),
      )
      for (const result of results)
        expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' })
      const reports = results.map((r) => JSON.parse(r.stdout.trim()) as { applied: string[]; alreadyApplied: string[] })
      expect(reports.flatMap((r) => r.applied).sort()).toEqual(ALL_MIGRATIONS)
      for (const report of reports) expect([...report.applied, ...report.alreadyApplied].sort()).toEqual(ALL_MIGRATIONS)
    } finally {
      await project.remove()
    }
    const db = createDatabase({ connectionString: server.url })
    const { rows } = await sql<{ name: string; n: number }>`
      SELECT name, count(*) AS n FROM plantops_migrations GROUP BY name ORDER BY name`.execute(db)
    expect(rows).toEqual(ALL_MIGRATIONS.map((name) => ({ name, n: 1 })))
    await db.destroy()
  })

  it('gives the same schema and records through `npx kysely migrate:latest`', async () => {
    const kyselyCtl = join(repoRoot, 'node_modules/kysely-ctl/dist/bin.mjs')
    const run = (command: string[]) =>
      runNode([kyselyCtl, ...command, '--no-outdated-check'], { cwd: repoRoot, env: { DATABASE_URL: server.url } })
    const up = await run(['migrate:latest'])
    expect(up.code, up.stdout + up.stderr).toBe(0)

    const db = createDatabase({ connectionString: server.url })
    const recorded = await sql<{ name: string }>`SELECT name FROM plantops_migrations ORDER BY name`.execute(db)
    expect(recorded.rows.map((r) => r.name)).toEqual(ALL_MIGRATIONS)
    for (const table of Object.keys(specification)) {
      expect({ table, ...(await describeTable(db, table)) }).toEqual({ table, ...specification[table] })
    }
    // The library sees kysely-ctl's records as its own.
    expect((await migrateToLatest(db, { logger: false })).alreadyApplied).toEqual(ALL_MIGRATIONS)

    const down = await run(['migrate:down'])
    expect(down.code, down.stdout + down.stderr).toBe(0)
    const left = await sql<{ name: string }>`SELECT name FROM plantops_migrations ORDER BY name`.execute(db)
    expect(left.rows.map((r) => r.name)).toEqual(ALL_MIGRATIONS.slice(0, -1))
    const rollback = await run(['migrate:rollback', '--all'])
    expect(rollback.code, rollback.stdout + rollback.stderr).toBe(0)
    expect(await tablesIn(db)).toEqual(['plantops_migrations', 'plantops_migrations_lock'])
    await db.destroy()
  })

  it('a backend terminated mid-migration is a MigrationError, never a crash; a retry then applies everything', async () => {
    const db = createDatabase({ connectionString: server.url, applicationName: 'plantops-victim', logger: false })
    const holder = new pg.Client({ connectionString: server.url })
    const watcher = new pg.Client({ connectionString: server.url })
    await holder.connect()
    await watcher.connect()
    try {
      // A table the migrations need a lock on, held by another session: the run waits there.
      await holder.query(`CREATE TABLE plants (id TEXT PRIMARY KEY, name TEXT NOT NULL, species TEXT,
        thresholds JSONB, created_at TIMESTAMPTZ DEFAULT NOW())`)
      await holder.query('BEGIN')
      await holder.query('LOCK TABLE plants IN ACCESS EXCLUSIVE MODE')
      const migrating = migrateToLatest(db, { logger: false }).catch((error: unknown) => error)
      let pid: number | undefined
      // Asked outside the holder's transaction, whose view of pg_stat_activity stays as it began.
      await eventually(async () => {
        const { rows } = await watcher.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = 'plantops-victim' AND wait_event_type = 'Lock'",
        )
        pid = rows[0]?.pid
        return pid !== undefined
      }, 'the migration waits for the lock')
      await watcher.query('SELECT pg_terminate_backend($1)', [pid])
      const error = await migrating
      expect(error).toBeInstanceOf(MigrationError)
      expect((error as Error).message).toMatch(
        /^the connection to the database was lost while migrating.*: .*nothing from it was applied; run it again\.$/,
      )
      await holder.query('ROLLBACK')
      const report = await migrateToLatest(db, { logger: false })
      expect(report.applied).toEqual(ALL_MIGRATIONS)
    } finally {
      await holder.end()
      await watcher.end()
      await db.destroy()
    }
  })
})
