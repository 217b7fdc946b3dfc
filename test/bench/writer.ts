/**
 * npm run bench: our writer against a per-message INSERT, Kysely multi-row
 * batches and a raw COPY of the same rows, each into a fresh, fully migrated
 * database with identical indexes (including the unique (device_id, time)
 * index that deduplication relies on). Uses DATABASE_URL when set, embedded
 * PGlite otherwise. Runs every method BENCH_ROUNDS times (3), interleaved,
 * and prints the median rows per second and the ratios of ours to each.
 * BENCH_PLANTS (250) sets how many plants the 1,000 devices share: plant
 * rollups cost more per reading the fewer devices a plant has.
 * BENCH_ONLY runs the methods whose names contain one of its comma-separated
 * parts (`BENCH_ONLY="2 connections,plantops-db writer"`). BENCH_STATEMENTS=1
 * adds each method's connection time by statement (statement-times.ts).
 */
import { existsSync, readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { PGlite } from '@electric-sql/pglite'
import { sql, type Kysely } from 'kysely'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import {
  createDatabase,
  createTelemetryWriter,
  migrateToLatest,
  type Database,
  type TelemetryWriterOptions,
} from 'plantops-db'
import { copyBinaryPayload } from '../../src/ingest/copy-format.js'
import { resolveWriterOptions } from '../../src/ingest/options.js'
import { createServerDatabase, serverUrl } from '../support/server-database.js'
import { fleetReadings, type BenchReading } from './fleet.js'
import { takeStatementTimes, timeStatements } from './statement-times.js'

const COLUMNS = 'time, device_id, plant_id, soil_moisture, temperature, humidity, light_level'
const DEVICES = 1_000
const PLANTS = Number(process.env.BENCH_PLANTS ?? 250)
const PER_DEVICE = Number(process.env.BENCH_PER_DEVICE ?? 200)
const NAIVE_SAMPLE = Number(process.env.BENCH_NAIVE_SAMPLE ?? 20_000)
const KYSELY_BATCH = 1_000
/** Knobs for exploring; the reported figures use the writer's defaults. */
const WRITER_OPTIONS = {
  ...(process.env.BENCH_CONCURRENCY && { concurrency: Number(process.env.BENCH_CONCURRENCY) }),
  ...(process.env.BENCH_BATCH && { batchSize: Number(process.env.BENCH_BATCH) }),
}
/** Rows per transaction of the writer, and so of the raw COPYs it is compared with. */
const BATCH = WRITER_OPTIONS.batchSize ?? resolveWriterOptions({}).batchSize
const ONLY = process.env.BENCH_ONLY?.split(',')
/** BENCH_STATEMENTS=1: connection time per statement kind (see statement-times.ts); slows every method a little. */
const STATEMENTS = Boolean(process.env.BENCH_STATEMENTS)
if (STATEMENTS) timeStatements()

interface Target {
  db: Kysely<Database>
  /** COPY each chunk into telemetry in its own transaction, over one connection, the encoding included. */
  rawCopy(chunks: readonly (readonly BenchReading[])[]): Promise<void>
  /**
   * The same over `connections` connections at once, each transaction with
   * the writer's `random_page_cost`: the ceiling for a writer that uses as
   * many connections and that planner setting. Server only.
   */
  rawCopyParallel?(
    chunks: readonly (readonly BenchReading[])[],
    connections: number,
    randomPageCost: number,
  ): Promise<void>
  dispose(): Promise<void>
}

async function openTarget(): Promise<Target> {
  if (serverUrl) {
    const server = await createServerDatabase()
    const db = createDatabase({ connectionString: server.url })
    /** Binary, the faster format and the one the writer uses, so the ceiling is the highest raw COPY. */
    const copyChunk = async (client: pg.Client, chunk: readonly BenchReading[]) => {
      const data = copyBinaryPayload(
        chunk.map((r) => ({
          timeMs: r.time.getTime(),
          deviceId: r.deviceId,
          plantId: r.plantId,
          values: [r.soil_moisture, r.temperature, r.humidity, r.light_level],
        })),
      )
      await pipeline(
        Readable.from([data]),
        client.query(copyFrom(`COPY telemetry (${COLUMNS}) FROM STDIN (FORMAT binary)`)),
      )
    }
    return {
      db,
      async rawCopy(chunks) {
        const client = new pg.Client({ connectionString: server.url })
        await client.connect()
        for (const chunk of chunks) await copyChunk(client, chunk)
        await client.end()
      },
      async rawCopyParallel(chunks, connections, randomPageCost) {
        const clients = Array.from({ length: connections }, () => new pg.Client({ connectionString: server.url }))
        await Promise.all(clients.map((client) => client.connect()))
        let next = 0
        await Promise.all(
          clients.map(async (client) => {
            for (let i = next++; i < chunks.length; i = next++) {
              await client.query('BEGIN')
              await client.query(`SET LOCAL random_page_cost = ${randomPageCost}`)
              await copyChunk(client, chunks[i]!)
              await client.query('COMMIT')
            }
          }),
        )
        await Promise.all(clients.map((client) => client.end()))
      },
      async dispose() {
        await db.destroy()
        await server.drop()
      },
    }
  }
  const pglite = new PGlite()
  const db = createDatabase({ pglite })
  return {
    db,
    async rawCopy(chunks) {
      for (const chunk of chunks) {
        await pglite.query(`COPY telemetry (${COLUMNS}) FROM '/dev/blob'`, [], {
          blob: new Blob([copyText(chunk)]),
        })
      }
    },
    async dispose() {
      await db.destroy()
      await pglite.close()
    },
  }
}

/** Plants and devices the readings belong to, inserted in bulk. */
async function seed(db: Kysely<Database>): Promise<void> {
  await migrateToLatest(db, { logger: false })
  const plants = Array.from({ length: PLANTS }, (_, i) => `plant_bench_${i}`)
  await sql`INSERT INTO plants (id, name, thresholds) SELECT id, id, '{"soil_moisture": {"min": 5}}' FROM unnest(${plants}::text[]) AS id`.execute(
    db,
  )
  const devices = Array.from({ length: DEVICES }, (_, i) => `dev_bench_${i}`)
  await sql`INSERT INTO devices (id, mqtt_password_hash, plant_id)
    SELECT id, 'x', 'plant_bench_' || (substring(id from 11)::int % ${PLANTS}) FROM unnest(${devices}::text[]) AS id`.execute(
    db,
  )
  await sql`ANALYZE`.execute(db)
}

function copyText(readings: readonly BenchReading[]): string {
  let out = ''
  for (const r of readings) {
    out += `${r.time.toISOString()}\t${r.deviceId}\t${r.plantId}\t${r.soil_moisture}\t${r.temperature}\t${r.humidity}\t${r.light_level}\n`
  }
  return out
}

async function count(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM telemetry`.execute(db)
  return rows[0]!.n
}

type Method = { name: string; rows: number; run: (target: Target) => Promise<void> }

const readings = fleetReadings(DEVICES, PER_DEVICE, new Date(Date.now() - PER_DEVICE * 60_000 - 60_000), PLANTS)

/** Every reading through one writer, as a host's ingestion does. */
async function writeAll(target: Target, options: TelemetryWriterOptions): Promise<void> {
  const writer = createTelemetryWriter(target.db, { logger: false, ...WRITER_OPTIONS, ...options })
  for (const r of readings) {
    await writer.write({
      deviceId: r.deviceId,
      time: r.time,
      soil_moisture: r.soil_moisture,
      temperature: r.temperature,
      humidity: r.humidity,
      light_level: r.light_level,
    })
  }
  await writer.close()
  const stats = writer.stats()
  if (stats.written !== readings.length) throw new Error(`writer wrote ${stats.written} of ${readings.length}`)
}

const methods: Method[] = [
  {
    // The faster of the two obvious raw COPYs here: one COPY per batch of the
    // writer's size beats a single 200,000-row COPY on this machine.
    name: `raw COPY, ${BATCH.toLocaleString('en')}-row transactions, 1 connection`,
    rows: readings.length,
    async run(target) {
      const chunks = []
      for (let i = 0; i < readings.length; i += BATCH) chunks.push(readings.slice(i, i + BATCH))
      await target.rawCopy(chunks)
    },
  },
  {
    name: 'raw COPY, one statement',
    rows: readings.length,
    run: (target) => target.rawCopy([readings]),
  },
  {
    // The honest ceiling: the writer's connections (2), its planner setting
    // (random_page_cost 1.1) and its rows per transaction.
    name: 'raw COPY, 2 connections, writer planner setting',
    rows: readings.length,
    async run(target) {
      if (!target.rawCopyParallel) throw new Error('needs DATABASE_URL')
      const chunks = []
      for (let i = 0; i < readings.length; i += BATCH) chunks.push(readings.slice(i, i + BATCH))
      await target.rawCopyParallel(chunks, 2, 1.1)
    },
  },
  {
    name: 'plantops-db writer',
    rows: readings.length,
    run: (target) => writeAll(target, {}),
  },
  {
    // What the hourly rollup costs: the same writer leaving telemetry_hourly alone.
    name: 'plantops-db writer, no rollups',
    rows: readings.length,
    run: (target) => writeAll(target, { maintainRollups: false }),
  },
  {
    // What a host pays for metrics: the same writer with an OpenTelemetry SDK meter, collected every second.
    name: 'plantops-db writer, OpenTelemetry meter',
    rows: readings.length,
    async run(target) {
      const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
      const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 1_000 })
      const provider = new MeterProvider({ readers: [reader] })
      try {
        await writeAll(target, { meter: provider.getMeter('bench') })
      } finally {
        await provider.shutdown()
      }
    },
  },
  {
    name: `Kysely multi-row (${KYSELY_BATCH} rows, ON CONFLICT DO NOTHING)`,
    rows: readings.length,
    async run(target) {
      for (let i = 0; i < readings.length; i += KYSELY_BATCH) {
        const rows = readings.slice(i, i + KYSELY_BATCH).map((r) => ({
          time: r.time,
          device_id: r.deviceId,
          plant_id: r.plantId,
          soil_moisture: r.soil_moisture,
          temperature: r.temperature,
          humidity: r.humidity,
          light_level: r.light_level,
        }))
        await target.db
          .insertInto('telemetry')
          .values(rows)
          .onConflict((oc) => oc.doNothing())
          .execute()
      }
    },
  },
  {
    name: 'per-message INSERT',
    rows: Math.min(NAIVE_SAMPLE, readings.length),
    async run(target) {
      for (const r of readings.slice(0, NAIVE_SAMPLE)) {
        await target.db
          .insertInto('telemetry')
          .values({
            time: r.time,
            device_id: r.deviceId,
            plant_id: r.plantId,
            soil_moisture: r.soil_moisture,
            temperature: r.temperature,
            humidity: r.humidity,
            light_level: r.light_level,
          })
          .execute()
      }
    },
  },
]

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
/** Per method, each round's wall seconds and its statements' connection time (BENCH_STATEMENTS). */
const statementTimes = new Map<string, { seconds: number; statements: ReturnType<typeof takeStatementTimes> }[]>()

/** One method once, into a fresh database; returns rows per second. */
async function measure(method: Method): Promise<number> {
  const target = await openTarget()
  try {
    await seed(target.db)
    takeStatementTimes()
    const started = performance.now()
    const cpu = process.cpuUsage()
    const machine = machineTimes()
    await method.run(target)
    const used = process.cpuUsage(cpu)
    const busy = machineBusy(machine, machineTimes())
    const seconds = (performance.now() - started) / 1000
    if (STATEMENTS)
      statementTimes.set(method.name, [
        ...(statementTimes.get(method.name) ?? []),
        { seconds, statements: takeStatementTimes() },
      ])
    const stored = await count(target.db)
    if (stored !== method.rows) throw new Error(`${method.name}: stored ${stored} rows, expected ${method.rows}`)
    if (process.env.BENCH_CPU)
      console.log(
        `  ${method.name}: ${seconds.toFixed(2)} s, node cpu ${((used.user + used.system) / 1e6).toFixed(2)} s, machine ${(busy * 100).toFixed(0)}% busy`,
      )
    return method.rows / seconds
  } finally {
    await target.dispose()
  }
}

/** Jiffies the machine spent busy and idle so far (Linux), for BENCH_CPU. */
function machineTimes(): { busy: number; idle: number } {
  if (!existsSync('/proc/stat')) return { busy: 0, idle: 0 }
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  const idle = fields[3]! + fields[4]!
  return { busy: fields.reduce((a, b) => a + b, 0) - idle, idle }
}

function machineBusy(before: { busy: number; idle: number }, after: { busy: number; idle: number }): number {
  const busy = after.busy - before.busy
  return busy / (busy + after.idle - before.idle || 1)
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

console.log(
  `backend: ${serverUrl ? 'PostgreSQL (DATABASE_URL)' : 'embedded PGlite'}; ${readings.length.toLocaleString('en')} readings from ${DEVICES} devices of ${PLANTS} plants; ${ROUNDS} rounds, methods interleaved, medians reported`,
)
const chosen = methods.filter(
  (m) => (!ONLY || ONLY.some((o) => m.name.includes(o))) && (serverUrl || !m.name.includes('connections')),
)
const samples = new Map<string, number[]>(chosen.map((m) => [m.name, []]))
// Interleaved rounds: a checkpoint or an autovacuum landing in one round touches every method alike.
for (let round = 0; round < ROUNDS; round += 1)
  for (const method of chosen) samples.get(method.name)!.push(await measure(method))
const rates = new Map<string, number>()
for (const method of chosen) {
  const rounds = samples.get(method.name)!
  const rate = median(rounds)
  rates.set(method.name, rate)
  const spread = `${Math.round(Math.min(...rounds)).toLocaleString('en')}–${Math.round(Math.max(...rounds)).toLocaleString('en')}`
  console.log(
    `${method.name.padEnd(52)} ${method.rows.toLocaleString('en').padStart(8)} rows  ${Math.round(rate).toLocaleString('en').padStart(9)} rows/s  (rounds ${spread})`,
  )
}
const ours = rates.get('plantops-db writer') ?? Number.NaN
console.log('\nratios of the plantops-db writer (deduplication on) to, median of rounds:')
for (const [name, rate] of rates)
  if (name !== 'plantops-db writer') console.log(`  ${name.padEnd(50)} ${(ours / rate).toFixed(2)}×`)
const bare = rates.get('plantops-db writer, no rollups')
if (bare !== undefined) console.log(`\nthe writer keeping the rollups ÷ without: ${(ours / bare).toFixed(2)}×`)
const metered = rates.get('plantops-db writer, OpenTelemetry meter')
if (metered !== undefined)
  console.log(`\nthe writer with an OpenTelemetry meter ÷ without: ${(metered / ours).toFixed(2)}×`)

if (STATEMENTS) {
  console.log('\nconnection time per round by statement (mean of rounds; BENCH_STATEMENTS, timed at the client):')
  for (const [name, rounds] of statementTimes) {
    const wall = rounds.reduce((sum, round) => sum + round.seconds, 0) / rounds.length
    const byKind = new Map<string, { count: number; ms: number }>()
    for (const { statements } of rounds)
      for (const { kind, count, ms } of statements) {
        const total = byKind.get(kind) ?? { count: 0, ms: 0 }
        byKind.set(kind, { count: total.count + count / rounds.length, ms: total.ms + ms / rounds.length })
      }
    const busy = [...byKind.values()].reduce((sum, total) => sum + total.ms, 0) / 1000
    console.log(`  ${name}: ${wall.toFixed(2)} s wall, ${busy.toFixed(2)} s in statements`)
    for (const [kind, { count, ms }] of [...byKind].sort((a, b) => b[1].ms - a[1].ms))
      console.log(`    ${kind.padEnd(48)} ${Math.round(count).toString().padStart(5)}×  ${(ms / 1000).toFixed(2)} s`)
  }
}
