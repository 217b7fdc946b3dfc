export { createMigrator, migrateDown, migrateTo, migrateToLatest, type MigrationReport } from './migrator.js'
export { migrations } from './migrations.js'
export { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, type MigratorOptions } from './options.js'
export type { MigrationProvider, MigrationResultSet, MigratorLike } from './kysely-migration.js'
