import type { Kysely } from 'kysely'
import { createDatabase, migrateToLatest, type Database } from '../../src/index.js'
import { createServerDatabase } from './backends.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

/** A migrated server database, reachable directly and through a proxy a test can cut. */
export interface ProxiedServer {
  readonly direct: Kysely<Database>
  readonly proxy: TcpProxy
  /** The connection string through the proxy, for another process. */
  readonly proxiedUrl: string
  /** A database handle whose connections all go through the proxy, quick to notice a cut. */
  throughProxy(): Kysely<Database>
  close(): Promise<void>
}

export async function startProxiedServer(): Promise<ProxiedServer> {
  const server = await createServerDatabase()
  const direct = createDatabase({ connectionString: server.url })
  await migrateToLatest(direct, { logger: false })
  const target = new URL(server.url)
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
  const quiet = { debug() {}, info() {}, warn() {}, error() {} }
  const proxiedUrl = new URL(server.url)
  proxiedUrl.port = String(proxy.port)
  return {
    direct,
    proxy,
    proxiedUrl: proxiedUrl.toString(),
    throughProxy() {
      const proxied = new URL(server.url)
      proxied.port = String(proxy.port)
      return createDatabase({ connectionString: proxied.toString(), connectionTimeoutMs: 500, logger: quiet })
    },
    async close() {
      await proxy.close()
      await direct.destroy()
      await server.drop()
    },
  }
}
