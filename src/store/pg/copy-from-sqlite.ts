/**
 * `xmpp-invites db copy`: moves a SQLite store into an empty PostgreSQL database.
 *
 * Generic over the tables: it reads the tables, their columns and their foreign keys from the
 * source, so a new migration needs only its twin in schema.pg.sql. Everything happens in one
 * transaction on the target (the migrations that bring it to the source's version included), so a
 * refused or failed copy leaves the target as it was. The source is read in one read transaction:
 * a consistent snapshot even if something writes to it meanwhile (what is written after the
 * snapshot is not copied: stop the service first).
 *
 * PostgreSQL's text cannot hold U+0000, which SQLite's can. The copy removes it and reports where
 * (table, column, rowid; never the value) rather than refusing: no door lets it in today (the text
 * rule, domain/text.ts cleanText, removes it from free text, and JIDs, addresses, usernames, ids and
 * hashes refuse control characters), so it is in free text written before that rule, which is what
 * the service would store now without it; and the rows holding such text (notes, names, events)
 * are fixed or never changed by the schema's own triggers, so a refusal would leave the operator no
 * supported way to copy the store at all. Were a key to lose one and meet another, the unique
 * index refuses the copy and nothing is kept.
 *
 * The job leases (migration 12) are not copied, and a target holding some is still empty: they
 * name the instances of the old store, which are stopped, and would only hold the periodic jobs
 * back until they end; a service already started on the target may hold its own.
 */
import { readMigrations, type SqliteDb as Db, type Migration } from '../database';
import { MIGRATION_LOCK, migrateWithin, readPgMigrations } from './migrate';
import type { Pool, PoolClient } from './pool';

/** The copy was refused (the stores do not fit together); nothing was written. */
export class CopyRefused extends Error {}

export interface TableCopy {
  table: string;
  rows: number;
}

/** A text value from which U+0000 was removed. */
export interface NulRemoved {
  table: string;
  column: string;
  /** SQLite's rowid of the row (`SELECT … WHERE rowid = N` finds it in the source) */
  rowid: number;
}

/** At most this many places are listed; `nulRemovedCount` counts them all. */
const NUL_LISTED = 100;

export interface CopyResult {
  version: number;
  tables: TableCopy[];
  rows: number;
  ms: number;
  /** where U+0000 was removed (the first 100) */
  nulRemoved: NulRemoved[];
  nulRemovedCount: number;
}

export interface CopyOptions {
  /** rows per INSERT (default 5,000) */
  batchRows?: number;
  /** called after each table */
  progress?: (t: TableCopy) => void;
  /** the program's migrations (tests) */
  sqliteMigrations?: Migration[];
  pgMigrations?: Migration[];
}

interface SourceTable {
  name: string;
  columns: string[];
  /** tables it references */
  references: string[];
}

const TRACKING = 'schema_migrations';
/** Tables of state that belongs to the running instances, not to the store's records. */
const NOT_COPIED: ReadonlySet<string> = new Set(['job_leases']);

function quote(ident: string): string {
  return `"${ident.replace(/"/g, '""')}"`;
}

/** The source's tables, each after the tables it references (its foreign keys). */
function sourceTables(db: Db): SourceTable[] {
  const names = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`).all() as { name: string }[])
    .map((r) => r.name)
    .filter((n) => !NOT_COPIED.has(n));
  const tables = new Map(
    names.map((name) => [
      name,
      {
        name,
        columns: (db.prepare(`SELECT name FROM pragma_table_info(?) ORDER BY cid`).all(name) as { name: string }[]).map((c) => c.name),
        references: [...new Set((db.prepare(`SELECT "table" AS t FROM pragma_foreign_key_list(?)`).all(name) as { t: string }[]).map((r) => r.t))].filter((t) => t !== name),
      },
    ]),
  );
  const ordered: SourceTable[] = [];
  const placed = new Set<string>();
  while (ordered.length < tables.size) {
    const next = [...tables.values()].filter((t) => !placed.has(t.name) && t.references.every((r) => placed.has(r) || !tables.has(r)));
    if (next.length === 0) throw new Error(`the source's foreign keys form a cycle: ${[...tables.keys()].filter((n) => !placed.has(n)).join(', ')}`);
    for (const t of next) {
      ordered.push(t);
      placed.add(t.name);
    }
  }
  return ordered;
}

