/**
 * Opens the SQLite file: WAL (the CLI writes beside the running service), foreign keys, a busy
 * timeout (short in the service: see busy.ts), and the ordered migrations of schema.sql tracked in
 * PRAGMA user_version (with, for the versions that need one, a step in TypeScript: migration-steps.ts).
 */
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CLI_BUSY_TIMEOUT_MS } from './busy';
import { MIGRATION_STEPS, type MigrationContext, type MigrationStep } from './migration-steps';
import { PgSyncDb } from './pg/sync-db';
import { isPostgresUrl } from './pg/url';

export type { MigrationContext } from './migration-steps';

/** The SQLite connection (better-sqlite3): migrations, health checks and `db copy` need all of it. */
export type SqliteDb = Database.Database;

/** A prepared statement, on either engine: what the repositories use of better-sqlite3's Statement. */
export interface Statement<P extends unknown[] = unknown[], R = unknown> {
  get(...params: P): R | undefined;
  all(...params: P): R[];
  run(...params: P): { changes: number };
  /** whether the statement returns rows */
  readonly reader: boolean;
}

/** A function run in a transaction; `.immediate` takes the write lock first (on PostgreSQL, always). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TransactionFn = (...args: any[]) => unknown;
type ArgumentTypes<F extends TransactionFn> = F extends (...args: infer A) => unknown ? A : never;
export interface Transaction<F extends TransactionFn> {
  (...args: ArgumentTypes<F>): ReturnType<F>;
  immediate(...args: ArgumentTypes<F>): ReturnType<F>;
}

/**
 * The store's connection, SQLite or PostgreSQL (store/pg/sync-db.ts): the repositories are written
 * once against this, in SQL both engines accept (README, "Development").
 */
export interface Db {
  prepare<P extends unknown[] | {} = unknown[], R = unknown>(sql: string): P extends unknown[] ? Statement<P, R> : Statement<[P], R>;
  transaction<F extends TransactionFn>(fn: F): Transaction<F>;
  readonly inTransaction: boolean;
  readonly open: boolean;
  close(): unknown;
}

export const SCHEMA_FILE = join(__dirname, '..', '..', 'schema.sql');

export interface Migration {
  version: number;
  title: string;
  sql: string;
}

/** Splits schema.sql (or its PostgreSQL twin) at its `-- migration N: title` lines; versions must run 1, 2, 3, … */
export function readMigrations(text = readFileSync(SCHEMA_FILE, 'utf8'), file = 'schema.sql'): Migration[] {
  const marker = /^-- migration (\d+): (.*)$/gm;
  const heads = [...text.matchAll(marker)];
  return heads.map((head, i) => {
    const version = Number(head[1]);
    if (version !== i + 1) throw new Error(`${file}: migration ${version} is out of order (expected ${i + 1})`);
    const end = i + 1 < heads.length ? heads[i + 1].index : text.length;
    return { version, title: head[2], sql: text.slice(head.index! + head[0].length, end) };
  });
}

export interface OpenOptions {
  readonly?: boolean;
  /** What migration steps need from the configuration (the opt-out hash). */
  migration?: MigrationContext;
  /**
   * how long a statement waits, blocking, for another process's lock (default CLI_BUSY_TIMEOUT_MS);
   * the service passes SERVICE_BUSY_TIMEOUT_MS and retries asynchronously (store/busy.ts)
   */
  busyTimeoutMs?: number;
}

export function openDatabase(file: string, options: OpenOptions = {}): SqliteDb {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, { readonly: options.readonly ?? false });
  try {
    // Opening migrates and analyses: wait as long as the CLI would; the service's short wait is set after.
    db.pragma(`busy_timeout = ${CLI_BUSY_TIMEOUT_MS}`);
    db.pragma('foreign_keys = ON');
    // The deletes by which INSERT OR REPLACE and UPDATE OR REPLACE resolve a conflict fire DELETE
    // triggers only with this on: the "never deleted" triggers then refuse them (migration 11).
    db.pragma('recursive_triggers = ON');
    // 4 MB of page cache: better-sqlite3 builds SQLite with 16 MB, which a large store fills with
    // pages the operating system caches anyway (no measurable speed difference with 1,000,000
    // invites, 12 MB more resident memory).
    db.pragma('cache_size = -4000');
    // Savepoints keep the original of each page they change in a sub-journal, which SQLite writes to
    // a temporary file once it passes 64 KiB: a group commit (store/group-commit.ts) of a few dozen
    // invites would open, write and delete one per transaction. The service's queries sort and group
    // small sets (pages, counts per state or inviter), so temporary storage stays small in memory.
    db.pragma('temp_store = MEMORY');
    if (!options.readonly) {
      if (file !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db, readMigrations(), options.migration);
      // Gathers the statistics the query planner needs where tables have grown (cheap: it only
      // analyses what changed enough); without them some lookups pick a slow plan at a million rows.
      db.pragma('optimize = 0x10002');
    }
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? CLI_BUSY_TIMEOUT_MS))}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Opens the store named by `database`: a PostgreSQL URL (store/pg/sync-db.ts) or a SQLite file,
 * migrated either way.
 */
export function openStore(database: string, options: OpenOptions = {}): Db {
  if (isPostgresUrl(database)) {
    if (options.readonly) throw new Error('a PostgreSQL store cannot be opened read-only here');
    return PgSyncDb.open(database, { migration: options.migration, busyTimeoutMs: options.busyTimeoutMs ?? CLI_BUSY_TIMEOUT_MS });
  }
  return openDatabase(database, options);
}

/** Is this connection PostgreSQL's (rather than SQLite's)? */
export function isPostgres(db: Db): db is PgSyncDb {
  return db instanceof PgSyncDb;
}

/**
 * A function that runs `fn` in an immediate transaction, or in a savepoint when one is open, and
 * rolls it back when `fn` throws. better-sqlite3 builds a wrapper for each `db.transaction(fn)`;
 * this builds one per caller, which matters on paths taken for every stanza.
 */
export function immediateTransaction(db: Db): <T>(fn: () => T) => T {
  const tx = db.transaction((fn: () => unknown) => fn());
  return <T>(fn: () => T) => tx.immediate(fn) as T;
}

/**
 * Runs a migration step (migration-steps.ts) on SQLite: each statement it yields is prepared once
 * and answered at once, so the step runs inside the caller's transaction.
 */
export function runStepSync(db: SqliteDb, step: MigrationStep, context: MigrationContext): void {
  const prepared = new Map<string, Database.Statement>();
  const io = step(context);
  for (let next = io.next(); !next.done; ) {
    const { sql, params } = next.value;
    let statement = prepared.get(sql);
    if (!statement) prepared.set(sql, (statement = db.prepare(sql)));
    next = io.next(statement.reader ? (statement.all(...params) as Record<string, unknown>[]) : (statement.run(...params), []));
  }
}

/**
 * Applies every migration newer than the database, each in one transaction: its SQL, then its
 * step (if it has one), then the new user_version.
 */
export function migrate(
  db: SqliteDb,
  migrations = readMigrations(),
  context: MigrationContext = {},
  steps: Readonly<Record<number, MigrationStep>> = MIGRATION_STEPS,
): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.length;
  if (current > latest) {
    throw new Error(`The database is at schema version ${current}, newer than this program knows (${latest}): upgrade xmpp-invites`);
  }
  for (const m of migrations.filter((m) => m.version > current)) {
    db.transaction(() => {
      db.exec(m.sql);
      const step = steps[m.version];
      if (step) runStepSync(db, step, context);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return latest;
}
