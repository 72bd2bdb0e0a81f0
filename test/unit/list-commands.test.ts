/**
 * Pending approvals, My invites and All invites through the router: stanza in, stanza out. The
 * list-multi answers are replayed as Gajim 1.7 makes them (the ticked options' labels as values),
 * and every note is read as a client that shows all note types alike would show it.
 */
import pino from 'pino';
import { listCommand } from '../../src/handlers/commands/list';
import { mineCommand } from '../../src/handlers/commands/mine';
import { pendingCommand } from '../../src/handlers/commands/pending';
import { registerDisco } from '../../src/handlers/disco';
import { inviteServiceFor, limitsFor } from '../../src/services';
import { openTestStore } from '../support/engine';
import { GroupCommit } from '../../src/store/group-commit';
import { AdhocCommands } from '../../src/xmpp/adhoc';
import { NS, NODES } from '../../src/xmpp/ns';
import { Router } from '../../src/xmpp/router';
import { xml, type Element } from '../../src/xmpp/xml';
import { testConfig } from '../support/fixtures';
import { gajim17Submit } from '../support/gajim';

const COMPONENT = 'invites.localhost';
const ALICE = 'alice@localhost/gajim';
const ADMIN = 'admin@localhost/gajim';
const alice = { kind: 'user' as const, jid: 'alice@localhost', isAdmin: false };

function setup(overrides: Record<string, unknown> = {}, db = openTestStore()) {
  const config = testConfig(overrides);
  let now = Date.UTC(2026, 10, 21, 12);
  const invites = inviteServiceFor(config, db, { clock: () => now });
  const sent: Element[] = [];
  const logger = pino({ level: 'silent' });
  const router = new Router({ send: async (el) => void sent.push(el), logger, host: config.host, admins: config.admins });
  const adhoc = new AdhocCommands({ jid: COMPONENT, now: () => now });
  const services = { config, invites, logger, limits: limitsFor(config, db), commit: new GroupCommit(db) };
  adhoc.add(mineCommand(services)).add(pendingCommand(services)).add(listCommand(services));
  router.iq('set', 'command', NS.commands, (ctx, c) => adhoc.execute(ctx.requester, c));
  registerDisco(router, { adhoc, name: 'test', features: () => [NS.commands] });
  let n = 0;
  async function iq(from: string, payload: Element, type: 'get' | 'set' = 'set'): Promise<Element> {
    const id = `q${++n}`;
    await router.handle(xml('iq', { type, from, to: COMPONENT, id }, payload));
    const reply = sent.find((s) => s.attrs.id === id);
    if (!reply) throw new Error('no reply');
    return reply;
  }
  const command = (from: string, node: string, attrs: Record<string, string> = {}, form?: Element) =>
    iq(from, xml('command', { xmlns: NS.commands, node, ...attrs }, ...(form ? [form] : [])));
  /** Opens the command, then answers its form as Gajim 1.7 would with these options ticked. */
  async function asGajim(from: string, node: string, ticked: Record<string, string[]>, text: Record<string, string> = {}) {
    const first = (await command(from, node)).getChild('command', NS.commands)!;
    const form = first.getChild('x', NS.dataForms)!;
    const submitted = gajim17Submit(form, ticked, text);
    return { form, submitted, reply: await command(from, node, { sessionid: first.attrs.sessionid!, action: 'complete' }, submitted) };
  }
  const state = (id: string) => invites.get(id)?.state;
  const snapshot = () => ['invites', 'events', 'outbox'].map((t) => JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all())).join('\n');
  return { db, invites, command, asGajim, state, snapshot, advance: (ms: number) => (now += ms), iq };
}

function notes(reply: Element): { type: string | undefined; text: string }[] {
  return (reply.getChild('command', NS.commands)?.getChildren('note') ?? []).map((n) => ({ type: n.attrs.type, text: n.text() }));
}

function condition(reply: Element): string[] {
  const error = reply.getChild('error');
  return (error?.children ?? []).filter((c): c is Element => typeof c !== 'string' && c.name !== 'text').map((c) => c.name);
}

function option(form: Element, field: string, value: string): Element | undefined {
  return form
    .getChildren('field')
    .find((f) => f.attrs.var === field)
    ?.getChildren('option')
    .find((o) => o.getChildText('value') === value);
}

/** Two link invites by alice a minute apart, and one to an e-mail address: all pending. */
function threePending(s: ReturnType<typeof setup>) {
  const a = s.invites.create(alice, { kind: 'contact-account', source: 'command' }).invite;
  s.advance(60_000);
  const b = s.invites.create(alice, { kind: 'contact-account', source: 'command', note: 'my brother\nwho is\tnice' }).invite;
  s.advance(60_000);
  const c = s.invites.create(alice, { kind: 'contact-account', source: 'send', email: 'carol@example.org' }).invite;
  return [a, b, c];
}

