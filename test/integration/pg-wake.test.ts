/**
 * Wake-ups between processes on PostgreSQL (store/pg/wake.ts, schema.pg.sql migration 22) on a real
 * server: a notice queued and a question asked wake the listener, one notification per transaction,
 * nothing for rows that are not queued; the listener comes back after its connection is ended and
 * wakes every handler once for what it may have missed; and a service whose poll is ten minutes
 * away delivers a notice another process queued, at once.
 */
import { PgWake, WAKE_CHANNELS } from '../../src/store/pg/wake';
import { migrate } from '../../src/store/pg/migrate';
import { openPool, type Pool } from '../../src/store/pg/pool';
import { inviteServiceFor, outboxFor } from '../../src/services';
import { OPERATOR } from '../../src/domain/types';
import { openStoreOf } from '../support/engine';
import { TestPostgres } from '../support/postgres';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService } from '../support/service';

let pg: TestPostgres;
let url: string;
let pool: Pool;
const quietLogger = { info: () => undefined, warn: () => undefined };

beforeAll(async () => {
  pg = await TestPostgres.start();
  url = await pg.createDatabase();
  pool = openPool(url);
  await migrate(pool);
}, 60_000);

afterAll(async () => {
  await pool?.end();
  await pg?.stop();
});

/** Counts the calls of each channel's handler, and waits for the next ones. */
function counter() {
  const counts = { outbox: 0, checks: 0 };
  const waiters: { channel: keyof typeof counts; n: number; resolve: () => void }[] = [];
  const bump = (channel: keyof typeof counts) => () => {
    counts[channel]++;
    for (const w of waiters.filter((w) => w.channel === channel && counts[channel] >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const reached = (channel: keyof typeof counts, n: number) =>
    counts[channel] >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ channel, n, resolve }));
  return { counts, reached, handlers: { [WAKE_CHANNELS.outbox]: bump('outbox'), [WAKE_CHANNELS.accountChecks]: bump('checks') } };
}

const queue = (recipient: string) =>
  `INSERT INTO outbox (channel, kind, recipient, state, not_before, created_at, updated_at, message_id) VALUES ('xmpp', 'invitation', '${recipient}', 'queued', 0, 0, 0, 'm-${recipient}') RETURNING id`;

describe('the listener', () => {
  it('is woken by a notice queued and a question asked, once per transaction, and not by rows that are not queued', async () => {
    const c = counter();
    const wake = new PgWake({ url, handlers: c.handlers, logger: quietLogger });
    await wake.start();
    try {
      // Every handler once at the start, for what was queued before it listened.
      await c.reached('outbox', 1);
      expect(c.counts).toEqual({ outbox: 1, checks: 1 });
      const { rows } = await pool.query(queue('a@localhost'));
      await c.reached('outbox', 2);
      await pool.query(`INSERT INTO account_checks (username, asked_by, asked_at, wait_until) VALUES ('alice', 'operator', 0, 1)`);
      await c.reached('checks', 2);
      // Three queued in one transaction: one notification. Notifications arrive in the order of the
      // commits, so once the next one is counted, any from before it would have been too.
      await pool.query(`BEGIN; ${queue('b@localhost')}; ${queue('c@localhost')}; ${queue('d@localhost')}; COMMIT`);
      await c.reached('outbox', 3);
      // A row leaving the queue (taken, sent) wakes nobody; one queued again (a retry) does.
      await pool.query(`UPDATE outbox SET state = 'sending' WHERE id = $1`, [rows[0].id]);
      await pool.query(`UPDATE outbox SET state = 'sent' WHERE id = $1`, [rows[0].id]);
      await pool.query(`INSERT INTO account_checks (username, asked_by, asked_at, wait_until) VALUES ('bob', 'operator', 0, 1)`);
      await c.reached('checks', 3);
      expect(c.counts).toEqual({ outbox: 3, checks: 3 });
      await pool.query(`UPDATE outbox SET state = 'queued' WHERE id = $1`, [rows[0].id]);
      await c.reached('outbox', 4);
    } finally {
      await wake.stop();
    }
  });

  it('listens again after its connection is ended, waking every handler once, and stops for good on stop()', async () => {
    const c = counter();
    const wake = new PgWake({ url, handlers: c.handlers, logger: quietLogger, retryMs: 50 });
    await wake.start();
    await c.reached('outbox', 1);
    const ended = await pool.query(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'xmpp-invites wake' AND datname = current_database()`);
    expect(ended.rows).toEqual([{ ok: true }]);
    await c.reached('outbox', 2);
    expect(c.counts.checks).toBe(2);
    expect(wake.connections).toBe(2);
    await pool.query(queue('e@localhost'));
    await c.reached('outbox', 3);
    await wake.stop();
    expect(wake.listening).toBe(false);
    const listeners = await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'xmpp-invites wake' AND datname = current_database()`);
    expect(listeners.rows[0].n).toBe(0);
  });

  it('keeps trying while the server cannot be reached, and listens once it can', async () => {
    const c = counter();
    const warnings: string[] = [];
    const wake = new PgWake({ url: url.replace(`:${pg.port}/`, ':1/'), handlers: c.handlers, logger: { info: () => undefined, warn: (_fields: object, message: string) => void warnings.push(message) }, retryMs: 20, maxRetryMs: 40 });
    await wake.start();
    await new Promise((r) => setTimeout(r, 150));
    await wake.stop();
    expect(wake.listening).toBe(false);
    expect(c.counts).toEqual({ outbox: 0, checks: 0 });
    expect(warnings.length).toBeGreaterThan(1);
    expect(warnings[0]).toBe('not listening for other instances (their work is found by polling meanwhile)');
  });
});

describe('a service on PostgreSQL', () => {
  it("delivers at once a notice another process queued, with its poll ten minutes away", async () => {
    const prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
    try {
      await prosody.register('alice', 'alice-password');
      const db = await pg.createDatabase();
      const config = serviceConfig(prosody, { database: db });
      const service = await startService(config, { outboxPollMs: 600_000 });
      const other = openStoreOf(db, { write: true });
      try {
        // Once the start's own pass has found the outbox empty, a notice queued by another process.
        await new Promise((r) => setTimeout(r, 500));
        // (as `invite create --kind account --jid alice@localhost` does)
        inviteServiceFor(config, other, { outbox: outboxFor(config, other) }).create(OPERATOR, { kind: 'account', source: 'cli', jid: 'alice@localhost' });
        let state = '';
        for (let i = 0; i < 200 && state !== 'sent'; i++) {
          await new Promise((r) => setTimeout(r, 50));
          state = (other.prepare(`SELECT state FROM outbox WHERE recipient = 'alice@localhost'`).get() as { state: string }).state;
        }
        expect(state).toBe('sent');
      } finally {
        other.close();
        await service.stop();
      }
    } finally {
      await prosody.stop();
    }
  }, 60_000);
});
