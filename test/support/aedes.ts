import { createServer } from 'node:net'
import { Aedes } from 'aedes'

/** An in-process aedes broker on a free loopback port: MQTT 3.1.1, no shared subscriptions. */
export async function startAedes(): Promise<{ url: string; stop(): Promise<void> }> {
  const broker = await Aedes.createBroker()
  const server = createServer(broker.handle)
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  )
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await new Promise<void>((resolve) => broker.close(() => resolve()))
    },
  }
}
