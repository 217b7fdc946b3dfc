import { ConfigurationError } from '../errors/errors.js'
import type { PGliteLike } from './pglite-pool.js'
import { isModuleNotFound } from '../util/modules.js'

const PGLITE_PACKAGE = '@electric-sql/pglite'

/**
 * Starts the embedded PGlite database, in memory or in `dataDir`. PGlite is
 * an optional peer, so it is imported only here, when it is actually needed.
 */
export async function startEmbeddedPglite(dataDir: string | undefined): Promise<PGliteLike> {
  let module: { PGlite: new (dataDir?: string) => PGliteLike }
  try {
    module = (await import(/* @vite-ignore */ PGLITE_PACKAGE)) as typeof module
  } catch (error) {
    if (!isModuleNotFound(error)) throw error
    throw new ConfigurationError(
      'plantops-db has no database to connect to: set DATABASE_URL (or pass { connectionString } or { pool }) ' +
        `to use PostgreSQL, or run \`npm install ${PGLITE_PACKAGE}\` to use the embedded database.`,
      { cause: error },
    )
  }
  return new module.PGlite(dataDir)
}
