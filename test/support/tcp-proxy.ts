import { createServer, createConnection, type Server, type Socket } from 'node:net'

/**
 * A loopback TCP proxy a test can cut and restore, to take the database away
 * from a client mid-stream the way a network failure would.
 */
export interface TcpProxy {
  readonly port: number
  /** Drops every open connection and refuses new ones. */
  cut(): Promise<void>
  /** Accepts connections again, on the same port. */
  restore(): Promise<void>
  close(): Promise<void>
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  const handle = (client: Socket) => {
    const upstream = createConnection(target)
    sockets.add(client).add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream).pipe(client)
  }
  let server: Server = createServer(handle)
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
    })
  const port = await listen(0)
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
      server.close(() => resolve())
    })
  return {
    port,
    cut: stop,
    async restore() {
      if (server.listening) return
      server = createServer(handle)
      await listen(port)
    },
    close: stop,
  }
}
