/**
 * Wake-ups from other processes on one PostgreSQL database: one connection LISTENs on the channels
 * that schema.pg.sql's migration 22 notifies (a notice queued in the outbox, a question asked of the
 * running service), and each notification calls the channel's handler. Several instances then take
 * each other's work at once instead of at their next poll.
 *
 * The polls stay: a notification is a hint, never the only way work is found. PostgreSQL drops
 * notifications while nobody listens, so while this connection is down (the server restarted, an
 * administrator ended the session) the polls find the work, and every handler is called once after
 * each reconnection, for whatever was queued meanwhile. Reconnection waits 1 s, then twice as long
 * each time, at most 30 s; `stop()` ends the connection and the retries.
 *
 * Handlers must be cheap and never throw (the outbox worker's `poke`, a job's `run`): they are
 * called for every notification, and the instance's own writes notify it too.
 */
import { createRequire } from 'node:module';
import type pg from 'pg';
import { redactUrl } from './url';

/** The channels of migration 22. */
export const WAKE_CHANNELS = { outbox: 'xmpp_invites_outbox', accountChecks: 'xmpp_invites_account_checks' } as const;

export interface WakeDeps {
  url: string;
  /** what each channel wakes */
  handlers: Readonly<Record<string, () => void>>;
  logger: { info(fields: object, message: string): void; warn(fields: object, message: string): void };
  /** first wait before reconnecting (default 1 s), doubled up to `maxRetryMs` (default 30 s) */
  retryMs?: number;
  maxRetryMs?: number;
}

export class PgWake {
  readonly #deps: WakeDeps;
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #retryMs: number;
  /** connections made (for tests: the first, then each reconnection) */
  connections = 0;

  constructor(deps: WakeDeps) {
    this.#deps = deps;
    this.#retryMs = deps.retryMs ?? 1_000;
  }

  /** Connects and listens; resolves once listening, or once the first attempt failed (retries go on). */
  async start(): Promise<void> {
    await this.#connect();
  }

  /** Whether the connection is listening now. */
  get listening(): boolean {
    return this.#client !== undefined;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    // Loaded here: a process on SQLite never loads the PostgreSQL client (see sync-db.ts).
    const { Client, escapeIdentifier } = createRequire(__filename)('pg') as typeof pg;
    const client = new Client({ connectionString: this.#deps.url, application_name: 'xmpp-invites wake', connectionTimeoutMillis: 10_000 });
    // Until it is ready, an error fails the attempt below; after, it ends the connection.
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('the connection ended')));
    client.on('notification', (n) => this.#deps.handlers[n.channel]?.());
    try {
      await client.connect();
      // Channel names are the constants of WAKE_CHANNELS (identifiers, never text from outside).
      for (const channel of Object.keys(this.#deps.handlers)) await client.query(`LISTEN ${escapeIdentifier(channel)}`);
    } catch (err) {
      client.removeAllListeners('end');
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
      this.#retry(err as Error);
      return;
    }
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#retryMs = this.#deps.retryMs ?? 1_000;
    if (this.connections++ > 0) this.#deps.logger.info({ db: redactUrl(this.#deps.url) }, 'listening for other instances again');
    // Whatever was notified while nobody listened is found now.
    for (const wake of Object.values(this.#deps.handlers)) wake();
  }

  #lost(client: pg.Client, err: Error): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    this.#retry(err);
  }

  #retry(err: Error): void {
    if (this.#stopped) return;
    this.#deps.logger.warn({ err: err.message, retryInS: this.#retryMs / 1000 }, 'not listening for other instances (their work is found by polling meanwhile)');
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#connect(), this.#retryMs);
    this.#timer.unref();
    this.#retryMs = Math.min(this.#retryMs * 2, this.#deps.maxRetryMs ?? 30_000);
  }
}
