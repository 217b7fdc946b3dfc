import type { Kysely, PostgresPool } from 'kysely'

/**
 * What `createDatabase` knows about the connection behind a Kysely instance,
 * for the parts of the library that need more than SQL: the telemetry writer
 * uses COPY on a pg pool. Kept beside the instance, never on it.
 */
export type RawAccess = ({ readonly kind: 'pg'; readonly pool: PostgresPool } | { readonly kind: 'pglite' }) & {
  readonly schema?: string | undefined
}

const registry = new WeakMap<Kysely<any>, RawAccess>()

export function registerRawAccess(db: Kysely<any>, access: RawAccess): void {
  registry.set(db, access)
}

/** How to reach `db`'s connections directly, when `createDatabase` made it. */
export function rawAccessOf(db: Kysely<any>): RawAccess | undefined {
  return registry.get(db)
}
