/**
 * npm run bench:mqtt: end-to-end MQTT ingestion, published until counted in
 * the table, at-least-once and at-most-once, against the raw receive rate of
 * a bare mqtt.js subscriber on the same broker, and publish-to-commit latency
 * at a fixed 5,000 messages per second. Uses MQTT_URL and DATABASE_URL when
 * set (in a database of its own, dropped afterwards); otherwise a private
 * Mosquitto on a free port and embedded PGlite.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { sql } from 'kysely'
import mqtt from 'mqtt'
import { createDatabase, createTelemetryWriter, migrateToLatest } from 'plantops-db'
import { createMqttIngestor } from 'plantops-db/mqtt'
import { startMosquitto } from '../support/mosquitto.js'
import { acknowledgementLatencies, spoolSection } from './mqtt-spool.js'
import { createServerDatabase, serverUrl } from '../support/server-database.js'

const COUNT = Number(process.env.BENCH_MESSAGES ?? 100_000)
const LATENCY_RATE = 5_000
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 10)

const own = process.env.MQTT_URL
  ? undefined
  : await startMosquitto({ config: ['max_inflight_messages 0', 'max_queued_messages 1000000'] })
const brokerUrl = process.env.MQTT_URL ?? own!.url

/** A fresh database on the server named by DATABASE_URL, dropped at the end; embedded PGlite without it. */
async function openDatabase() {
  if (!serverUrl) return { db: createDatabase({ embedded: true }), dispose: async () => {} }
  const server = await createServerDatabase()
  return { db: createDatabase({ connectionString: server.url }), dispose: () => server.drop() }
}

const { db, dispose } = await openDatabase()
await migrateToLatest(db, { logger: false })
const devices = Array.from({ length: 1_000 }, (_, i) => `dev_bench_${i}`)
await sql`INSERT INTO devices (id, mqtt_password_hash) SELECT id, 'x' FROM unnest(${devices}::text[]) AS id ON CONFLICT DO NOTHING`.execute(
  db,
)
let base = Math.floor(Date.now() / 1000) * 1000 - 20 * 86_400_000

const PUBLISHERS = Number(process.env.BENCH_PUBLISHERS ?? 2)

/**
 * Publishes from separate processes, so the ingestor under test does not also
 * pay for publishing. Resolves `started` once every publisher is loaded and
 * told to go, and the returned promise once all have published.
 */
async function publish(
  prefix: string,
  count: number,
  rate = 0,
  url = brokerUrl,
): Promise<{ started: number; done: Promise<void> }> {
  const script = fileURLToPath(new URL('./mqtt-publisher.ts', import.meta.url))
  const share = Math.ceil(count / PUBLISHERS)
  const children = Array.from({ length: PUBLISHERS }, (_, p) =>
    spawn(process.execPath, ['--import', 'tsx', script], {
      env: {
        ...process.env,
        MQTT_URL: url,
        PREFIX: prefix,
        COUNT: String(Math.min(share, count - p * share)),
        RATE: String(rate / PUBLISHERS),
        // Each publisher's readings sit in their own time range, so none collide.
        BASE: String(base + p * (Math.ceil(share / 1_000) * 1000 + 60_000)),
      },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  )
  base += PUBLISHERS * (Math.ceil(share / 1_000) * 1000 + 60_000)
  const exits = children.map(
    (child) =>
      new Promise<void>((resolve, reject) =>
        child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`publisher exited ${code}`)))),
      ),
  )
  await Promise.race([
    Promise.all(children.map((child) => new Promise((resolve) => child.once('message', resolve)))),
    Promise.all(exits),
  ])
  const started = performance.now()
  for (const child of children) child.send('go')
  return { started, done: Promise.all(exits).then(() => undefined) }
}

