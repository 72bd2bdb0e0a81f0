/**
 * Store failures made visible: another process holding the write lock does not freeze the service;
 * a full database fails a batch of New Invites with SQLite's own error; /healthz says 503 with the
 * reason when the database cannot be written; held claims and the age of the oldest are shown.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { newInviteCommand } from '../../src/handlers/commands/new-invite';
import { heldClaimsLine, statsLines } from '../../src/present/invite';
import { registerDisco } from '../../src/handlers/disco';
import { inviteServiceFor, limitsFor } from '../../src/services';
import { retryWhileBusy, SERVICE_BUSY_TIMEOUT_MS } from '../../src/store/busy';
import { openDatabase, type SqliteDb as Db } from '../../src/store/database';
import { GroupCommit } from '../../src/store/group-commit';
import { StoreMonitor, sqliteWriteCheck } from '../../src/store/health';
import { siteOf } from '../../src/web';
import { registerLandingRoutes } from '../../src/web/landing';
import { WebServer } from '../../src/web/server';
import { AdhocCommands } from '../../src/xmpp/adhoc';
import { NODES, NS } from '../../src/xmpp/ns';
import { Router } from '../../src/xmpp/router';
import { xml, type Element } from '../../src/xmpp/xml';
import type { InviteService } from '../../src/domain/invites';
import { ProvisionUnclear, Registration, type Provisioner } from '../../src/domain/registration';
import { SqliteClaimStore } from '../../src/store/claims-repo';
import type { Respond } from '../../src/domain/respond';
import { testConfig } from '../support/fixtures';

const COMPONENT = 'invites.localhost';
let dir: string;
const open: { close(): void }[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-store-'));
});
afterEach(() => {
  for (const db of open.splice(0)) db.close();
  try {
    execFileSync('chattr', ['-i', join(dir, 'invites.sqlite')], { stdio: 'ignore' });
  } catch {
    /* not set */
  }
  rmSync(dir, { recursive: true, force: true });
});

/** The service's side: a file database opened as `serve` opens it, New Invite and disco routed. */
function service() {
  const config = testConfig({ database: join(dir, 'invites.sqlite'), invites: { approval: 'none' } });
  const db = openDatabase(config.database, { busyTimeoutMs: SERVICE_BUSY_TIMEOUT_MS });
  open.push(db);
  const invites = inviteServiceFor(config, db);
  const errors: unknown[] = [];
  const monitor = new StoreMonitor(db, sqliteWriteCheck(db, config.database));
  const commit = new GroupCommit(db, { onError: (err) => (errors.push(err), monitor.recordWriteError(err)), onCommit: () => monitor.recordWriteOk() });
  const logger = pino({ level: 'silent' });
  const sent: Element[] = [];
  const router = new Router({ send: async (el) => void sent.push(el), logger, host: config.host, admins: config.admins });
  const adhoc = new AdhocCommands({ jid: COMPONENT }).add(newInviteCommand({ config, invites, logger, limits: limitsFor(config, db), commit }));
  router.iq('set', 'command', NS.commands, (ctx, c) => adhoc.execute(ctx.requester, c));
  registerDisco(router, { adhoc, name: 'test', features: () => [NS.commands] });
  let n = 0;
  /** Sends an IQ; resolves with its reply and how long it took. */
  const iq = async (payload: Element, type: 'get' | 'set' = 'set') => {
    const id = `q${++n}`;
    const started = performance.now();
    await router.handle(xml('iq', { type, from: 'alice@localhost/phone', to: COMPONENT, id }, payload));
    return { reply: sent.find((s) => s.attrs.id === id)!, ms: performance.now() - started };
  };
  const newInvite = () => iq(xml('command', { xmlns: NS.commands, node: NODES.newInvite, action: 'execute' }));
  const discoInfo = () => iq(xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), 'get');
  const count = () => (db.prepare('SELECT count(*) AS n FROM invites').get() as { n: number }).n;
  return { config, db, invites, commit, errors, monitor, newInvite, discoInfo, count };
}

