import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createServerDatabase, describeServer } from './support/backends.js'
import { RUNTIME_DEPENDENCIES, outsideProject, repoRoot, runNode } from './support/outside-project.js'
import { ALL_MIGRATIONS } from './support/specification.js'

const MIGRATE_SCRIPT = `
import { createDatabase, migrateToLatest } from 'plantops-db'
const db = createDatabase({ logger: false }) // DATABASE_URL when set, else the embedded database
try {
  const report = await migrateToLatest(db, { logger: false })
  console.log(JSON.stringify(report))
} catch (error) {
  console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message }))
} finally {
  await db.destroy()
}
`

let cleanup: (() => Promise<void>) | undefined

afterEach(async () => {
  await cleanup?.()
  cleanup = undefined
})

async function runOutside(dependencies: readonly string[], env: Record<string, string | undefined> = {}) {
  const project = await outsideProject(dependencies)
  cleanup = project.remove
  await writeFile(join(project.dir, 'main.mjs'), MIGRATE_SCRIPT)
  const result = await runNode(['main.mjs'], { cwd: project.dir, env: { DATABASE_URL: undefined, ...env } })
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  return JSON.parse(result.stdout.trim())
}

/** The lines of `text` that match `pattern`. */
const linesWith = (text: string, pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line))

describe('the built package, imported from outside the repository', () => {
  it('keeps its dependencies out of the bundle', async () => {
    // The entry points share chunks (index, mqtt and the command line): look at all the ES modules.
    const modules = (await readdir(join(repoRoot, 'dist'))).filter((name) => name.endsWith('.js'))
    const bundle = (await Promise.all(modules.map((name) => readFile(join(repoRoot, 'dist', name), 'utf8')))).join('\n')
    expect(bundle).toMatch(/from ['"]kysely['"]/)
    expect(bundle).toMatch(/from ['"]pg['"]/)
    expect(bundle).not.toContain('class PGlite')
    expect(bundle).not.toMatch(/migrationFolder|FileMigrationProvider/)
    // The spool lists its segment files; nothing lists a migrations folder.
    expect(linesWith(bundle, /\breaddir\b/).filter((line) => /migration/i.test(line))).toEqual([])
    const scripts = (await readdir(join(repoRoot, 'dist'))).filter((name) => name.endsWith('.cjs'))
    const commonjs = (await Promise.all(scripts.map((name) => readFile(join(repoRoot, 'dist', name), 'utf8')))).join(
      '\n',
    )
    expect(commonjs).toMatch(/require\(['"]kysely['"]\)/)
    expect(commonjs).toMatch(/require\(['"]pg['"]\)/)
    expect(commonjs).not.toContain('class PGlite')
    expect(commonjs).not.toMatch(/migrationFolder|FileMigrationProvider/)
    expect(linesWith(commonjs, /\breaddir\b/).filter((line) => /migration/i.test(line))).toEqual([])
    expect(commonjs).toMatch(/require\(['"]mqtt['"]\)/)
    expect(commonjs + bundle).not.toMatch(/class MqttClient/)
    // The command line's libraries are the host's too: commander a dependency, OpenTelemetry optional peers.
    expect(await readFile(join(repoRoot, 'dist/cli.js'), 'utf8')).toMatch(/from ['"]commander['"]/)
    expect(bundle).toMatch(/from ['"]@opentelemetry\/exporter-prometheus['"]/)
    expect(bundle).not.toMatch(/class (Command|PrometheusExporter|MeterProvider)\b/)
  })

  it('migrates an embedded database with its statically bundled migrations', async () => {
    const report = await runOutside([...RUNTIME_DEPENDENCIES, '@electric-sql/pglite'])
    expect(report.applied).toEqual(ALL_MIGRATIONS)
    expect(report.telemetry).toEqual({ hypertable: false, timescaledb: 'unavailable' })
  })

  it('says exactly what to do when there is neither DATABASE_URL nor PGlite', async () => {
    const outcome = await runOutside(RUNTIME_DEPENDENCIES)
    expect(outcome).toEqual({
      name: 'ConfigurationError',
      code: 'CONFIGURATION',
      message:
        'plantops-db has no database to connect to: set DATABASE_URL (or pass { connectionString } or { pool }) ' +
        'to use PostgreSQL, or run `npm install @electric-sql/pglite` to use the embedded database.',
    })
  })
})

describeServer('the built package, against the server', () => {
  it('migrates the database in DATABASE_URL', async () => {
    const server = await createServerDatabase()
    try {
      const report = await runOutside(RUNTIME_DEPENDENCIES, { DATABASE_URL: server.url })
      expect(report.applied).toEqual(ALL_MIGRATIONS)
    } finally {
      await server.drop()
    }
  })
})
