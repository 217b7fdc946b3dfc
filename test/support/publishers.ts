import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'

/** What a fleet of publishers sent, and what the broker acknowledged (PUBACK) and when. */
export interface Published {
  /** Index of each message the broker acknowledged, with the time of its PUBACK (performance clock). */
  readonly acked: Map<number, number>
  readonly sent: number
}

/**
 * `clients` mqtt.js publishers sending `rate` QoS 1 messages a second in all
 * for `seconds`, on schedule, message `i` from `message(i)`. They reconnect
 * after a second (mqtt.js's default; ESPHome and Tasmota wait longer) and
 * resend what was not acknowledged, all at once.
 * Resolves once every message is acknowledged or `settleMs` passed.
 */
export async function publishPaced(
  url: string,
  options: {
    clients: number
    rate: number
    seconds: number
    message: (i: number) => [string, string]
    protocolVersion?: 4 | 5
    settleMs?: number
  },
): Promise<Published> {
  const { clients, rate, seconds, message } = options
  const publishers = await Promise.all(
    Array.from({ length: clients }, () =>
      mqtt.connectAsync(url, {
        clientId: `pub-${randomBytes(4).toString('hex')}`,
        reconnectPeriod: 1_000,
        clean: true,
        protocolVersion: options.protocolVersion ?? 4,
      }),
    ),
  )
  for (const publisher of publishers) publisher.on('error', () => {})
  const acked = new Map<number, number>()
  const sends: Promise<unknown>[] = []
  const total = rate * seconds
  const started = performance.now()
  for (let i = 0; i < total; i += 1) {
    const due = started + (i * 1000) / rate
    const wait = due - performance.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    const [topic, payload] = message(i)
    sends.push(
      publishers[i % clients]!.publishAsync(topic, payload, { qos: 1 }).then(
        () => acked.set(i, performance.now()),
        () => {},
      ),
    )
  }
  const settle = new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 30_000))
  await Promise.race([Promise.all(sends), settle])
  await Promise.all(publishers.map((p) => p.endAsync(true)))
  return { acked, sent: total }
}
