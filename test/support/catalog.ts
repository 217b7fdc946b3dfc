import { sql, type Kysely } from 'kysely'

export interface ColumnInfo {
  type: string
  nullable: boolean
  default: string | null
}

export interface ForeignKeyInfo {
  columns: string[]
  references: string
  referencedColumns: string[]
  onDelete: 'NO ACTION' | 'RESTRICT' | 'CASCADE' | 'SET NULL' | 'SET DEFAULT'
}

/** What the catalog says about one table, in a form a test can compare with `toEqual`. */
export interface TableInfo {
  columns: Record<string, ColumnInfo>
  primaryKey: string[]
  unique: string[][]
  foreignKeys: ForeignKeyInfo[]
  /** Named secondary indexes (not those behind constraints) with their key columns. */
  indexes: Record<string, string[]>
}

const ON_DELETE: Record<string, ForeignKeyInfo['onDelete']> = {
  a: 'NO ACTION',
  r: 'RESTRICT',
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
}

async function columnsOf(db: Kysely<any>, table: string): Promise<Record<string, ColumnInfo>> {
  const { rows } = await sql<{ name: string; type: string; nullable: string; default: string | null }>`
    SELECT column_name AS name, data_type AS type, is_nullable AS nullable, column_default AS default
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = ${table}
    ORDER BY ordinal_position`.execute(db)
  return Object.fromEntries(
    rows.map((r) => [r.name, { type: r.type, nullable: r.nullable === 'YES', default: r.default }]),
  )
}

async function constraintsOf(db: Kysely<any>, table: string) {
  const { rows } = await sql<{
    type: string
    columns: string[]
    references: string | null
    referenced_columns: string[] | null
    on_delete: string
  }>`
    SELECT c.contype AS type,
      ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
      CASE WHEN c.contype = 'f' THEN c.confrelid::regclass::text END AS references,
      CASE WHEN c.contype = 'f' THEN ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
            JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) END AS referenced_columns,
      c.confdeltype::text AS on_delete
    FROM pg_constraint c
    WHERE c.conrelid = ${table}::regclass AND c.contype IN ('p', 'u', 'f')
    ORDER BY c.contype, c.conname`.execute(db)
  return rows
}

async function indexesOf(db: Kysely<any>, table: string): Promise<Record<string, string[]>> {
  const { rows } = await sql<{ name: string; keys: string[] }>`
    SELECT i.relname AS name,
      ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) ||
              CASE WHEN x.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
            FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) AS keys
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    WHERE x.indrelid = ${table}::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
    ORDER BY i.relname`.execute(db)
  return Object.fromEntries(rows.map((r) => [r.name, r.keys.map((key) => key.replaceAll('"', ''))]))
}

export async function describeTable(db: Kysely<any>, table: string): Promise<TableInfo> {
  const constraints = await constraintsOf(db, table)
  return {
    columns: await columnsOf(db, table),
    primaryKey: constraints.find((c) => c.type === 'p')?.columns ?? [],
    unique: constraints.filter((c) => c.type === 'u').map((c) => c.columns),
    foreignKeys: constraints
      .filter((c) => c.type === 'f')
      .map((c) => ({
        columns: c.columns,
        references: c.references!,
        referencedColumns: c.referenced_columns!,
        onDelete: ON_DELETE[c.on_delete]!,
      }))
      .sort((a, b) => a.columns.join().localeCompare(b.columns.join())),
    indexes: await indexesOf(db, table),
  }
}

/** Tables in the current schema, by name. */
export async function tablesIn(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`.execute(db)
  return rows.map((r) => r.name)
}

/** The names of the triggers a table's own statements fire (not those behind constraints), sorted. */
export async function triggersOn(db: Kysely<any>, table: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT tgname AS name FROM pg_trigger
    WHERE tgrelid = ${table}::regclass AND NOT tgisinternal ORDER BY 1`.execute(db)
  return rows.map((row) => row.name)
}
