/**
 * The PostgreSQL store's connection: libpq's synchronous client (pg-native), behind the same small
 * surface the repositories use on SQLite (`prepare(sql).get/all/run`, `transaction(fn)`,
 * `inTransaction`), so that every repository is written once, in SQL both engines accept.
 *
 * Why synchronous: the domain's rules run as synchronous code inside one transaction (check, then
 * act), exactly as better-sqlite3 runs them. libpq's synchronous calls keep that shape: a statement
 * blocks the event loop for one round trip to the server (on loopback about a tenth of a
 * millisecond; see docs/performance.md), as a SQLite statement blocks it for its page reads and
 * fsync. A process runs one statement at a time and scales out by instances, not connections.
 *
 * Concurrency between instances: every write transaction first takes one transaction-level
 * advisory lock (STORE_WRITE_LOCK), which is SQLite's BEGIN IMMEDIATE on PostgreSQL: the write
 * transactions of all instances are serialised, and under READ COMMITTED each statement after the
 * lock sees everything committed before it. So every guarded write of the domain (a use claimed, the
 * last slot of a limit, a duplicate, one invite approved by two admins, a notice folded) stays
 * exactly-once across processes without a rule of its own, and the conditional updates and unique
 * indexes the repositories already have remain as a second line. Since a transaction here is
 * synchronous code, the lock is held for the time that code runs, never across an await.
 *
 * Waiting for that lock follows SQLite's busy timeout: `lock_timeout` (the service's short wait, the
 * CLI's long one); when it passes, the error carries code `55P03`, which isDatabaseBusy treats like
 * SQLITE_BUSY, so the service's retries (store/busy.ts, group commit) apply unchanged.
 *
 * References: https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
 *             https://www.postgresql.org/docs/current/libpq-exec.html
 */
import { createRequire } from 'node:module';
import { setImmediate } from 'node:timers';
import type pg from 'pg';
import { MIGRATION_STEPS, type MigrationContext, type MigrationStep } from '../migration-steps';
import type { Db, Migration, Transaction, TransactionFn } from '../database';
import { MIGRATION_LOCK, readPgMigrations } from './migrate';
import { redactUrl } from './url';

/** The key of the advisory lock every write transaction takes ('xinw'); migrations use their own. */
export const STORE_WRITE_LOCK = 0x78696e77;

const INT8 = 20;
const NUMERIC = 1700;
const BOOL = 16;

function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${text} does not fit in a JavaScript number`);
  return n;
}

/**
 * Values as better-sqlite3 returns them: BIGINT (times in ms, counts) and NUMERIC (sums) as
 * numbers, booleans (comparisons in a select list) as 1 and 0.
 */
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') => {
    if (format === 'binary') return pgTypes().getTypeParser(oid, format);
    if (oid === INT8) return parseInt8;
    if (oid === NUMERIC) return Number;
    if (oid === BOOL) return (text: string) => (text === 't' ? 1 : 0);
    return pgTypes().getTypeParser(oid, 'text');
  },
};

let loadedTypes: typeof pg.types | undefined;
/**
 * node-postgres's parsers of the other types, loaded on first use: a process on SQLite never loads
 * the PostgreSQL client (about 16 MB of resident memory measured for `require('pg')`).
 */
function pgTypes(): typeof pg.types {
  return (loadedTypes ??= (createRequire(__filename)('pg') as typeof pg).types);
}

/** An error PostgreSQL reported, with its SQLSTATE as `code` (as node-postgres and better-sqlite3 do). */
export class PgError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'PgError';
  }
}

interface NativeClient {
  connectSync(params?: string): void;
  querySync(text: string, values?: unknown[]): Record<string, unknown>[];
  prepareSync(name: string, text: string, nParams: number): void;
  executeSync(name: string, values: unknown[]): Record<string, unknown>[];
  end(): void;
  pq: {
    cmdTuples(): string;
    resultErrorFields(): { sqlState?: string; messageDetail?: string } | null;
    connected?: boolean;
    errorMessage(): string;
  };
}

type NativeClientClass = new (config: { types: typeof types }) => NativeClient;

let nativeClass: NativeClientClass | undefined;

/** Loads pg-native, an optional dependency: it builds against libpq's headers (Debian: libpq-dev). */
function loadNative(): NativeClientClass {
  if (nativeClass) return nativeClass;
  try {
    nativeClass = createRequire(__filename)('pg-native') as NativeClientClass;
  } catch (err) {
    throw new Error(
      `a PostgreSQL database needs the package pg-native, which did not build when it was installed ` +
        `(install libpq's headers, e.g. \`apt-get install libpq-dev\`, then \`npm rebuild libpq\`): ${(err as Error).message}`,
    );
  }
  return nativeClass;
}

