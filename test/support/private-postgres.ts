import { execFile, spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { eventually } from './eventually.js'
import { freePort } from './mosquitto.js'

const run = promisify(execFile)

/** PostgreSQL's own binaries, as Debian installs them (the version the machine's server runs). */
const binDir = (() => {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const version = readdirSync(root).sort().at(-1)
  return version ? join(root, version, 'bin') : undefined
})()

/** Runs where the binaries and the `postgres` account are; CI has both and must run it. */
export const privatePostgresEnabled =
  (binDir !== undefined && existsSync('/usr/sbin/runuser')) || process.env.CI === 'true'

/**
 * A PostgreSQL server of the test's own, in a temporary directory on a free
 * port, with password authentication (the machine's server trusts everyone,
 * so a wrong password cannot be refused there). Stopped and removed by `stop`.
 */
export async function startPrivatePostgres(password: string): Promise<{ port: number; stop(): Promise<void> }> {
  if (!binDir) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql')
  const dir = await mkdtemp(join(tmpdir(), 'plantops-pg-'))
  const { uid, gid } = await accountOf('postgres')
  await chown(dir, uid, gid)
  const pwfile = join(dir, 'password')
  await writeFile(pwfile, `${password}\n`)
  await chown(pwfile, uid, gid)
  const data = join(dir, 'data')
  const asPostgres = (binary: string, args: string[]) => ['-u', 'postgres', '--', join(binDir, binary), ...args]
  await run(
    'runuser',
    asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`]),
  )
  const port = await freePort()
  const server = spawn(
    'runuser',
    asPostgres('postgres', ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1']),
    { stdio: 'ignore' },
  )
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()))
  await eventually(async () => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' })
    try {
      await client.connect()
      await client.end()
      return true
    } catch {
      return false
    }
  }, 'the private PostgreSQL accepts connections')
  return {
    port,
    async stop() {
      // runuser does not pass signals on to the server; pg_ctl stops it (fast: ends sessions, no wait).
      await run('runuser', asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']))
      await exited
      await rm(dir, { recursive: true, force: true })
    },
  }
}

async function accountOf(name: string): Promise<{ uid: number; gid: number }> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])])
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) }
}
