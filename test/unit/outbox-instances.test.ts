/**
 * The outbox shared by two instances: two workers, each with its own connection to one SQLite file
 * and its own presence (store/leases-repo.ts), as two `serve` processes share it. Every row is
 * delivered by one of them, once; the rows of an instance that dies mid-send are taken over by the
 * other once its presence has ended, and delivered once; only the instance holding a row records
 * its outcome; a row queued by another process is found by the poll.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { OutboxWorker, type Transport } from '../../src/outbox/worker';
import { inviteServiceFor, outboxFor } from '../../src/services';
import { openDatabase, type Db } from '../../src/store/database';
import { SqliteJobLeases } from '../../src/store/leases-repo';
import { PRESENCE_TTL_MS } from '../../src/jobs';
import { testConfig } from '../support/fixtures';

const config = testConfig({ limits: { per_user_open: 'off', per_user_per_day: 'off' } });
const admin = { kind: 'user' as const, jid: 'admin@localhost', isAdmin: true };

let dir: string;
const dbs: Db[] = [];
let now: number;
const clock = () => now;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-outbox-'));
  now = Date.now();
});
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Delivery {
  by: string;
  messageId: string;
}

/**
 * One instance: its own connection, outbox (rows it takes name `id`), presence and worker. `hang`
 * makes its transport never answer (the process dies in the middle of sending).
 */
function instance(id: string, deliveries: Delivery[], opts: { hang?: boolean; pollMs?: number } = {}) {
  const db = openDatabase(join(dir, 'store.sqlite'));
  dbs.push(db);
  const outbox = outboxFor(config, db, { clock, instance: id });
  const invites = inviteServiceFor(config, db, { clock, outbox });
  const leases = new SqliteJobLeases(db, id, clock);
  leases.beat(PRESENCE_TTL_MS);
  const transport: Transport = {
    async send(row) {
      if (opts.hang) return new Promise<void>(() => undefined);
      // Each send yields, as a real one does: the other worker's pass runs meanwhile.
      await new Promise((r) => setTimeout(r, Math.random() * 2));
      deliveries.push({ by: id, messageId: row.messageId });
    },
  };
  const worker = new OutboxWorker({
    outbox,
    invites,
    render: { siteName: 'Example', component: 'invites.localhost' },
    logger: pino({ level: 'silent' }),
    maxAttempts: 3,
    batch: 7,
    pollMs: opts.pollMs ?? 60_000,
    now: clock,
  }).use('xmpp', transport);
  /** `n` invitations to JIDs of another server, each one outbox row */
  const queue = (n: number, tag: string) => {
    for (let i = 0; i < n; i++) invites.create(admin, { kind: 'contact-account', source: 'command', jid: `${tag}${i}@elsewhere.example` });
  };
  return { db, outbox, leases, worker, queue };
}

/** Passes until nothing is left (a pass of a worker not started takes one batch). */
async function drain(worker: OutboxWorker): Promise<number> {
  let total = 0;
  for (let n = await worker.runOnce(); n > 0; n = await worker.runOnce()) total += n;
  return total;
}