/** A parameter as libpq takes it: text, or null. */
function toText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`cannot store ${value}`);
      return String(value);
    case 'bigint':
      return value.toString();
    default:
      if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
      // better-sqlite3 refuses booleans and objects too: the same mistake fails on both engines
      throw new TypeError(`SQLite3 can only bind numbers, strings, bigints, buffers, and null (got ${typeof value})`);
  }
}

/**
 * A statement in SQLite's notation (`?`, `@name`, `:name`, `$name`) rewritten with PostgreSQL's `$1,
 * $2, …`; quoted strings, quoted identifiers, comments and `::` casts are left alone. Returns the
 * text and, for each `$n`, where its value comes from: a position or a name.
 */
export function translate(sql: string): { text: string; sources: (number | string)[] } {
  const sources: (number | string)[] = [];
  const named = new Map<string, number>();
  let positional = 0;
  const token = /'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?\*\/|::|\?|[@:$][A-Za-z_][A-Za-z0-9_]*/g;
  const text = sql.replace(token, (m) => {
    if (m === '?') {
      sources.push(positional++);
      return `$${sources.length}`;
    }
    if (/^[@:$][A-Za-z_]/.test(m)) {
      const name = m.slice(1);
      let n = named.get(name);
      if (n === undefined) {
        sources.push(name);
        named.set(name, (n = sources.length));
      }
      return `$${n}`;
    }
    return m;
  });
  return { text, sources };
}

function bindValues(sources: readonly (number | string)[], args: unknown[]): (string | null)[] {
  if (sources.length === 0) return [];
  const flat = args.length === 1 && Array.isArray(args[0]) ? (args[0] as unknown[]) : args;
  const bag = flat.length === 1 && flat[0] !== null && typeof flat[0] === 'object' && !Buffer.isBuffer(flat[0]) ? (flat[0] as Record<string, unknown>) : undefined;
  return sources.map((s) => {
    if (typeof s === 'number') return toText(flat[s]);
    if (!bag || !(s in bag)) throw new RangeError(`Missing named parameter "${s}"`);
    return toText(bag[s]);
  });
}

export interface PgRunResult {
  changes: number;
  lastInsertRowid: number;
}

/** A prepared statement: the part of better-sqlite3's Statement the repositories use. */
export class PgStatement<P extends unknown[] = unknown[], R = unknown> {
  readonly reader: boolean;
  readonly #text: string;
  readonly #sources: (number | string)[];

  constructor(
    private readonly db: PgSyncDb,
    readonly source: string,
  ) {
    const { text, sources } = translate(source);
    this.#text = text;
    this.#sources = sources;
    this.reader = /^\s*(SELECT|WITH|VALUES)\b/i.test(source) || /\bRETURNING\b/i.test(source);
  }

