/**
 * Webhooks in the domain: an event becomes one outbox row per endpoint that takes it, written in
 * the transaction of the change (a refused change leaves none), with the body fixed then; the
 * transport signs what it sends and fails at once for a URL no longer configured.
 */
import { createHmac } from 'node:crypto';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { InviteError } from '../../src/errors';
import { PermanentDeliveryError } from '../../src/outbox/worker';
import { WebhookTransport, webhookSignature } from '../../src/outbox/webhook-transport';
import { bouncesFor, databaseFor, inviteServiceFor, membershipFor, outboxFor } from '../../src/services';
import { testConfig } from '../support/fixtures';

const SECRET = 'hook-secret-0123456789abcdefghijklmnopq';
const ALICE: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };

function setup() {
  const config = testConfig({
    webhooks: [
      { url: 'https://a.example.org/hook', secret: SECRET, events: ['invite.created', 'invite.approved'] },
      { url: 'https://b.example.org/hook', secret: SECRET, events: ['invite.created'] },
    ],
  });
  const db = databaseFor(config);
  const outbox = outboxFor(config, db);
  const invites = inviteServiceFor(config, db, { outbox });
  const hooks = () => outbox.list({ channel: 'webhook' }).reverse();
  return { invites, hooks, db };
}

it('queues one row per endpoint taking the event, with the same event id and the body fixed', () => {
  const { invites, hooks, db } = setup();
  const { invite } = invites.create(ALICE, { kind: 'contact-account', source: 'send', email: 'bob@example.net' });
  const rows = hooks();
  expect(rows.map((r) => [r.recipient, r.kind, r.params.type])).toEqual([
    ['https://a.example.org/hook', 'webhook', 'invite.created'],
    ['https://b.example.org/hook', 'webhook', 'invite.created'],
  ]);
  expect(rows[0].params.event).toBe(rows[1].params.event);
  expect(rows[0].params.body).toBe(rows[1].params.body);
  const body = JSON.parse(String(rows[0].params.body));
  expect(body).toMatchObject({ id: rows[0].params.event, type: 'invite.created', data: { invite: { id: invite.id, state: 'pending', invitee_email: 'bob@example.net' }, actor: 'alice@localhost' } });
  invites.approve(OPERATOR, invite.id);
  expect(hooks().map((r) => [r.recipient, r.params.type])).toContainEqual(['https://a.example.org/hook', 'invite.approved']);
  // b does not take approvals
  expect(hooks().filter((r) => r.recipient.startsWith('https://b.')).length).toBe(1);
  db.close();
});

it('queues nothing for a change that is refused', () => {
  const { invites, hooks, db } = setup();
  invites.create(ALICE, { kind: 'contact', source: 'send', email: 'carol@example.net' });
  const before = hooks().length;
  expect(() => invites.create(ALICE, { kind: 'contact', source: 'send', email: 'carol@example.net' })).toThrow(InviteError);
  expect(hooks().length).toBe(before);
  db.close();
});

it('signs timestamp.body with HMAC-SHA-256, and fails at once for a URL no longer configured', async () => {
  const expected = `sha256=${createHmac('sha256', SECRET).update('1700000000.{"a":1}').digest('hex')}`;
  expect(webhookSignature(SECRET, '1700000000', '{"a":1}')).toBe(expected);
  const transport = new WebhookTransport({ endpoints: [] });
  const row = { recipient: 'https://gone.example.org/', params: { event: 'e', type: 'invite.created', body: '{}' } } as never;
  await expect(transport.send(row, { subject: 'invite.created', text: '{}' })).rejects.toBeInstanceOf(PermanentDeliveryError);
});

describe('request.verified and invite.bounced', () => {
  function setupMore(mode: 'approval' | 'open') {
    const config = testConfig({
      registration: { requests: mode },
      mail: { bounce_address: 'bounces@example.com' },
      webhooks: [{ url: 'https://a.example.org/hook', secret: SECRET, events: ['request.verified', 'invite.bounced'] }],
    });
    const db = databaseFor(config);
    const outbox = outboxFor(config, db);
    const invites = inviteServiceFor(config, db, { outbox });
    const membership = membershipFor(config, db, invites, { outbox });
    const hooks = () => outbox.list({ channel: 'webhook' }).reverse().map((r) => JSON.parse(String(r.params.body)) as { type: string; data: Record<string, any> }); // eslint-disable-line @typescript-eslint/no-explicit-any
    const verify = (email: string) => {
      const r = membership.list({ limit: 100 }).find((x) => x.email === email)!;
      return membership.verify(membership.verifyUrl(r).split('/request/v/')[1]);
    };
    return { config, db, outbox, invites, membership, hooks, verify };
  }

  it('tells a verification once, with the request pending (approval); none for asking or verifying again', () => {
    const { db, membership, hooks, verify } = setupMore('approval');
    membership.request({ email: 'Erin@Example.org', reason: 'hello' });
    membership.request({ email: 'erin@example.org' });
    expect(hooks()).toEqual([]);
    const { request } = verify('Erin@Example.org');
    verify('Erin@Example.org');
    expect(hooks()).toEqual([
      { id: expect.any(String), type: 'request.verified', created: expect.any(String), data: { mode: 'approval', request: expect.objectContaining({ id: request.id, email: 'Erin@Example.org', state: 'pending', reason: 'hello', invite: null }) } },
    ]);
    db.close();
  });

  it('tells it approved, naming its invite, in open mode', () => {
    const { db, membership, hooks, verify, outbox } = setupMore('open');
    membership.request({ email: 'frank@example.org' });
    const { invite } = verify('frank@example.org');
    expect(hooks()).toHaveLength(1);
    expect(hooks()[0].data.request).toMatchObject({ state: 'approved', invite: invite!.id, decided_by: 'system' });
    expect(outbox.list({ channel: 'webhook' })[0].inviteIds).toEqual([invite!.id]);
    db.close();
  });

  it('tells a permanent bounce once (invite.bounced), a transient one never', () => {
    const { config, db, invites, hooks, outbox } = setupMore('approval');
    const { invite } = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'gina@example.org' });
    const row = outbox.list({ channel: 'email' })[0];
    const { bounces, verp } = bouncesFor(config, db, invites)!;
    const report = (status: string) => ({ dsn: true, recipients: [{ address: 'gina@example.org', status, diagnostic: 'no such user', action: status.startsWith('4') ? 'delayed' : 'failed' }], addressedTo: [] });
    bounces.handle(report('4.2.2'), [verp.address(row.id)], 'pipe');
    expect(hooks()).toEqual([]);
    bounces.handle(report('5.1.1'), [verp.address(row.id)], 'pipe');
    bounces.handle(report('5.1.1'), [verp.address(row.id)], 'pipe');
    expect(hooks()).toHaveLength(1);
    expect(hooks()[0]).toMatchObject({ type: 'invite.bounced', data: { invite: { id: invite.id, invitee_email: 'gina@example.org' }, actor: 'system', reason: 'no such user', details: { status: '5.1.1', outbox: row.id } } });
    db.close();
  });
});
