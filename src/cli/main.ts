#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander'
import { ValidationError } from '../errors/errors.js'
import { UsageError } from './context.js'
import { devicesCommand } from './devices.js'
import { ingestCommand } from './ingest-command.js'
import { migrateCommand } from './migrate.js'
import { rejectsCommand } from './rejects.js'

function program(): Command {
  const root = new Command('plantops-db')
    .description("plantops-db's operator commands: migrations, devices, dead letters, and ingestion as a service")
    .addOption(new Option('--database-url <url>', 'PostgreSQL connection string').env('DATABASE_URL'))
    .addOption(new Option('--data-dir <dir>', 'an embedded PGlite database in this directory, instead of PostgreSQL'))
    .addOption(
      new Option('--schema <name>', "plantops-db's own PostgreSQL schema, if it has one").env('PLANTOPS_SCHEMA'),
    )
    .option('--json', 'print results as JSON')
  root.addCommand(migrateCommand())
  root.addCommand(devicesCommand())
  root.addCommand(rejectsCommand())
  root.addCommand(ingestCommand())
  // Settings are not inherited through addCommand: every command reports usage errors to main(), not process.exit.
  const all = (command: Command): Command[] => [command, ...command.commands.flatMap(all)]
  for (const command of all(root)) command.exitOverride().showHelpAfterError('(add --help for usage)')
  return root
}

/** One line for the operator: the message, or the code when an error has none (a refused connection). */
function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describe(error.errors[0])
  if (!(error instanceof Error)) return String(error)
  const code = (error as { code?: unknown }).code
  return error.message || (typeof code === 'string' ? code : error.name)
}

/** Runs the command line; resolves to the exit code: 0 done, 1 failed, 2 called wrongly. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' })
    return 0
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2
    // A flag's value the library refused (a malformed MAC address, an unknown metric) is a usage error too.
    if (error instanceof UsageError || error instanceof ValidationError) {
      process.stderr.write(`plantops-db: ${error.message}\n(add --help for usage)\n`)
      return 2
    }
    process.stderr.write(`plantops-db: ${describe(error)}\n`)
    return 1
  }
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
