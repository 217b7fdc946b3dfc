import { InvalidArgumentError, type Command } from 'commander'
import type { Kysely } from 'kysely'
import { createDatabase } from '../connection/create-database.js'
import type { Database } from '../schema/database.js'

/** A mistake in how the command was called: exit code 2, like commander's own. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** The options every command shares, from the command line or the environment. */
export interface GlobalOptions {
  readonly databaseUrl?: string
  readonly dataDir?: string
  readonly schema?: string
  readonly json?: boolean
}

/** The shared options; a `--data-dir` flag wins over a `DATABASE_URL` that is only in the environment. */
export function globalsOf(command: Command): GlobalOptions {
  const options = command.optsWithGlobals<GlobalOptions>()
  let root = command
  while (root.parent) root = root.parent
  if (options.dataDir !== undefined && root.getOptionValueSource('databaseUrl') === 'env') {
    const { databaseUrl: _fromEnvironment, ...rest } = options
    return rest
  }
  return options
}

/**
 * The database the command works on: PostgreSQL from `--database-url` or
 * `DATABASE_URL`, or an embedded PGlite in `--data-dir`. Never the in-memory
 * default, whose changes would vanish when the command exits.
 */
export function openDatabase(options: GlobalOptions): Kysely<Database> {
  if (options.databaseUrl !== undefined && options.dataDir !== undefined) {
    throw new UsageError('give --database-url (or DATABASE_URL) or --data-dir, not both')
  }
  if (options.databaseUrl === undefined && options.dataDir === undefined) {
    throw new UsageError(
      'no database: pass --database-url <url> or set DATABASE_URL for PostgreSQL, or --data-dir <dir> for an embedded PGlite',
    )
  }
  return createDatabase({
    ...(options.databaseUrl !== undefined ? { connectionString: options.databaseUrl } : { dataDir: options.dataDir! }),
    ...(options.schema !== undefined && { schema: options.schema }),
    applicationName: 'plantops-db cli',
    min: 0,
    logger: false,
  })
}

/** Runs `body` with the command's database, and always closes it. */
export async function withDatabase<T>(command: Command, body: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const db = openDatabase(globalsOf(command))
  try {
    return await body(db)
  } finally {
    await db.destroy()
  }
}

/** Prints `value` as JSON with `--json`, else the human lines. */
export function print(command: Command, value: unknown, lines: () => readonly string[]): void {
  const text = globalsOf(command).json ? JSON.stringify(value, null, 2) : lines().join('\n')
  if (text.length > 0) process.stdout.write(`${text}\n`)
}

/** An integer flag, or a usage error naming the flag. */
export const integer =
  (flag: string, min: number, max: number) =>
  (value: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${flag} must be a whole number from ${min} to ${max}.`)
    }
    return n
  }
