import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { sql, type Kysely } from 'kysely'
import { createTelemetryWriter, type TelemetryWriter } from '../ingest/writer.js'
import { createMqttIngestor, type MqttIngestor } from '../mqtt/ingestor.js'
import type { Database } from '../schema/database.js'
import { jsonLinesLogger, type Logger } from '../util/logger.js'
import { type GlobalOptions, openDatabase } from './context.js'
import { serveHealth, type Readiness } from './health.js'
import { defaultSpoolDir, type IngestFlags } from './ingest-command.js'

/** How long `/readyz` waits for the database to answer. */
const DATABASE_CHECK_MS = 2_000

async function databaseAnswers(db: Kysely<Database>): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${DATABASE_CHECK_MS} ms`), DATABASE_CHECK_MS)
  })
  const query = sql`SELECT 1`.execute(db).then(
    () => 'ok',
    (error: unknown) =>
      `unreachable: ${error instanceof Error ? error.message || (error as { code?: string }).code : String(error)}`,
  )
  const result = await Promise.race([query, timeout])
  clearTimeout(timer)
  return result
}

/**
 * Whether the writer moves: rows waiting and no batch committed for
 * `stallSeconds` is a stall (the database refuses, or is too slow to keep up).
 */
function stallWatch(writer: TelemetryWriter, stallSeconds: number): () => string {
  let last = { batches: 0, at: Date.now() }
  return () => {
    const { batches, bufferedRows } = writer.stats()
    if (batches !== last.batches || bufferedRows === 0) last = { batches, at: Date.now() }
    const waited = (Date.now() - last.at) / 1000
    return waited > stallSeconds
      ? `stalled: ${bufferedRows} rows waited ${Math.round(waited)} s without a commit`
      : 'ok'
  }
}

/** The ingestor once connected, and whether the service is draining. */
interface ServiceState {
  ingestor?: MqttIngestor
  draining: boolean
}

function brokerCheck(state: ServiceState): string {
  if (state.draining) return 'draining'
  if (state.ingestor === undefined) return 'connecting'
  return state.ingestor.stats().connected ? 'ok' : 'disconnected'
}

/**
 * The spool, when there is one: `ok`, or why it no longer acknowledges. While
 * it accepts, a database that is away or slow is absorbed, not a failure.
 */
function spoolCheck(state: ServiceState): string | undefined {
  const spool = state.ingestor?.stats().spool
  if (!spool) return undefined
  return spool.accepting ? 'ok' : `not accepting: ${spool.reason}`
}

/**
 * What `/readyz` checks: the database answers, every broker connection is
 * up, the writer moves, and the spool (if any) accepts. With a spool that
 * accepts, the database and writer checks say `degraded: …` and do not fail
 * readiness: the service is doing its job, and a restart would not help.
 */
function readinessOf(db: Kysely<Database>, writer: TelemetryWriter, stallSeconds: number, state: ServiceState) {
  const writerMoves = stallWatch(writer, stallSeconds)
  return async (): Promise<Readiness> => {
    const database = await databaseAnswers(db)
    const writerCheck = writerMoves()
    const spool = spoolCheck(state)
    const absorbed = (check: string) => (spool === 'ok' && check !== 'ok' ? `degraded: ${check}` : check)
    const checks = {
      database: absorbed(database),
      broker: brokerCheck(state),
      writer: absorbed(writerCheck),
      ...(spool !== undefined && { spool }),
    }
    const ready = Object.values(checks).every((check) => check === 'ok' || check.startsWith('degraded: '))
    return { ready, checks }
  }
}

/** Resolves on the first SIGTERM or SIGINT; a second one ends the process at once. */
function firstSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false
    const on = (signal: NodeJS.Signals) => {
      if (received) {
        logger.error(
          { signal },
          'second signal while draining: exiting now, unacknowledged messages will be redelivered',
        )
        process.exit(1)
      }
      received = true
      resolve(signal)
    }
    process.on('SIGTERM', on)
    process.on('SIGINT', on)
  })
}

/**
 * `plantops-db ingest`: the writer and the MQTT ingestor as a service. Runs
 * until SIGTERM or SIGINT, then drains: everything received is written (or
 * dead-lettered) and acknowledged before the process exits 0.
 */
export async function runIngest(flags: IngestFlags, globals: GlobalOptions): Promise<void> {
  const logger = jsonLinesLogger((line) => process.stdout.write(line))
  const stopped = firstSignal(logger)
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const provider = new MeterProvider({ readers: [exporter] })
  const meter = provider.getMeter('plantops-db')
  const db = openDatabase(globals)
  const writer = createTelemetryWriter(db, { logger, meter })
  const state: ServiceState = { draining: false }
  const { server, port } = await serveHealth(flags.host, flags.port, {
    metrics: (request, response) => exporter.getMetricsRequestHandler(request, response),
    readiness: readinessOf(db, writer, flags.stallSeconds, state),
  })
  logger.info({ port, host: flags.host }, `serving /metrics, /healthz and /readyz on port ${port}`)
  try {
    state.ingestor = await createMqttIngestor({
      url: flags.mqttUrl,
      writer,
      ...(flags.spool &&
        flags.delivery === 'at-least-once' && {
          spool: { dir: flags.spoolDir ?? defaultSpoolDir(), maxBytes: flags.spoolMaxBytes },
        }),
      topicPrefix: flags.topicPrefix,
      delivery: flags.delivery,
      autoProvision: flags.autoProvision === true,
      logger,
      meter,
      ...(flags.clientId !== undefined && { clientId: flags.clientId }),
      ...(flags.shareGroup !== undefined && { shareGroup: flags.shareGroup }),
      ...(flags.connections !== undefined && { connections: flags.connections }),
    })
    const signal = await stopped
    state.draining = true
    logger.info({ signal }, `${signal}: draining, then exiting`)
    // A member of a named share group leaves for good, so the others take its stream at once.
    await state.ingestor.close({ forgetSession: flags.shareGroup !== undefined })
    await writer.close()
    logger.info(
      { writer: writer.stats(), ingestor: state.ingestor.stats() },
      'drained: everything received is durable and acknowledged',
    )
  } finally {
    await writer.close({ timeoutMs: 1 }).catch(() => {})
    await db.destroy()
    await provider.shutdown()
    await new Promise((resolve) => server.close(resolve))
  }
}
