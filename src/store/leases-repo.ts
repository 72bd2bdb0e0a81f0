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
 *
 * Each instance also holds a lease of its own, `instance:<id>`, renewed every few seconds: its
 * presence, by which the others know whether it is alive (src/jobs.ts, reconciliation).
 */
import type { Db } from './database';

/**
 * Times are ms since the epoch, by the instance's clock: on SQLite all the instances run on one
 * machine, one clock; on PostgreSQL the machines' clocks must agree within a small part of a
 * period (NTP does; a lease is a minute, presence 5 s). The CAST gives PostgreSQL the type of the
 * sum (both engines read it as an integer).
 */
export const TAKE_LEASE = `INSERT INTO job_leases (job, holder, held_until) VALUES (@job, @holder, CAST(@now AS BIGINT) + @period)
  ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until
   WHERE job_leases.held_until <= @now OR job_leases.holder = excluded.holder
  RETURNING holder`;

/** The job name of an instance's presence row is this prefix and its id. */
export const PRESENCE = 'instance:';

export class SqliteJobLeases {
  readonly #take;
  readonly #present;
  readonly #prune;
  readonly #release;
  readonly #leave;

  /** `holder` is this instance's id; `clock` gives ms since the epoch. */
  constructor(
    db: Db,
    readonly holder: string,
    private readonly clock: () => number = Date.now,
  ) {
    this.#take = db.prepare<{ job: string; holder: string; now: number; period: number }, { holder: string }>(TAKE_LEASE);
    this.#present = db.prepare<[string, string, number], { held_until: number }>(
      `SELECT held_until FROM job_leases WHERE substr(job, 1, 9) = ? AND holder <> ? AND held_until > ?`,
    );
    this.#prune = db.prepare<[string, number]>(`DELETE FROM job_leases WHERE substr(job, 1, 9) = ? AND held_until <= ?`);
    this.#release = db.prepare<[number, string, number]>('UPDATE job_leases SET held_until = ? WHERE holder = ? AND held_until > ?');
    this.#leave = db.prepare<[string]>('DELETE FROM job_leases WHERE job = ?');
  }

  /** Takes (or renews) the lease of `job` for `periodMs`; false when another instance holds it. */
  take(job: string, periodMs: number): boolean {
    return this.#take.get({ job, holder: this.holder, now: this.clock(), period: Math.round(periodMs) }) !== undefined;
  }

  /**
   * Says this instance is alive for `ttlMs` more (its presence row, a lease no other instance asks
   * for), and forgets the presence of instances that ended without a clean stop.
   */
  beat(ttlMs: number): void {
    this.#prune.run(PRESENCE, this.clock());
    this.take(PRESENCE + this.holder, ttlMs);
  }

  /**
   * Whether another instance is alive. The presence of one that died lasts until it ends, so when
   * some are seen this waits until they would have ended, then looks again: a live instance has
   * renewed its presence meanwhile (it does every PRESENCE_EVERY_MS, well within its lifetime).
   */
  async othersLive(sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms))): Promise<boolean> {
    const seen = this.#present.all(PRESENCE, this.holder, this.clock());
    if (seen.length === 0) return false;
    await sleep(Math.max(...seen.map((r) => r.held_until)) - this.clock() + 1);
    return this.#present.all(PRESENCE, this.holder, this.clock()).length > 0;
  }

  /**
   * A clean stop: ends this instance's job leases now, so that another instance takes each job at
   * its next run, and removes its presence. Returns how many job leases it ended.
   */
  release(): number {
    this.#leave.run(PRESENCE + this.holder);
    const now = this.clock();
    return this.#release.run(now, this.holder, now).changes;
  }
}
