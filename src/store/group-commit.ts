/**
 * Group commit: the writes that stanzas ask for during one turn of the event loop are made in one
 * transaction, and each caller learns its outcome once that transaction has committed.
 *
 * Under load many New Invite commands arrive in one read from the socket; committed one by one,
 * each would write its own copy of the pages they all touch (the ends of the tables and indexes
 * that grow with time, the admin's folded notice) into the WAL. Committed together, those pages
 * are written once. Each job runs in a savepoint of its own, so a job that fails (a limit, a
 * duplicate) undoes only its own writes and fails only its own caller; the others commit. Nobody
 * is answered before the commit, so an answer never speaks of something that could still be lost.
 * A commit that fails fails every job of the batch, and none of their writes remain.
 *
 * Jobs must be synchronous database work (they run inside the transaction, one after the other,
 * each seeing what the ones before it wrote, exactly as if they had run alone in that order).
 *
 * Two failures are the database's, not a job's:
 * - the write lock is held by another process: the batch waits and is tried again with backoff
 *   (busy.ts), the event loop free meanwhile, until `lockDeadlineMs`;
 * - SQLite rolls the whole transaction back (SQLITE_FULL, SQLITE_IOERR, …, "it may or may not roll
 *   back the transaction"): the batch stops there, and every job fails with that error. Going on
 *   would run the next jobs outside any transaction, commit them one by one, and then report
 *   "cannot commit - no transaction is active" to callers whose writes were in fact committed.
 */
import { backoffMs, isBusy } from './busy';
import { immediateTransaction, type Db } from './database';

/** The transaction was rolled back under a job: carries the job's (the database's) error. */
class TransactionLost extends Error {
  constructor(override readonly cause: unknown) {
    super('the transaction was rolled back');
  }
}

interface Job {
  fn: () => unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export interface GroupCommitOptions {
  /** the most jobs in one transaction (default 32); more wait for the next turn */
  maxBatch?: number;
  /** how long a batch waits for another process's write lock before failing (default 30 s) */
  lockDeadlineMs?: number;
  /** told of every batch that failed, with the database's error (for logs and /healthz) */
  onError?: (err: unknown, jobs: number) => void;
  /** told of every batch that committed */
  onCommit?: () => void;
}

export class GroupCommit {
  readonly #queue: Job[] = [];
  #scheduled = false;
  /** a batch waiting for the write lock: its jobs, and when it first found the lock taken */
  #waiting: { jobs: Job[]; since: number; tries: number } | undefined;
  readonly #max: number;
  readonly #transaction: <T>(fn: () => T) => T;
  /** transactions committed, and jobs in them (for tests and benchmarks) */
  readonly counts = { batches: 0, jobs: 0 };
  /** times a batch found the write lock taken and waited (for tests) */
  lockWaits = 0;

  constructor(
    private readonly db: Db,
    private readonly opts: GroupCommitOptions = {},
  ) {
    this.#max = opts.maxBatch ?? 32;
    this.#transaction = immediateTransaction(db);
  }

  /** Runs `fn` in the next shared transaction; resolves with its result once that has committed. */
  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#waiting) return;
    this.#scheduled = true;
    // After the I/O callbacks of this turn: every stanza read in it has queued its job by then.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    const jobs = waiting?.jobs ?? this.#queue.splice(0, this.#max);
    if (jobs.length === 0) return;
    const outcomes: { ok: boolean; value: unknown }[] = [];
    let began = false;
    try {
      this.#transaction(() => {
        began = true;
        for (const job of jobs) {
          try {
            // Nested: a savepoint, rolled back alone when the job throws.
            outcomes.push({ ok: true, value: this.#transaction(job.fn) });
          } catch (err) {
            // SQLite itself rolled the whole transaction back: nothing of the batch remains.
            if (!this.db.inTransaction) throw new TransactionLost(err);
            outcomes.push({ ok: false, value: err });
          }
        }
      });
    } catch (thrown) {
      const err = thrown instanceof TransactionLost ? thrown.cause : thrown;
      // BEGIN IMMEDIATE found the write lock taken: nothing ran; wait without blocking, try again.
      const since = waiting?.since ?? performance.now();
      if (!began && isBusy(err) && performance.now() - since < (this.opts.lockDeadlineMs ?? 30_000)) {
        const tries = (waiting?.tries ?? 0) + 1;
        this.lockWaits++;
        this.#waiting = { jobs, since, tries };
        setTimeout(() => this.#flush(), backoffMs(tries - 1));
        return;
      }
      this.opts.onError?.(err, jobs.length);
      for (const job of jobs) job.reject(err);
      if (this.#queue.length > 0) this.#schedule();
      return;
    }
    this.counts.batches++;
    this.counts.jobs += jobs.length;
    this.opts.onCommit?.();
    if (this.#queue.length > 0) this.#schedule();
    jobs.forEach((job, i) => (outcomes[i].ok ? job.resolve(outcomes[i].value) : job.reject(outcomes[i].value)));
  }
}
