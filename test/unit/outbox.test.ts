/**
 * The outbox and its worker against a real SQLite database, with scripted transports.
 */
import pino from 'pino';
import { OutboxWorker, PermanentDeliveryError, NotReadyError, type Transport, type WorkerOptions } from '../../src/outbox/worker';
import { inviteServiceFor, outboxFor } from '../../src/services';
import { openTestStore } from '../support/engine';
import type { OutboxRow } from '../../src/store/outbox-repo';
import type { Rendered } from '../../src/outbox/render';
import { testConfig } from '../support/fixtures';

function setup(admins = ['admin@localhost', 'root@localhost'], workerOptions: Partial<WorkerOptions> = {}) {
  // 150 invites from one user in a minute (folding) are beyond the default per-user limits.
  const config = testConfig({ admins, limits: { per_user_open: 'off', per_user_per_day: 'off' } });
  const db = openTestStore();
  let now = Date.UTC(2026, 10, 21, 12);
  const clock = () => now;
  const outbox = outboxFor(config, db, { clock });
  const invites = inviteServiceFor(config, db, { clock, outbox });
  const sent: { row: OutboxRow; rendered: Rendered; at: number }[] = [];
  let behaviour: (row: OutboxRow) => void = () => undefined;
  const transport: Transport = {
    async send(row, rendered) {
      behaviour(row);
      sent.push({ row, rendered, at: performance.now() });
    },
  };
  const worker = new OutboxWorker({
    outbox,
    invites,
    render: { siteName: 'Example', component: 'invites.localhost' },
    logger: pino({ level: 'silent' }),
    maxAttempts: 3,
    now: clock,
    ...workerOptions,
  }).use('xmpp', transport);
  const alice = { kind: 'user' as const, jid: 'alice@localhost', isAdmin: false };
  const admin = { kind: 'user' as const, jid: 'admin@localhost', isAdmin: true };
  return {
    db,
    outbox,
    invites,
    worker,
    sent,
    alice,
    admin,
    fail: (fn: (row: OutboxRow) => void) => (behaviour = fn),
    advance: (ms: number) => (now += ms),
  };
}

describe('outbox', () => {
  it('tells every admin about a pending invite at once, with the inviter’s note', async () => {
    const { invites, worker, sent, alice } = setup();
    invites.create(alice, { kind: 'contact-account', source: 'command', note: 'my brother' });
    expect(await worker.runOnce()).toBe(2);
    expect(sent.map((s) => s.row.recipient).sort()).toEqual(['admin@localhost', 'root@localhost']);
    expect(sent[0].rendered.text).toMatch(/alice@localhost → anyone with the link \(contact-account, created 2026-11-21 12:00 UTC\) — “my brother”/);
  });

  it('folds pending notices within 30 s into one message with a count', async () => {
    const { invites, worker, sent, alice, advance } = setup(['admin@localhost']);
    invites.create(alice, { kind: 'contact-account', source: 'command' });
    await worker.runOnce();
    expect(sent).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      advance(5_000);
      invites.create(alice, { kind: 'contact-account', source: 'command' });
    }
    expect(await worker.runOnce()).toBe(0);
    advance(20_000);
    expect(await worker.runOnce()).toBe(1);
    expect(sent).toHaveLength(2);
    expect(sent[1].row.inviteIds).toHaveLength(3);
    expect(sent[1].rendered.text).toMatch(/^3 invites wait for your approval/);
  });

  it('says nothing about invites that were approved before the folded message left', async () => {
    const { invites, worker, sent, alice, admin, advance } = setup(['admin@localhost']);
    invites.create(alice, { kind: 'contact-account', source: 'command' });
    await worker.runOnce();
    advance(1_000);
    const second = invites.create(alice, { kind: 'contact-account', source: 'command' });
    invites.approve({ kind: 'user', jid: 'root@localhost', isAdmin: true }, second.invite.id);
    advance(30_000);
    await worker.runOnce();
    expect(sent.filter((s) => s.row.kind === 'pending')).toHaveLength(1);
    void admin;
  });

  it('retries temporary failures with backoff, then fails and tells the inviter of a failed invitation', async () => {
    const { invites, worker, sent, outbox, admin, fail, advance } = setup();
    const { invite } = invites.create(admin, { kind: 'contact-account', source: 'command', jid: 'bob@elsewhere.example' });
    fail((row) => {
      if (row.kind === 'invitation') throw new Error('recipient unavailable');
    });
    await worker.runOnce();
    let row = outbox.list({ limit: 10 }).find((r) => r.kind === 'invitation')!;
    expect(row).toMatchObject({ state: 'queued', attempts: 1, lastError: 'recipient unavailable' });
    expect(row.notBefore).toBeGreaterThan(Date.UTC(2026, 10, 21, 12) + 3_000);
    advance(60_000);
    await worker.runOnce();
    advance(600_000);
    await worker.runOnce();
    row = outbox.get(row.id)!;
    expect(row).toMatchObject({ state: 'failed', attempts: 3 });
    expect(invites.get(invite.id)?.messageDelivery).toBe('failed');
    await worker.runOnce();
    expect(sent.map((s) => s.row.kind)).toEqual(['delivery-failed']);
    expect(invites.events(invite.id).map((e) => e.type)).toEqual(['created', 'delivered']);
  });

  it('fails permanent errors at once', async () => {
    const { invites, worker, outbox, admin, fail } = setup();
    invites.create(admin, { kind: 'contact-account', source: 'command', jid: 'bob@elsewhere.example' });
    fail(() => {
      throw new PermanentDeliveryError('550 no such user');
    });
    await worker.runOnce();
    expect(outbox.list({ state: 'failed' })).toHaveLength(1);
  });

  it('does not count attempts while the transport is not ready', async () => {
    const { invites, worker, outbox, admin, fail, advance } = setup();
    invites.create(admin, { kind: 'contact-account', source: 'command', jid: 'bob@elsewhere.example' });
    fail(() => {
      throw new NotReadyError('offline');
    });
    for (let i = 0; i < 5; i++) {
      await worker.runOnce();
      advance(10_000);
    }
    expect(outbox.list({})[0]).toMatchObject({ state: 'queued', attempts: 0 });
  });

  it('sends again what a crash left in sending, with the same message id', async () => {
    const { invites, worker, outbox, sent, admin, db } = setup();
    invites.create(admin, { kind: 'contact-account', source: 'command', jid: 'bob@elsewhere.example' });
    const [claimed] = outbox.claimDue(10);
    expect(outbox.get(claimed.id)?.state).toBe('sending');
    // The process dies here. The next start:
    worker.start();
    await worker.stop();
    await worker.runOnce();
    expect(sent.map((s) => s.row.messageId)).toEqual([claimed.messageId]);
    expect(db.prepare(`SELECT state FROM outbox WHERE id = ?`).get(claimed.id)).toEqual({ state: 'sent' });
  });

  it('renders the token at send time: a resent invite’s invitation carries the new link', async () => {
    const { invites, worker, sent, admin } = setup();
    const { invite } = invites.create(admin, { kind: 'contact-account', source: 'command', jid: 'bob@elsewhere.example' });
    const { links } = invites.resend(admin, invite.id);
    await worker.runOnce();
    expect(sent).toHaveLength(2);
    for (const s of sent) expect(s.rendered.text).toContain(links.token);
  });

  it('never stores a token in the outbox', async () => {
    const { invites, admin, db, alice } = setup();
    const a = invites.create(admin, { kind: 'contact-account', source: 'command', jid: 'bob@elsewhere.example' });
    const b = invites.create(alice, { kind: 'contact-account', source: 'command' });
    invites.approve(admin, b.invite.id);
    const rows = JSON.stringify(db.prepare('SELECT * FROM outbox').all());
    expect(rows).not.toContain(a.links.token);
    expect(rows).not.toContain(b.links.token);
  });

  it('refuses to delete outbox rows', () => {
    const { db, invites, alice } = setup();
    invites.create(alice, { kind: 'contact-account', source: 'command' });
    expect(() => db.prepare('DELETE FROM outbox').run()).toThrow(/never deleted/);
  });
});