  get(...params: P): R | undefined {
    return this.db.execute(this.#text, bindValues(this.#sources, params)).rows[0] as R | undefined;
  }

  all(...params: P): R[] {
    return this.db.execute(this.#text, bindValues(this.#sources, params)).rows as R[];
  }

  run(...params: P): PgRunResult {
    return { changes: this.db.execute(this.#text, bindValues(this.#sources, params)).changes, lastInsertRowid: 0 };
  }
}

export interface PgOpenOptions {
  /** what migration steps need from the configuration (the opt-out hash) */
  migration?: MigrationContext;
  /** how long a write waits for another instance's write transaction (ms; like SQLite's busy timeout) */
  busyTimeoutMs?: number;
  /** do not migrate (`db copy` checks the target itself) */
  skipMigrations?: boolean;
}


export class PgSyncDb implements Db {
  readonly engine = 'postgres' as const;
  readonly readonly = false;
  readonly name: string;
  #client: NativeClient | undefined;
  /** statement text → name of its server-side prepared statement on the current connection */
  #prepared = new Map<string, string>();
  #depth = 0;
  #open = true;
  #lockTimeoutMs: number;

  constructor(
    private readonly url: string,
    options: { busyTimeoutMs?: number } = {},
  ) {
    this.name = redactUrl(url);
    this.#lockTimeoutMs = Math.max(1, Math.floor(options.busyTimeoutMs ?? 10_000));
    this.#connect();
  }

  static open(url: string, options: PgOpenOptions = {}): PgSyncDb {
    const db = new PgSyncDb(url, { busyTimeoutMs: options.busyTimeoutMs });
    try {
      if (!options.skipMigrations) migrateSync(db, undefined, options.migration);
    } catch (err) {
      db.close();
      throw err;
    }
    return db;
  }

  get open(): boolean {
    return this.#open;
  }

  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  /** How long a write waits for another instance's write transaction (ms). */
  setBusyTimeout(ms: number): void {
    this.#lockTimeoutMs = Math.max(1, Math.floor(ms));
    if (this.#client) this.exec(`SET lock_timeout = ${this.#lockTimeoutMs}`);
  }

  #connect(): NativeClient {
    if (!this.#open) throw new TypeError('The database connection is not open');
    if (this.#client) return this.#client;
    const Native = loadNative();
    const client = new Native({ types });
    try {
      client.connectSync(this.url);
    } catch (err) {
      throw new PgError(`cannot connect to ${this.name}: ${String((err as Error).message).trim()}`, '08001');
    }
    // A process stopped (SIGSTOP, a debugger) inside a transaction would hold the write lock: the
    // server ends such a session after a while, and its transaction with it.
    try {
      client.querySync(
        `SET application_name = 'xmpp-invites'; SET idle_in_transaction_session_timeout = '30s'; SET statement_timeout = '60s'; SET TIME ZONE 'UTC'; SET client_min_messages = warning; ` +
          `SET lock_timeout = ${this.#lockTimeoutMs}`,
      );
    } catch (err) {
      // Lost between connecting and its settings: closed, not left open beside the next attempt.
      finish(client);
      throw new PgError(`cannot connect to ${this.name}: ${String((err as Error).message).trim()}`, '08001');
    }
    this.#prepared = new Map();
    this.#client = client;
    return client;
  }

  /** Runs one statement; returns its rows and the number of rows it changed. */
  execute(text: string, values: (string | null)[]): { rows: Record<string, unknown>[]; changes: number } {
    const client = this.#connect();
    try {
      let name = this.#prepared.get(text);
      if (name === undefined) {
        name = `s${this.#prepared.size + 1}`;
        client.prepareSync(name, text, values.length);
        this.#prepared.set(text, name);
      }
      const rows = client.executeSync(name, values);
      const tuples = client.pq.cmdTuples();
      return { rows, changes: tuples ? Number(tuples) : 0 };
    } catch (err) {
      throw this.#failure(client, err, text);
    }
  }

  /** Runs statements without parameters (schema changes, SET, BEGIN/COMMIT). */
  exec(sql: string): this {
    const client = this.#connect();
    try {
      client.querySync(sql);
    } catch (err) {
      throw this.#failure(client, err);
    }
    return this;
  }

  #failure(client: NativeClient, err: unknown, statement?: string): PgError {
    const fields = client.pq.resultErrorFields?.() ?? null;
    const message = String((err as Error).message ?? err).trim();
    const code = fields?.sqlState;
    if (!code) {
      // No SQLSTATE: the connection itself failed. The next statement connects again (and the
      // transaction, if any, is gone with the old connection).
      finish(client);
      this.#client = undefined;
      this.#depth = 0;
      return new PgError(message || 'the connection to PostgreSQL was lost', '08006');
    }
    // The statement's text (never its parameters) says which of the repositories' statements failed.
    const where = statement ? ` (in: ${statement.replace(/\s+/g, ' ').slice(0, 160)})` : '';
    return new PgError(`${message}${where}`, code, fields?.messageDetail);
  }

  prepare<P extends unknown[] | {} = unknown[], R = unknown>(sql: string): P extends unknown[] ? PgStatement<P, R> : PgStatement<[P], R> {
    if (!this.#open) throw new TypeError('The database connection is not open');
    return new PgStatement(this, sql) as P extends unknown[] ? PgStatement<P, R> : PgStatement<[P], R>;
  }

  /**
   * Runs `fn` in a write transaction (the write lock taken first), or in a savepoint when a
   * transaction is open, committing when it returns and rolling back when it throws.
   */
  transaction<F extends TransactionFn>(fn: F): Transaction<F> {
    const run = (...args: unknown[]) => this.#run(() => fn(...args) as ReturnType<F>);
    return Object.assign(run, { immediate: run }) as Transaction<F>;
  }

  #run<T>(fn: () => T): T {
    if (this.#depth > 0) {
      const savepoint = `sp${this.#depth}`;
      this.exec(`SAVEPOINT ${savepoint}`);
      this.#depth++;
      // A lost connection sets the depth to 0 (#failure): the transaction went with it.
      const leave = () => (this.#depth = Math.max(0, this.#depth - 1));
      try {
        const result = fn();
        leave();
        this.exec(`RELEASE ${savepoint}`);
        return result;
      } catch (err) {
        leave();
        if (this.#depth > 0) this.exec(`ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
        throw err;
      }
    }
    this.#depth = 1;
    try {
      // one round trip: BEGIN and the write lock
      this.exec(BEGIN_WRITE);
      const result = fn();
      this.exec('COMMIT');
      this.#depth = 0;
      return result;
    } catch (err) {
      if (this.#depth > 0) {
        this.#depth = 0;
        try {
          this.exec('ROLLBACK');
        } catch {
          /* the connection is gone: so is the transaction */
        }
      }
      throw err;
    }
  }

  /**
   * For /healthz: the server accepts writes (not a standby, not read-only) and this instance can
   * take the write lock (a transaction rolled back: nothing is written). Throws the busy error when
   * another instance holds the lock past the wait.
   */
  writeProblem(): string | undefined {
    if (this.inTransaction) return undefined;
    try {
      this.exec(BEGIN_WRITE);
      const row = this.prepare<[], { ro: string; standby: number }>(
        `SELECT current_setting('transaction_read_only') AS ro, pg_is_in_recovery() AS standby`,
      ).get()!;
      if (row.standby) return 'the PostgreSQL server is a standby (read-only)';
      if (row.ro === 'on') return 'transactions on this PostgreSQL database are read-only';
      return undefined;
    } finally {
      if (this.#client) this.exec('ROLLBACK');
    }
  }

  close(): this {
    if (this.#client) finish(this.#client);
    this.#client = undefined;
    this.#open = false;
    return this;
  }
}

/**
 * Clients being closed. libpq's finish() hands its socket watcher (a uv_poll_t inside the native
 * connection object) to libuv, which finishes closing it in a later "close callbacks" phase of the
 * event loop; were the client collected before that phase, libuv would find the watcher's memory
 * freed and abort the process (`uv__finish_close: Assertion ... UV_HANDLE_CLOSING failed`). So a
 * closed client is kept until a close phase has surely passed.
 *
 * A time is no such guarantee: a client finished inside a close phase (code run by a socket's
 * 'close' event, or a promise it settles) is closed by libuv only in the next turn's close phase,
 * and when the rest of that phase ran longer than the wait (a busy machine), a timer lets go of
 * the client first, and a garbage collection in that turn can free it. With a 100 ms wait, the
 * fuzz test on PostgreSQL under load (it opens a connection to look at the store thousands of
 * times) aborted so in four runs of six. A check callback (setImmediate) twice over is: every turn
 * runs its check phase before its close phase, and an immediate set inside a check phase runs in
 * the next turn, so between the first hop and the second a close phase has run after the finish,
 * in whichever phase the finish happened. (node:timers' setImmediate: a test's fake timers replace
 * the global one, and would let go of the client whenever the test advances them.)
 */
const closing = new Set<NativeClient>();

/** Runs `fn` once a close phase of the event loop has passed (see `closing`). */
export function afterClosePhase(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}

function finish(client: NativeClient): void {
  try {
    client.end();
  } catch {
    /* already closed */
  }
  closing.add(client);
  afterClosePhase(() => closing.delete(client));
}

/** How many closed clients are kept until libuv has finished closing them (for tests). */
export function clientsClosing(): number {
  return closing.size;
}

const BEGIN_WRITE = `BEGIN; SELECT pg_advisory_xact_lock(${STORE_WRITE_LOCK})`;

/** Runs a migration step (migration-steps.ts) on the synchronous connection. */
function runStepSync(db: PgSyncDb, step: MigrationStep, context: MigrationContext): void {
  const io = step(context);
  for (let next = io.next(); !next.done; ) {
    const { sql, params } = next.value;
    const statement = db.prepare(sql);
    next = io.next(statement.reader ? (statement.all(...params) as Record<string, unknown>[]) : (statement.run(...params), []));
  }
}

const CREATE_TRACKING = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  title      TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

/**
 * Applies every migration of schema.pg.sql newer than the database, each in one transaction, under
 * the migration lock (instances starting together: one migrates, the others then find nothing to do).
 */
export function migrateSync(
  db: PgSyncDb,
  migrations: Migration[] = readPgMigrations(),
  context: MigrationContext = {},
  steps: Readonly<Record<number, MigrationStep>> = MIGRATION_STEPS,
): number {
  db.exec('BEGIN');
  try {
    db.exec(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK}); ${CREATE_TRACKING}`);
    const row = db.prepare<[], { v: number | null }>('SELECT max(version) AS v FROM schema_migrations').get();
    const current = row?.v ?? 0;
    if (current > migrations.length) {
      throw new Error(`The database is at schema version ${current}, newer than this program knows (${migrations.length}): upgrade xmpp-invites`);
    }
    for (const m of migrations.filter((m) => m.version > current)) {
      db.exec(`SAVEPOINT migration`);
      try {
        db.exec(m.sql);
      } catch (err) {
        throw new Error(`schema.pg.sql: migration ${m.version} (${m.title}) failed: ${(err as Error).message}`, { cause: err });
      }
      const step = steps[m.version];
      if (step) runStepSync(db, step, context);
      db.prepare('INSERT INTO schema_migrations (version, title, applied_at) VALUES (?, ?, ?)').run(m.version, m.title, Date.now());
      db.exec('RELEASE migration');
    }
    db.exec('COMMIT');
    return migrations.length;
  } catch (err) {
    try {
      db.exec('ROLLBACK');
    } catch {
      /* connection gone */
    }
    throw err;
  }
}