/** Fills the database up to `max_page_count`, so that the next write needing a page fails SQLITE_FULL. */
function fill(db: Db, invites: InviteService): void {
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true })}`);
  const admin = { kind: 'user' as const, jid: 'admin@localhost', isAdmin: true };
  for (;;) {
    try {
      invites.create(admin, { kind: 'contact-account', source: 'command' });
    } catch (err) {
      expect((err as { code?: string }).code).toBe('SQLITE_FULL');
      return;
    }
  }
}

describe('another process holding the write lock', () => {
  it('does not freeze the service: other stanzas are answered, and the New Invite completes once the lock is free', async () => {
    const s = service();
    const other = new Database(s.config.database);
    open.push(other);
    other.exec('BEGIN IMMEDIATE');
    const pending = s.newInvite();
    let done = false;
    void pending.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 200));
    // Answered while the New Invite waits for the lock (before: the 10 s busy timeout blocked all).
    const disco = await s.discoInfo();
    expect(disco.reply.attrs.type).toBe('result');
    expect(disco.ms).toBeLessThan(SERVICE_BUSY_TIMEOUT_MS + 100);
    const loopStarted = performance.now();
    await new Promise((r) => setTimeout(r, 10));
    expect(performance.now() - loopStarted).toBeLessThan(SERVICE_BUSY_TIMEOUT_MS + 100);
    expect(done).toBe(false);
    expect(s.commit.lockWaits).toBeGreaterThan(0);
    other.exec('COMMIT');
    const { reply } = await pending;
    expect(reply.getChild('command', NS.commands)?.attrs.status).toBe('completed');
    expect(s.count()).toBe(1);
  });

  it('retries a busy write later without blocking, and gives up with the lock’s error at the deadline', async () => {
    const s = service();
    const other = new Database(s.config.database);
    open.push(other);
    other.exec('BEGIN IMMEDIATE');
    const write = () => s.db.prepare(`INSERT INTO opt_outs (address_hash, invite_id, created_at) VALUES ('x', NULL, 1)`).run();
    await expect(retryWhileBusy(write, { deadlineMs: 300 })).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    setTimeout(() => other.exec('ROLLBACK'), 200);
    await expect(retryWhileBusy(write, { deadlineMs: 5_000 })).resolves.toMatchObject({ changes: 1 });
  });
});

describe('a full database', () => {
  it('fails a batch of New Invites with SQLite’s own error, and stores none of it', async () => {
    const s = service();
    fill(s.db, s.invites);
    const before = s.count();
    const replies = await Promise.all(Array.from({ length: 10 }, () => s.newInvite()));
    for (const { reply } of replies) expect(reply.attrs.type).toBe('error');
    expect(s.errors.length).toBeGreaterThan(0);
    for (const err of s.errors) expect(err).toMatchObject({ code: 'SQLITE_FULL', message: 'database or disk is full' });
    expect(s.count()).toBe(before);
    expect(s.monitor.check()).toMatchObject({ writable: false, reason: expect.stringMatching(/full/) });
  });
});

describe('/healthz', () => {
  async function healthz(s: ReturnType<typeof service>, link: { xmpp: boolean; standby?: boolean } = { xmpp: true }) {
    const web = new WebServer({
      listen: { host: '127.0.0.1', port: 0 },
      trustedProxies: [],
      tokenKey: s.config.tokenKey,
      secureCookies: false,
      site: siteOf(s.config),
      logger: pino({ level: 'silent' }),
    });
    registerLandingRoutes(web, {
      site: siteOf(s.config),
      invites: s.invites,
      respond: {} as Respond,
      health: () => ({ ...link, store: s.monitor.check(), now: Date.now() }),
    });
    await web.start();
    try {
      const res = await fetch(`${web.url}/healthz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    } finally {
      await web.stop();
    }
  }

  it('says ok with the held claims when the database can be written', async () => {
    const s = service();
    expect(await healthz(s)).toEqual({
      status: 200,
      body: { status: 'ok', xmpp: 'online', database: 'writable', held_claims: 0, oldest_held_claim_age_s: null },
    });
  });

  it('stays 200 while the component reconnects, and answers 503 "standby" on a standby instance', async () => {
    const s = service();
    expect(await healthz(s, { xmpp: false })).toMatchObject({ status: 200, body: { status: 'ok', xmpp: 'offline' } });
    expect(await healthz(s, { xmpp: false, standby: true })).toEqual({
      status: 503,
      body: { status: 'standby', xmpp: 'standby', database: 'writable', held_claims: 0, oldest_held_claim_age_s: null },
    });
    fill(s.db, s.invites);
    expect(await healthz(s, { xmpp: false, standby: true })).toMatchObject({ status: 503, body: { status: 'error', xmpp: 'standby', database: 'unwritable' } });
  });

  it('answers 503 with the reason when the database file is read-only', async () => {
    const s = service();
    const file = s.config.database;
    // root ignores permissions: make the file immutable instead
    if (process.getuid?.() === 0) execFileSync('chattr', ['+i', file]);
    else chmodSync(file, 0o444);
    const { status, body } = await healthz(s);
    expect(status).toBe(503);
    expect(body).toMatchObject({ status: 'error', database: 'unwritable', reason: expect.stringMatching(/invites\.sqlite is not writable \((permission denied|EPERM)\)/) });
  });

  it('answers 503 when the database is open read-only', async () => {
    const s = service();
    const ro = openDatabase(s.config.database, { readonly: true });
    open.push(ro);
    expect(new StoreMonitor(ro, sqliteWriteCheck(ro, s.config.database)).check()).toMatchObject({ writable: false, reason: 'the database is open read-only' });
  });

  it('answers 503 when the database is full, and ok again once a write succeeds after room is made', async () => {
    const s = service();
    fill(s.db, s.invites);
    const full = await healthz(s);
    expect(full.status).toBe(503);
    expect(full.body.reason).toMatch(/^the database is full \(max_page_count \d+ reached\)$/);
    await Promise.all([s.newInvite()]);
    s.db.pragma('max_page_count = 1073741823');
    // The failed batch is remembered until a write succeeds.
    expect((await healthz(s)).body.reason).toBe('the last write failed: database or disk is full');
    await s.newInvite();
    expect((await healthz(s)).status).toBe(200);
  });

  it('shows the age of the oldest held claim', async () => {
    const s = service();
    const at = Date.now() - 3_700_000;
    s.db.prepare(`INSERT INTO claims (id, invite_id, username, door, state, created_at) VALUES ('c1', NULL, 'zed', 'web', 'held', ?)`).run(at);
    s.db.prepare(`INSERT INTO claims (id, invite_id, username, door, state, created_at) VALUES ('c2', NULL, 'amy', 'web', 'held', ?)`).run(at + 3_000_000);
    const { body } = await healthz(s);
    expect(body).toMatchObject({ status: 'ok', held_claims: 2 });
    expect(body.oldest_held_claim_age_s).toBeGreaterThanOrEqual(3_700);
    expect(body.oldest_held_claim_age_s).toBeLessThan(3_710);
    const lines = statsLines(s.invites.stats(), undefined, at + 3_720_000);
    expect(lines.claims).toBe(`2 held, the oldest for 1 h 2 min (since ${new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z')})`);
    expect(heldClaimsLine({ count: 0, oldestAt: null }, Date.now())).toBe('none held');
  });
});

