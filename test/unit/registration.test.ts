/**
 * The redemption rule and claim → create → settle, against a real SQLite database and a fake
 * provisioner whose answers the tests script.
 */
import { InviteService } from '../../src/domain/invites';
import { Registration, ProvisionUnclear, type CreateOutcome, type Provisioner } from '../../src/domain/registration';
import type { Actor } from '../../src/domain/types';
import type { Notice } from '../../src/domain/notices';
import { type Db } from '../../src/store/database';
import { openTestStore } from '../support/engine';
import { SqliteClaimStore } from '../../src/store/claims-repo';
import { SqliteInviteStore } from '../../src/store/invites-repo';

const DAY = 86_400_000;
const admin: Actor = { kind: 'user', jid: 'admin@example.com', isAdmin: true };
const alice: Actor = { kind: 'user', jid: 'alice@example.com', isAdmin: false };

class FakeServer implements Provisioner {
  readonly name = 'fake';
  accounts = new Set<string>();
  created: string[] = [];
  linked: [string, string][] = [];
  /** scripted answer for the next createAccount calls */
  next: 'create' | 'refuse' | 'unclear-created' | 'unclear-not-created' = 'create';
  reachable = true;
  /** runs when createAccount is called (after the existence check) */
  onCreate?: () => void;
  existsAsked: string[] = [];
  async createAccount(username: string): Promise<CreateOutcome> {
    this.onCreate?.();
    await new Promise((r) => setImmediate(r));
    if (this.next === 'refuse') return { kind: 'refused', reason: 'Failed to write data to disk' };
    if (this.accounts.has(username)) return { kind: 'conflict' };
    if (this.next === 'unclear-not-created') throw new ProvisionUnclear('timeout');
    this.accounts.add(username);
    this.created.push(username);
    if (this.next === 'unclear-created') throw new ProvisionUnclear('timeout');
    return { kind: 'created' };
  }
  async accountExists(username: string): Promise<boolean> {
    this.existsAsked.push(username);
    if (!this.reachable) throw new ProvisionUnclear('unreachable');
    return this.accounts.has(username);
  }
  async linkContacts(a: string, b: string): Promise<void> {
    this.linked.push([a, b]);
  }
}

function setup(mode: 'invite-only' | 'open' = 'invite-only') {
  const db = openTestStore();
  let now = Date.UTC(2026, 10, 21, 12);
  const clock = () => now;
  const invites = new InviteService({
    store: new SqliteInviteStore(db),
    policy: { host: 'example.com', publicUrl: 'https://x', serverBridge: true, expiry: 7 * DAY, approval: 'non-admins', allowUserInvites: true, maxUses: 1, admins: ['admin@example.com'] },
    tokenKey: 'k'.repeat(40),
    clock,
  });
  const server = new FakeServer();
  const joined: { jid: string; contactsLinked: boolean }[] = [];
  const notices: Notice[] = [];
  const registration = new Registration({
    claims: new SqliteClaimStore(db),
    invites,
    provisioner: server,
    policy: { host: 'example.com', mode, minPasswordLength: 8 },
    events: { joined: (e) => joined.push({ jid: e.jid, contactsLinked: e.contactsLinked }) },
    clock,
    notices: { enqueue: (n) => notices.push(n) },
  });
  return { db, invites, server, registration, joined, notices, advance: (ms: number) => (now += ms) };
}

function snapshot(db: Db): string {
  return JSON.stringify(db.prepare('SELECT * FROM invites').all()) + JSON.stringify(db.prepare('SELECT * FROM events').all());
}

const register = (r: Registration, token: string | undefined, username: string, extra = {}) =>
  r.register({ token, username, password: 'correct horse', door: 'component', ...extra });