/** Refuses a source whose schema version is not the program's, or a program whose two schemas differ. */
function checkVersions(db: Db, file: string, sqlite: Migration[], pg: Migration[]): number {
  if (pg.length !== sqlite.length) {
    throw new Error(`this program's schemas differ: schema.sql has ${sqlite.length} migrations, schema.pg.sql ${pg.length} (every migration needs its PostgreSQL twin)`);
  }
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === 0) throw new CopyRefused(`${file} is not an xmpp-invites database (it has no schema version)`);
  if (version > sqlite.length) {
    throw new CopyRefused(`${file} is at schema version ${version}, newer than this program knows (${sqlite.length}): copy it with the xmpp-invites that wrote it`);
  }
  if (version < sqlite.length) {
    throw new CopyRefused(
      `${file} is at schema version ${version}, older than this program's (${sqlite.length}): run any command of this version against it once ` +
        `(e.g. xmpp-invites stats --config FILE), which brings it up to date, then copy it`,
    );
  }
  return version;
}

interface TargetTable {
  columns: string[];
  /** each column's type, as SQL writes it (text, bigint, integer) */
  types: Map<string, string>;
  /** GENERATED … AS IDENTITY columns */
  identity: string[];
}

/** The tables of the target's current schema (pg_catalog: information_schema is slower to ask). */
async function targetTables(client: PoolClient): Promise<Map<string, TargetTable>> {
  const { rows } = await client.query<{ table: string; column: string; type: string; identity: boolean }>(
    `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, a.attidentity <> '' AS identity
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
      ORDER BY c.relname, a.attnum`,
  );
  const out = new Map<string, TargetTable>();
  for (const r of rows) {
    const t: TargetTable = out.get(r.table) ?? { columns: [], types: new Map(), identity: [] };
    t.columns.push(r.column);
    t.types.set(r.column, r.type);
    if (r.identity) t.identity.push(r.column);
    out.set(r.table, t);
  }
  return out;
}

/** The two schemas must hold the same tables with the same columns. */
function checkSameTables(source: SourceTable[], target: Map<string, TargetTable>): void {
  const problems: string[] = [];
  for (const t of source) {
    const cols = target.get(t.name)?.columns;
    if (!cols) {
      problems.push(`table ${t.name} is missing`);
      continue;
    }
    const missing = t.columns.filter((c) => !cols.includes(c));
    const extra = cols.filter((c) => !t.columns.includes(c));
    if (missing.length) problems.push(`${t.name} lacks ${missing.join(', ')}`);
    if (extra.length) problems.push(`${t.name} has more columns: ${extra.join(', ')}`);
  }
  if (problems.length) throw new Error(`the PostgreSQL schema does not match the SQLite one: ${problems.join('; ')}`);
}

/**
 * One table, a batch of rows per statement: one array parameter per column, taken apart by
 * unnest() (a statement of a few parameters, whatever the number of rows).
 */
async function copyTable(
  db: Db,
  client: PoolClient,
  t: SourceTable,
  types: Map<string, string>,
  batchRows: number,
  nul: { listed: NulRemoved[]; count: number },
): Promise<number> {
  const cols = t.columns.map(quote).join(', ');
  const text = `INSERT INTO ${quote(t.name)} (${cols}) SELECT * FROM unnest(${t.columns.map((c, i) => `$${i + 1}::${types.get(c)}[]`).join(', ')})`;
  // Exact integers (bigint) whatever their size; node-postgres writes them into the arrays as text.
  // The rowid, last, only names a row whose text loses U+0000 (every store table has one).
  const rows = db.prepare(`SELECT ${cols}, rowid FROM ${quote(t.name)}`).raw(true).safeIntegers(true);
  const n = t.columns.length;
  let copied = 0;
  let batch: unknown[][] = t.columns.map(() => []);
  let inBatch = 0;
  const flush = async () => {
    if (inBatch === 0) return;
    await client.query({ name: `copy_${t.name}`, text, values: batch });
    copied += inBatch;
    batch = t.columns.map(() => []);
    inBatch = 0;
  };
  for (const row of rows.iterate() as IterableIterator<unknown[]>) {
    for (let c = 0; c < n; c++) {
      const value = row[c];
      if (typeof value === 'string' && value.includes('\u0000')) {
        if (nul.count++ < NUL_LISTED) nul.listed.push({ table: t.name, column: t.columns[c], rowid: Number(row[n]) });
        batch[c].push(value.replaceAll('\u0000', ''));
      } else {
        batch[c].push(value);
      }
    }
    if (++inBatch === batchRows) await flush();
  }
  await flush();
  return copied;
}

