/**
 * Respond: one account accepts several invitations to the same person (claim → create → settle,
 * then one use of each other accepted invitation in the settling transaction), declines tell the
 * inviters. Against a real SQLite database and a fake provisioner whose answers the tests script.
 */
import { InviteService } from '../../src/domain/invites';
import type { Notice, NoticeQueue } from '../../src/domain/notices';
import { Registration, type CreateOutcome, type Provisioner } from '../../src/domain/registration';
import { Respond, type Choice } from '../../src/domain/respond';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { type Db } from '../../src/store/database';
import { openTestStore } from '../support/engine';
import { SqliteClaimStore } from '../../src/store/claims-repo';
import { SqliteInviteStore } from '../../src/store/invites-repo';

const DAY = 86_400_000;
const alice: Actor = { kind: 'user', jid: 'alice@example.com', isAdmin: false };
const bob: Actor = { kind: 'user', jid: 'bob@example.com', isAdmin: false };

class FakeServer implements Provisioner {
  readonly name = 'fake';
  accounts = new Set<string>();
  linked: [string, string][] = [];
  refuse = false;
  /** runs while the account is being created (between claim and settle) */
  during: () => void = () => undefined;
  async createAccount(username: string): Promise<CreateOutcome> {
    await new Promise((r) => setImmediate(r));
    this.during();
    if (this.refuse) return { kind: 'refused', reason: 'disk full' };
    if (this.accounts.has(username)) return { kind: 'conflict' };
    this.accounts.add(username);
    return { kind: 'created' };
  }
  async accountExists(username: string): Promise<boolean> {
    return this.accounts.has(username);
  }
  async linkContacts(a: string, b: string): Promise<void> {
    this.linked.push([a, b]);
  }
}

function setup() {
  const db = openTestStore();
  const clock = () => Date.UTC(2026, 10, 21, 12);
  const sent: Notice[] = [];
  const notices: NoticeQueue = { enqueue: (n) => void sent.push(n) };
  const invites = new InviteService({
    store: new SqliteInviteStore(db),
    policy: { host: 'example.com', publicUrl: 'https://x', serverBridge: false, expiry: 7 * DAY, approval: 'none', allowUserInvites: true, maxUses: 1, admins: [] },
    tokenKey: 'k'.repeat(40),
    clock,
    notices,
  });
  const server = new FakeServer();
  const claims = new SqliteClaimStore(db);
  const registration = new Registration({
    claims,
    invites,
    provisioner: server,
    policy: { host: 'example.com', mode: 'invite-only', minPasswordLength: 8 },
    events: { joined: () => undefined },
    clock,
    notices,
  });
  const respond = new Respond({ invites, registration, tx: claims, clock });
  return { db, invites, server, registration, respond, sent };
}

function claimsOf(db: Db, username: string) {
  return db.prepare('SELECT invite_id, state, outcome FROM claims WHERE username = ? ORDER BY invite_id').all(username) as { invite_id: string; state: string; outcome: string }[];
}

const choices = (entries: [string, Choice][]) => new Map(entries);

