import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const CANDIDATES = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto']
export const mosquittoBinary = CANDIDATES.find((path) => existsSync(path))
/** Suites that start their own broker run where the binary is, and must run in CI. */
export const mosquittoEnabled = mosquittoBinary !== undefined || process.env.CI === 'true'

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export interface MosquittoBroker {
  readonly url: string
  readonly port: number
  /** Everything the broker logged, for a failing test's message. */
  log(): string
  stop(): Promise<void>
  /**
   * Stops (SIGTERM: it saves its persistence; SIGKILL: it saves nothing) and,
   * after `downMs`, starts the broker on the same port with the same configuration.
   */
  restart(options?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }): Promise<void>
}

/** Debian's /etc/mosquitto/mosquitto.conf, for a machine that has another (or none). */
const DEBIAN_CONFIG = [
  'pid_file /run/mosquitto/mosquitto.pid',
  'persistence true',
  'persistence_location /var/lib/mosquitto/',
  'log_dest file /var/log/mosquitto/mosquitto.log',
  'include_dir /etc/mosquitto/conf.d',
]

/**
 * The machine's stock configuration file with only what a second copy must
 * change: its port, its own persistence folder, no pid file, the log on
 * stderr. Every limit (in flight, queue) stays at the broker's default.
 */
async function stockConfig(dir: string): Promise<string[]> {
  const file = await readFile('/etc/mosquitto/mosquitto.conf', 'utf8').catch(() => DEBIAN_CONFIG.join('\n'))
  return file
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .filter((line) => !/^(pid_file|listener|port|log_dest|include_dir|allow_anonymous|user)\b/.test(line))
    .map((line) => (line.startsWith('persistence_location') ? `persistence_location ${dir}/` : line))
}

/**
 * A private Mosquitto on a free loopback port. `stock` starts from the
 * machine's own configuration file (Debian's defaults: 20 in flight, 1,000
 * queued per client, persistence on); otherwise persistence is off unless
 * `persistent`, which keeps sessions across `restart()`. `config` lines come last.
 */
export async function startMosquitto(
  options: { passwordFile?: string; config?: string[]; persistent?: boolean; stock?: boolean } = {},
): Promise<MosquittoBroker> {
  if (!mosquittoBinary) throw new Error('mosquitto is not installed: CI=true requires it (apt-get install mosquitto)')
  const dir = await mkdtemp(join(tmpdir(), 'plantops-mosquitto-'))
  await chmod(dir, 0o755) // the broker may drop privileges and must still read its files
  const port = await freePort()
  const persistence = options.stock
    ? await stockConfig(dir)
    : options.persistent
      ? ['persistence true', `persistence_location ${dir}/`]
      : ['persistence false']
  const lines = [`listener ${port} 127.0.0.1`, ...persistence, 'log_dest stderr', ...(options.config ?? [])]
  if (process.getuid?.() === 0) lines.push('user root')
  if (options.passwordFile !== undefined) {
    const path = join(dir, 'passwd')
    await writeFile(path, options.passwordFile, { mode: 0o644 })
    lines.push('allow_anonymous false', `password_file ${path}`)
  } else {
    lines.push('allow_anonymous true')
  }
  const configPath = join(dir, 'mosquitto.conf')
  await writeFile(configPath, `${lines.join('\n')}\n`)

  let output = ''
  let child: ChildProcess
  const start = async () => {
    child = spawn(mosquittoBinary!, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
    await waitUntil(() => accepting(port), `mosquitto on port ${port}:\n${output}`)
  }
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill(signal)
    await exited
  }
  await start()
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    log: () => output,
    async stop() {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
    async restart(options = {}) {
      await stop(options.signal)
      if (options.downMs) await new Promise((resolve) => setTimeout(resolve, options.downMs))
      await start()
    },
  }
}