/** Identity columns continue after the ids copied (and after every id SQLite ever gave out). */
async function resetSequences(db: Db, client: PoolClient, target: Map<string, TargetTable>): Promise<void> {
  const hasSequenceTable = db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'`).get() !== undefined;
  for (const [table, column] of [...target].flatMap(([table, t]) => t.identity.map((c) => [table, c]))) {
    const given = hasSequenceTable ? ((db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(table) as { seq: number } | undefined)?.seq ?? 0) : 0;
    await client.query(
      `SELECT setval(pg_get_serial_sequence($1, $2), greatest(coalesce(max(${quote(column)}), 0), $3::bigint) + 1, false) FROM ${quote(table)}`,
      [quote(table), column, given],
    );
  }
}

async function counts(client: PoolClient, tables: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const t of tables) out.set(t, (await client.query<{ n: number }>(`SELECT count(*) AS n FROM ${quote(t)}`)).rows[0].n);
  return out;
}

/**
 * Copies every row of the SQLite store `source` (opened read-only; `file` names it in messages)
 * into the PostgreSQL database of `pool`, which must be empty: a database without any table, or a
 * store (migrated by a service or an earlier copy) whose tables hold no row. Throws CopyRefused
 * when the two do not fit together; nothing is written then.
 */
export async function copySqliteToPostgres(source: Db, file: string, pool: Pool, options: CopyOptions = {}): Promise<CopyResult> {
  const started = performance.now();
  const version = checkVersions(source, file, options.sqliteMigrations ?? readMigrations(), options.pgMigrations ?? readPgMigrations());
  const tables = sourceTables(source);
  const client = await pool.connect();
  source.exec('BEGIN');
  try {
    const expected = new Map(tables.map((t) => [t.name, (source.prepare(`SELECT count(*) AS n FROM ${quote(t.name)}`).get() as { n: number }).n]));
    await client.query('BEGIN');
    try {
      // A database that is not a store yet must hold no table at all; one that is (a service
      // started on it already) is migrated to the source's version, and its tables must be empty.
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const existing = [...(await targetTables(client)).keys()];
      if (!existing.includes(TRACKING) && existing.length > 0) {
        throw new CopyRefused(`the target database is not empty: it holds tables that are not a store's (${existing.join(', ')})`);
      }
      await migrateWithin(client, options.pgMigrations);
      const target = await targetTables(client);
      checkSameTables(tables, target);
      const all = [...target.keys()].filter((n) => n !== TRACKING);
      // Nothing else writes to the tables until the copy commits (a service already started on the target).
      await client.query(`LOCK TABLE ${all.map(quote).join(', ')} IN ACCESS EXCLUSIVE MODE`);
      const before = await counts(client, all.filter((n) => !NOT_COPIED.has(n)));
      const filled = [...before].filter(([, n]) => n > 0);
      if (filled.length) {
        throw new CopyRefused(`the target database is not empty (${filled.map(([t, n]) => `${t}: ${n} rows`).join(', ')}): db copy only fills an empty database`);
      }
      const copied: TableCopy[] = [];
      const nul = { listed: [] as NulRemoved[], count: 0 };
      for (const t of tables) {
        const rows = await copyTable(source, client, t, target.get(t.name)!.types, options.batchRows ?? 5000, nul);
        copied.push({ table: t.name, rows });
        options.progress?.({ table: t.name, rows });
      }
      await resetSequences(source, client, target);
      const after = await counts(client, tables.map((t) => t.name));
      const wrong = tables.filter((t) => after.get(t.name) !== expected.get(t.name));
      if (wrong.length) {
        throw new Error(`the counts differ after the copy (${wrong.map((t) => `${t.name}: ${expected.get(t.name)} in the source, ${after.get(t.name)} in the target`).join(', ')}); nothing was kept`);
      }
      await client.query('COMMIT');
      return {
        version,
        tables: copied,
        rows: copied.reduce((s, t) => s + t.rows, 0),
        ms: performance.now() - started,
        nulRemoved: nul.listed,
        nulRemovedCount: nul.count,
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    source.exec('ROLLBACK');
    // Closed rather than returned to the pool: it holds the copy's prepared statements.
    client.release(true);
  }
}
