import { Command, Option } from 'commander'
import { migrateDown, migrateTo, migrateToLatest, type MigrationReport } from '../migrator/migrator.js'
import type { MigratorOptions } from '../migrator/options.js'
import { migrationStatus } from '../migrator/status.js'
import { print, UsageError, withDatabase } from './context.js'

interface MigrateFlags {
  readonly timescaledb?: 'auto' | 'require' | 'off'
  readonly migrationTable?: string
}

const migratorOptions = (flags: MigrateFlags): MigratorOptions => ({
  logger: false,
  ...(flags.timescaledb !== undefined && { timescaledb: flags.timescaledb }),
  ...(flags.migrationTable !== undefined && { migrationTable: flags.migrationTable }),
})

function reportLines(report: MigrationReport, verb: 'applied' | 'reverted' | 'ran'): string[] {
  const lines = report.adopted.length > 0 ? [`adopted from the earlier service: ${report.adopted.join(', ')}`] : []
  if (report.applied.length === 0) lines.push(verb === 'applied' ? 'up to date: nothing to apply' : 'nothing to revert')
  for (const name of report.applied) lines.push(`${verb} ${name}`)
  for (const name of report.unknown) lines.push(`unknown (recorded, not shipped by this release): ${name}`)
  lines.push(`telemetry: ${report.telemetry.hypertable ? 'hypertable' : 'plain table'}`)
  return lines
}

/** Runs one migration step and prints its report. */
function step(
  run: (db: Parameters<typeof migrateToLatest>[0], flags: MigrateFlags) => Promise<MigrationReport>,
  verb: 'applied' | 'reverted' | 'ran',
) {
  return async (flags: MigrateFlags, command: Command) => {
    const report = await withDatabase(command, (db) => run(db, flags))
    print(command, report, () => reportLines(report, verb))
  }
}

async function status(flags: MigrateFlags, command: Command): Promise<void> {
  const result = await withDatabase(command, (db) => migrationStatus(db, migratorOptions(flags)))
  print(command, result, () => [
    ...result.applied.map((m) => `applied  ${m.name}  ${m.appliedAt}`),
    ...result.adoptable.map((name) => `adopt    ${name}  (the earlier service applied it; the next run records it)`),
    ...result.pending.map((name) => `pending  ${name}`),
    ...result.unknown.map((name) => `unknown  ${name}  (not shipped by this release)`),
    `${result.applied.length} applied, ${result.pending.length} pending, ${result.unknown.length} unknown (table ${result.migrationTable})`,
  ])
}

const withMigratorFlags = (command: Command) =>
  command
    .addOption(new Option('--timescaledb <mode>', 'use TimescaleDB for telemetry').choices(['auto', 'require', 'off']))
    .option('--migration-table <name>', 'the table migrations are recorded in (default plantops_migrations)')

/** `plantops-db migrate latest|down|to <name>|status`. */
export function migrateCommand(): Command {
  const latest = step((db, flags) => migrateToLatest(db, migratorOptions(flags)), 'applied')
  // Bare `migrate` migrates to the latest; a word that names no subcommand is a usage error, not an argument.
  const migrate = withMigratorFlags(new Command('migrate'))
    .description("apply, revert or list plantops-db's migrations (bare: apply every pending one)")
    .argument('[command]')
    .action(async (word: string | undefined, flags: MigrateFlags, command: Command) => {
      if (word !== undefined)
        throw new UsageError(`unknown migrate command "${word}": latest, down, to <name> or status`)
      await latest(flags, command)
    })
  migrate.addCommand(
    withMigratorFlags(new Command('latest')).description('apply every pending migration').action(latest),
  )
  migrate.addCommand(
    withMigratorFlags(new Command('down'))
      .description('revert the most recently applied migration')
      .action(step((db, flags) => migrateDown(db, migratorOptions(flags)), 'reverted')),
  )
  migrate.addCommand(
    withMigratorFlags(new Command('to'))
      .description("migrate up or down until <name> is the last applied ('none' reverts everything)")
      .argument('<name>', 'a migration name, e.g. 003_create_telemetry, or none')
      .action(async (name: string, flags: MigrateFlags, command: Command) => {
        const report = await withDatabase(command, (db) => migrateTo(db, name, migratorOptions(flags)))
        print(command, report, () => reportLines(report, 'ran'))
      }),
  )
  migrate.addCommand(
    withMigratorFlags(new Command('status'))
      .description('list applied, pending and unknown migrations; changes nothing')
      .action(status),
  )
  return migrate
}
