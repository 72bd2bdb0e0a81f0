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
 */
import { immediateTransaction, type Db } from './database';

interface Job {
  fn: () => unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export interface GroupCommitOptions {
  /** the most jobs in one transaction (default 32); more wait for the next turn */
  maxBatch?: number;
}

export class GroupCommit {
  readonly #queue: Job[] = [];
  #scheduled = false;
  readonly #max: number;
  readonly #transaction: <T>(fn: () => T) => T;
  /** transactions committed, and jobs in them (for tests and benchmarks) */
  readonly counts = { batches: 0, jobs: 0 };

  constructor(
    db: Db,
    opts: GroupCommitOptions = {},
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
    if (this.#scheduled) return;
    this.#scheduled = true;
    // After the I/O callbacks of this turn: every stanza read in it has queued its job by then.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const jobs = this.#queue.splice(0, this.#max);
    if (this.#queue.length > 0) this.#schedule();
    if (jobs.length === 0) return;
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.#transaction(() => {
        for (const job of jobs) {
          try {
            // Nested: a savepoint, rolled back alone when the job throws.
            outcomes.push({ ok: true, value: this.#transaction(job.fn) });
          } catch (err) {
            outcomes.push({ ok: false, value: err });
          }
        }
      });
    } catch (err) {
      for (const job of jobs) job.reject(err);
      return;
    }
    this.counts.batches++;
    this.counts.jobs += jobs.length;
    jobs.forEach((job, i) => (outcomes[i].ok ? job.resolve(outcomes[i].value) : job.reject(outcomes[i].value)));
  }
}
