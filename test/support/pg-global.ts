/**
 * Global setup and teardown of the `*-postgresql` jest projects: one throwaway cluster for all of
 * them (engine.ts makes a database per store in it), stopped by PID at the end. The projects choose
 * the engine in their setup file (pg-engine.ts); the cluster's URL reaches every test file through
 * the environment.
 */
import { TestPostgres } from './postgres';
import { PG_ADMIN_URL_ENV } from './engine';

const KEY = Symbol.for('xmpp-invites.test-postgres');
type Shared = { pg: TestPostgres; users: number };
const shared = globalThis as unknown as Record<symbol, Shared | undefined>;

export async function setup(): Promise<void> {
  const existing = shared[KEY];
  if (existing) {
    existing.users++;
    return;
  }
  const pg = await TestPostgres.start();
  shared[KEY] = { pg, users: 1 };
  process.env[PG_ADMIN_URL_ENV] = pg.url();
}

export async function teardown(): Promise<void> {
  const s = shared[KEY];
  if (!s || --s.users > 0) return;
  shared[KEY] = undefined;
  delete process.env[PG_ADMIN_URL_ENV];
  await s.pg.stop();
}

export default setup;
