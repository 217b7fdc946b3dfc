import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
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
const db = createDatabase({ embedded: true })
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

/** The same host, as a CommonJS service writes it (NestJS and many others are CommonJS). */
const COMMONJS_HOST_SCRIPT = `
const { createDatabase, createRepositories, createTelemetryWriter, migrateToLatest } = require('plantops-db')
const { createMqttIngestor } = require('plantops-db/mqtt')
async function main() {
${HOST_SCRIPT.replace(/^import .*$/m, '').replace('console.log(JSON.stringify({', 'console.log(JSON.stringify({ mqtt: typeof createMqttIngestor,')}
}
main().catch((error) => { console.error(error); process.exitCode = 1 })
`

/** A CommonJS TypeScript service (`module: nodenext` in a CommonJS package): it must type-check and run. */
const TYPESCRIPT_COMMONJS_SOURCE = `
import { createDatabase, migrateToLatest, type MigrationReport } from 'plantops-db'
import { createMqttIngestor, type MqttIngestorOptions } from 'plantops-db/mqtt'
async function main(): Promise<void> {
  const db = createDatabase({ embedded: true })
  const report: MigrationReport = await migrateToLatest(db, { logger: false })
  const options: Partial<MqttIngestorOptions> = { topicPrefix: 'plants' }
  console.log(JSON.stringify({ applied: report.applied.length, mqtt: typeof createMqttIngestor, prefix: options.topicPrefix }))
  await db.destroy()
}
void main()
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
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        `./${tarball}`,
        'kysely',
        '@electric-sql/pglite',
        'mqtt',
      ],
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

  it('does the same from a CommonJS service: require() of both entry points', async () => {
    await writeFile(join(dir, 'main.cjs'), COMMONJS_HOST_SCRIPT)
    const result = await runNode(['main.cjs'], { cwd: dir, env: { DATABASE_URL: undefined } })
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout)).toEqual({ mqtt: 'function', applied: ALL_MIGRATIONS, written: 5, latest: 54 })
  })

  it('type-checks and runs in a CommonJS TypeScript project (module nodenext)', async () => {
    const project = join(dir, 'cjs-ts')
    await mkdir(project)
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'cjs-service', private: true, type: 'commonjs' }),
    )
    await writeFile(join(project, 'main.ts'), TYPESCRIPT_COMMONJS_SOURCE)
    const compilerOptions = {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      strict: true,
      outDir: 'out',
      typeRoots: [join(repoRoot, 'node_modules', '@types')],
      types: ['node'],
    }
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['main.ts'] }))
    const tsc = await runNode([join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], {
      cwd: project,
    })
    expect(tsc.stdout + tsc.stderr).toBe('')
    expect(tsc.code).toBe(0)
    expect(await readFile(join(project, 'out', 'main.js'), 'utf8')).toContain('require("plantops-db")')
    const result = await runNode(['out/main.js'], { cwd: project, env: { DATABASE_URL: undefined } })
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout)).toEqual({ applied: ALL_MIGRATIONS.length, mqtt: 'function', prefix: 'plants' })
  })

  it('installs the plantops-db command; ingest without the OpenTelemetry packages exits 1 saying what to install', async () => {
    const bin = join(dir, 'node_modules', '.bin', 'plantops-db')
    const migrated = await runNode([bin, '--data-dir', join(dir, 'cli-db'), 'migrate', 'status', '--json'], {
      cwd: dir,
      env: { DATABASE_URL: undefined },
    })
    expect(migrated.stderr).toBe('')
    expect(JSON.parse(migrated.stdout).pending).toEqual(ALL_MIGRATIONS)
    const ingest = await runNode(
      [bin, '--data-dir', join(dir, 'cli-db'), 'ingest', '--mqtt-url', 'mqtt://127.0.0.1:1'],
      {
        cwd: dir,
        env: { DATABASE_URL: undefined, MQTT_URL: undefined },
      },
    )
    expect(ingest.code).toBe(1)
    expect(ingest.stderr).toContain(
      'npm install mqtt @opentelemetry/api @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus',
    )
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
