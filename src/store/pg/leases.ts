/**
 * The lease of a periodic job on PostgreSQL: the twin of store/leases-repo.ts (read its top for
 * how a lease works). The time is the database's (clock_timestamp(), read once: `excluded.held_until
 * - period` in the WHERE is the same reading), so that instances on machines whose clocks differ
 * agree on when a lease ends. Under READ COMMITTED, instances racing for one row wait for the row
 * lock of the first, then evaluate the WHERE against the row it left: one of them gets the lease.
 */
import type { ClientBase } from 'pg';
import type { Pool } from './pool';

export const TAKE_LEASE_PG = `INSERT INTO job_leases (job, holder, held_until)
  VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $3::bigint)
  ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until
   WHERE job_leases.held_until <= excluded.held_until - $3::bigint OR job_leases.holder = excluded.holder
  RETURNING holder`;

/** Takes (or renews) the lease of `job` for `holder`, for `periodMs`; false when another instance holds it. */
export async function takeLeasePg(db: Pool | ClientBase, job: string, holder: string, periodMs: number): Promise<boolean> {
  const { rowCount } = await db.query(TAKE_LEASE_PG, [job, holder, Math.round(periodMs)]);
  return rowCount === 1;
}
