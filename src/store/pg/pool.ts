/**
 * PostgreSQL connections (node-postgres): a pool opened from a `postgres://` or `postgresql://` URL,
 * and transactions on one connection of it.
 */
import pg from 'pg';
import { isPostgresUrl, redactUrl } from './url';

export { isPostgresUrl, redactUrl };

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

const INT8 = 20;

/** BIGINT (times in milliseconds, ids, count(*)) as a number: every value the store keeps fits. */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${text} does not fit in a JavaScript number`);
  return n;
}

const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface PoolOptions {
  /** most connections at once (default 10) */
  max?: number;
  /**
   * Errors of idle connections (the server restarted, an administrator ended the session): the pool
   * drops the connection and the next query opens another. Unheard, such an error would end the process.
   */
  onIdleError?: (err: Error) => void;
}

/** Opens a pool; connections are made on first use. Throws on a URL that is not PostgreSQL's. */
export function openPool(url: string, options: PoolOptions = {}): Pool {
  if (!isPostgresUrl(url)) throw new Error(`not a PostgreSQL URL (postgres://… or postgresql://…): ${redactUrl(url)}`);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: 'xmpp-invites',
    connectionTimeoutMillis: 10_000,
    types,
  });
  pool.on('error', options.onIdleError ?? (() => undefined));
  return pool;
}

/** Runs `fn` between BEGIN and COMMIT on one connection; ROLLBACK when it throws. */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    }
  } finally {
    // A connection whose ROLLBACK failed is in an unknown state: the pool closes it.
    client.release(broken);
  }
}
