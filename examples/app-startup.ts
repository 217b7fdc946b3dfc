/**
 * A small service as a host would write it: migrate at startup, ingest
 * telemetry from MQTT, serve two read endpoints, and shut down gracefully on
 * SIGTERM (stop ingesting, make everything durable, close the pool).
 *
 *   npm run example:app-startup                      # embedded PGlite and an in-process MQTT broker
 *   DATABASE_URL=… MQTT_URL=mqtt://127.0.0.1:1883 npm run example:app-startup
 *
 *   GET /plants/:id/telemetry?bucket=1h   hourly (or 5m, 15m, 1d) buckets of the last 24 hours
 *   GET /plants/:id/alerts                the plant's newest alerts
 */
import { createServer, type ServerResponse } from 'node:http'
import {
  createDatabase,
  createRepositories,
  createTelemetryWriter,
  migrateToLatest,
  NotFoundError,
  PlantopsError,
} from 'plantops-db'
import { createMqttIngestor } from 'plantops-db/mqtt'
import { localBroker } from './local-broker.js'

const BUCKETS = { '5m': '5 minutes', '15m': '15 minutes', '1h': '1 hour', '1d': '1 day' } as const

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

const db = createDatabase()
await migrateToLatest(db)
const repos = createRepositories(db)
const broker = await localBroker()
const writer = createTelemetryWriter(db)
const ingestor = await createMqttIngestor({ url: broker.url, writer, clientId: 'plantops-example-app' })

const http = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const match = /^\/plants\/([^/]+)\/(telemetry|alerts)$/.exec(url.pathname)
  if (req.method !== 'GET' || !match) return reply(res, 404, { error: 'not found' })
  const [, plantId, what] = match as unknown as [string, string, 'telemetry' | 'alerts']
  try {
    await repos.plants.get(plantId)
    if (what === 'alerts') return reply(res, 200, (await repos.alerts.listForPlant(plantId, { limit: 50 })).items)
    const bucket = BUCKETS[(url.searchParams.get('bucket') ?? '1h') as keyof typeof BUCKETS]
    if (!bucket) return reply(res, 400, { error: `bucket must be one of ${Object.keys(BUCKETS).join(', ')}` })
    const to = new Date()
    return reply(
      res,
      200,
      await repos.telemetry.buckets({ plantId, from: new Date(to.getTime() - 86_400_000), to, bucket }),
    )
  } catch (error) {
    if (error instanceof NotFoundError) return reply(res, 404, { error: error.message })
    if (error instanceof PlantopsError) return reply(res, 400, { error: error.message, code: error.code })
    return reply(res, 500, { error: 'internal error' })
  }
})
http.listen(Number(process.env.PORT ?? 3000), () => {
  console.log(
    `listening on http://127.0.0.1:${(http.address() as { port: number }).port}, ingesting from ${broker.url}`,
  )
})

process.once('SIGTERM', async () => {
  http.close()
  // Stop reading; everything received is durable and acknowledged. A real service keeps its broker
  // session across restarts (plain close()); this example forgets it, so it leaves nothing behind.
  await ingestor.close({ forgetSession: true })
  await writer.close()
  await broker.close()
  await db.destroy() // ends only the pool createDatabase created
  console.log('drained and stopped')
  process.exit(0)
})
