/**
 * Migrates a database and prints the report.
 *
 *   npm run example:migrate                       # embedded PGlite, in memory
 *   DATABASE_URL=postgres://… npm run example:migrate
 */
import { createDatabase, migrateToLatest } from 'plantops-db'

const db = createDatabase()
try {
  const report = await migrateToLatest(db)
  console.log(`\nDatabase: ${process.env.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : 'embedded PGlite (in memory)'}`)
  console.log(`Applied now:      ${report.applied.length ? report.applied.join(', ') : '(none)'}`)
  console.log(`Already applied:  ${report.alreadyApplied.length ? report.alreadyApplied.join(', ') : '(none)'}`)
  if (report.unknown.length) console.log(`From a newer release: ${report.unknown.join(', ')}`)
  console.log(
    `telemetry:        ${report.telemetry.hypertable ? 'TimescaleDB hypertable' : 'plain table'} (timescaledb ${report.telemetry.timescaledb})`,
  )
} finally {
  await db.destroy()
}
