/**
 * A SQLite store holding every kind of row the service writes, made through the domain and the
 * store as the service makes them: invites of every kind and state (expiry recorded, reminded,
 * resent, delivered, failed), their events, claims held, spent and released, outbox rows in every
 * state on every channel (XMPP, e-mail, webhooks), an opt-out, an invite request, subscriptions, ad-hoc
 * command sessions, an invitation to rooms and its answers, membership requests, password resets,
 * console sign-ins and sessions, blocks, a bounce and its suppression, questions to the service. For `db copy` and any test
 * that wants a store that has lived.
 */
import { InviteService } from '../../src/domain/invites';
import { InviteRequests } from '../../src/domain/requests';
import { Registration, type CreateOutcome, type Provisioner } from '../../src/domain/registration';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { openDatabase, type Db } from '../../src/store/database';
import { SqliteJobLeases } from '../../src/store/leases-repo';
import { SqliteClaimStore } from '../../src/store/claims-repo';
import { SqliteCommandSessions } from '../../src/store/command-sessions-repo';
import { SqliteRequestStore, SqliteSubscriptions } from '../../src/store/requests-repo';
import { bouncesFor, inviteServiceFor, membershipFor, outboxFor, resetsFor, trustFor } from '../../src/services';
import { AccountChecks } from '../../src/domain/account-checks';
import { ConsoleAuth } from '../../src/domain/console-auth';
import { SqliteAccountCheckStore } from '../../src/store/account-checks-repo';
import { SqliteConsoleStore } from '../../src/store/console-repo';
import { SqliteRoomInvitations } from '../../src/store/room-invitations-repo';
import { testConfig } from './fixtures';

const DAY = 86_400_000;

class ScriptedServer implements Provisioner {
  readonly name = 'scripted';
  next: CreateOutcome = { kind: 'created' };
  async createAccount(): Promise<CreateOutcome> {
    return this.next;
  }
  async accountExists(): Promise<boolean> {
    return false;
  }
}

export interface FullStore {
  db: Db;
  invites: InviteService;
}

/**
 * Builds the store in `file` (a new SQLite file) and leaves it open. Its clock starts at `start`
 * (default 10 January 2026) and moves on about two days while it is built.
 */
