import { createServer } from 'node:net'

/**
 * The MQTT broker the examples talk to: `MQTT_URL` when set, otherwise an
 * in-process aedes broker on a free port, so the examples run anywhere.
 * `close()` stops only a broker this function started.
 *
 * @example
 * ```ts
 * const broker = await localBroker()
 * const ingestor = await createMqttIngestor({ url: broker.url, writer })
 * // …
 * await broker.close()
 * ```
 */
export async function localBroker(): Promise<{ url: string; close(): Promise<void> }> {
  if (process.env.MQTT_URL) return { url: process.env.MQTT_URL, close: async () => {} }
  const { Aedes } = await import('aedes')
  const aedes = await Aedes.createBroker()
  const server = createServer(aedes.handle)
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  )
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => aedes.close(() => resolve()))),
  }
}
