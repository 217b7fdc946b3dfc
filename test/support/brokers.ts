import { startAedes } from './aedes.js'
import { mosquittoEnabled, startMosquitto } from './mosquitto.js'

/** A broker a suite talks to, started (or found) for it. */
export interface TestBroker {
  readonly url: string
  /** Whether it is a Mosquitto with Debian's stock limits (20 in flight for 3.1.1 clients, 1,000 queued). */
  readonly stockMosquitto: boolean
  stop(): Promise<void>
}

export interface BrokerKind {
  readonly name: string
  readonly enabled: boolean
  start(): Promise<TestBroker>
}

/** In-process aedes: MQTT 3.1.1 only, no shared subscriptions. */
export const aedesBroker: BrokerKind = {
  name: 'aedes',
  enabled: true,
  async start() {
    return { ...(await startAedes()), stockMosquitto: false }
  },
}

/** A Mosquitto of the suite's own, on a copy of the machine's stock configuration file. */
export const stockMosquittoBroker: BrokerKind = {
  name: 'stock-config mosquitto',
  enabled: mosquittoEnabled,
  async start() {
    const broker = await startMosquitto({ stock: true })
    return { url: broker.url, stockMosquitto: true, stop: () => broker.stop() }
  },
}

/** The machine's own broker (MQTT_URL), exactly as it is configured; required in CI. */
export const machineBroker: BrokerKind = {
  name: 'MQTT_URL',
  enabled: Boolean(process.env.MQTT_URL) || process.env.CI === 'true',
  async start() {
    if (!process.env.MQTT_URL)
      throw new Error('CI=true requires MQTT_URL: the broker suites must run in CI, never skip')
    // In CI this is the machine's Mosquitto as Debian configures it.
    return { url: process.env.MQTT_URL, stockMosquitto: process.env.CI === 'true', stop: async () => {} }
  },
}

/** Closes what a test opened, forgetting the broker sessions so nothing is left on a shared broker. */
export async function closeIngestion(
  open: {
    ingestor: { close(o: { forgetSession: boolean }): Promise<void> }
    writer: { close(o: { timeoutMs: number }): Promise<void> }
  }[],
): Promise<void> {
  for (const { ingestor, writer } of open.splice(0)) {
    await ingestor.close({ forgetSession: true }).catch(() => {})
    await writer.close({ timeoutMs: 2_000 }).catch(() => {})
  }
}
