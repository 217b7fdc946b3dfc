/**
 * Publishes the benchmark's messages from its own process, as a fleet would:
 * QoS 1, `COUNT` messages over 1,000 device topics, either as fast as the
 * broker takes them or at `RATE` messages per second. Each payload carries
 * its send time (`sentAt`) for latency. A lean MQTT connection by default
 * (see mqtt-device-fleet.ts); mqtt.js with `BENCH_PUBLISHER=mqtt.js`.
 */
import mqtt from 'mqtt'
import { publishFleet } from './mqtt-device-fleet.js'

const url = process.env.MQTT_URL!
const prefix = process.env.PREFIX!
const count = Number(process.env.COUNT)
const rate = Number(process.env.RATE ?? 0)
const devices = Number(process.env.DEVICES ?? 1_000)
const base = Number(process.env.BASE)
const window = 2_000

const topicOf = (i: number) => `${prefix}/dev_bench_${i % devices}/telemetry`
const payloadOf = (i: number) =>
  `{"time":${base + Math.floor(i / devices) * 1000},"soil_moisture":${40 + (i % 20)},"humidity":55,"sentAt":${Date.now()}}`

async function publishWithMqttJs(): Promise<void> {
  const client = await mqtt.connectAsync(url, { clientId: `bench-pub-${process.pid}`, clean: true })
  const started = Date.now()
  let inFlight: Promise<unknown>[] = []
  for (let i = 0; i < count; i += 1) {
    if (rate > 0) {
      const wait = started + (i * 1000) / rate - Date.now()
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    }
    inFlight.push(client.publishAsync(topicOf(i), payloadOf(i), { qos: 1 }))
    if (inFlight.length >= window) {
      await Promise.all(inFlight)
      inFlight = []
    }
  }
  await Promise.all(inFlight)
  await client.endAsync()
}

// Loading this script takes longer than publishing; the benchmark's clock starts at 'go'.
if (process.send) {
  process.send('ready')
  await new Promise((resolve) => process.once('message', resolve))
  process.channel?.unref()
}
const started = Date.now()
if (process.env.BENCH_PUBLISHER === 'mqtt.js') await publishWithMqttJs()
else await publishFleet({ url, clientId: `bench-pub-${process.pid}`, topicOf, payloadOf, count, rate, window })
console.log(JSON.stringify({ published: count, ms: Date.now() - started }))
