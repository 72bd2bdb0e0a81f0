/**
 * Whether the store can be written, for `/healthz`: a service whose database cannot take a write
 * answers every request that needs one with an error, and must say so rather than `ok`.
 *
 * Checked on each call, changing nothing: the file, its `-wal` and its directory are writable
 * (`access(2)`: a read-only mount, or permissions for a non-root user); the connection is not
 * read-only and can take the write lock and change a page (rolled back: nothing is written);
 * the database may still grow (`max_page_count`, and at least MIN_FREE_BYTES free on its disk);
 * and the last write that failed for the database's own reasons (full, I/O error, read-only) has
 * been followed by one that succeeded. Also: the held claims and the age of the oldest, which
 * stay held while the server cannot be asked whether their account exists.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isBusy } from './busy';
import type { Db, SqliteDb } from './database';

/** Less free space than this on the database's disk counts as full. */
export const MIN_FREE_BYTES = 1024 * 1024;

export interface StoreHealth {
  writable: boolean;
  /** why not, in words for an operator */
  reason?: string;
  /** another connection holds the write lock right now (not an error by itself) */
  locked?: boolean;
  heldClaims: number;
  /** when the oldest held claim was made (ms since the epoch), null when none is held */
  oldestHeldClaimAt: number | null;
}

/**
 * The errors that say the database cannot be written, whatever the statement: SQLite's result
 * codes, and PostgreSQL's SQLSTATE classes 08 (connection), 53 (insufficient resources: disk
 * full, out of memory, too many connections), 57P (the server shutting down), 58 (system error,
 * I/O) and 25006 (a read-only transaction: a standby server).
 */
const STORE_FAULT = /^(SQLITE_(FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|PERM)(_|$)|08...|53...|57P0[1-3]|58...|25006)$/;

/** Why the database cannot take a write now, in words for an operator; undefined when it can. */
export type WriteCheck = () => string | undefined;

export function isStoreFault(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STORE_FAULT.test(code);
}

export class StoreMonitor {
  #lastFault: string | undefined;
  readonly #held;

  constructor(
    db: Db,
    /** the engine's own checks (sqliteWriteCheck, PgSyncDb#writeProblem); may throw a busy error */
    private readonly writeCheck: WriteCheck,
  ) {
    this.#held = db.prepare<[], { n: number; oldest: number | null }>(`SELECT count(*) AS n, min(created_at) AS oldest FROM claims WHERE state = 'held'`);
  }

  /** A write failed: remembered when the database itself is at fault, until a write succeeds. */
  recordWriteError(err: unknown): void {
    if (isStoreFault(err)) this.#lastFault = `the last write failed: ${(err as Error).message}`;
  }

  recordWriteOk(): void {
    this.#lastFault = undefined;
  }

  check(): StoreHealth {
    const { n, oldest } = this.#held.get()!;
    let locked = false;
    let reason: string | undefined;
    try {
      reason = this.writeCheck();
    } catch (err) {
      if (isBusy(err)) locked = true;
      else reason = `a write cannot start: ${(err as Error).message}`;
    }
    reason ??= this.#lastFault;
    return { writable: reason === undefined, ...(reason ? { reason } : {}), ...(locked ? { locked } : {}), heldClaims: n, oldestHeldClaimAt: oldest };
  }
}

/**
 * SQLite's checks: the file, its `-wal` and its directory writable; room to grow (max_page_count,
 * free disk); the write lock taken and page 1 changed in a transaction rolled back.
 */
export function sqliteWriteCheck(db: SqliteDb, file: string): WriteCheck {
  function fileProblem(): string | undefined {
    if (db.readonly) return 'the database is open read-only';
    if (file === ':memory:') return undefined;
    for (const p of [file, `${file}-wal`, path.dirname(file)]) {
      try {
        fs.accessSync(p, fs.constants.W_OK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && p !== file) continue;
        return `${p} is not writable (${code === 'EROFS' ? 'read-only file system' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code})`;
      }
    }
    return undefined;
  }

  function growthProblem(): string | undefined {
    const pages = db.pragma('page_count', { simple: true }) as number;
    const max = db.pragma('max_page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    if (pages >= max && free === 0) return `the database is full (max_page_count ${max} reached)`;
    if (file === ':memory:') return undefined;
    try {
      const st = fs.statfsSync(path.dirname(file));
      if (st.bavail * st.bsize < MIN_FREE_BYTES) return `the disk holding the database is full (${st.bavail * st.bsize} bytes free)`;
    } catch {
      /* statfs unsupported: the other checks stand */
    }
    return undefined;
  }

  /** Takes the write lock and changes page 1 in a transaction that is rolled back. */
  function probe(): string | undefined {
    if (db.inTransaction) return undefined;
    db.exec('BEGIN IMMEDIATE');
    try {
      const version = db.pragma('user_version', { simple: true }) as number;
      db.pragma(`user_version = ${version}`);
    } finally {
      db.exec('ROLLBACK');
    }
    return undefined;
  }
  return () => fileProblem() ?? growthProblem() ?? probe();
}
