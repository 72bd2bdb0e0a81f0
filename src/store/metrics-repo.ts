/**
 * The figures /metrics reads from the store at each scrape, so that they count what every process
 * did (the service, other instances, the CLI), not only this one. Each query reads an index:
 * invites by state (invites_state covers it), new events since the last scrape (by primary key:
 * the totals are kept and only the new rows read), claims by door and state.
 */
import type { Db } from './database';

export class SqliteMetricsStore {
  readonly #states;
  readonly #events;
  readonly #claims;

  constructor(db: Db) {
    this.#states = db.prepare<[{ now: number }], { s: string; n: number }>(
      `SELECT CASE WHEN state IN ('pending', 'open') AND expires_at <= @now THEN 'expired' ELSE state END AS s, count(*) AS n FROM invites GROUP BY s`,
    );
    this.#events = db.prepare<[{ after: number }], { type: string; n: number; last: number }>(
      `SELECT type, count(*) AS n, max(id) AS last FROM events WHERE id > @after GROUP BY type`,
    );
    this.#claims = db.prepare<[], { door: string; state: string; n: number }>(`SELECT door, state, count(*) AS n FROM claims GROUP BY door, state`);
  }

  /** Invites per shown state (`expired` derived). */
  states(now: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.#states.all({ now })) out[r.s] = Number(r.n);
    return out;
  }

  /** Events recorded after the event id `after`, per type, and the last id read. */
  eventsSince(after: number): { counts: Record<string, number>; last: number } {
    const counts: Record<string, number> = {};
    let last = after;
    for (const r of this.#events.all({ after })) {
      counts[r.type] = Number(r.n);
      last = Math.max(last, Number(r.last));
    }
    return { counts, last };
  }

  /** Claims (registrations that reached the server) per door and state. */
  claims(): { door: string; state: string; count: number }[] {
    return this.#claims.all().map((r) => ({ door: r.door, state: r.state, count: Number(r.n) }));
  }
}