describe('reconciliation', () => {
  function registrationWith(accountExists: () => Promise<boolean>) {
    const s = service();
    const failed: { claim: string; err: string }[] = [];
    const provisioner: Provisioner = {
      name: 'test',
      createAccount: async () => {
        throw new ProvisionUnclear('timeout');
      },
      accountExists,
    };
    const registration = new Registration({
      claims: new SqliteClaimStore(s.db),
      invites: s.invites,
      provisioner,
      policy: { host: 'localhost', mode: 'invite-only', minPasswordLength: 8 },
      events: { joined: () => undefined, reconcileFailed: ({ claimId, err }) => failed.push({ claim: claimId, err: (err as Error).message }) },
    });
    const { links } = s.invites.create({ kind: 'operator' }, { kind: 'account', source: 'cli' });
    return { s, registration, failed, token: links.token };
  }

  it('tells of every failed attempt, and the claim stays held', async () => {
    // The server answers the question asked before claiming (no such account), then goes silent.
    let asked = 0;
    const { registration, failed, token } = registrationWith(async () => {
      if (asked++ === 0) return false;
      throw new ProvisionUnclear('the server did not answer');
    });
    await expect(registration.register({ token, username: 'bob', password: 'long enough', door: 'web' })).rejects.toMatchObject({ code: 'unavailable' });
    await new Promise((r) => setTimeout(r, 20));
    await registration.reconcileAll();
    await registration.reconcileAll();
    expect(failed).toHaveLength(3);
    expect(new Set(failed.map((f) => f.claim)).size).toBe(1);
    expect(failed[0].err).toBe('the server did not answer');
    expect(registration.heldClaims()).toHaveLength(1);
  });

  it('tells of a settlement the database refused, rather than leaving a rejected promise', async () => {
    let answer = false;
    const ctx = registrationWith(async () => answer);
    await expect(ctx.registration.register({ token: ctx.token, username: 'bob', password: 'long enough', door: 'web' })).rejects.toMatchObject({ code: 'unavailable' });
    await new Promise((r) => setTimeout(r, 20));
    expect(ctx.registration.heldClaims()).toHaveLength(0);
    // A second claim, settled while the database refuses every write.
    const { links } = ctx.s.invites.create({ kind: 'operator' }, { kind: 'account', source: 'cli' });
    answer = true;
    const claim = ctx.registration.claim({ token: links.token, username: 'carol', door: 'web' });
    ctx.s.db.pragma('query_only = ON');
    await ctx.registration.reconcile(claim.id);
    ctx.s.db.pragma('query_only = OFF');
    expect(ctx.failed).toEqual([{ claim: claim.id, err: 'attempt to write a readonly database' }]);
    expect(ctx.registration.heldClaims().map((c) => c.id)).toEqual([claim.id]);
  });
});