describe('Pending approvals as Gajim 1.7 submits it', () => {
  it('approves what a label names: the submitted <value/> holds the option’s label', async () => {
    const s = setup();
    const [a, b] = threePending(s);
    const { form, submitted, reply } = await s.asGajim(ADMIN, NODES.pending, { approve: [a.id] });
    // The replay is Gajim's shape: the label is what comes back, and the option is sent back too.
    const label = option(form, 'approve', a.id)!.attrs.label!;
    const approve = submitted.getChildren('field').find((f) => f.attrs.var === 'approve')!;
    expect(approve.getChildren('value').map((v) => v.text())).toEqual([label]);
    expect(label).not.toBe(a.id);
    expect(reply.getChild('command', NS.commands)?.attrs.status).toBe('completed');
    expect(notes(reply)).toEqual([{ type: 'info', text: '1 invite approved.' }]);
    expect(s.state(a.id)).toBe('open');
    expect(s.state(b.id)).toBe('pending');
  });

  it('rejects what a label names, with the reason', async () => {
    const s = setup();
    const [, b, c] = threePending(s);
    const { reply } = await s.asGajim(ADMIN, NODES.pending, { reject: [b.id, c.id] }, { reason: 'we are full' });
    expect(notes(reply)).toEqual([{ type: 'info', text: '2 invites rejected.' }]);
    expect(s.state(b.id)).toBe('rejected');
    expect(s.state(c.id)).toBe('rejected');
    expect(s.invites.events(c.id).at(-1)).toMatchObject({ type: 'rejected', actor: 'admin@localhost', reason: 'we are full' });
  });

  it('approves and rejects in one submission', async () => {
    const s = setup();
    const [a, b, c] = threePending(s);
    const { reply } = await s.asGajim(ADMIN, NODES.pending, { approve: [a.id, c.id], reject: [b.id] });
    expect(notes(reply)).toEqual([{ type: 'info', text: '2 invites approved and 1 rejected.' }]);
    expect([a, b, c].map((i) => s.state(i.id))).toEqual(['open', 'rejected', 'open']);
  });

  it('answers bad-request and changes nothing when the selection names no invite', async () => {
    const s = setup();
    threePending(s);
    const first = (await s.command(ADMIN, NODES.pending)).getChild('command', NS.commands)!;
    const before = s.snapshot();
    const form = xml(
      'x',
      { xmlns: NS.dataForms, type: 'submit' },
      xml('field', { var: 'approve', type: 'list-multi' }, xml('value', {}, 'someone, by nobody, 1 Jan 00:00')),
    );
    const reply = await s.command(ADMIN, NODES.pending, { sessionid: first.attrs.sessionid!, action: 'complete' }, form);
    expect(reply.attrs.type).toBe('error');
    expect(condition(reply)).toEqual(['bad-request']);
    expect(reply.getChild('error')?.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas')).toBe(
      'Nothing was approved or rejected.\n"someone, by nobody, 1 Jan 00:00" not approved: No invite someone, by nobody, 1 Jan 00:00',
    );
    expect(s.snapshot()).toBe(before);
  });

  it('puts the outcome first when part of the selection is refused, naming the refused value', async () => {
    const s = setup();
    const [a, b] = threePending(s);
    const first = (await s.command(ADMIN, NODES.pending)).getChild('command', NS.commands)!;
    const form = first.getChild('x', NS.dataForms)!;
    s.invites.revoke(alice, b.id);
    const reply = await s.command(ADMIN, NODES.pending, { sessionid: first.attrs.sessionid!, action: 'complete' }, gajim17Submit(form, { approve: [a.id, b.id] }));
    expect(notes(reply)).toEqual([
      { type: 'warn', text: '1 of 2 invites approved.' },
      { type: 'warn', text: `"${b.id}" not approved: Invite ${b.id} is revoked and cannot be approved` },
    ]);
  });

  it('says nothing was done when nothing was ticked', async () => {
    const s = setup();
    threePending(s);
    const { reply } = await s.asGajim(ADMIN, NODES.pending, {});
    expect(reply.getChild('command', NS.commands)?.attrs.status).toBe('completed');
    expect(notes(reply)).toEqual([{ type: 'info', text: 'Nothing was approved or rejected: no invite was ticked.' }]);
  });

  it('labels each option with what tells it apart first, and gives the details as lines', async () => {
    const s = setup();
    const [a, b, c] = threePending(s);
    const form = (await s.command(ADMIN, NODES.pending)).getChild('command', NS.commands)!.getChild('x', NS.dataForms)!;
    expect([a, b, c].map((i) => option(form, 'approve', i.id)?.attrs.label)).toEqual([
      'link, by alice, 21 Nov 12:00',
      'link, by alice, 21 Nov 12:01',
      'carol@example.org, by alice, 21 Nov 12:02',
    ]);
    const fixed = form.getChildren('field').filter((f) => f.attrs.type === 'fixed').map((f) => f.getChildText('value'));
    expect(fixed).toEqual([
      `link, by alice, 21 Nov 12:00: ${a.id}, contact-account, from alice@localhost to anyone with the link, created 2026-11-21 12:00 UTC`,
      `link, by alice, 21 Nov 12:01: ${b.id}, contact-account, from alice@localhost to anyone with the link, created 2026-11-21 12:01 UTC, note “my brother who is nice”`,
      `carol@example.org, by alice, 21 Nov 12:02: ${c.id}, contact-account, from alice@localhost to carol@example.org, created 2026-11-21 12:02 UTC`,
    ]);
    expect(form.getChildText('instructions')).toBe(
      '3 invites wait for approval. Tick those to approve and those to reject; each inviter is told the outcome, with the reason for a rejection.',
    );
  });

  it('is not offered when invites.approval is none and nothing waits', async () => {
    const s = setup({ invites: { approval: 'none' } });
    const items = await s.iq(ADMIN, xml('query', { xmlns: NS.discoItems, node: NS.commands }), 'get');
    expect(items.getChild('query')!.getChildren('item').map((i) => i.attrs.node)).not.toContain(NODES.pending);
    expect(condition(await s.command(ADMIN, NODES.pending))).toEqual(['forbidden']);
  });

  it('is offered under approval none while invites from before that setting still wait', async () => {
    const before = setup({ invites: { approval: 'non-admins' } });
    const waiting = before.invites.create(alice, { kind: 'contact-account', source: 'command' }).invite;
    const s = setup({ invites: { approval: 'none' } }, before.db);
    const items = async () => (await s.iq(ADMIN, xml('query', { xmlns: NS.discoItems, node: NS.commands }), 'get')).getChild('query')!.getChildren('item').map((i) => i.attrs.node);
    expect(await items()).toContain(NODES.pending);
    const { reply } = await s.asGajim(ADMIN, NODES.pending, { approve: [waiting.id] });
    expect(notes(reply)).toEqual([{ type: 'info', text: '1 invite approved.' }]);
    expect(await items()).not.toContain(NODES.pending);
  });
});

