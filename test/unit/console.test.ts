/**
 * The web console's rules on a real SQLite store: sign-in links (derived codes, once, 10 minutes,
 * the limits, the same answer for every JID), sessions (hashed, new id at sign-in, idle and
 * absolute expiry, logout, revocation), extending invites (domain and CLI), and the charts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import {
  ConsoleAuth,
  hashSession,
  LIMIT_WINDOW_MS,
  LOGIN_TTL_MS,
  LOGINS_PER_ADDRESS,
  LOGINS_PER_JID,
  SESSION_IDLE_MS,
  SESSION_TTL_MS,
} from '../../src/domain/console-auth';
import { InviteService } from '../../src/domain/invites';
import type { Notice } from '../../src/domain/notices';
import type { Actor } from '../../src/domain/types';
import { openDatabase, type Db } from '../../src/store/database';
import { SqliteConsoleStore } from '../../src/store/console-repo';
import { SqliteInviteStore } from '../../src/store/invites-repo';
import { axisTicks, groupedBarChart, niceMax, stackedBarChart } from '../../src/web/charts';
import { rawTestConfig } from '../support/fixtures';

const KEY = 'k'.repeat(40);
const DAY = 86_400_000;
const alice: Actor = { kind: 'user', jid: 'alice@example.com', isAdmin: false };
const admin: Actor = { kind: 'user', jid: 'admin@example.com', isAdmin: true };

function setup() {
  const db = openDatabase(':memory:');
  let now = Date.UTC(2026, 10, 21, 12);
  const sent: Notice[] = [];
  const auth = new ConsoleAuth({
    store: new SqliteConsoleStore(db),
    tokenKey: KEY,
    host: 'example.com',
    publicUrl: 'https://invites.example.com',
    notices: { enqueue: (n) => sent.push(n) },
    clock: () => now,
  });
  const codeOf = (n: Notice) => auth.code(String(n.params!.login));
  return { db, auth, sent, codeOf, advance: (ms: number) => (now += ms) };
}

const dump = (db: Db) =>
  JSON.stringify(db.prepare('SELECT * FROM console_logins ORDER BY id').all()) + JSON.stringify(db.prepare('SELECT * FROM console_sessions ORDER BY id_hash').all());

describe('sign-in links', () => {
  it('queues one login message to a local JID, whose link signs in once and whose phrase matches the page', () => {
    const { auth, sent, codeOf } = setup();
    const { phrase } = auth.request(' Alice@Example.com ', '192.0.2.1');
    expect(sent).toEqual([{ channel: 'xmpp', kind: 'login', recipient: 'alice@example.com', inviteIds: [], params: { login: expect.any(String) } }]);
    const rendered = auth.renderLogin(String(sent[0].params!.login))!;
    expect(rendered.phrase).toBe(phrase);
    expect(phrase).toMatch(/^[a-z]+ [a-z]+ [a-z]+$/);
    expect(rendered.link).toBe(`https://invites.example.com/login/${codeOf(sent[0])}`);
    expect(auth.inspect(codeOf(sent[0]))).toEqual({ ok: true, jid: 'alice@example.com', phrase });
    const done = auth.confirm(codeOf(sent[0]));
    expect(done.ok).toBe(true);
    expect(auth.confirm(codeOf(sent[0]))).toEqual({ ok: false, why: 'used' });
    // Once used, the message has nothing left to say if it is sent late.
    expect(auth.renderLogin(String(sent[0].params!.login))).toBeUndefined();
  });

  it('records a sign-in for another domain and for nobody alike, and sends nothing outside host', () => {
    const { db, auth, sent } = setup();
    const a = auth.request('alice@elsewhere.net', '192.0.2.1');
    const b = auth.request('nobody@example.com', '192.0.2.1');
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    expect(sent.map((n) => n.recipient)).toEqual(['nobody@example.com']);
    expect(db.prepare('SELECT jid FROM console_logins ORDER BY created_at, jid').all()).toHaveLength(2);
  });

  it('refuses text that is not a user JID, recording nothing', () => {
    const { db, auth, sent } = setup();
    const before = dump(db);
    for (const bad of ['', 'example.com', 'a@b@c', 'alice@', '@example.com']) {
      expect(() => auth.request(bad, '192.0.2.1')).toThrow(expect.objectContaining({ code: 'invalid-input' }));
    }
    expect(sent).toEqual([]);
    expect(dump(db)).toBe(before);
  });

  it('expires a link after 10 minutes', () => {
    const { auth, sent, codeOf, advance } = setup();
    auth.request('alice@example.com', '192.0.2.1');
    advance(LOGIN_TTL_MS);
    expect(auth.inspect(codeOf(sent[0]))).toEqual({ ok: false, why: 'expired' });
    expect(auth.confirm(codeOf(sent[0]))).toEqual({ ok: false, why: 'expired' });
    expect(auth.renderLogin(String(sent[0].params!.login))).toBeUndefined();
  });

  it('refuses a code whose MAC does not check, and one made under another key', () => {
    const { auth, sent, codeOf } = setup();
    auth.request('alice@example.com', '192.0.2.1');
    const code = codeOf(sent[0]);
    expect(auth.inspect(`${code.slice(0, -1)}${code.endsWith('A') ? 'B' : 'A'}`)).toEqual({ ok: false, why: 'unknown' });
    const other = new ConsoleAuth({ store: new SqliteConsoleStore(openDatabase(':memory:')), tokenKey: 'x'.repeat(40), host: 'example.com', publicUrl: 'https://x', notices: { enqueue() {} } });
    expect(auth.inspect(other.code(String(sent[0].params!.login)))).toEqual({ ok: false, why: 'unknown' });
    expect(auth.inspect('short')).toEqual({ ok: false, why: 'unknown' });
  });

  it(`allows ${LOGINS_PER_JID} links per JID and ${LOGINS_PER_ADDRESS} per address in ${LIMIT_WINDOW_MS / 60_000} minutes, then frees them`, () => {
    const { db, auth, advance } = setup();
    for (let i = 0; i < LOGINS_PER_JID; i++) auth.request('alice@example.com', `192.0.2.${i}`);
    const before = dump(db);
    expect(() => auth.request('alice@example.com', '192.0.2.99')).toThrow(expect.objectContaining({ code: 'limit-reached' }));
    expect(dump(db)).toBe(before);
    for (let i = 0; i < LOGINS_PER_ADDRESS; i++) auth.request(`u${i}@example.com`, '198.51.100.7');
    expect(() => auth.request('other@example.com', '198.51.100.7')).toThrow(expect.objectContaining({ code: 'limit-reached' }));
    advance(LIMIT_WINDOW_MS);
    expect(() => auth.request('alice@example.com', '198.51.100.7')).not.toThrow();
  });
});

describe('sessions', () => {
  function signedIn() {
    const s = setup();
    s.auth.request('alice@example.com', '192.0.2.1');
    const done = s.auth.confirm(s.codeOf(s.sent[0]));
    if (!done.ok) throw new Error('not signed in');
    return { ...s, id: done.sessionId };
  }

  it('keeps only the SHA-256 of the session id', () => {
    const { db, id } = signedIn();
    expect(dump(db)).not.toContain(id);
    expect(dump(db)).toContain(hashSession(id));
  });

  it('ends after an hour without a request, and 12 hours after sign-in whatever the activity', () => {
    const idle = signedIn();
    idle.advance(SESSION_IDLE_MS - 1);
    expect(idle.auth.session(idle.id)?.jid).toBe('alice@example.com');
    idle.advance(SESSION_IDLE_MS - 1);
    expect(idle.auth.session(idle.id)?.jid).toBe('alice@example.com');
    idle.advance(SESSION_IDLE_MS);
    expect(idle.auth.session(idle.id)).toBeUndefined();
    expect(idle.db.prepare('SELECT ended_why FROM console_sessions').get()).toEqual({ ended_why: 'idle' });

    const busy = signedIn();
    for (let t = 0; t < SESSION_TTL_MS - 30 * 60_000; t += 30 * 60_000) {
      busy.advance(30 * 60_000);
      expect(busy.auth.session(busy.id)).toBeDefined();
    }
    busy.advance(30 * 60_000);
    expect(busy.auth.session(busy.id)).toBeUndefined();
  });

  it('ends at logout, and gives a new id at a new sign-in in the same browser, ending the one before', () => {
    const s = signedIn();
    s.auth.request('alice@example.com', '192.0.2.1');
    const again = s.auth.confirm(s.codeOf(s.sent[1]), s.id);
    if (!again.ok) throw new Error('not signed in');
    expect(again.sessionId).not.toBe(s.id);
    expect(s.auth.session(s.id)).toBeUndefined();
    expect(s.auth.session(again.sessionId)?.jid).toBe('alice@example.com');
    expect(s.auth.logout(again.sessionId)).toBe(true);
    expect(s.auth.session(again.sessionId)).toBeUndefined();
    expect(s.auth.logout(again.sessionId)).toBe(false);
  });

  it('revokes every session of a user', () => {
    const s = signedIn();
    expect(s.auth.revokeAll('alice@example.com')).toBe(1);
    expect(s.auth.session(s.id)).toBeUndefined();
  });

  it('never deletes sign-ins or sessions', () => {
    const s = signedIn();
    expect(() => s.db.prepare('DELETE FROM console_sessions').run()).toThrow(/never deleted/);
    expect(() => s.db.prepare('DELETE FROM console_logins').run()).toThrow(/never deleted/);
  });
});

describe('extending an invite', () => {
  function invites() {
    const db = openDatabase(':memory:');
    let now = Date.UTC(2026, 10, 21, 12);
    const service = new InviteService({
      store: new SqliteInviteStore(db),
      policy: { host: 'example.com', publicUrl: 'https://x', serverBridge: false, expiry: 7 * DAY, approval: 'none', allowUserInvites: true, maxUses: 2, admins: ['admin@example.com'] },
      tokenKey: KEY,
      clock: () => now,
    });
    return { db, service, advance: (ms: number) => (now += ms) };
  }
  const dumpInvites = (db: Db) => JSON.stringify(db.prepare('SELECT * FROM invites').all()) + JSON.stringify(db.prepare('SELECT * FROM events').all());

  it('gives an open invite a longer life and more uses, and records it with the actor and the door', () => {
    const { service, advance } = invites();
    const { invite } = service.create(alice, { kind: 'contact-account', source: 'web', maxUses: 1, expiresIn: DAY });
    advance(DAY / 2);
    const { invite: longer, changed } = service.extend({ ...alice, via: 'web' } as Actor, invite.id, { expiresIn: 7 * DAY, maxUses: 2 });
    expect(changed).toBe(true);
    expect(longer.expiresAt).toBe(invite.createdAt + DAY / 2 + 7 * DAY);
    expect(service.get(invite.id)).toMatchObject({ maxUses: 2, expiresAt: longer.expiresAt });
    const event = service.events(invite.id).at(-1)!;
    expect(event).toMatchObject({ type: 'extended', actor: 'alice@example.com' });
    expect(event.data).toEqual({ expires: new Date(longer.expiresAt).toISOString(), was: new Date(invite.expiresAt).toISOString(), maxUses: 2, wasMaxUses: 1, via: 'web' });
  });

  it('refuses, changing nothing: fewer uses, a shorter life, past invites.expiry, past invites.max_uses for a user, a locked invite, someone else’s, a closed one', () => {
    const { db, service } = invites();
    const mine = service.create(alice, { kind: 'contact-account', source: 'web', maxUses: 2 }).invite;
    const locked = service.create(admin, { kind: 'account', username: 'carol', source: 'web', maxUses: 1 }).invite;
    const theirs = service.create({ kind: 'user', jid: 'bob@example.com', isAdmin: false }, { kind: 'contact', source: 'web' }).invite;
    const closed = service.create(alice, { kind: 'contact', source: 'web', jid: 'dave@example.net' }).invite;
    service.revoke(alice, closed.id);
    const before = dumpInvites(db);
    const refusals: [Actor, string, Parameters<InviteService['extend']>[2], string][] = [
      [alice, mine.id, { maxUses: 1 }, 'invalid-input'],
      [alice, mine.id, { expiresIn: DAY }, 'invalid-input'],
      [alice, mine.id, { expiresIn: 8 * DAY }, 'invalid-input'],
      [alice, mine.id, { maxUses: 3 }, 'forbidden'],
      [alice, mine.id, {}, 'invalid-input'],
      [alice, mine.id, { maxUses: 0 }, 'invalid-input'],
      [admin, locked.id, { maxUses: 2 }, 'invalid-input'],
      [alice, theirs.id, { expiresIn: 7 * DAY }, 'invite-not-found'],
      [alice, closed.id, { expiresIn: 7 * DAY }, 'wrong-state'],
      [alice, 'nosuchinvt', { expiresIn: 7 * DAY }, 'invite-not-found'],
    ];
    for (const [actor, id, change, code] of refusals) {
      expect(() => service.extend(actor, id, change)).toThrow(expect.objectContaining({ code }));
    }
    expect(dumpInvites(db)).toBe(before);
    // An admin may give more uses than invites.max_uses; the operator a longer life than invites.expiry.
    expect(service.extend(admin, mine.id, { maxUses: 10 }).invite.maxUses).toBe(10);
    expect(service.extend({ kind: 'operator' }, mine.id, { expiresIn: 30 * DAY }).changed).toBe(true);
  });

  it('is refused by the database when uses would shrink', () => {
    const { db, service } = invites();
    const { invite } = service.create(admin, { kind: 'account', source: 'cli', maxUses: 3 });
    expect(() => db.prepare('UPDATE invites SET max_uses = 2 WHERE id = ?').run(invite.id)).toThrow(/may grow, never shrink/);
    expect(() => db.prepare("UPDATE invites SET note = 'x' WHERE id = ?").run(invite.id)).toThrow(/never change/);
  });
});

describe('invite extend (CLI)', () => {
  let dir: string;
  let configFile: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-extend-'));
    configFile = join(dir, 'config.yaml');
    writeFileSync(configFile, stringify(rawTestConfig({ database: './invites.sqlite' })));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function cli(...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }
  const table = () => {
    const db = new Database(join(dir, 'invites.sqlite'), { readonly: true });
    try {
      return JSON.stringify(db.prepare('SELECT * FROM invites').all()) + JSON.stringify(db.prepare('SELECT * FROM events').all());
    } finally {
      db.close();
    }
  };

  it('extends an open invite and the log records it; refuses bad usage (2) and a refused change (1) without changing anything', async () => {
    const created = await cli('invite', 'create', '--config', configFile, '--kind', 'account', '--expire', '1d');
    const id = /^id: +([a-z0-9]{10})$/m.exec(created.out)![1];
    const before = table();
    expect(await cli('invite', 'extend', id, '--config', configFile)).toMatchObject({ code: 2, err: expect.stringContaining('needs --expire D, --uses N or both') });
    expect(await cli('invite', 'extend', id, '--config', configFile, '--uses', 'x')).toMatchObject({ code: 2 });
    expect(await cli('invite', 'extend', id, '--config', configFile, '--expire', 'soon')).toMatchObject({ code: 2 });
    expect(await cli('invite', 'extend', 'NOTANID', '--config', configFile, '--uses', '2')).toMatchObject({ code: 2 });
    expect((await cli('invite', 'extend', id, '--config', configFile, '--expire', '1h')).code).toBe(1);
    expect(table()).toBe(before);
    const done = await cli('invite', 'extend', id, '--config', configFile, '--expire', '14d', '--uses', '5');
    expect(done.code).toBe(0);
    expect(done.out).toMatch(/^.+: extended$/m);
    expect(done.out).toMatch(/^uses: +0\/5$/m);
    const log = await cli('invite', 'log', id, '--config', configFile);
    expect(log.out).toMatch(/extended +operator +\{"expires":.+"maxUses":5,"wasMaxUses":1\}/);
  });
});

describe('console revoke (CLI)', () => {
  it('ends every console session of a user; refuses a text that is not a user JID (2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-revoke-'));
    try {
      const configFile = join(dir, 'config.yaml');
      writeFileSync(configFile, stringify(rawTestConfig({ database: './invites.sqlite' })));
      const cli = async (...argv: string[]) => {
        const out: string[] = [];
        const code = await run(argv, { out: (l) => out.push(l), err: (l) => out.push(l), env: {} });
        return { code, out: out.join('\n') };
      };
      expect((await cli('console', 'revoke', 'nobody@localhost', '--config', configFile)).out).toBe('nobody@localhost: 0 sessions ended');
      const db = openDatabase(join(dir, 'invites.sqlite'));
      const sent: Notice[] = [];
      const auth = new ConsoleAuth({ store: new SqliteConsoleStore(db), tokenKey: KEY, host: 'localhost', publicUrl: 'https://x', notices: { enqueue: (n) => sent.push(n) } });
      auth.request('alice@localhost', '192.0.2.1');
      const done = auth.confirm(auth.code(String(sent[0].params!.login)));
      if (!done.ok) throw new Error('not signed in');
      expect(auth.session(done.sessionId)).toBeDefined();
      expect(await cli('console', 'revoke', 'Alice@localhost', '--config', configFile)).toEqual({ code: 0, out: 'alice@localhost: 1 session ended' });
      expect(auth.session(done.sessionId)).toBeUndefined();
      expect(db.prepare('SELECT ended_why FROM console_sessions').get()).toEqual({ ended_why: 'revoked' });
      db.close();
      expect((await cli('console', 'revoke', 'localhost', '--config', configFile)).code).toBe(2);
      expect((await cli('console', 'revoke', '--config', configFile)).code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('charts', () => {
  it('rounds axes up to 1, 2 or 5 times a power of ten with whole gridlines', () => {
    expect([0, 1, 3, 7, 11, 49, 51, 999].map(niceMax)).toEqual([1, 1, 5, 10, 20, 50, 100, 1000]);
    expect(axisTicks(5)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(axisTicks(20)).toEqual([0, 4, 8, 12, 16, 20]);
  });

  it('draws a stacked bar per day with each figure in a title, named for screen readers, escaping every label', () => {
    const svg = stackedBarChart({
      id: 'a',
      title: 'Per day <b>',
      description: 'What happened',
      labels: ['2026-11-20', '2026-11-21'],
      shortLabels: ['11-20', '11-21'],
      labelEvery: 1,
      stacked: [
        { key: 'approved', label: 'Approved', colour: '#009e73', values: [2, 0] },
        { key: 'rejected', label: 'Rejected', colour: '#d55e00', values: [1, 3] },
      ],
      line: { key: 'created', label: 'Created', colour: '#0072b2', values: [3, 4] },
    }).value;
    expect(svg).toMatch(/^<svg class="chart" id="a" viewBox="0 0 960 300" role="img" aria-labelledby="a-title" aria-describedby="a-desc">/);
    expect(svg).toContain('<title id="a-title">Per day &lt;b&gt;</title>');
    expect(svg.match(/<rect /g)).toHaveLength(3);
    expect(svg).toContain('data-series="approved" data-day="2026-11-20" data-value="2"><title>2026-11-20: 2 approved</title>');
    expect(svg).toContain('data-series="rejected" data-day="2026-11-21" data-value="3"><title>2026-11-21: 3 rejected</title>');
    expect(svg).toContain('<title>2026-11-21: 4 created</title>');
    expect(svg).not.toMatch(/style=/);
  });

  it('draws a group of bars per inviter', () => {
    const svg = groupedBarChart({
      id: 'f',
      title: 'Funnel',
      description: 'Per inviter',
      rows: ['alice@example.com', '<script>@x'],
      series: [
        { key: 'created', label: 'Created', colour: '#0072b2', values: [4, 1] },
        { key: 'accounts', label: 'Joined', colour: '#e69f00', values: [1, 0] },
      ],
    }).value;
    expect(svg.match(/<rect /g)).toHaveLength(4);
    expect(svg).toContain('data-series="accounts" data-row="alice@example.com" data-value="1"');
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;@x');
  });
});

describe('activity per day', () => {
  it('counts events per UTC day over the last days, by outcome, joined for accounts and contact uses', () => {
    const db = openDatabase(':memory:');
    let now = Date.UTC(2026, 10, 21, 23, 59);
    const service = new InviteService({
      store: new SqliteInviteStore(db),
      policy: { host: 'example.com', publicUrl: 'https://x', serverBridge: false, expiry: 7 * DAY, approval: 'non-admins', allowUserInvites: true, maxUses: 1, admins: ['admin@example.com'] },
      tokenKey: KEY,
      clock: () => now,
    });
    const a = service.create(alice, { kind: 'contact-account', source: 'web' }).invite;
    const b = service.create({ ...alice, jid: 'bob@example.com' }, { kind: 'contact-account', source: 'web' }).invite;
    now += 2 * 60_000; // past midnight: the next day
    service.approve(admin, a.id);
    service.reject(admin, b.id, 'no');
    const { since, days, series } = service.activity(3);
    expect(days).toBe(3);
    expect(since).toBe(Date.UTC(2026, 10, 20));
    expect(series.created).toEqual([0, 2, 0]);
    expect(series.approved).toEqual([0, 0, 1]);
    expect(series.rejected).toEqual([0, 0, 1]);
    expect(series.joined).toEqual([0, 0, 0]);
  });
});