describe('respond', () => {
  it('lists the other open invitations to the same address, only on a personal invite', () => {
    const { invites, respond } = setup();
    const mine = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'Carol@Example.net' }).invite;
    const a = invites.create(alice, { kind: 'contact-account', source: 'send', email: 'carol@example.NET' }).invite;
    invites.create(bob, { kind: 'contact-account', source: 'send', email: 'someone@example.net' });
    const shared = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'carol@example.net', maxUses: 3 }).invite;
    // oldest first; these share one creation time (a fixed clock), so compare as a set
    expect(respond.companions(mine).map((i) => i.id).sort()).toEqual([a.id, shared.id].sort());
    expect(respond.companions(shared)).toEqual([]);
  });

  it('makes one account that spends one use of each accepted invitation, each a claim of its own, and tells every inviter', async () => {
    const { db, invites, respond, server, sent } = setup();
    const mine = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'carol@example.net' });
    const a = invites.create(alice, { kind: 'contact-account', source: 'send', email: 'carol@example.net' }).invite;
    const b = invites.create(bob, { kind: 'contact-account', source: 'send', email: 'carol@example.net' }).invite;
    const done = await respond.accept({
      token: mine.links.token,
      username: 'carol',
      password: 'correct horse',
      choices: choices([[a.id, 'accept'], [b.id, 'decline']]),
      reason: 'one is enough',
    });
    expect(done.jid).toBe('carol@example.com');
    expect(done.accepted.map((x) => [x.invite.id, x.contactsLinked])).toEqual([[mine.invite.id, false], [a.id, true]]);
    expect(done.declined.map((d) => d.id)).toEqual([b.id]);
    expect(server.linked).toEqual([['alice@example.com', 'carol@example.com']]);
    expect(claimsOf(db, 'carol').map((c) => [c.invite_id, c.state])).toEqual([[mine.invite.id, 'spent'], [a.id, 'spent']].sort());
    expect(invites.get(a.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
    expect(invites.get(b.id)).toMatchObject({ state: 'declined', uses: 0, held: 0 });
    expect(invites.events(a.id).map((e) => e.type)).toEqual(['created', 'redeemed']);
    expect(sent.filter((n) => n.kind === 'joined').map((n) => n.recipient)).toEqual(['alice@example.com']);
    expect(sent.filter((n) => n.kind === 'declined')).toEqual([expect.objectContaining({ recipient: 'bob@example.com', params: { reason: 'one is enough' } })]);
    expect(sent.find((n) => n.kind === 'welcome')).toMatchObject({ inviteIds: [mine.invite.id, a.id], params: { linked: a.id } });
  });

  it('skips an accepted invitation that ended while the account was being created, and still makes the account', async () => {
    const { invites, respond, server } = setup();
    const mine = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'carol@example.net' });
    const a = invites.create(alice, { kind: 'contact-account', source: 'send', email: 'carol@example.net' }).invite;
    server.during = () => invites.revoke(alice, a.id);
    const done = await respond.accept({ token: mine.links.token, username: 'carol', password: 'correct horse', choices: choices([[a.id, 'accept']]), reason: null });
    expect(done.accepted.map((x) => x.invite.id)).toEqual([mine.invite.id]);
    expect(done.skipped).toEqual([{ inviteId: a.id, reason: 'This invite has been revoked' }]);
    expect(invites.get(a.id)).toMatchObject({ state: 'revoked', uses: 0, held: 0 });
  });

  it('changes nothing when the server refuses the account: no use spent, nobody declined', async () => {
    const { db, invites, respond, server } = setup();
    const mine = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'carol@example.net' });
    const a = invites.create(alice, { kind: 'contact-account', source: 'send', email: 'carol@example.net' }).invite;
    const b = invites.create(bob, { kind: 'contact-account', source: 'send', email: 'carol@example.net' }).invite;
    server.refuse = true;
    const before = JSON.stringify(db.prepare('SELECT * FROM invites ORDER BY id').all());
    await expect(
      respond.accept({ token: mine.links.token, username: 'carol', password: 'correct horse', choices: choices([[a.id, 'accept'], [b.id, 'decline']]), reason: null }),
    ).rejects.toMatchObject({ code: 'unavailable' });
    expect(JSON.stringify(db.prepare('SELECT * FROM invites ORDER BY id').all())).toBe(before);
  });

  it('lets a locked invitation claim its own username, and refuses another username before anything happens', async () => {
    const { db, invites, respond } = setup();
    const mine = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'carol@example.net' });
    const locked = invites.create(OPERATOR, { kind: 'account-locked', source: 'cli', username: 'carol', email: 'carol@example.net' }).invite;
    await expect(
      respond.accept({ token: mine.links.token, username: 'caroline', password: 'correct horse', choices: choices([[locked.id, 'accept']]), reason: null }),
    ).rejects.toMatchObject({ code: 'username-mismatch' });
    expect(claimsOf(db, 'caroline')).toEqual([]);
    await respond.accept({ token: mine.links.token, username: 'carol', password: 'correct horse', choices: choices([[locked.id, 'accept']]), reason: null });
    expect(claimsOf(db, 'carol').map((c) => c.invite_id)).toEqual([locked.id, mine.invite.id].sort());
  });

  it('spends a shared invitation once when two pages accept it at the same moment', async () => {
    const { invites, respond } = setup();
    const first = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'carol@example.net' });
    const second = invites.create(alice, { kind: 'contact-account', source: 'send', email: 'carol@example.net' });
    const third = invites.create(bob, { kind: 'contact-account', source: 'send', email: 'carol@example.net' }).invite;
    const results = await Promise.all([
      respond.accept({ token: first.links.token, username: 'carol1', password: 'correct horse', choices: choices([[third.id, 'accept']]), reason: null }),
      respond.accept({ token: second.links.token, username: 'carol2', password: 'correct horse', choices: choices([[third.id, 'accept']]), reason: null }),
    ]);
    expect(invites.get(third.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
    expect(results.flatMap((r) => r.accepted.map((a) => a.invite.id)).filter((id) => id === third.id)).toHaveLength(1);
    expect(results.flatMap((r) => r.skipped.map((s) => s.inviteId))).toEqual([third.id]);
  });

  it('"never invite me again" declines every other invitation to the address and records one opt-out', () => {
    const { invites, respond, sent } = setup();
    const mine = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'carol@example.net' });
    const a = invites.create(alice, { kind: 'contact-account', source: 'send', email: 'carol@example.net' }).invite;
    const declined = respond.decline({ token: mine.links.token, reason: null, neverAgain: true, also: [] });
    expect(declined.map((d) => [d.id, d.state])).toEqual([[mine.invite.id, 'declined'], [a.id, 'declined']]);
    expect(invites.isOptedOut('carol@example.net')).toBe(true);
    expect(sent.filter((n) => n.kind === 'declined').map((n) => n.recipient)).toEqual(['alice@example.com']);
    expect(() => invites.create(bob, { kind: 'contact-account', source: 'send', email: 'carol@example.net' })).toThrow(/asked not to be invited/);
  });

  it('declines only the other invitations ticked beside a plain decline', () => {
    const { invites, respond } = setup();
    const mine = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'carol@example.net' });
    const a = invites.create(alice, { kind: 'contact-account', source: 'send', email: 'carol@example.net' }).invite;
    const b = invites.create(bob, { kind: 'contact-account', source: 'send', email: 'carol@example.net' }).invite;
    respond.decline({ token: mine.links.token, reason: 'no', neverAgain: false, also: [b.id, 'not-an-id'] });
    expect([a, b].map((i) => invites.get(i.id)?.state)).toEqual(['open', 'declined']);
    expect(invites.isOptedOut('carol@example.net')).toBe(false);
  });
});

