import { randomBytes } from 'node:crypto'
/**
 * The whole library in one page: create the database, migrate, create a
 * plant and a device, write a few hours of readings, read the latest one and
 * hourly buckets.
 *
 *   npm run example:quickstart                     # embedded PGlite, in memory
 *   DATABASE_URL=postgres://… npm run example:quickstart
 */
import { createDatabase, createRepositories, createTelemetryWriter, migrateToLatest } from 'plantops-db'

const db = createDatabase()
try {
  await migrateToLatest(db, { logger: false })
  const { plants, devices, telemetry, alerts } = createRepositories(db)

  const fern = await plants.create({
    name: 'Boston fern',
    species: 'Nephrolepis exaltata',
    thresholds: { soil_moisture: { min: 30, max: 70 } },
  })
  const { device } = await devices.provision({
    macAddress: `02:00:00:${randomBytes(3)
      .toString('hex')
      .replace(/(..)(?=.)/g, '$1:')}`,
    sensorTypes: ['soil_moisture', 'temperature'],
    plantId: fern.id,
  })

  // Three hours of readings every ten minutes, the soil slowly drying out.
  const writer = createTelemetryWriter(db, { logger: false })
  const start = Date.now() - 3 * 3_600_000
  for (let i = 0; i < 18; i += 1) {
    await writer.write({
      deviceId: device.id,
      time: start + i * 600_000,
      soil_moisture: 42 - i * 0.8,
      temperature: 21 + (i % 3),
    })
  }
  await writer.close() // everything written is durable now

  const [latest] = await telemetry.latest({ plantIds: [fern.id] })
  console.log(`latest reading of ${fern.name}: soil ${latest?.soil_moisture}% at ${latest?.time.toISOString()}`)
  const hourly = await telemetry.buckets({ plantId: fern.id, from: new Date(start), to: new Date(), bucket: '1 hour' })
  for (const hour of hourly) {
    console.log(
      `${hour.bucket.toISOString()}  ${hour.readings} readings  soil avg ${hour.soil_moisture.avg?.toFixed(1)}%`,
    )
  }
  const raised = await alerts.listForPlant(fern.id)
  console.log(
    `alerts: ${raised.items.map((a) => `${a.metric} ${a.direction} ${a.threshold} (was ${a.value})`).join(', ') || 'none'}`,
  )
} finally {
  await db.destroy()
}
