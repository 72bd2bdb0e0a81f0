/**
 * The rules of membership requests (src/domain/membership.ts) on a real SQLite store, with the
 * clock in the test's hands: one live request per address, the 24 hours of a verification link,
 * the wait after a rejection, the `request` notices folded as pending invites are, opt-outs, and
 * the statistics.
 */
import { OPERATOR } from '../../src/domain/types';
import type { MembershipService } from '../../src/domain/membership';
import { inviteServiceFor, membershipFor, outboxFor } from '../../src/services';
import { openDatabase, type Db } from '../../src/store/database';
import type { SqliteOutbox } from '../../src/store/outbox-repo';
import { testConfig } from '../support/fixtures';
import { SqliteMembershipStore } from '../../src/store/membership-repo';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { emailTransportFor } from '../../src/mail/transport';
import { OutboxWorker } from '../../src/outbox/worker';
import { parseMime, bodyOf, header } from '../support/smtp';

const HOUR = 3_600_000;
let db: Db;
let now: number;
let outbox: SqliteOutbox;
let membership: MembershipService;
let invites: ReturnType<typeof inviteServiceFor>;

let config: ReturnType<typeof testConfig>;

function setUp(registration: Record<string, unknown> = { requests: 'approval' }, limits: Record<string, unknown> = {}, mail: Record<string, unknown> = {}) {
  if (db?.open) db.close();
  config = testConfig({ admins: ['admin1@localhost', 'admin2@localhost'], registration, limits, mail, site_name: 'Example <Chat>' });
  db = openDatabase(':memory:');
  now = Date.UTC(2026, 10, 21, 12, 0, 0);
  const clock = () => now;
  outbox = outboxFor(config, db, { clock });
  invites = inviteServiceFor(config, db, { clock, outbox });
  membership = membershipFor(config, db, invites, { clock, outbox });
}

afterEach(() => db?.close());

/** Asks with `email` and verifies at once (the code as the e-mail would carry it). */
function askAndVerify(email: string, reason = 'hello') {
  membership.request({ email, reason, ip: '192.0.2.1' });
  const r = membership.list().find((x) => x.email === email && x.state === 'unverified')!;
  const code = membership.verifyUrl(r).split('/').pop()!;
  return membership.verify(code);
}

it('keeps one live request per address, compared as e-mail keys are, whatever arrives', () => {
  setUp();
  membership.request({ email: 'Bob@Example.ORG', ip: '192.0.2.1' });
  membership.request({ email: 'bob@example.org', ip: '192.0.2.2' });
  expect(membership.list()).toHaveLength(1);
  // the database itself refuses a second live row for the key
  const store = new SqliteMembershipStore(db);
  const [first] = membership.list();
  expect(store.insert({ ...first, id: 'zzzzzzzzzz', state: 'unverified' })).toBe(false);
});

it('a verification link works for 24 hours; then the request is expired and the address may ask anew', () => {
  setUp();
  membership.request({ email: 'late@example.org' });
  const [r] = membership.list();
  const code = membership.verifyUrl(r).split('/').pop()!;
  now += 24 * HOUR;
  expect(membership.byCode(code)).toBeUndefined();
  expect(() => membership.verify(code)).toThrow(/not valid/);
  expect(membership.shownState(r)).toBe('expired');
  expect(membership.stats().states).toMatchObject({ unverified: 0, expired: 1 });
  expect(membership.expireStale()).toBe(1);
  expect(membership.get(r.id)?.state).toBe('expired');
  expect(membership.events(r.id).map((e) => e.type)).toEqual(['requested', 'expired']);
  membership.request({ email: 'late@example.org' });
  expect(membership.list().map((x) => x.state)).toEqual(['expired', 'unverified']);
});

it('folds the `request` notices of requests verified within 30 s into one message per admin', () => {
  setUp();
  const a = askAndVerify('a@example.org').request;
  now += 1_000;
  const b = askAndVerify('b@example.org').request;
  now += 1_000;
  const c = askAndVerify('c@example.org').request;
  const rows = outbox.list({ channel: 'xmpp' }).filter((r) => r.kind === 'request' && r.recipient === 'admin1@localhost').reverse();
  expect(rows.map((r) => r.params.requests)).toEqual([a.id, `${b.id} ${c.id}`]);
  expect(rows[1].notBefore).toBe(rows[0].notBefore + 30_000);
  expect(outbox.list({ channel: 'xmpp' }).filter((r) => r.kind === 'request' && r.recipient === 'admin2@localhost')).toHaveLength(2);
});

it('an approval makes a one-use account invite for the verified address, even one that opted out of invitations', () => {
  setUp();
  // The address once asked never to be invited again.
  const { links } = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'shy@example.org' });
  invites.decline(links.token, null, true);
  const { request } = askAndVerify('shy@example.org');
  const { invite, changed } = membership.approve({ kind: 'user', jid: 'admin1@localhost', isAdmin: true }, request.id);
  expect(changed).toBe(true);
  expect(invite).toMatchObject({ kind: 'account', state: 'open', maxUses: 1, inviter: null, source: 'request', inviteeEmail: 'shy@example.org', approvedBy: 'admin1@localhost' });
  expect(invite!.emailDelivery).toBe('queued');
  expect(membership.approve(OPERATOR, request.id).changed).toBe(false);
  expect(() => membership.approve({ kind: 'user', jid: 'alice@localhost', isAdmin: false }, request.id)).toThrow(/Only admins/);
});