describe('My invites and All invites as Gajim 1.7 submits them', () => {
  it('revokes one’s own invite named by its label in My invites', async () => {
    const s = setup({ invites: { approval: 'none' } });
    const [a, b] = threePending(s);
    const { form, reply } = await s.asGajim(ALICE, NODES.mine, { revoke: [b.id] });
    expect(option(form, 'revoke', b.id)?.attrs.label).toBe('link, 21 Nov 12:01, open');
    expect(notes(reply)).toEqual([{ type: 'info', text: '1 invite revoked.' }]);
    expect(s.state(b.id)).toBe('revoked');
    expect(s.state(a.id)).toBe('open');
  });

  it('revokes an invite named by its label in All invites', async () => {
    const s = setup();
    const [, , c] = threePending(s);
    const filter = (await s.command(ADMIN, NODES.list)).getChild('command', NS.commands)!;
    const results = (
      await s.command(ADMIN, NODES.list, { sessionid: filter.attrs.sessionid!, action: 'next' }, gajim17Submit(filter.getChild('x', NS.dataForms)!, {}))
    ).getChild('command', NS.commands)!;
    const form = results.getChild('x', NS.dataForms)!;
    expect(option(form, 'revoke', c.id)?.attrs.label).toBe('carol@example.org, by alice, 21 Nov 12:02');
    const reply = await s.command(ADMIN, NODES.list, { sessionid: results.attrs.sessionid!, action: 'complete' }, gajim17Submit(form, { revoke: [c.id] }, { reason: 'wrong address' }));
    expect(notes(reply)).toEqual([{ type: 'info', text: '1 invite revoked.' }]);
    expect(s.invites.events(c.id).at(-1)).toMatchObject({ type: 'revoked', actor: 'admin@localhost', reason: 'wrong address' });
  });

  it('answers bad-request, changing nothing, when a user names only someone else’s invite', async () => {
    const s = setup({ invites: { approval: 'none' } });
    threePending(s);
    const other = s.invites.create({ kind: 'user', jid: 'admin@localhost', isAdmin: true }, { kind: 'contact-account', source: 'command' }).invite;
    const first = (await s.command(ALICE, NODES.mine)).getChild('command', NS.commands)!;
    const before = s.snapshot();
    const form = xml('x', { xmlns: NS.dataForms, type: 'submit' }, xml('field', { var: 'revoke' }, xml('value', {}, other.id)));
    const reply = await s.command(ALICE, NODES.mine, { sessionid: first.attrs.sessionid!, action: 'complete' }, form);
    expect(condition(reply)).toEqual(['bad-request']);
    expect(reply.getChild('error')?.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas')).toMatch(new RegExp(`^Nothing was changed\\.\\n"${other.id}" not revoked: No invite`));
    expect(s.snapshot()).toBe(before);
  });
});
