/**
 * Membership requests in "Pending approvals" through the router: stanza in, stanza out. Requests
 * come first (option value `request/ID`), then invites; the queue pages; approving and rejecting
 * act on the request; an id in both lists is bad-request and changes nothing.
 */
import pino from 'pino';
import { pendingCommand } from '../../src/handlers/commands/pending';
import { statsCommand } from '../../src/handlers/commands/stats';
import { inviteServiceFor, limitsFor, membershipFor, outboxFor } from '../../src/services';
import { openDatabase } from '../../src/store/database';
import { GroupCommit } from '../../src/store/group-commit';
import { AdhocCommands } from '../../src/xmpp/adhoc';
import { NS, NODES } from '../../src/xmpp/ns';
import { Router } from '../../src/xmpp/router';
import { xml, type Element } from '../../src/xmpp/xml';
import { testConfig } from '../support/fixtures';

const COMPONENT = 'invites.localhost';
const ADMIN = 'admin@localhost/gajim';
const alice = { kind: 'user' as const, jid: 'alice@localhost', isAdmin: false };

function setup() {
  const config = testConfig({ registration: { requests: 'approval' } });
  const db = openDatabase(':memory:');
  let now = Date.UTC(2026, 10, 21, 12);
  const clock = () => now;
  const outbox = outboxFor(config, db, { clock });
  const invites = inviteServiceFor(config, db, { clock, outbox });
  const membership = membershipFor(config, db, invites, { clock, outbox });
  const sent: Element[] = [];
  const logger = pino({ level: 'silent' });
  const router = new Router({ send: async (el) => void sent.push(el), logger, host: config.host, admins: config.admins });
  const adhoc = new AdhocCommands({ jid: COMPONENT, now: clock });
  const services = { config, invites, logger, limits: limitsFor(config, db), commit: new GroupCommit(db), membership };
  adhoc.add(pendingCommand(services)).add(statsCommand(services));
  router.iq('set', 'command', NS.commands, (ctx, c) => adhoc.execute(ctx.requester, c));
  let n = 0;
  async function command(attrs: Record<string, string> = {}, fields?: Record<string, string[]>, node: string = NODES.pending): Promise<Element> {
    const id = `q${++n}`;
    const form = fields
      ? [xml('x', { xmlns: NS.dataForms, type: 'submit' }, ...Object.entries(fields).map(([v, vs]) => xml('field', { var: v }, ...vs.map((x) => xml('value', {}, x)))))]
      : [];
    await router.handle(xml('iq', { type: 'set', from: ADMIN, to: COMPONENT, id }, xml('command', { xmlns: NS.commands, node, ...attrs }, ...form)));
    return sent.find((s) => s.attrs.id === id)!;
  }
  /** `count` verified requests, a second apart. */
  function requests(count: number): string[] {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      membership.request({ email: `p${i}@example.org`, reason: `reason ${i}` });
      const r = membership.list({ state: 'unverified' })[0];
      membership.verify(membership.verifyUrl(r).split('/').pop()!);
      ids.push(r.id);
      now += 1_000;
    }
    return ids;
  }
  const snapshot = () => ['invites', 'membership_requests', 'membership_events', 'outbox'].map((t) => JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all())).join('\n');
  return { db, invites, membership, command, requests, snapshot };
}

const optionValues = (reply: Element, field: string) =>
  reply
    .getChild('command', NS.commands)!
    .getChild('x', NS.dataForms)!
    .getChildren('field')
    .find((f) => f.attrs.var === field)!
    .getChildren('option')
    .map((o) => o.getChildText('value'));

it('lists requests before invites, a page at a time, and approves and rejects them', async () => {
  const s = setup();
  const ids = s.requests(25);
  const invite = s.invites.create(alice, { kind: 'contact-account', source: 'command' }).invite;
  const first = await s.command();
  const cmd = first.getChild('command', NS.commands)!;
  expect(cmd.getChild('x', NS.dataForms)!.getChildText('instructions')).toMatch(/^1 invite and 25 membership requests wait for approval; here are the 20 oldest/);
  expect(optionValues(first, 'approve')).toEqual(ids.slice(0, 20).map((id) => `request/${id}`));
  expect(cmd.getChild('actions')?.attrs.execute).toBe('next');
  const second = await s.command({ sessionid: cmd.attrs.sessionid!, action: 'next' }, { approve: [`request/${ids[0]}`], reject: [`request/${ids[1]}`], reason: ['not now'] });
  expect(optionValues(second, 'approve')).toEqual([...ids.slice(20).map((id) => `request/${id}`), invite.id]);
  expect(second.getChild('command', NS.commands)!.getChildren('note')[0].text()).toBe('1 membership request approved and 1 rejected.');
  expect(s.membership.get(ids[0])).toMatchObject({ state: 'approved', decidedBy: 'admin@localhost' });
  expect(s.membership.get(ids[1])).toMatchObject({ state: 'rejected', decisionReason: 'not now' });
  const done = await s.command({ sessionid: second.getChild('command', NS.commands)!.attrs.sessionid!, action: 'complete' }, { approve: [invite.id] });
  expect(done.getChild('command', NS.commands)?.attrs.status).toBe('completed');
  expect(done.getChild('command', NS.commands)!.getChildren('note')[0].text()).toBe('2 invites and requests approved and 1 membership request rejected.');
  expect(s.invites.get(invite.id)?.state).toBe('open');
});

it('refuses a request in both lists with bad-request and changes nothing', async () => {
  const s = setup();
  const [id] = s.requests(1);
  const first = (await s.command()).getChild('command', NS.commands)!;
  const before = s.snapshot();
  const reply = await s.command({ sessionid: first.attrs.sessionid!, action: 'complete' }, { approve: [`request/${id}`], reject: [`request/${id}`] });
  expect(reply.attrs.type).toBe('error');
  expect(reply.getChild('error')!.getChild('bad-request')).toBeDefined();
  expect(s.snapshot()).toBe(before);
  expect(s.membership.get(id)?.state).toBe('pending');
});

it('Invite statistics counts membership requests by state and the funnel', async () => {
  const s = setup();
  const [a, b] = s.requests(3);
  s.membership.approve({ kind: 'operator' }, a);
  s.membership.reject({ kind: 'operator' }, b, null);
  s.membership.request({ email: 'fresh@example.org' });
  const reply = await s.command({}, undefined, NODES.stats);
  const fields = Object.fromEntries(
    reply.getChild('command', NS.commands)!.getChild('x', NS.dataForms)!.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]),
  );
  expect(fields).toMatchObject({
    'request-unverified': '1',
    'request-pending': '1',
    'request-approved': '1',
    'request-rejected': '1',
    'request-expired': '0',
    'request-funnel': '4 → 3 → 1 → 0',
  });
});
