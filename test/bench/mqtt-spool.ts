/**
 * The spool section of `npm run bench:mqtt`: at-least-once through the spool
 * against at-least-once without it, in interleaved rounds on the tuned
 * broker; acknowledgement latency at a fixed rate through the spool; and
 * messages per fsync against a one-fsync-per-message baseline on the same disk.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import type { SpoolStats } from 'plantops-db/mqtt'
import { Spool } from '../../src/spool/spool.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)

/**
 * Time from each PUBLISH read off the ingestor's connection to the PUBACK it
 * sends for it (through the spool: once the record is fsync'd).
 */
export function acknowledgementLatencies(client: MqttClient): () => number[] {
  const arrived = new Map<number, number>()
  const latencies: number[] = []
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'publish' && packet.messageId !== undefined) arrived.set(packet.messageId, performance.now())
  })
  client.on('packetsend', (packet) => {
    if (packet.cmd !== 'puback' || packet.messageId === undefined) return
    const at = arrived.get(packet.messageId)
    if (at === undefined) return
    arrived.delete(packet.messageId)
    latencies.push(performance.now() - at)
  })
  return () => latencies
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
const median = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  )
const spread = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const fmt = (n: number) => Math.round(n).toLocaleString('en')
  return `${fmt(sorted[0]!)}–${fmt(percentile(sorted, 50))}–${fmt(sorted.at(-1)!)}`
}

type Ingest = (
  count: number,
  rate: number,
  spool?: { dir: string },
) => Promise<{ rate: number; spool: SpoolStats | null; acks: number[] | undefined }>

/** Appends `count` records to a fresh spool, all at once (group commit) or each after the last is durable. */
async function appendRate(count: number, oneByOne: boolean): Promise<{ rate: number; perFsync: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'plantops-bench-spool-'))
  const quiet = { debug() {}, info() {}, warn() {}, error() {} }
  const spool = await Spool.open({ dir, closeDrainMs: 0 }, quiet)
  const payload = Buffer.from('{"time":1700000000000,"soil_moisture":41.5,"humidity":55,"sentAt":1700000000000}')
  const record = (i: number) => ({
    topic: `bench/dev_bench_${i % 1000}/telemetry`,
    payload,
    retained: false,
    receivedAtMs: i,
  })
  const started = performance.now()
  if (oneByOne) for (let i = 0; i < count; i += 1) await spool.append(record(i))
  else await Promise.all(Array.from({ length: count }, (_, i) => spool.append(record(i))))
  const seconds = (performance.now() - started) / 1000
  const { appended, fsyncs } = spool.stats()
  await spool.close()
  await rm(dir, { recursive: true, force: true })
  return { rate: count / seconds, perFsync: appended / fsyncs }
}

export async function spoolSection(options: {
  count: number
  latencyRate: number
  latencySeconds: number
  ingest: Ingest
}): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'plantops-bench-spool-'))
  try {
    console.log(
      `\nspool (at-least-once through a spool in ${tmpdir()}, acknowledged once fsync'd), ${ROUNDS} interleaved rounds`,
    )
    const without: number[] = []
    const through: number[] = []
    const perFsync: number[] = []
    for (let round = 1; round <= ROUNDS; round += 1) {
      const plain = await options.ingest(options.count, 0)
      const spooled = await options.ingest(options.count, 0, { dir: join(dir, `round-${round}`) })
      without.push(plain.rate)
      through.push(spooled.rate)
      perFsync.push(spooled.spool!.appended / spooled.spool!.fsyncs)
      console.log(
        `round ${round}: without ${Math.round(plain.rate).toLocaleString('en')} msg/s, spooled ${Math.round(spooled.rate).toLocaleString('en')} msg/s, ` +
          `ratio ${(spooled.rate / plain.rate).toFixed(2)}, ${Math.round(perFsync.at(-1)!)} messages per fsync`,
      )
    }
    const ratios = through.map((r, i) => r / without[i]!)
    console.log(
      `without the spool (min–median–max)  ${spread(without)} msg/s\nthrough the spool                   ${spread(through)} msg/s\n` +
        `ratio, median of rounds             ${median(ratios).toFixed(2)} (rounds ${ratios.map((r) => r.toFixed(2)).join(', ')}; target ≥ 0.8)`,
    )
    const latency = await options.ingest(options.latencyRate * options.latencySeconds, options.latencyRate, {
      dir: join(dir, 'latency'),
    })
    const acks = [...(latency.acks ?? [])].sort((a, b) => a - b)
    const stats = latency.spool!
    console.log(
      `acknowledgement latency at ${options.latencyRate.toLocaleString('en')} msg/s through the spool: ` +
        `p50 ${percentile(acks, 50).toFixed(1)} ms, p99 ${percentile(acks, 99).toFixed(1)} ms (target p99 ≤ 20 ms; ` +
        `${acks.length.toLocaleString('en')} PUBACKs, ${(stats.appended / stats.fsyncs).toFixed(1)} messages per fsync)`,
    )
    const grouped = await appendRate(20_000, false)
    const single = await appendRate(2_000, true)
    console.log(
      `spool appends alone: group commit ${Math.round(grouped.rate).toLocaleString('en')} msg/s (${Math.round(grouped.perFsync)} per fsync); ` +
        `one fsync per message ${Math.round(single.rate).toLocaleString('en')} msg/s (${(grouped.rate / single.rate).toFixed(0)}× slower)`,
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
