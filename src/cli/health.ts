import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** What `/readyz` found: ready, or the reasons it is not. */
export interface Readiness {
  readonly ready: boolean
  readonly checks: Readonly<Record<string, string>>
}

export interface HealthEndpoints {
  /** Serves `/metrics` (Prometheus text). */
  readonly metrics: (request: IncomingMessage, response: ServerResponse) => void
  /** Whether the service can do its work now. */
  readonly readiness: () => Promise<Readiness>
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' })
  response.end(`${JSON.stringify(body)}\n`)
}

/**
 * The service's HTTP side: `/metrics`, `/healthz` (the process answers) and
 * `/readyz` (it can work: 200, else 503 with what failed).
 */
export async function serveHealth(
  host: string,
  port: number,
  endpoints: HealthEndpoints,
): Promise<{ server: Server; port: number }> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    if (request.method !== 'GET' && request.method !== 'HEAD') return json(response, 405, { error: 'GET only' })
    if (path === '/metrics') return endpoints.metrics(request, response)
    if (path === '/healthz') return json(response, 200, { status: 'ok' })
    if (path === '/readyz') {
      endpoints.readiness().then(
        (result) => json(response, result.ready ? 200 : 503, result),
        (error: unknown) => json(response, 503, { ready: false, checks: { readiness: String(error) } }),
      )
      return
    }
    json(response, 404, { error: 'not found: /metrics, /healthz or /readyz' })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return { server, port: (server.address() as AddressInfo).port }
}