it('waits `request_after_reject` after a rejection, telling the address when at most once a day', () => {
  setUp({ requests: 'approval' }, { request_after_reject: '30d' });
  const { request } = askAndVerify('no@example.org');
  membership.reject(OPERATOR, request.id, 'not now');
  const waits = () => outbox.list({ channel: 'email' }).filter((r) => r.kind === 'request-wait');
  now += HOUR;
  membership.request({ email: 'no@example.org' });
  membership.request({ email: 'no@example.org' });
  expect(waits()).toHaveLength(1);
  now += 24 * HOUR;
  membership.request({ email: 'no@example.org' });
  expect(waits()).toHaveLength(2);
  expect(membership.list()).toHaveLength(1);
  now = membership.get(request.id)!.decidedAt! + 30 * 24 * HOUR;
  membership.request({ email: 'no@example.org' });
  expect(membership.list()).toHaveLength(2);
});

it('open mode approves a verified address at once as `system`, and tells no admin', () => {
  setUp({ requests: 'open' });
  const { request, invite } = askAndVerify('go@example.org');
  expect(request).toMatchObject({ state: 'approved', decidedBy: 'system' });
  expect(invite).toMatchObject({ state: 'open', inviteeEmail: 'go@example.org', approvedBy: 'system' });
  expect(outbox.list({ channel: 'xmpp' }).filter((r) => r.kind === 'request')).toEqual([]);
  expect(membership.stats().funnel).toEqual({ requested: 1, verified: 1, approved: 1, joined: 0 });
});

it('refuses requests when they are off, and form errors before anything is recorded', () => {
  setUp({ requests: 'off' });
  expect(() => membership.request({ email: 'x@example.org' })).toThrow(/not accepted/);
  setUp({ requests: 'approval', request_reason: 'off', email_domains: { allow: ['example.org'] } });
  expect(() => membership.request({ email: 'x@elsewhere.net' })).toThrow(/elsewhere.net are not accepted/);
  membership.request({ email: 'x@mail.example.org', reason: 'ignored when off' });
  expect(membership.list()[0].reason).toBeNull();
});

it('writes the verification e-mail with the file: transport: the link as text and as a button, escaped, and nothing once the link has expired', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-verify-'));
  try {
    setUp({ requests: 'approval' }, {}, { transport: `file:${dir}` });
    const email = emailTransportFor({ config, invites, logger: pino({ level: 'silent' }), now: () => now, membership });
    const worker = new OutboxWorker({ outbox, invites, render: { siteName: config.siteName, component: config.component.domain, membership }, logger: pino({ level: 'silent' }), maxAttempts: 3, now: () => now }).use('email', email);
    membership.request({ email: 'eve@example.org' });
    const [r] = membership.list();
    expect(await worker.runOnce()).toBe(1);
    const [file] = readdirSync(dir);
    const mail = parseMime(readFileSync(join(dir, file), 'utf8'));
    expect(header(mail, 'subject')).toBe('Confirm your e-mail address for Example <Chat>');
    expect(header(mail, 'to')).toContain('eve@example.org');
    const link = membership.verifyUrl(r);
    expect(link).toMatch(/^https:\/\/invites\.example\.org\/request\/v\/[a-z0-9]{10}[A-Za-z0-9_-]{24}$/);
    expect(bodyOf(mail, 'text/plain')).toContain(link);
    expect(bodyOf(mail, 'text/html')).toContain(`href="${link}"`);
    expect(bodyOf(mail, 'text/html')).toContain('Example &lt;Chat&gt;');
    // Queued again after the link's 24 hours (a resend after a long outage): nothing is sent.
    outbox.enqueue({ channel: 'email', kind: 'request-verify', recipient: 'eve@example.org', inviteIds: [], params: { request: r.id } });
    now += 24 * HOUR;
    await worker.runOnce();
    expect(readdirSync(dir)).toHaveLength(1);
    email.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('sends the verification e-mail again to an unverified address that asks again, at most once an hour', () => {
  setUp();
  const verifies = () => outbox.list({ channel: 'email' }).filter((r) => r.kind === 'request-verify');
  membership.request({ email: 'lost@example.org' });
  now += 10 * 60_000;
  membership.request({ email: 'lost@example.org' });
  expect(verifies()).toHaveLength(1);
  now += HOUR;
  membership.request({ email: 'lost@example.org' });
  membership.request({ email: 'lost@example.org' });
  expect(verifies()).toHaveLength(2);
  const [r] = membership.list();
  expect(membership.events(r.id).map((e) => e.type)).toEqual(['requested', 'asked-again', 'asked-again', 'verification-resent', 'asked-again']);
});
