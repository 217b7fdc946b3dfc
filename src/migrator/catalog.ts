import { sql, type Kysely } from 'kysely'

/**
 * The columns, in order, of each of `tables` that exists in the current
 * schema (the first on the search_path, where plantops-db creates its
 * tables); a table that does not exist there has no entry. One catalog query
 * however many tables are asked about.
 */
export async function columnsOfTables(db: Kysely<any>, tables: readonly string[]): Promise<Map<string, string[]>> {
  const { rows } = await sql<{ table: string; column: string }>`
    SELECT c.relname AS table, a.attname AS column
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
    WHERE c.relname = ANY(${tables}::text[]) AND c.relnamespace = current_schema()::regnamespace
      AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY c.relname, a.attnum`.execute(db)
  const found = new Map<string, string[]>()
  for (const { table, column } of rows) {
    const columns = found.get(table)
    if (columns) columns.push(column)
    else found.set(table, [column])
  }
  return found
}

/** The columns of `table` in the current schema, in order; none when there is no such table. */
export async function columnsOf(db: Kysely<any>, table: string): Promise<string[]> {
  return (await columnsOfTables(db, [table])).get(table) ?? []
}