describe('waking the worker', () => {
  const until = async (what: () => boolean) => {
    const deadline = Date.now() + 5_000;
    while (!what()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('sends a notice at once on a quiet service, and gathers what a burst queues into the next pass', async () => {
    const { outbox, invites, worker, sent, admin } = setup(['admin@localhost'], { pollMs: 60_000, coalesceMs: 300 });
    outbox.onEnqueue = () => worker.poke();
    worker.start();
    try {
      await new Promise((r) => setTimeout(r, 350));
      const invite = (n: number) => invites.create(admin, { kind: 'contact', source: 'command', jid: `friend${n}@example.net` });
      const t0 = performance.now();
      invite(1);
      await until(() => sent.length === 1);
      expect(sent[0].at - t0).toBeLessThan(250);
      // Queued right after that pass: they wait for the next one, 300 ms after it began, and leave together.
      for (let n = 2; n <= 4; n++) invite(n);
      await until(() => sent.length === 4);
      const burst = sent.slice(1).map((s) => s.at);
      expect(Math.min(...burst) - sent[0].at).toBeGreaterThanOrEqual(290);
      expect(Math.max(...burst) - Math.min(...burst)).toBeLessThan(100);
      expect(sent.map((s) => s.row.recipient)).toEqual(['friend1@example.net', 'friend2@example.net', 'friend3@example.net', 'friend4@example.net']);
    } finally {
      await worker.stop();
    }
  });
});

describe('folding', () => {
  it('names at most 100 invites in the one message of a window, and counts the rest when it leaves', async () => {
    const { outbox, invites, worker, sent, alice, advance } = setup(['admin@localhost']);
    invites.create(alice, { kind: 'contact-account', source: 'command' });
    await worker.runOnce();
    expect(sent).toHaveLength(1);
    for (let i = 0; i < 150; i++) {
      advance(10);
      invites.create(alice, { kind: 'contact-account', source: 'command' });
    }
    const queued = outbox.list({ state: 'queued', limit: 10 });
    expect(queued.map((r) => r.inviteIds.length)).toEqual([100]);
    advance(30_000);
    await worker.runOnce();
    expect(sent).toHaveLength(2);
    expect(sent[1].rendered.text).toMatch(/^100 invites wait for your approval:/);
    // the first invite (told at once) and the 50 past the cap: 151 pending in all
    expect(sent[1].rendered.text).toContain('51 more wait as well (151 in all).');
    expect(sent[1].row.inviteIds).toHaveLength(100);
  });
});
