/**
 * Publishes the benchmark's messages from its own process, as a fleet would:
 * QoS 1, `COUNT` messages over 1,000 device topics, either as fast as the
 * broker takes them or at `RATE` messages per second. Each payload carries
 * its send time (`sentAt`) for latency.
 */
import mqtt from 'mqtt'

const url = process.env.MQTT_URL!
const prefix = process.env.PREFIX!
const count = Number(process.env.COUNT)
const rate = Number(process.env.RATE ?? 0)
const devices = 1_000
const base = Number(process.env.BASE)
const window = 2_000

const client = await mqtt.connectAsync(url, { clientId: `bench-pub-${process.pid}`, clean: true })
const started = Date.now()
let inFlight: Promise<unknown>[] = []
for (let i = 0; i < count; i += 1) {
  if (rate > 0) {
    const due = started + (i * 1000) / rate
    const wait = due - Date.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
  }
  const device = i % devices
  const payload = JSON.stringify({ time: base + Math.floor(i / devices) * 1000, soil_moisture: 40 + (i % 20), humidity: 55, sentAt: Date.now() })
  inFlight.push(client.publishAsync(`${prefix}/dev_bench_${device}/telemetry`, payload, { qos: 1 }))
  if (inFlight.length >= window) {
    await Promise.all(inFlight)
    inFlight = []
  }
}
await Promise.all(inFlight)
await client.endAsync()
console.log(JSON.stringify({ published: count, ms: Date.now() - started }))