export async function buildFullStore(file: string, opts: { start?: number } = {}): Promise<FullStore> {
  let now = opts.start ?? Date.UTC(2026, 0, 10, 12);
  const clock = () => now;
  const config = testConfig({
    database: file,
    host: 'localhost',
    admins: ['admin@localhost'],
    invites: { approval: 'non-admins' },
    registration: { requests: 'approval' },
    rooms: { service: 'conference.localhost' },
    mail: { from: 'invites@localhost', bounce_address: 'bounces@invites.localhost' },
    webhooks: [{ url: 'https://hooks.example.org/invites', secret: 'w'.repeat(40), events: ['invite.created', 'request.verified'] }],
  });
  const db = openDatabase(file);
  const outbox = outboxFor(config, db, { clock });
  const invites = inviteServiceFor(config, db, { clock, outbox });
  const admin: Actor = { kind: 'user', jid: 'admin@localhost', isAdmin: true };
  const alice: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
  const server = new ScriptedServer();
  const registration = new Registration({
    claims: new SqliteClaimStore(db),
    invites,
    provisioner: server,
    policy: { host: 'localhost', mode: 'invite-only', minPasswordLength: 8 },
    events: { joined: () => undefined },
    clock,
    notices: outbox,
  });
  const tick = (ms = 1000) => (now += ms);

  // Open invites of every kind; text with quotes, a backslash, a newline and characters beyond ASCII.
  const open = invites.create(admin, { kind: 'account', source: 'command', maxUses: 3, note: `Bienvenue, l'ami "Bob" \\ ✓\nsecond line 🎉` });
  tick();
  const locked = invites.create(OPERATOR, { kind: 'account-locked', source: 'cli', username: 'juliet', email: 'Juliet@Example.org', name: 'Juliet Capulet' });
  tick();
  invites.create(admin, { kind: 'contact', source: 'command', jid: 'friend@example.net', rosterSubscription: true });
  tick();
  invites.create(admin, { kind: 'contact-account', source: 'command', email: 'carol@example.org' });
  tick();
  // Pending (alice is no admin), then approved, rejected; pending notices to the admin fold.
  const pending = invites.create(alice, { kind: 'account', source: 'command', email: 'dave@example.org' });
  tick();
  const approved = invites.create(alice, { kind: 'contact-account', source: 'command', email: 'erin@example.org' });
  const rejected = invites.create(alice, { kind: 'account', source: 'command' });
  tick();
  invites.approve(admin, approved.invite.id);
  invites.reject(admin, rejected.invite.id, 'Not now');
  // Revoked, resent, declined with "never again" (an opt-out).
  const revoked = invites.create(admin, { kind: 'account', source: 'command' });
  invites.revoke(admin, revoked.invite.id, 'Sent by mistake');
  invites.resend(OPERATOR, locked.invite.id);
  const declined = invites.create(admin, { kind: 'contact-account', source: 'command', email: 'frank@example.org' });
  invites.decline(declined.links.token, 'No thanks', true);
  tick();
  // Deliveries: one e-mail sent, one failed.
  invites.recordDelivery(approved.invite.id, 'email', 'sent', null);
  invites.recordDelivery(pending.invite.id, 'email', 'failed', '550 no such user');

  // Registration: a use spent (exhausted), one released (refused), one held (in flight).
  const single = invites.create(admin, { kind: 'account', source: 'command' });
  await registration.register({ token: single.links.token, username: 'grace', password: 'correct horse', door: 'web', ip: '192.0.2.7' });
  await registration.register({ token: open.links.token, username: 'heidi', password: 'correct horse', door: 'component', requester: 'heidi@localhost/x' });
  server.next = { kind: 'refused', reason: 'Failed to write data to disk' };
  await registration.register({ token: open.links.token, username: 'ivan', password: 'correct horse', door: 'bridge' }).catch(() => undefined);
  registration.claim({ token: open.links.token, username: 'judy', door: 'component' });
  tick();

  // An invite request carried in presence: its invite, its record, its acknowledgement.
  const requests = new InviteRequests({ store: new SqliteRequestStore(db), invites, notices: outbox, policy: { allowUserInvites: true } });
  requests.submit(alice as Actor & { kind: 'user' }, 'alice@localhost/phone', { id: 'req-1', invitees: [{ jid: 'mallory@example.net' }, { jid: 'not a jid' }], message: 'Join us' });
  // Subscriptions in two states.
  const subscriptions = new SqliteSubscriptions(db);
  subscriptions.put('alice@localhost', { subscription: 'both', pendingOut: false }, now);
  subscriptions.put('bob@localhost', { subscription: 'from', pendingOut: true }, now);

  // A reminder: an e-mailed open invite close to its expiry.
  const remind = invites.create(admin, { kind: 'account', source: 'command', email: 'oscar@example.org', expiresIn: 3 * DAY });
  invites.recordDelivery(remind.invite.id, 'email', 'sent', null);
  tick(2 * DAY);
  invites.queueReminders(2 * DAY);
  // Expiry recorded.
  invites.create(admin, { kind: 'account', source: 'command', expiresIn: 60_000 });
  tick(120_000);
  invites.recordExpiries();

  // The outbox in every state: some sending, of which one sent, one failed, one back in the queue.
  const taken = outbox.claimDue(4);
  if (taken.length < 4) throw new Error(`expected 4 due outbox rows, got ${taken.length}`);
  outbox.markSent(taken[0].id);
  outbox.markFailed(taken[1].id, 'SMTP 554 rejected');
  outbox.markRetry(taken[2].id, 'not connected', now + 60_000, false);

  // Ad-hoc command sessions: one open between its stages (its state and the options it offered),
  // one ended; and their counts.
  const sessions = new SqliteCommandSessions(db, { perJid: 10, max: 10_000 });
  sessions.save({
    id: 'AAAAAAAAAAAAAAAAAAAAAA',
    node: 'urn:xmpp-invites:0#pending',
    owner: 'admin@localhost/gajim',
    bare: 'admin@localhost',
    state: { approved: 1, rejected: 0, asked: { approve: 1, reject: 0 }, after: { createdAt: now, id: open.invite.id } },
    actions: { allowed: ['next', 'complete'], execute: 'complete' },
    expiresAt: now + 600_000,
    offered: [['approve', [{ label: 'mallory@example.net, by alice, 10 Jan 12:00', value: open.invite.id }]]],
  });
  sessions.end({ id: 'BBBBBBBBBBBBBBBBBBBBBB', node: 'urn:xmpp:invite#invite', owner: 'alice@localhost/phone', bare: 'alice@localhost' });

  // An invitation to two rooms (one answer per room), one room accepted.
  const rooms = invites.create(admin, { kind: 'room', source: 'invite-to-rooms', jid: 'peggy@example.net', rooms: [{ jid: 'team@conference.localhost' }, { jid: 'garden@conference.localhost' }] });
  new SqliteRoomInvitations(db).update(rooms.invite.id, 'team@conference.localhost', ['open'], { state: 'accepted', memberJid: 'peggy@example.net', answeredAt: now });
  tick();

  // Membership requests: one approved (its invite), one rejected, one verified and waiting for an
  // admin, one waiting for verification.
  const membership = membershipFor(config, db, invites, { clock, outbox });
  const verified = (email: string) => {
    membership.request({ email, reason: 'A friend of "Alice" ✓', ip: '192.0.2.9' });
    const request = membership.list({}).find((r) => r.email === email)!;
    membership.verify(membership.verifyUrl(request).split('/').pop()!);
    return request.id;
  };
  membership.approve(admin, verified('rupert@example.org'));
  membership.reject(admin, verified('sybil@example.org'), 'We are full');
  verified('victor@example.org');
  membership.request({ email: 'trent@example.org', ip: '192.0.2.10' });
  tick();

  // Password reset links: one used, one revoked.
  const resets = resetsFor(config, db, { clock, outbox });
  const used = resets.create(admin, 'grace', true);
  await resets.use(used.links.token, 'a new horse battery', { setPassword: async () => ({ kind: 'done' }), accountExists: async () => true }, '192.0.2.11');
  resets.revoke(admin, resets.create(OPERATOR, 'heidi', true).reset.id, 'Asked by mistake');
  tick();

  // Questions of the command line to the running service: one answered, one left unanswered.
  const checks = new AccountChecks({ store: new SqliteAccountCheckStore(db), clock });
  const answered = await checks.ask('operator', 'grace', { waitMs: 10_000, sleep: async () => void (await checks.answerWaiting('sqlite-instance', async () => true)) });
  if (answered.kind !== 'exists') throw new Error(`the account question was ${answered.kind}`);
  await checks.ask('operator', 'nobody', { waitMs: 0 });

  // The web console: a sign-in link used (its session), one not used.
  const auth = new ConsoleAuth({ store: new SqliteConsoleStore(db), tokenKey: config.tokenKey, host: 'localhost', publicUrl: config.web.publicUrl, notices: outbox, clock });
  auth.request('alice@localhost', '192.0.2.12');
  const login = (db.prepare(`SELECT id FROM console_logins ORDER BY created_at, id LIMIT 1`).get() as { id: string }).id;
  if (!auth.confirm(auth.code(login)).ok) throw new Error('the console sign-in was refused');
  auth.request('heidi@localhost', '192.0.2.13');
  tick();

  // Trust: a user blocked and unblocked, another blocked.
  const trust = trustFor(config, db, invites, { clock });
  trust.block(admin, 'mallory@localhost', 'Spam');
  trust.block(admin, 'heidi@localhost', 'Asked to stop');
  trust.unblock(admin, 'heidi@localhost', 'Sorted out');
  tick();

  // A permanent bounce of an invitation e-mail: the bounce, the address suppressed.
  const bounced = invites.create(admin, { kind: 'account', source: 'command', email: 'nobody@example.org' });
  const mail = db.prepare(`SELECT id FROM outbox WHERE channel = 'email' AND recipient = ? ORDER BY id DESC LIMIT 1`).get('nobody@example.org') as { id: number };
  const { bounces, verp } = bouncesFor(config, db, invites, { clock })!;
  const outcome = bounces.handle(
    { dsn: true, recipients: [{ address: 'nobody@example.org', status: '5.1.1', diagnostic: 'smtp; 550 5.1.1 no such user', action: 'failed' }], addressedTo: [] },
    [verp.address(mail.id)],
    'lmtp',
  );
  if (outcome.kind !== 'bounced') throw new Error(`the bounce of ${bounced.invite.id} was ${outcome.kind}`);
  tick();

  // The lease of a periodic job, held by the instance that served this store.
  new SqliteJobLeases(db, 'sqlite-instance', clock).take('expiry', 60_000);
  return { db, invites };
}
