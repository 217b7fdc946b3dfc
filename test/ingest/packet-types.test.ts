import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import {
  createDatabase,
  createTelemetryWriter,
  migrateToLatest,
  type Database,
  type SensorPacket,
  type TelemetryWriter,
} from '../../src/index.js'
import type { Kysely } from 'kysely'

let db: Kysely<Database>
let writer: TelemetryWriter
beforeAll(async () => {
  db = createDatabase({ embedded: true })
  await migrateToLatest(db, { logger: false })
  writer = createTelemetryWriter(db, { logger: false })
})
afterAll(async () => {
  await writer.close()
  await db.destroy()
})

/** Never called: its body is checked by `tsc` (npm run typecheck), where each line must fail to compile. */
function typosThatDoNotCompile(w: TelemetryWriter): void {
  // @ts-expect-error soilMoisture is not a metric (soil_moisture is)
  void w.write({ deviceId: 'dev_1', soilMoisture: 12 })
  // @ts-expect-error a metric is a number, not text
  void w.write({ deviceId: 'dev_1', humidity: '55' })
  // @ts-expect-error a backlog reading needs its time
  void w.write({ deviceId: 'dev_1', readings: [{ humidity: 55 }] })
  // @ts-expect-error lightLevel is not a metric (light_level is)
  const packet: SensorPacket = { deviceId: 'dev_1', readings: [{ time: 1, lightLevel: 3 }] }
  void packet
}
void typosThatDoNotCompile

it('takes typed packets as written, and dead-letters the same typo arriving from outside', async () => {
  const { device } = await (await import('../../src/index.js'))
    .createRepositories(db, { passwordIterations: 1_000 })
    .devices.provision({ macAddress: '02:00:00:00:00:aa', sensorTypes: [] })
  const typed: SensorPacket[] = [
    { deviceId: device.id, soil_moisture: 12, time: new Date() },
    {
      deviceId: device.id,
      readings: [{ time: new Date(Date.now() - 60_000).toISOString(), humidity: 60, light_level: null }],
    },
  ]
  for (const packet of typed) expect((await (await writer.write(packet)).durable).status).toBe('written')

  const outside: unknown = JSON.parse(`{"deviceId":"${device.id}","soilMoisture":12}`)
  const outcome = await (await writer.writeRaw(outside, { source: 'http' })).durable
  expect(outcome).toMatchObject({ status: 'rejected', reasons: ['schema'] })
  const { rows } = await sql<{ reason: string; payload: Buffer }>`
    SELECT reason, payload FROM telemetry_rejects WHERE source = 'http'`.execute(db)
  expect(rows.map((r) => [r.reason, JSON.parse(Buffer.from(r.payload).toString('utf8'))])).toEqual([
    ['schema', { deviceId: device.id, soilMoisture: 12 }],
  ])
})
