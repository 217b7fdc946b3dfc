/**
 * npm run soak: PostgreSQL unreachable for ten minutes under a live fleet.
 * 200 devices × 10 readings a second (2,000 msg/s) through a Mosquitto on
 * the machine's stock configuration file into `plantops-db ingest` with its
 * defaults (so: spooling), while the database behind a TCP proxy is cut for
 * SOAK_OUTAGE_SECONDS (default 600) and then restored with the fleet still
 * publishing. Prints published, stored, missing, duplicates, the ingest
 * process's peak RSS, the spool's peak bytes and the drain time and rate.
 * Needs DATABASE_URL (a database of its own is made and dropped).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sql } from 'kysely'
import { createDatabase, migrateToLatest } from 'plantops-db'
import { startMosquitto } from '../support/mosquitto.js'
import { createServerDatabase } from '../support/server-database.js'
import { startTcpProxy } from '../support/tcp-proxy.js'

const OUTAGE_S = Number(process.env.SOAK_OUTAGE_SECONDS ?? 600)
const BEFORE_S = Number(process.env.SOAK_BEFORE_SECONDS ?? 20)
const AFTER_S = Number(process.env.SOAK_AFTER_SECONDS ?? 90)
const DEVICES = 200
const RATE = Number(process.env.SOAK_RATE ?? 2_000)
const PUBLISHERS = 2
const TOTAL = RATE * (BEFORE_S + OUTAGE_S + AFTER_S)
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))
const PUBLISHER = fileURLToPath(new URL('../bench/mqtt-publisher.ts', import.meta.url))

const log = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`)
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

const server = await createServerDatabase()
const direct = createDatabase({ connectionString: server.url, logger: false })
await migrateToLatest(direct, { logger: false })
const ids = Array.from({ length: DEVICES }, (_, i) => `dev_bench_${i}`)
await sql`INSERT INTO devices (id, mqtt_password_hash) SELECT id, 'x' FROM unnest(${ids}::text[]) AS id`.execute(direct)
const target = new URL(server.url)
const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
const proxied = new URL(server.url)
proxied.port = String(proxy.port)
const broker = await startMosquitto({ stock: true })
const state = await mkdtemp(join(tmpdir(), 'plantops-soak-'))
const prefix = `soak-${randomBytes(3).toString('hex')}`

const ingest = spawn(
  process.execPath,
  [
    CLI,
    'ingest',
    '--database-url',
    proxied.toString(),
    '--mqtt-url',
    broker.url,
    '--port',
    '0',
    '--topic-prefix',
    prefix,
  ],
  {
    env: { ...process.env, STATE_DIRECTORY: state, DATABASE_URL: '', MQTT_URL: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
)
let output = ''
ingest.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
const logLines = () =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
let port: number | undefined
while (port === undefined) {
  await new Promise((resolve) => setTimeout(resolve, 100))
  port = logLines().find((l) => typeof l.port === 'number')?.port as number | undefined
}
while (!logLines().some((l) => String(l.msg).startsWith('MQTT ingestor subscribed')))
  await new Promise((resolve) => setTimeout(resolve, 100))
log(
  `ingest (pid ${ingest.pid}) spooling to ${state}; ${TOTAL.toLocaleString('en')} readings at ${RATE} msg/s; outage ${OUTAGE_S} s after ${BEFORE_S} s`,
)

async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{[^}]*\})? (\S+)$/.exec(line)
    if (match) values.set(match[1]!, Number(match[2]))
  }
  return values
}
function rssOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}

const base = Math.floor(Date.now() / 1000) * 1000 - 3 * 86_400_000
const share = TOTAL / PUBLISHERS
const publishers: ChildProcess[] = Array.from({ length: PUBLISHERS }, (_, p) =>
  spawn(process.execPath, ['--import', 'tsx', PUBLISHER], {
    env: {
      ...process.env,
      MQTT_URL: broker.url,
      PREFIX: prefix,
      COUNT: String(share),
      RATE: String(RATE / PUBLISHERS),
      DEVICES: String(DEVICES),
      BASE: String(base + p * (Math.ceil(share / DEVICES) * 1000 + 60_000)),
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  }),
)
await Promise.all(publishers.map((child) => new Promise((resolve) => child.once('message', resolve))))
const published = Promise.all(publishers.map((child) => new Promise((resolve) => child.once('exit', resolve))))
const started = performance.now()
for (const child of publishers) child.send('go')

let peakRss = 0
let peakSpool = 0
let backlogAtRestore = 0
let restoredAt = 0
let drainedAt = 0
let phase = 'before' as 'before' | 'outage' | 'after'
setTimeout(() => {
  void proxy.cut()
  phase = 'outage'
  log('PostgreSQL unreachable (proxy cut)')
}, BEFORE_S * 1000)
setTimeout(
  () => {
    void proxy.restore()
    phase = 'after'
    restoredAt = performance.now()
    log('PostgreSQL reachable again')
  },
  (BEFORE_S + OUTAGE_S) * 1000,
)
let done = false
void published.then(() => (done = true))
let tick = 0
while (!done || drainedAt === 0) {
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  tick += 1
  const { rss, peak } = rssOf(ingest.pid!)
  peakRss = Math.max(peakRss, peak)
  const metrics = await scrape().catch(() => new Map<string, number>())
  const spoolBytes = metrics.get('plantops_spool_bytes') ?? 0
  const records = metrics.get('plantops_spool_records') ?? 0
  peakSpool = Math.max(peakSpool, spoolBytes)
  if (phase === 'after' && backlogAtRestore === 0) backlogAtRestore = records
  // Drained: what waits is less than a second of live traffic.
  if (phase === 'after' && drainedAt === 0 && records < RATE) {
    drainedAt = performance.now()
    log(`backlog drained in ${((drainedAt - restoredAt) / 1000).toFixed(1)} s`)
  }
  if (tick % 30 === 0)
    log(
      `rss ${mb(rss)} (peak ${mb(peak)}), spool ${mb(spoolBytes)} / ${records.toLocaleString('en')} records, accepting ${metrics.get('plantops_spool_accepting')}`,
    )
  if (performance.now() - started > (BEFORE_S + OUTAGE_S + AFTER_S + 600) * 1000) break
}
await published
const count = async () =>
  (
    await sql<{
      n: number
      distinct: number
    }>`SELECT count(*)::int AS n, count(DISTINCT (device_id, time))::int AS distinct FROM telemetry`.execute(direct)
  ).rows[0]!
let stored = await count()
for (let waited = 0; stored.n < TOTAL && waited < 120; waited += 1) {
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  stored = await count()
}
ingest.kill('SIGTERM')
const exit = await new Promise((resolve) => ingest.once('exit', resolve))
const drainSeconds = (drainedAt - restoredAt) / 1000
console.log(
  [
    '',
    `published   ${TOTAL.toLocaleString('en')} (acknowledged by the broker to the publishers)`,
    `stored      ${stored.distinct.toLocaleString('en')}`,
    `missing     ${(TOTAL - stored.distinct).toLocaleString('en')}`,
    `duplicates  ${(stored.n - stored.distinct).toLocaleString('en')}`,
    `peak RSS    ${mb(peakRss)} (ingest process, VmHWM; target ≤ 256 MB)`,
    `spool peak  ${mb(peakSpool)}`,
    `drain       ${backlogAtRestore.toLocaleString('en')} records in ${drainSeconds.toFixed(1)} s while live traffic went on: ` +
      `${Math.round(backlogAtRestore / drainSeconds + RATE).toLocaleString('en')} rows/s (${((backlogAtRestore / drainSeconds + RATE) / RATE).toFixed(1)}× the live rate; target ≥ 10×)`,
    `ingest exit ${exit}`,
  ].join('\n'),
)
await direct.destroy()
await proxy.close()
await broker.stop()
await server.drop()
await rm(state, { recursive: true, force: true })
process.exit(stored.distinct === TOTAL && stored.n === stored.distinct ? 0 : 1)
