import { randomBytes } from 'node:crypto'
/**
 * Provisions a device and prints its MQTT credentials, once, and the
 * Mosquitto password file for every active device.
 *
 *   npm run example:provision-device -- AA:BB:CC:00:11:22
 */
import { createDatabase, createRepositories, migrateToLatest } from 'plantops-db'

const macAddress =
  process.argv[2] ??
  `02:00:00:${randomBytes(3)
    .toString('hex')
    .replace(/(..)(?=.)/g, '$1:')}`
const db = createDatabase()
try {
  await migrateToLatest(db, { logger: false })
  const { devices } = createRepositories(db)
  const { device, credentials } = await devices.provision({
    macAddress,
    sensorTypes: ['soil_moisture', 'temperature', 'humidity', 'light_level'],
  })
  console.log(`device ${device.id} (MAC ${device.mac_address})`)
  console.log(`MQTT username: ${credentials.username}`)
  console.log(`MQTT password: ${credentials.password}   <- shown once; only its hash is stored`)
  console.log(`publish to:    plantops/${device.id}/telemetry`)
  console.log('\nMosquitto password_file:')
  process.stdout.write(await devices.mosquittoPasswordFile())
} finally {
  await db.destroy()
}
