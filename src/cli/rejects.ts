import { Command } from 'commander'
import { createTelemetryWriter } from '../ingest/writer.js'
import { createRejectsRepository } from '../repositories/rejects.js'
import { integer, print, withDatabase } from './context.js'

interface ListFlags {
  readonly reason?: string
  readonly limit: number
  readonly includeReplayed?: boolean
}

async function list(flags: ListFlags, command: Command): Promise<void> {
  const { counts, page } = await withDatabase(command, async (db) => {
    const rejects = createRejectsRepository(db)
    return {
      counts: await rejects.countByReason(),
      page: await rejects.list({
        limit: flags.limit,
        includeReplayed: flags.includeReplayed === true,
        ...(flags.reason !== undefined && { reason: flags.reason }),
      }),
    }
  })
  print(
    command,
    { counts, items: page.items.map(({ payload, ...rest }) => ({ ...rest, payload: payload.toString('base64') })) },
    () => [
      counts.length === 0
        ? 'no dead letters waiting'
        : `waiting, by reason: ${counts.map((c) => `${c.reason} ${c.count}`).join(', ')}`,
      ...page.items.map((r) =>
        `${r.received_at.toISOString()}  ${r.reason}  ${r.device_id ?? '-'}  ${r.source ?? '-'}  ${r.detail ?? ''}`.trimEnd(),
      ),
      ...(page.nextCursor !== null ? [`(newest ${page.items.length} shown; --limit for more)`] : []),
    ],
  )
}

interface ReplayFlags {
  readonly reason?: string
  readonly limit: number
}

async function replay(flags: ReplayFlags, command: Command): Promise<void> {
  const report = await withDatabase(command, async (db) => {
    const writer = createTelemetryWriter(db, { logger: false })
    try {
      return await writer.replayRejects({
        limit: flags.limit,
        ...(flags.reason !== undefined && { reason: flags.reason }),
      })
    } finally {
      await writer.close()
    }
  })
  print(command, report, () => [
    `replayed ${report.replayed} dead letter${report.replayed === 1 ? '' : 's'}: ${report.written} readings written, ` +
      `${report.duplicates} already stored, ${report.rejectedAgain} refused again (new dead letters with the new reason)`,
  ])
}

/** `plantops-db rejects list|replay`. */
export function rejectsCommand(): Command {
  const rejects = new Command('rejects').description('look at and replay dead letters (telemetry_rejects)')
  rejects.addCommand(
    new Command('list')
      .description('dead letters not yet replayed, newest first, with a count by reason')
      .option('--reason <reason>', 'only this reason, e.g. unknown_device')
      .option('--limit <n>', 'at most this many', integer('--limit', 1, 1_000), 50)
      .option('--include-replayed', 'also those already replayed')
      .action(list),
  )
  rejects.addCommand(
    new Command('replay')
      .description('resubmit dead letters through the writer, oldest first (after fixing their cause)')
      .option('--reason <reason>', 'only this reason')
      .option('--limit <n>', 'at most this many', integer('--limit', 1, 100_000), 1_000)
      .action(replay),
  )
  return rejects
}
