/**
 * Limits against a real SQLite database: each limit reached and refused with a text naming it and
 * when it frees; admins and the operator exempt where the rules say; counts survive revocations.
 */
import { Registration, type Provisioner } from '../../src/domain/registration';
import type { Actor } from '../../src/domain/types';
import { inviteServiceFor, limitsFor } from '../../src/services';
import { openTestStore } from '../support/engine';
import { SqliteClaimStore } from '../../src/store/claims-repo';
import { testConfig } from '../support/fixtures';

const alice: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
const admin: Actor = { kind: 'user', jid: 'admin@localhost', isAdmin: true };
const operator: Actor = { kind: 'operator' };
const HOUR = 3_600_000;

function setup(limits: Record<string, unknown>) {
  const config = testConfig({ invites: { approval: 'none' }, limits });
  const db = openTestStore();
  let now = Date.UTC(2026, 10, 21, 12);
  const clock = () => now;
  const invites = inviteServiceFor(config, db, { clock });
  const accounts = new Set<string>();
  const provisioner: Provisioner = {
    name: 'fake',
    async createAccount(u) {
      if (accounts.has(u)) return { kind: 'conflict' };
      accounts.add(u);
      return { kind: 'created' };
    },
    async accountExists(u) {
      return accounts.has(u);
    },
  };
  const registration = new Registration({
    claims: new SqliteClaimStore(db),
    invites,
    provisioner,
    policy: { host: 'localhost', mode: 'invite-only', minPasswordLength: 8 },
    events: { joined: () => undefined },
    clock,
    limits: limitsFor(config, db),
  });
  const snapshot = () => JSON.stringify(db.prepare('SELECT * FROM invites').all());
  return { invites, registration, snapshot, advance: (ms: number) => (now += ms) };
}

const invite = (invites: ReturnType<typeof setup>['invites'], who: Actor, email?: string) =>
  invites.create(who, { kind: who.kind === 'operator' ? 'account' : 'contact-account', source: who.kind === 'operator' ? 'cli' : 'command', email });

describe('limits', () => {
  it('refuses a user past per_user_open, naming the limit and when it frees, changing nothing', () => {
    const { invites, snapshot } = setup({ per_user_open: 2 });
    invite(invites, alice);
    invite(invites, alice);
    const before = snapshot();
    expect(() => invite(invites, alice)).toThrow(
      expect.objectContaining({ code: 'limit-reached', message: expect.stringMatching(/^Limit per_user_open reached: .* it frees at 2026-11-28T12:00:00Z$/) }),
    );
    expect(snapshot()).toBe(before);
  });

  it('exempts admins and the operator from per-user limits', () => {
    const { invites } = setup({ per_user_open: 1, per_user_per_day: 1 });
    for (let i = 0; i < 3; i++) {
      invite(invites, admin);
      invite(invites, operator);
    }
  });

  it('counts per_user_per_day from the log, so revoking does not give the slot back', () => {
    const { invites, advance } = setup({ per_user_per_day: 2 });
    const a = invite(invites, alice);
    invite(invites, alice);
    invites.revoke(alice, a.invite.id);
    expect(() => invite(invites, alice)).toThrow(/per_user_per_day.*frees at 2026-11-22T12:00:00Z/);
    advance(24 * HOUR + 1);
    expect(invite(invites, alice).invite.state).toBe('open');
  });

  it('caps the site per day for users and admins, not the operator', () => {
    const { invites } = setup({ per_site_per_day: 2 });
    invite(invites, alice);
    invite(invites, admin);
    expect(() => invite(invites, admin)).toThrow(/per_site_per_day/);
    expect(invite(invites, operator).invite.state).toBe('open');
  });

  it('caps invitations to one recipient per day from all inviters', () => {
    const { invites } = setup({ per_recipient_per_day: 1 });
    invite(invites, alice, 'bob@example.org');
    expect(() => invite(invites, admin, 'BOB@example.org')).toThrow(/per_recipient_per_day reached: bob@example.org was invited 1 times today/);
  });

  it('makes an inviter wait after a decline', () => {
    const { invites, advance } = setup({ reinvite_after_decline: '7d' });
    const first = invite(invites, alice, 'bob@example.org');
    invites.decline(first.links.token, 'no thanks');
    expect(() => invite(invites, alice, 'bob@example.org')).toThrow(/reinvite_after_decline reached: .* wait 1 week .* frees at 2026-11-28T12:00:00Z/);
    expect(invite(invites, admin, 'bob@example.org').invite.state).toBe('open');
    advance(7 * 24 * HOUR);
    expect(invite(invites, alice, 'bob@example.org').invite.state).toBe('open');
  });

  it('makes an inviter wait before inviting again after no answer, and before resending', () => {
    const { invites, advance } = setup({ resend_after_no_answer: '10d' });
    const first = invite(invites, alice, 'bob@example.org');
    expect(() => invites.resend(alice, first.invite.id)).toThrow(/resend_after_no_answer/);
    advance(8 * 24 * HOUR);
    expect(() => invite(invites, alice, 'bob@example.org')).toThrow(/resend_after_no_answer reached: .* frees at 2026-12-01T12:00:00Z/);
    advance(2 * 24 * HOUR);
    expect(invite(invites, alice, 'bob@example.org').invite.state).toBe('open');
  });

  it('limits registrations per hour with one multi-use invite', async () => {
    const { invites, registration, advance } = setup({ registrations_per_hour: 2 });
    const { links } = invites.create(operator, { kind: 'account', source: 'cli', maxUses: 5 });
    await registration.register({ token: links.token, username: 'one', password: 'password-1', door: 'web', ip: '10.0.0.1' });
    await registration.register({ token: links.token, username: 'two', password: 'password-2', door: 'web', ip: '10.0.0.2' });
    await expect(registration.register({ token: links.token, username: 'three', password: 'password-3', door: 'web', ip: '10.0.0.3' })).rejects.toMatchObject({
      code: 'limit-reached',
      message: expect.stringMatching(/registrations_per_hour reached: too many accounts were made with this invite/),
    });
    advance(HOUR + 1);
    await expect(registration.register({ token: links.token, username: 'three', password: 'password-3', door: 'web', ip: '10.0.0.3' })).resolves.toBeDefined();
  });

  it('limits registrations per client IP on the web and in total at the component', async () => {
    const { invites, registration } = setup({ registrations_per_hour: 1 });
    const a = invites.create(operator, { kind: 'account', source: 'cli' });
    const b = invites.create(operator, { kind: 'account', source: 'cli' });
    await registration.register({ token: a.links.token, username: 'webone', password: 'password-1', door: 'web', ip: '10.0.0.1' });
    await expect(registration.register({ token: b.links.token, username: 'webtwo', password: 'password-1', door: 'web', ip: '10.0.0.1' })).rejects.toThrow(/from your address/);
    await registration.register({ token: b.links.token, username: 'compone', password: 'password-1', door: 'component' });
    const c = invites.create(operator, { kind: 'account', source: 'cli' });
    await expect(registration.register({ token: c.links.token, username: 'comptwo', password: 'password-1', door: 'component' })).rejects.toThrow(/made here/);
  });

  it('lets exactly one of two racing requests take the last slot', async () => {
    const { invites } = setup({ per_user_open: 1 });
    const results = await Promise.allSettled([Promise.resolve().then(() => invite(invites, alice)), Promise.resolve().then(() => invite(invites, alice))]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });
});
