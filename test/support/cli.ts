import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { Kysely } from 'kysely'
import { createDatabase, type Database } from '../../src/index.js'
import { createServerDatabase, serverBackend } from './backends.js'

/** The built command, as `npx plantops-db` runs it (global setup builds dist/ first). */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** An environment without the machine's DATABASE_URL / MQTT_URL, so each test says what it connects to. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { DATABASE_URL: _d, MQTT_URL: _m, ...rest } = process.env
  return { ...rest, ...extra }
}

/**
 * `plantops-db <args>` as a child process. `ingest` spools under
 * $STATE_DIRECTORY: each process gets its own, removed when it ends, unless
 * the test gives one (to restart on the same spool), so no test leaves a
 * spool in the working directory.
 */
function spawnCli(
  args: readonly string[],
  env: Record<string, string>,
): ChildProcess & { stdout: Readable; stderr: Readable } {
  const state = env.STATE_DIRECTORY === undefined ? mkdtempSync(join(tmpdir(), 'plantops-cli-state-')) : undefined
  const child = spawn(process.execPath, [CLI, ...args], {
    env: cleanEnv({ ...env, ...(state !== undefined && { STATE_DIRECTORY: state }) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (state !== undefined) child.on('close', () => rmSync(state, { recursive: true, force: true }))
  return child
}

/** Runs `plantops-db <args>` to completion. */
export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** A long-running `plantops-db` process, its output so far, and its exit. */
export interface CliProcess {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
  /** The JSON log lines written so far. */
  readonly logLines: () => Record<string, unknown>[]
}

export function startCli(args: readonly string[], env: Record<string, string> = {}): CliProcess {
  const child = spawnCli(args, env)
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const logLines = () =>
    output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
  return { child, output: () => output, exited, logLines }
}

/** Where a command's database lives, and how the test looks at it. */
export interface CliDatabase {
  /** The flags that name it: `--data-dir <dir>` or `--database-url <url>`. */
  readonly args: string[]
  /** Whether the test may query it while a command runs (PGlite: one process at a time). */
  readonly shared: boolean
  inspect<T>(look: (db: Kysely<Database>) => Promise<T>): Promise<T>
  drop(): Promise<void>
}

async function pgliteDirectory(): Promise<CliDatabase> {
  const dir = await mkdtemp(join(tmpdir(), 'plantops-cli-'))
  return {
    args: ['--data-dir', dir],
    shared: false,
    async inspect(look) {
      const db = createDatabase({ dataDir: dir, logger: false })
      try {
        return await look(db)
      } finally {
        await db.destroy()
      }
    },
    drop: () => rm(dir, { recursive: true, force: true }),
  }
}

async function serverDatabase(): Promise<CliDatabase> {
  const server = await createServerDatabase()
  const db = createDatabase({ connectionString: server.url, logger: false })
  return {
    args: ['--database-url', server.url],
    shared: true,
    inspect: (look) => look(db),
    async drop() {
      await db.destroy()
      await server.drop()
    },
  }
}

/** The databases the command line is tested on: a PGlite directory, and PostgreSQL when there is one. */
export const cliDatabaseKinds = [
  { name: 'pglite', enabled: true, create: pgliteDirectory },
  { name: 'postgres', enabled: serverBackend.enabled, create: serverDatabase },
] as const