describe('a synchronous write that finds the lock taken', () => {
  it('is answered "try again" at both doors, after the short wait, not after 10 s', async () => {
    const s = service();
    const other = new Database(s.config.database);
    open.push(other);
    other.exec('BEGIN IMMEDIATE');
    const write = () => s.db.prepare(`INSERT INTO opt_outs (address_hash, invite_id, created_at) VALUES ('y', NULL, 1)`).run();

    const sent: Element[] = [];
    const router = new Router({ send: async (el) => void sent.push(el), logger: pino({ level: 'silent' }), host: 'localhost', admins: [] });
    router.iq('set', 'write', 'urn:test', () => (write(), true));
    const started = performance.now();
    await router.handle(xml('iq', { type: 'set', id: 'w1', from: 'alice@localhost/a', to: COMPONENT }, xml('write', { xmlns: 'urn:test' })));
    expect(performance.now() - started).toBeLessThan(SERVICE_BUSY_TIMEOUT_MS + 200);
    const error = sent[0].getChild('error')!;
    expect(error.attrs.type).toBe('wait');
    expect(error.getChild('resource-constraint')).toBeDefined();

    const web = new WebServer({
      listen: { host: '127.0.0.1', port: 0 },
      trustedProxies: [],
      tokenKey: s.config.tokenKey,
      secureCookies: false,
      site: siteOf(s.config),
      logger: pino({ level: 'silent' }),
    });
    web.get('/write', () => (write(), { status: 200, body: 'written' }));
    await web.start();
    try {
      const res = await fetch(`${web.url}/write`);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
    } finally {
      await web.stop();
    }
    other.exec('ROLLBACK');
    expect((await (async () => write())()).changes).toBe(1);
  });
});