async function until(check: () => boolean, describe: () => string): Promise<void> {
  const deadline = Date.now() + 120_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`benchmark stalled: ${describe()}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function bareSubscriber(): Promise<number> {
  const prefix = `bench-${randomBytes(3).toString('hex')}`
  const client = await mqtt.connectAsync(brokerUrl, {
    clientId: `bench-sub-${randomBytes(3).toString('hex')}`,
    protocolVersion: 5,
    properties: { receiveMaximum: 65_535 },
  })
  await client.subscribeAsync(`${prefix}/+/telemetry`, { qos: 1 })
  let received = 0
  client.on('message', () => (received += 1))
  const { started, done } = await publish(prefix, COUNT)
  await done
  await until(
    () => received >= COUNT,
    () => `bare subscriber received ${received} of ${COUNT}`,
  )
  const rate = COUNT / ((performance.now() - started) / 1000)
  await client.endAsync()
  return rate
}

async function ingest(
  delivery: 'at-least-once' | 'at-most-once',
  count: number,
  rate = 0,
  extra: { spool?: { dir: string } } = {},
) {
  const prefix = `bench-${randomBytes(3).toString('hex')}`
  const latencies: number[] = []
  const writer = createTelemetryWriter(db, { logger: false, ...(rate > 0 && { maxBatchAgeMs: 100 }) })
  const writeRaw = writer.writeRaw.bind(writer)
  // Latency: from the publisher's clock in the payload to the moment the reading is durable.
  writer.writeRaw = async (packet, meta) => {
    const receipt = await writeRaw(packet, meta)
    const sentAt = (packet as { sentAt?: number }).sentAt
    if (rate > 0 && sentAt !== undefined) void receipt.durable.then(() => latencies.push(Date.now() - sentAt))
    return receipt
  }
  const ingestor = await createMqttIngestor({
    url: brokerUrl,
    writer,
    clientId: `bench-ingest-${randomBytes(3).toString('hex')}`,
    topicPrefix: prefix,
    delivery,
    protocolVersion: 5,
    logger: false,
    ...extra,
  })
  const ackLatencies = extra.spool && rate > 0 ? acknowledgementLatencies(ingestor.client) : undefined
  const { started, done } = await publish(prefix, count, rate)
  await done
  await until(
    () => writer.stats().written >= count,
    () => {
      // Every message was acknowledged to its publisher; fewer arriving means the broker dropped them.
      const hint =
        ingestor.stats().received < count
          ? ` (the broker delivered ${ingestor.stats().received} of ${count} acknowledged messages: did it drop QoS 1 messages beyond max_queued_messages?)`
          : ''
      return `${delivery}: ${JSON.stringify({ writer: writer.stats(), ingestor: ingestor.stats() })}${hint}`
    },
  )
  const seconds = (performance.now() - started) / 1000
  const spool = ingestor.stats().spool
  await ingestor.close({ forgetSession: true })
  await writer.close()
  latencies.sort((a, b) => a - b)
  const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]
  return { rate: count / seconds, p50: percentile(50), p99: percentile(99), spool, acks: ackLatencies?.() }
}

/**
 * The stock-broker section: a private Mosquitto on the machine's own
 * configuration file (Debian's limits), every ingestor and writer option at
 * its default but those named, the same publishers. Counts published against
 * stored: the broker drops what overflows its queue before the ingestor sees it.
 */
async function stockBroker(
  count: number,
  rate: number,
  options: { protocolVersion?: 4; connections?: number; spool?: boolean } = {},
) {
  const broker = await startMosquitto({ stock: true })
  const { spool, ...rest } = options
  const spoolDir = spool ? await mkdtemp(join(tmpdir(), 'plantops-bench-stock-spool-')) : undefined
  try {
    const prefix = `bench-${randomBytes(3).toString('hex')}`
    const writer = createTelemetryWriter(db, { logger: false })
    const ingestor = await createMqttIngestor({
      url: broker.url,
      writer,
      clientId: `bench-stock-${randomBytes(3).toString('hex')}`,
      topicPrefix: prefix,
      logger: false,
      ...rest,
      ...(spoolDir !== undefined && { spool: { dir: spoolDir } }),
    })
    const { started, done } = await publish(prefix, count, rate, broker.url)
    await done
    // Stored is final once nothing is held and nothing more arrives for two seconds (what the broker
    // dropped never will); a slow commit holds PUBACKs, so it is waited for.
    let last = -1
    let lastChange = performance.now()
    const settled = () => ingestor.stats().heldAcks === 0 && performance.now() - lastChange >= 2_000
    while (writer.stats().written < count && !settled()) {
      if (writer.stats().written !== last) [last, lastChange] = [writer.stats().written, performance.now()]
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const seconds = (performance.now() - started) / 1000
    const stored = writer.stats().written
    const { protocolVersion, connections } = ingestor.stats()
    const window = connections.map((c) => c.window ?? '-').join('/')
    if (process.env.BENCH_DEBUG)
      console.log(JSON.stringify({ received: ingestor.stats().received, spool: ingestor.stats().spool }))
    await ingestor.close({ forgetSession: true })
    await writer.close()
    return { rate: stored / seconds, stored, window, protocolVersion, connections: connections.length }
  } finally {
    await broker.stop()
    if (spoolDir !== undefined) await rm(spoolDir, { recursive: true, force: true })
  }
}

const STOCK_V4_RATE = Number(process.env.BENCH_STOCK_V4_RATE ?? 5_500)
const STOCK_V4_MESSAGES = STOCK_V4_RATE * 10

/** `BENCH_SECTIONS=spool,stock` runs only those of ingest, spool and stock. */
const sections = new Set((process.env.BENCH_SECTIONS ?? 'ingest,spool,stock').split(','))

console.log(
  `broker: ${process.env.MQTT_URL ? `MQTT_URL (${brokerUrl})` : 'a private Mosquitto'}; database: ${process.env.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : 'embedded PGlite'}; ${COUNT.toLocaleString('en')} QoS 1 messages from 1,000 devices`,
)
try {
  const ceiling = sections.has('ingest') ? await bareSubscriber() : Number.NaN
  if (sections.has('ingest'))
    console.log(`bare mqtt.js subscriber (ceiling)      ${Math.round(ceiling).toLocaleString('en').padStart(8)} msg/s`)
  const alo =
    sections.has('ingest') || sections.has('stock') ? await ingest('at-least-once', COUNT) : { rate: Number.NaN }
  console.log(
    `plantops-db at-least-once              ${Math.round(alo.rate).toLocaleString('en').padStart(8)} msg/s (published until committed)`,
  )
  if (sections.has('ingest')) {
    const amo = await ingest('at-most-once', COUNT)
    console.log(`plantops-db at-most-once               ${Math.round(amo.rate).toLocaleString('en').padStart(8)} msg/s`)
    const latency = await ingest('at-least-once', LATENCY_RATE * LATENCY_SECONDS, LATENCY_RATE)
    console.log(
      `latency at ${LATENCY_RATE.toLocaleString('en')} msg/s, at-least-once  p50 ${latency.p50} ms, p99 ${latency.p99} ms (maxBatchAgeMs 100)`,
    )
    console.log(
      `\nat-least-once is ${(alo.rate / amo.rate).toFixed(2)}× at-most-once and ${(alo.rate / ceiling).toFixed(2)}× the bare subscriber`,
    )
  }

  if (sections.has('spool'))
    await spoolSection({
      count: COUNT,
      latencyRate: LATENCY_RATE,
      latencySeconds: LATENCY_SECONDS,
      ingest: (count, rate, spool) => ingest('at-least-once', count, rate, spool ? { spool } : {}),
    })

  if (sections.has('stock')) await stockSection(alo.rate)
} finally {
  await db.destroy()
  await dispose()
  await own?.stop()
}

async function stockSection(aloRate: number): Promise<void> {
  console.log(
    `\nstock-config Mosquitto (Debian's /etc/mosquitto/mosquitto.conf: 1,000 queued per session), ingestor and writer defaults`,
  )
  const line = (label: string, r: Awaited<ReturnType<typeof stockBroker>>, published: number) =>
    console.log(
      `${label.padEnd(47)}${Math.round(r.rate).toLocaleString('en').padStart(8)} msg/s; published ${published.toLocaleString('en')}, stored ${r.stored.toLocaleString('en')}, lost ${(published - r.stored).toLocaleString('en')} (${r.connections} connection${r.connections > 1 ? 's' : ''}, window ${r.window})`,
    )
  if (process.env.BENCH_STOCK === 'spool') return spooledStock(line)
  const v5 = await stockBroker(COUNT, 0)
  line(`MQTT ${v5.protocolVersion === 5 ? '5' : '3.1.1'} (default), as fast as published`, v5, COUNT)
  const v5one = await stockBroker(COUNT, 0, { connections: 1 })
  line('MQTT 5, connections: 1, as fast as published', v5one, COUNT)
  const v4 = await stockBroker(STOCK_V4_MESSAGES, STOCK_V4_RATE, { protocolVersion: 4 })
  line(`MQTT 3.1.1 forced, offered ${STOCK_V4_RATE.toLocaleString('en')} msg/s`, v4, STOCK_V4_MESSAGES)
  await spooledStock(line)
  console.log(
    `\nstock MQTT 5 (defaults) is ${(v5.rate / aloRate).toFixed(2)}× the tuned at-least-once figure (target ≥ 0.8; ` +
      `${(v5one.rate / aloRate).toFixed(2)}× with one connection); 3.1.1 forced ${Math.round(v4.rate).toLocaleString('en')} msg/s ` +
      `(target ≥ 5,000); lost ${COUNT - v5.stored} with the defaults and ${STOCK_V4_MESSAGES - v4.stored} with 3.1.1 forced ` +
      `(target 0), ${COUNT - v5one.stored} with one connection`,
  )
}

/** The stock broker through a spool, with the spool's defaults. */
async function spooledStock(
  line: (label: string, r: Awaited<ReturnType<typeof stockBroker>>, published: number) => void,
) {
  const spooled = await stockBroker(COUNT, 0, { spool: true })
  line('spool (defaults), as fast as published', spooled, COUNT)
  const spooledOne = await stockBroker(COUNT, 0, { spool: true, connections: 1 })
  line('spool, connections: 1, as fast as published', spooledOne, COUNT)
  const spooledV4 = await stockBroker(STOCK_V4_MESSAGES, STOCK_V4_RATE, { protocolVersion: 4, spool: true })
  line(`spool, MQTT 3.1.1 forced, offered ${STOCK_V4_RATE.toLocaleString('en')} msg/s`, spooledV4, STOCK_V4_MESSAGES)
}
