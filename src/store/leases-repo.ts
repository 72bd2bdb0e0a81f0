/**
 * The job_leases table (schema.sql, migration 12): which instance runs each periodic job of `serve`
 * this period, so that several processes sharing one store run each job once per period
 * (src/jobs.ts). Its PostgreSQL twin is pg/leases.ts.
 *
 * Taking a lease is one statement, so it is exactly-once under concurrency on its own: the row is
 * inserted (no instance has run the job yet), or updated when the lease has ended or is this
 * instance's own (a renewal), and RETURNING says whether this instance got it. SQLite runs one
 * writer at a time; PostgreSQL's ON CONFLICT DO UPDATE locks the row and evaluates the WHERE on its
 * latest version, so of instances racing for an ended lease one updates it and the others see it
 * taken. The holder renews its lease at each of its runs; one that dies stops renewing, and the
 * first other instance whose timer comes after `held_until` takes the job over.
 */
import type { Db } from './database';

/** Times are ms since the epoch (all the instances sharing a SQLite file run on one machine, one clock). */
export const TAKE_LEASE_SQLITE = `INSERT INTO job_leases (job, holder, held_until) VALUES (@job, @holder, @now + @period)
  ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until
   WHERE job_leases.held_until <= @now OR job_leases.holder = excluded.holder
  RETURNING holder`;

export class SqliteJobLeases {
  readonly #take;
  readonly #others;
  readonly #release;

  /** `holder` is this instance's id; `clock` gives ms since the epoch. */
  constructor(
    db: Db,
    readonly holder: string,
    private readonly clock: () => number = Date.now,
  ) {
    this.#take = db.prepare<{ job: string; holder: string; now: number; period: number }, { holder: string }>(TAKE_LEASE_SQLITE);
    this.#others = db.prepare<[string, number], { n: number }>('SELECT count(*) AS n FROM job_leases WHERE holder <> ? AND held_until > ?');
    this.#release = db.prepare<[number, string, number]>('UPDATE job_leases SET held_until = ? WHERE holder = ? AND held_until > ?');
  }

  /** Takes (or renews) the lease of `job` for `periodMs`; false when another instance holds it. */
  take(job: string, periodMs: number): boolean {
    return this.#take.get({ job, holder: this.holder, now: this.clock(), period: Math.round(periodMs) }) !== undefined;
  }

  /**
   * Whether another instance holds a lease that has not ended: it is alive, or died less than a
   * period ago (no way to tell the two apart from here).
   */
  othersLive(): boolean {
    return this.#others.get(this.holder, this.clock())!.n > 0;
  }

  /** Ends this instance's leases now (a clean stop), so that another instance takes the jobs at its next run. */
  release(): number {
    const now = this.clock();
    return this.#release.run(now, this.holder, now).changes;
  }
}