function states(db: Db): Record<string, number> {
  const rows = db.prepare('SELECT state, count(*) AS n FROM outbox GROUP BY state').all() as { state: string; n: number }[];
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/** Each message id delivered how many times. */
function counts(deliveries: Delivery[]): number[] {
  const seen = new Map<string, number>();
  for (const d of deliveries) seen.set(d.messageId, (seen.get(d.messageId) ?? 0) + 1);
  return [...seen.values()];
}

it('delivers every row once between two workers passing at the same time', async () => {
  const deliveries: Delivery[] = [];
  const a = instance('a', deliveries);
  const b = instance('b', deliveries);
  a.queue(150, 'a');
  b.queue(150, 'b');
  // Both take batches while the other's sends are in flight, and more rows arrive meanwhile.
  const passes = Promise.all([drain(a.worker), drain(b.worker), drain(a.worker), drain(b.worker)]);
  a.queue(50, 'late');
  const done = await passes;
  done.push(await drain(a.worker), await drain(b.worker));
  expect(done.reduce((x, y) => x + y, 0)).toBe(350);
  expect(deliveries).toHaveLength(350);
  expect(counts(deliveries).every((n) => n === 1)).toBe(true);
  expect(new Set(deliveries.map((d) => d.by))).toEqual(new Set(['a', 'b']));
  expect(states(a.db)).toEqual({ sent: 350 });
  // Each row names the instance that sent it.
  const by = new Map(deliveries.map((d) => [d.messageId, d.by]));
  for (const row of a.outbox.list({ limit: 1000 })) expect(row.claimedBy).toBe(by.get(row.messageId));
});

it('takes over the rows of an instance that died mid-send once its presence ends, and delivers each once', async () => {
  const deliveries: Delivery[] = [];
  const a = instance('a', deliveries, { hang: true });
  const b = instance('b', deliveries);
  a.queue(20, 'x');
  // A takes a batch and dies while sending it (its pass never ends).
  void a.worker.runOnce();
  await new Promise((r) => setImmediate(r));
  expect(states(b.db)).toEqual({ sending: 7, queued: 13 });
  // While A's presence lasts, B leaves A's rows alone, and a restarted B does too.
  await drain(b.worker);
  b.worker.start();
  await b.worker.stop();
  expect(deliveries).toHaveLength(13);
  expect(states(b.db)).toEqual({ sending: 7, sent: 13 });
  // A's presence ends; B, alive, renews its own and takes A's rows over.
  now += PRESENCE_TTL_MS;
  b.leases.beat(PRESENCE_TTL_MS);
  expect(await drain(b.worker)).toBe(7);
  expect(deliveries).toHaveLength(20);
  expect(counts(deliveries).every((n) => n === 1)).toBe(true);
  expect(states(b.db)).toEqual({ sent: 20 });
});

it('records the outcome of a row only by the instance holding it', async () => {
  const deliveries: Delivery[] = [];
  const a = instance('a', deliveries);
  const b = instance('b', deliveries);
  a.queue(3, 'y');
  const [r1, r2, r3] = a.outbox.claimDue(10);
  // A stalls past its presence; B takes the rows over and sends them.
  now += PRESENCE_TTL_MS;
  b.leases.beat(PRESENCE_TTL_MS);
  expect(await b.worker.runOnce()).toBe(3);
  const after = a.outbox.list({ limit: 10 });
  // A's late outcomes change nothing: not B's sent rows, nor a row B queued again.
  expect(a.outbox.markSent(r1.id)).toBe(false);
  expect(a.outbox.markFailed(r2.id, 'late')).toBe(false);
  expect(a.outbox.markRetry(r3.id, 'late', now)).toBe(false);
  expect(a.outbox.list({ limit: 10 })).toEqual(after);
  expect(after.every((r) => r.state === 'sent' && r.claimedBy === 'b')).toBe(true);
  // Nor can B record A's row while A holds it.
  a.leases.beat(PRESENCE_TTL_MS);
  a.queue(1, 'z');
  const [mine] = a.outbox.claimDue(10);
  expect(b.outbox.markSent(mine.id)).toBe(false);
  expect(b.outbox.requeueOrphaned()).toBe(0);
  expect(a.outbox.get(mine.id)).toMatchObject({ state: 'sending', claimedBy: 'a' });
});

it('at start, takes back the rows of no live instance and of none, not those of a live one', () => {
  const deliveries: Delivery[] = [];
  const a = instance('a', deliveries);
  const b = instance('b', deliveries);
  a.queue(3, 'w');
  const [live, gone, none] = a.outbox.claimDue(10);
  // One taken by an instance that ended without its presence (a crash, pruned), one from before migration 14.
  a.db.prepare(`UPDATE outbox SET claimed_by = 'gone' WHERE id = ?`).run(gone.id);
  a.db.prepare(`UPDATE outbox SET claimed_by = NULL WHERE id = ?`).run(none.id);
  expect(b.outbox.requeueOrphaned(true)).toBe(2);
  expect([live, gone, none].map((r) => a.outbox.get(r.id)?.state)).toEqual(['sending', 'queued', 'queued']);
});

it('finds, by its poll, a row another process queued', async () => {
  const deliveries: Delivery[] = [];
  const a = instance('a', deliveries);
  const b = instance('b', deliveries, { pollMs: 100 });
  b.worker.start();
  try {
    await new Promise((r) => setTimeout(r, 50));
    // Queued on A's connection: nothing pokes B's worker.
    a.queue(1, 'polled');
    const started = performance.now();
    while (deliveries.length === 0 && performance.now() - started < 2_000) await new Promise((r) => setTimeout(r, 10));
    expect(deliveries).toEqual([{ by: 'b', messageId: expect.any(String) }]);
    expect(performance.now() - started).toBeLessThan(500);
  } finally {
    await b.worker.stop();
  }
});
