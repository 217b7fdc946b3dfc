import { execFile } from 'node:child_process'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot, runNode } from './support/outside-project.js'
import { ALL_MIGRATIONS } from './support/specification.js'

const run = promisify(execFile)

/** A host service using the installed package: migrate, provision, ingest, read back. */
const HOST_SCRIPT = `
import { createDatabase, createRepositories, createTelemetryWriter, migrateToLatest } from 'plantops-db'
const db = createDatabase()
const report = await migrateToLatest(db, { logger: false })
const repos = createRepositories(db, { passwordIterations: 1000 })
const plant = await repos.plants.create({ name: 'Packaged fern' })
const { device } = await repos.devices.provision({ macAddress: '02:00:00:00:00:42', sensorTypes: ['humidity'], plantId: plant.id })
const writer = createTelemetryWriter(db, { logger: false })
const now = Math.floor(Date.now() / 1000)
for (let i = 0; i < 5; i += 1) await writer.write({ deviceId: device.id, time: now - 60 * (5 - i), humidity: 50 + i })
await writer.close()
const [latest] = await repos.telemetry.latest({ plantIds: [plant.id] })
console.log(JSON.stringify({ applied: report.applied, written: writer.stats().written, latest: latest.humidity }))
await db.destroy()
`

describe('the packed tarball, installed into a fresh ESM project', () => {
  let dir: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plantops-pack-'))
    // dist/ is already built by the suite's global setup; packing must not rebuild it.
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: repoRoot })
    const tarball = (await readdir(dir)).find((name) => name.endsWith('.tgz'))!
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'host-service', private: true, type: 'module' }))
    await writeFile(join(dir, 'main.mjs'), HOST_SCRIPT)
    // Everything comes from the local npm cache that installing this repository filled.
    await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', `./${tarball}`, 'kysely', '@electric-sql/pglite'],
      { cwd: dir, timeout: 120_000 },
    )
  }, 180_000)
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('migrates, writes packets and reads them back', async () => {
    const result = await runNode(['main.mjs'], { cwd: dir, env: { DATABASE_URL: undefined } })
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout)).toEqual({ applied: ALL_MIGRATIONS, written: 5, latest: 54 })
  })

  it('does the same from an esbuild bundle: the migrations travel inside it', async () => {
    await build({
      entryPoints: [join(dir, 'main.mjs')],
      outfile: join(dir, 'bundle.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      // PGlite loads its WebAssembly from its own package; pg-native is pg's optional native binding.
      external: ['@electric-sql/pglite', 'pg-native'],
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
      logLevel: 'silent',
    })
    await rm(join(dir, 'node_modules', 'plantops-db'), { recursive: true, force: true }) // only the bundle has it now
    const result = await runNode(['bundle.mjs'], { cwd: dir, env: { DATABASE_URL: undefined } })
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout)).toEqual({ applied: ALL_MIGRATIONS, written: 5, latest: 54 })
  })
})
