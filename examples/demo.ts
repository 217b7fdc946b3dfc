/**
 * npm run demo: a day in the life of a small greenhouse, in a few seconds.
 * Embedded PGlite and an in-process MQTT broker (aedes) unless DATABASE_URL /
 * MQTT_URL are set. 10 plants, 40 devices, a reading every 10 minutes for 24
 * hours, published over MQTT; the basil dries out (alerts), one device lies
 * about who it is, one sends garbage, and the broker delivers some messages twice.
 */
import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import { createDatabase, createRepositories, createTelemetryWriter, migrateToLatest, type Plant } from 'plantops-db'
import { createMqttIngestor } from 'plantops-db/mqtt'
import { localBroker } from './local-broker.js'

const PLANTS = [
  'Basil',
  'Boston fern',
  'Monstera',
  'Aloe vera',
  'Orchid',
  'Snake plant',
  'Pothos',
  'Calathea',
  'Fiddle leaf fig',
  'Peace lily',
]
const DEVICES_PER_PLANT = 4
const STEPS = 24 * 6 // every 10 minutes for a day
const SPARK = '▁▂▃▄▅▆▇█'

function progress(done: number, total: number, label: string): void {
  // A terminal gets a live bar; a log gets the quarters.
  if (!process.stdout.isTTY) {
    const quarter = Math.floor((done / total) * 4)
    if (quarter > Math.floor(((done - 1) / total) * 4)) console.log(`  ${label} ${quarter * 25}%`)
    return
  }
  const width = 30
  const filled = Math.round((done / total) * width)
  process.stdout.write(
    `\r  ${label.padEnd(12)} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(Math.round((done / total) * 100)).padStart(3)}%`,
  )
  if (done === total) process.stdout.write('\n')
}

function sparkline(values: (number | null)[]): string {
  const present = values.filter((v): v is number => v !== null)
  const [min, max] = [Math.min(...present), Math.max(...present)]
  return values
    .map((v) => (v === null ? ' ' : SPARK[Math.round(((v - min) / (max - min || 1)) * (SPARK.length - 1))]))
    .join('')
}

const started = performance.now()
const db = createDatabase()
await migrateToLatest(db, { logger: false })
const repos = createRepositories(db, { passwordIterations: 10_000 }) // demo speed; the default is 210,000
const mq = await localBroker()
const writer = createTelemetryWriter(db, { logger: false })
const ingestor = await createMqttIngestor({
  url: mq.url,
  writer,
  clientId: `plantops-demo-${randomBytes(3).toString('hex')}`,
  logger: false,
})
console.log(
  `\nplantops-db demo: ${process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite'}, ${process.env.MQTT_URL ? mq.url : 'in-process MQTT broker'}\n`,
)

const plants: Plant[] = []
const fleet: { id: string; plant: Plant; index: number }[] = []
for (const [i, name] of PLANTS.entries()) {
  plants.push(
    await repos.plants.create({
      name,
      thresholds: { soil_moisture: { min: 25, max: 85 }, temperature: { min: 12, max: 32 } },
    }),
  )
  for (let d = 0; d < DEVICES_PER_PLANT; d += 1) {
    const mac = `02:00:00:${randomBytes(3)
      .toString('hex')
      .replace(/(..)(?=.)/g, '$1:')}`
    const { device } = await repos.devices.provision({
      macAddress: mac,
      sensorTypes: ['soil_moisture', 'temperature', 'humidity', 'light_level'],
      plantId: plants[i]!.id,
    })
    fleet.push({ id: device.id, plant: plants[i]!, index: fleet.length })
  }
  progress(i + 1, PLANTS.length, 'provisioning')
}

const publisher = await mqtt.connectAsync(mq.url, { clientId: `demo-fleet-${randomBytes(3).toString('hex')}` })
const dayStart = Math.floor(Date.now() / 600_000) * 600_000 - STEPS * 600_000
const liar = fleet[5]!
const noisy = fleet[9]!
let sent = 0
const total = STEPS * fleet.length
for (let step = 0; step < STEPS; step += 1) {
  const time = dayStart + step * 600_000
  const daylight = Math.max(0, Math.sin(((step % 144) / 144) * Math.PI))
  const sends: Promise<unknown>[] = []
  for (const device of fleet) {
    const drying = device.plant.name === 'Basil' ? step * 0.35 : 0 // the basil's soil dries all day
    const reading = {
      time,
      soil_moisture: Math.max(0, Math.round((55 + 8 * Math.sin(step / 20 + device.index) - drying) * 10) / 10),
      temperature: Math.round((18 + 7 * daylight + (device.index % 3)) * 10) / 10,
      humidity: Math.round((60 - 10 * daylight) * 10) / 10,
      light_level: Math.round(daylight * 25_000),
    }
    const topic = `plantops/${device.id}/telemetry`
    let payload: string | Buffer = JSON.stringify(reading)
    if (device === liar && step % 24 === 0) payload = JSON.stringify({ ...reading, deviceId: fleet[0]!.id }) // claims to be someone else
    if (device === noisy && step % 36 === 0) payload = randomBytes(12) // a flaky radio
    sends.push(publisher.publishAsync(topic, payload, { qos: 1 }))
    if (step % 48 === 0 && device.index % 10 === 0) sends.push(publisher.publishAsync(topic, payload, { qos: 1 })) // delivered twice
  }
  await Promise.all(sends)
  sent += fleet.length
  progress(sent, total, 'a day of data')
}
while (ingestor.stats().received < total + (fleet.length / 10) * 3) await new Promise((r) => setTimeout(r, 20))
await writer.flush()

console.log('\nplant              soil now  temp   soil moisture over the day (hourly)        alerts')
for (const plant of plants) {
  const from = new Date(dayStart)
  const to = new Date(dayStart + STEPS * 600_000)
  const hourly = await repos.telemetry.buckets({ plantId: plant.id, from, to, bucket: '1 hour' })
  const [latest] = (await repos.telemetry.range({ plantId: plant.id, limit: 1 })).items
  const alerts = await repos.alerts.listForPlant(plant.id)
  const alertText = alerts.items.map((a) => `${a.metric.replace('_', ' ')} ${a.direction} ${a.threshold}`).join(', ')
  console.log(
    `${plant.name.padEnd(18)} ${`${latest?.soil_moisture ?? '-'}%`.padStart(7)}  ${`${latest?.temperature ?? '-'}°`.padStart(5)}  ${sparkline(hourly.map((h) => h.soil_moisture.avg))}  ${alertText ? `⚠ ${alertText}` : ''}`,
  )
}
const stats = writer.stats()
console.log(
  `\ningestion: ${stats.written.toLocaleString('en')} readings written, ${stats.duplicates} duplicates skipped, ${stats.batches} batches, ${stats.alerts} alerts`,
)
console.log(
  `rejected:  ${
    Object.entries(stats.rejected)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(', ') || 'none'
  }  (all kept in telemetry_rejects, replayable)`,
)
console.log(`finished in ${((performance.now() - started) / 1000).toFixed(1)} s\n`)

await ingestor.close({ forgetSession: true }) // a demo leaves no session on the broker; a service keeps it: close()
await writer.close()
await publisher.endAsync()
await mq.close()
await db.destroy()
