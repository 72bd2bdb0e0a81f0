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
import type { Db } from './database';

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

/** The SQLite errors that say the database cannot be written, whatever the statement. */
const STORE_FAULT = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|PERM)(_|$)/;

export function isStoreFault(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STORE_FAULT.test(code);
}

export class StoreMonitor {
  #lastFault: string | undefined;
  readonly #held;

  constructor(
    private readonly db: Db,
    /** the database file (`:memory:` has none) */
    private readonly file: string,
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
    let reason = this.#fileProblem() ?? this.#growthProblem();
    if (!reason) {
      try {
        reason = this.#probe();
      } catch (err) {
        if (isBusy(err)) locked = true;
        else reason = `a write cannot start: ${(err as Error).message}`;
      }
    }
    reason ??= this.#lastFault;
    return { writable: reason === undefined, ...(reason ? { reason } : {}), ...(locked ? { locked } : {}), heldClaims: n, oldestHeldClaimAt: oldest };
  }

  #fileProblem(): string | undefined {
    if (this.db.readonly) return 'the database is open read-only';
    if (this.file === ':memory:') return undefined;
    for (const p of [this.file, `${this.file}-wal`, path.dirname(this.file)]) {
      try {
        fs.accessSync(p, fs.constants.W_OK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && p !== this.file) continue;
        return `${p} is not writable (${code === 'EROFS' ? 'read-only file system' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code})`;
      }
    }
    return undefined;
  }

  #growthProblem(): string | undefined {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const max = this.db.pragma('max_page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    if (pages >= max && free === 0) return `the database is full (max_page_count ${max} reached)`;
    if (this.file === ':memory:') return undefined;
    try {
      const st = fs.statfsSync(path.dirname(this.file));
      if (st.bavail * st.bsize < MIN_FREE_BYTES) return `the disk holding the database is full (${st.bavail * st.bsize} bytes free)`;
    } catch {
      /* statfs unsupported: the other checks stand */
    }
    return undefined;
  }

  /** Takes the write lock and changes page 1 in a transaction that is rolled back. */
  #probe(): string | undefined {
    if (this.db.inTransaction) return undefined;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const version = this.db.pragma('user_version', { simple: true }) as number;
      this.db.pragma(`user_version = ${version}`);
    } finally {
      this.db.exec('ROLLBACK');
    }
    return undefined;
  }
}