describe('registration', () => {
  it('creates the account, spends the use and records invite → JID', async () => {
    const { invites, registration, server, joined } = setup();
    const { invite, links } = invites.create(admin, { kind: 'account', source: 'cli' });
    await expect(register(registration, links.token, 'Bob')).resolves.toMatchObject({ jid: 'bob@example.com' });
    expect(server.created).toEqual(['bob']);
    const after = invites.get(invite.id)!;
    expect(after).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
    expect(invites.events(invite.id).map((e) => [e.type, e.actor])).toEqual([
      ['created', 'admin@example.com'],
      ['redeemed', 'bob@example.com'],
    ]);
    expect(joined).toEqual([{ jid: 'bob@example.com', contactsLinked: false }]);
  });

  it.each([
    ['no token', undefined, 'not acceptable', 'invite-required'],
    ['a malformed token', 'garbage', '', 'invite-not-found'],
  ])('refuses %s and changes nothing', async (_what, token, _x, code) => {
    const { db, invites, registration } = setup();
    invites.create(admin, { kind: 'account', source: 'cli' });
    const before = snapshot(db);
    await expect(register(registration, token, 'bob')).rejects.toMatchObject({ code });
    expect(snapshot(db)).toBe(before);
  });

  it('refuses used, revoked and expired tokens with invite-not-found, changing nothing', async () => {
    const { db, invites, registration, advance } = setup();
    const used = invites.create(admin, { kind: 'account', source: 'cli' });
    await register(registration, used.links.token, 'first');
    const revoked = invites.create(admin, { kind: 'account', source: 'cli' });
    invites.revoke(admin, revoked.invite.id);
    const expired = invites.create(admin, { kind: 'account', source: 'cli', expiresIn: DAY });
    advance(2 * DAY);
    const before = snapshot(db);
    for (const token of [used.links.token, revoked.links.token, expired.links.token]) {
      await expect(register(registration, token, 'bob')).rejects.toMatchObject({ code: 'invite-not-found' });
    }
    expect(snapshot(db)).toBe(before);
  });

  it('does not refuse for expiry a registration that follows a successful preauth', async () => {
    const { invites, registration, advance } = setup();
    const { links } = invites.create(admin, { kind: 'account', source: 'cli', expiresIn: DAY });
    registration.usableInvite(links.token);
    advance(2 * DAY);
    await expect(register(registration, links.token, 'late', { preauthed: true })).resolves.toMatchObject({ jid: 'late@example.com' });
  });

  it('answers a pending token with invite-pending', async () => {
    const { invites, registration } = setup();
    const { links } = invites.create(alice, { kind: 'contact-account', source: 'command' });
    await expect(register(registration, links.token, 'bob')).rejects.toMatchObject({ code: 'invite-pending' });
  });

  it('holds a locked invite to its username', async () => {
    const { invites, registration } = setup();
    const { links } = invites.create(admin, { kind: 'account-locked', username: 'juliet', source: 'cli' });
    await expect(register(registration, links.token, 'romeo')).rejects.toMatchObject({ code: 'username-mismatch' });
    const other = invites.create(admin, { kind: 'account', source: 'cli' });
    await expect(register(registration, other.links.token, 'juliet')).rejects.toMatchObject({ code: 'conflict' });
    await expect(register(registration, links.token, 'Juliet')).resolves.toMatchObject({ jid: 'juliet@example.com' });
  });

  it('refuses bad usernames and short passwords with the rule, changing nothing', async () => {
    const { db, invites, registration } = setup();
    const { links } = invites.create(admin, { kind: 'account', source: 'cli' });
    const before = snapshot(db);
    await expect(register(registration, links.token, 'no spaces')).rejects.toMatchObject({ code: 'invalid-input', message: expect.stringMatching(/1 to 64/) });
    await expect(registration.register({ token: links.token, username: 'bob', password: 'short', door: 'web' })).rejects.toMatchObject({
      code: 'invalid-input',
      message: expect.stringMatching(/at least 8/),
    });
    expect(snapshot(db)).toBe(before);
  });

  it('makes exactly one account from 20 parallel registrations with a single-use invite', async () => {
    const { invites, registration, server } = setup();
    const { links } = invites.create(admin, { kind: 'account', source: 'cli' });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => register(registration, links.token, `user${i}`)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(server.created).toHaveLength(1);
  });

  it('makes exactly three accounts from 20 parallel registrations with a 3-use invite', async () => {
    const { invites, registration, server } = setup();
    const { invite, links } = invites.create(admin, { kind: 'account', source: 'cli', maxUses: 3 });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => register(registration, links.token, `user${i}`)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(server.created).toHaveLength(3);
    expect(invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 3, held: 0 });
  });

  it('releases the use when the server refuses or the username is taken', async () => {
    const { invites, registration, server } = setup();
    const { invite, links } = invites.create(admin, { kind: 'account', source: 'cli' });
    server.accounts.add('taken');
    await expect(register(registration, links.token, 'taken')).rejects.toMatchObject({ code: 'conflict' });
    server.next = 'refuse';
    await expect(register(registration, links.token, 'bob')).rejects.toMatchObject({ code: 'unavailable' });
    expect(invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
    server.next = 'create';
    await expect(register(registration, links.token, 'bob')).resolves.toBeDefined();
  });

  it('keeps an unclear claim held, then spends it when the account turns out to exist', async () => {
    const { invites, registration, server } = setup();
    const { invite, links } = invites.create(admin, { kind: 'account', source: 'cli' });
    server.next = 'unclear-created';
    // The server answers whether bob exists before the claim, then cannot be asked any more.
    server.onCreate = () => (server.reachable = false);
    await expect(register(registration, links.token, 'bob')).rejects.toMatchObject({ code: 'unavailable' });
    await new Promise((r) => setImmediate(r));
    expect(invites.get(invite.id)).toMatchObject({ uses: 0, held: 1 });
    await expect(register(registration, links.token, 'carol')).rejects.toMatchObject({ code: 'invite-not-found' });
    server.reachable = true;
    expect(await registration.reconcileAll()).toBe(1);
    expect(invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
  });

  it('keeps a revocation made while a claim was held: the last use spent later does not make the invite exhausted', async () => {
    const { invites, registration, server, advance } = setup();
    const { invite, links } = invites.create(admin, { kind: 'account', source: 'cli' });
    server.next = 'unclear-created';
    server.onCreate = () => (server.reachable = false);
    await expect(register(registration, links.token, 'bob')).rejects.toMatchObject({ code: 'unavailable' });
    await new Promise((r) => setImmediate(r));
    const revokedAt = advance(60_000);
    invites.revoke(admin, invite.id, 'sent to the wrong person');
    advance(60_000);
    server.reachable = true;
    expect(await registration.reconcileAll()).toBe(1);
    // The account was made from a claim taken before the revocation: its use counts, the end stays.
    expect(invites.get(invite.id)).toMatchObject({ state: 'revoked', uses: 1, held: 0, endedAt: revokedAt });
  });

  it('releases an unclear claim when the account turns out not to exist', async () => {
    const { invites, registration, server } = setup();
    const { invite, links } = invites.create(admin, { kind: 'account', source: 'cli' });
    server.next = 'unclear-not-created';
    await expect(register(registration, links.token, 'bob')).rejects.toMatchObject({ code: 'unavailable' });
    await new Promise((r) => setTimeout(r, 10));
    expect(invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
  });

  it('links the inviter and the new account after a contact invite', async () => {
    const { invites, registration, server, joined } = setup();
    const { links } = invites.create(admin, { kind: 'contact-account', source: 'command' });
    await register(registration, links.token, 'bob');
    expect(server.linked).toEqual([['admin@example.com', 'bob@example.com']]);
    expect(joined[0].contactsLinked).toBe(true);
  });

  it('creates accounts without a token in open mode, one per username at a time', async () => {
    const { registration, server } = setup('open');
    const results = await Promise.allSettled([register(registration, undefined, 'same'), register(registration, undefined, 'same')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(server.created).toEqual(['same']);
  });

  describe('an account that already exists is never credited to an invite', () => {
    const claims = (db: Db) => db.prepare('SELECT * FROM claims').all();

    it('answers conflict before claiming when the server says the account exists', async () => {
      const { db, invites, registration, server, joined, notices } = setup();
      const { invite, links } = invites.create(admin, { kind: 'contact-account', source: 'command' });
      server.accounts.add('victim');
      const before = snapshot(db);
      await expect(register(registration, links.token, 'Victim')).rejects.toMatchObject({ code: 'conflict', message: 'The username victim is taken' });
      expect(server.existsAsked).toEqual(['victim']);
      expect(server.created).toEqual([]);
      expect(claims(db)).toEqual([]);
      expect(snapshot(db)).toBe(before);
      expect(invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
      expect(joined).toEqual([]);
      expect(notices).toEqual([]);
      expect(server.linked).toEqual([]);
    });

    it('claims nothing when the server cannot say whether the account exists', async () => {
      const { db, invites, registration, server } = setup();
      const { links } = invites.create(admin, { kind: 'account', source: 'cli' });
      server.reachable = false;
      const before = snapshot(db);
      await expect(register(registration, links.token, 'bob')).rejects.toMatchObject({ code: 'unavailable' });
      expect(server.created).toEqual([]);
      expect(claims(db)).toEqual([]);
      expect(snapshot(db)).toBe(before);
    });

    it('never asks the server about a token that is not usable', async () => {
      const { registration, server } = setup();
      await expect(register(registration, 'not-a-token', 'bob')).rejects.toMatchObject({ code: 'invite-not-found' });
      expect(server.existsAsked).toEqual([]);
    });

    it('records on the claim that the account was absent when claimed', async () => {
      const { db, invites, registration } = setup();
      const { links } = invites.create(admin, { kind: 'account', source: 'cli' });
      await register(registration, links.token, 'bob');
      expect(db.prepare('SELECT absent_at_claim, state FROM claims').all()).toEqual([{ absent_at_claim: 1, state: 'spent' }]);
    });

    it('releases, and credits nothing, an unclear claim not shown absent when the account exists', async () => {
      const { db, invites, registration, server, joined, notices } = setup();
      const { invite, links } = invites.create(admin, { kind: 'contact-account', source: 'command' });
      // A claim made without the check (as before migration 9): the account existed all along.
      const claim = registration.claim({ token: links.token, username: 'victim', door: 'component' });
      expect(claim.absentAtClaim).toBe(false);
      server.accounts.add('victim');
      await registration.reconcile(claim.id);
      expect(registration.getClaim(claim.id)).toMatchObject({ state: 'released', outcome: 'reconciled: the account existed before the claim, not credited' });
      expect(invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
      expect(registration.redeemedUsernames(invite.id)).toEqual([]);
      expect(invites.events(invite.id).map((e) => e.type)).not.toContain('redeemed');
      expect(joined).toEqual([]);
      expect(notices).toEqual([]);
      expect(server.linked).toEqual([]);
      expect(claims(db)).toHaveLength(1);
    });

    it('spends an unclear claim that was absent when claimed and exists now', async () => {
      const { invites, registration, server, notices } = setup();
      const { invite, links } = invites.create(admin, { kind: 'contact-account', source: 'command' });
      server.next = 'unclear-created';
      await expect(register(registration, links.token, 'bob')).rejects.toMatchObject({ code: 'unavailable' });
      await new Promise((r) => setTimeout(r, 10));
      expect(invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
      expect(notices.map((n) => n.kind).sort()).toEqual(['joined', 'welcome']);
    });
  });

  describe('a late done for a released bridge claim', () => {
    const bridgeClaim = async (registration: Registration, token: string, username: string) =>
      registration.claimNew({ token, username, door: 'bridge' });

    it('spends the use again, so that it cannot make a second account', async () => {
      const { invites, registration, notices, joined } = setup();
      const { invite, links } = invites.create(admin, { kind: 'account', source: 'cli' });
      const claim = await bridgeClaim(registration, links.token, 'bob');
      registration.release(claim.id, 'reconciled: no account');
      expect(invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
      await expect(registration.settleDoneLate(claim.id, 'created at the server')).resolves.toBe('spent');
      expect(invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
      expect(registration.getClaim(claim.id)).toMatchObject({ state: 'spent', outcome: 'created at the server after the claim was released' });
      expect(registration.redeemedUsernames(invite.id)).toEqual(['bob']);
      expect(notices.map((n) => n.kind).sort()).toEqual(['joined', 'welcome']);
      expect(joined).toHaveLength(1);
      await expect(register(registration, links.token, 'carol')).rejects.toMatchObject({ code: 'invite-not-found' });
      // The bridge retries its settles: a repeat changes nothing.
      await expect(registration.settleDoneLate(claim.id, 'created at the server')).resolves.toBe('unchanged');
      expect(notices).toHaveLength(2);
    });

    it('counts an overrun when the use went to someone else meanwhile', async () => {
      const { invites, registration, notices } = setup();
      const { invite, links } = invites.create(admin, { kind: 'account', source: 'cli' });
      const claim = await bridgeClaim(registration, links.token, 'bob');
      registration.release(claim.id, 'reconciled: no account');
      await register(registration, links.token, 'carol');
      expect(invites.stats().overruns).toBe(0);
      const before = JSON.stringify(invites.get(invite.id));
      const sent = notices.length;
      await expect(registration.settleDoneLate(claim.id, 'created at the server')).resolves.toBe('overrun');
      expect(JSON.stringify(invites.get(invite.id))).toBe(before);
      expect(registration.getClaim(claim.id)).toMatchObject({ state: 'released' });
      expect(registration.getClaim(claim.id)!.outcome).toMatch(/^overrun: /);
      expect(invites.stats().overruns).toBe(1);
      expect(notices).toHaveLength(sent);
      await expect(registration.settleDoneLate(claim.id, 'created at the server')).resolves.toBe('unchanged');
      expect(invites.stats().overruns).toBe(1);
    });
  });

  describe('passwords', () => {
    it.each([
      ['U+0001', 'pass\u0001word-long'],
      ['ESC', 'pass\u001b[31mword'],
      ['a tab', 'pass\tword-long'],
      ['a lone surrogate', 'password\uD800x'],
      ['U+FFFF', 'password\uFFFF'],
      ['a private-use character', 'password\uE000'],
    ])('refuses a password with %s as invalid input, claiming nothing', async (_what, password) => {
      const { db, invites, registration, server } = setup();
      const { links } = invites.create(admin, { kind: 'account', source: 'cli' });
      const before = snapshot(db);
      await expect(registration.register({ token: links.token, username: 'bob', password, door: 'web' })).rejects.toMatchObject({
        code: 'invalid-input',
      });
      expect(server.existsAsked).toEqual([]);
      expect(snapshot(db)).toBe(before);
    });

    it('accepts letters beyond ASCII and spaces', async () => {
      const { invites, registration } = setup();
      const { links } = invites.create(admin, { kind: 'account', source: 'cli' });
      await expect(registration.register({ token: links.token, username: 'bob', password: 'pässwörd mit Ω', door: 'web' })).resolves.toMatchObject({
        jid: 'bob@example.com',
      });
    });
  });
});
