export * from './create-database.js'
export type { PGliteLike } from './pglite-pool.js'
