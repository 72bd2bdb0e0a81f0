/**
 * The approval queue end to end on a real Prosody, with real sessions for a user and two admins:
 * pending notifications, approval and rejection through the command, races between admins,
 * revocation, CLI approvals delivered by the running service, and crash recovery of the outbox.
 */
import { openStoreOf } from '../support/engine';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { loadConfig } from '../../src/config';
import { adhoc, commandNotes, commandOf, errorCondition, errorText, formFields, TestClient, xml, type XmlElement } from '../support/client';
import { gajim17Submit } from '../support/gajim';
import { rawTestConfig } from '../support/fixtures';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, startService, type RunningService } from '../support/service';

const NS_NOTIFY = 'urn:xmpp-invites:0';
let prosody: TestProsody;
let service: RunningService;
let configFile: string;
let alice: TestClient;
let admin1: TestClient;
let admin2: TestClient;

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    hostAdmins: [COMPONENT],
    anonymousHost: 'anon.localhost',
  });
  for (const u of ['alice', 'admin1', 'admin2']) await prosody.register(u, `${u}-password`);
  const dir = mkdtempSync(join(prosody.dir, 'approval-'));
  configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    stringify(
      rawTestConfig({
        component: { server: prosody.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET },
        host: prosody.host,
        admins: ['admin1@localhost', 'admin2@localhost'],
        database: './invites.sqlite',
        registration: { requester_domains: ['anon.localhost'] },
      }),
    ),
  );
  service = await startService(loadConfig(configFile));
  const login = (u: string) => TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: u, password: `${u}-password` });
  [alice, admin1, admin2] = await Promise.all([login('alice'), login('admin1'), login('admin2')]);
});

afterAll(async () => {
  for (const c of [alice, admin1, admin2]) await c?.stop();
  await service?.stop();
  await prosody?.stop();
});

function notification(s: XmlElement): XmlElement | undefined {
  return s.name === 'message' ? s.getChild('notification', NS_NOTIFY) : undefined;
}

/** Waits for a notification of this kind about this invite. */
function notified(client: TestClient, kind: string, invite: string, timeoutMs = 20_000): Promise<XmlElement> {
  return client.waitFor((s) => notification(s)?.attrs.kind === kind && s.getChildren('notification', NS_NOTIFY).some((n) => n.attrs.invite === invite), timeoutMs);
}

function countNotified(client: TestClient, kind: string, invite: string): number {
  return client.received.filter((s) => s.getChildren?.('notification', NS_NOTIFY).some((n) => n.attrs.kind === kind && n.attrs.invite === invite)).length;
}

async function newInvite(): Promise<{ id: string; token: string; uri: string; reply: XmlElement }> {
  const reply = await adhoc(alice, COMPONENT, 'urn:xmpp:invite#invite');
  const uri = formFields(reply).uri[0];
  const token = /preauth=([A-Za-z0-9_-]+)/.exec(uri)![1];
  return { id: token.slice(0, 10), token, uri, reply };
}

async function register(token: string, username: string): Promise<XmlElement> {
  const anon = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
  try {
    return await anon.iq(
      xml('iq', { type: 'set', to: COMPONENT }, xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, username), xml('password', {}, 'password-123'), xml('token', {}, token))),
      20_000,
    );
  } finally {
    await anon.stop();
  }
}

async function pendingPage(admin: TestClient) {
  const reply = await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#pending');
  return { reply, sessionid: commandOf(reply)?.attrs.sessionid as string };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('holds a user’s invite for approval, tells both admins once, and lets the approved token create an account', async () => {
  const { id, token, uri, reply } = await newInvite();
  expect(uri).not.toContain('ibr=y');
  expect(commandNotes(reply).map((n) => n.text).join(' ')).toMatch(/admin must approve/);
  expect(errorCondition(await register(token, 'tooearly'))).toBe('not-allowed');

  const n1 = await notified(admin1, 'pending', id);
  await notified(admin2, 'pending', id);
  expect(n1.attrs.type).toBe('chat');
  expect(n1.attrs.to).toMatch(/^admin1@localhost/);
  expect(n1.getChildText('body')).toMatch(/alice@localhost/);

  const { reply: page, sessionid } = await pendingPage(admin1);
  const options = commandOf(page)!.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'approve')!.getChildren('option');
  expect(options.map((o) => o.getChildText('value'))).toContain(id);
  expect(options.find((o) => o.getChildText('value') === id)!.attrs.label).toMatch(/^link, by alice, \d+ [A-Z][a-z]{2} \d\d:\d\d/);
  const done = await adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#pending', { sessionid, action: 'complete', fields: { approve: [id] } });
  expect(commandOf(done)?.attrs.status).toBe('completed');

  const approved = await notified(alice, 'approved', id);
  expect(approved.getChildText('body')).toContain(`/i/${token}`);
  expect(approved.getChildText('body')).toContain(`preauth=${token}`);
  expect((await register(token, 'approvedbob')).attrs.type).toBe('result');
  expect(await prosody.userExists('approvedbob')).toBe(true);
  await sleep(300);
  expect(countNotified(admin1, 'pending', id)).toBe(1);
  expect(countNotified(admin2, 'pending', id)).toBe(1);

  const log = service.app.invites.events(id);
  expect(log.map((e) => [e.type, e.actor])).toEqual([
    ['created', 'alice@localhost'],
    ['approved', 'admin1@localhost'],
    ['redeemed', 'approvedbob@localhost'],
  ]);
  for (const e of log) expect(e.at).toBeGreaterThan(0);
});

it('tells the inviter of a rejection with the reason, and the token creates nothing', async () => {
  const { id, token } = await newInvite();
  const { sessionid } = await pendingPage(admin2);
  await adhoc(admin2, COMPONENT, 'urn:xmpp-invites:0#pending', { sessionid, action: 'complete', fields: { reject: [id], reason: 'we are full this month' } });
  const rejected = await notified(alice, 'rejected', id);
  expect(rejected.getChildText('body')).toMatch(/we are full this month/);
  expect(errorCondition(await register(token, 'rejectedbob'))).toBe('item-not-found');
  expect(service.app.invites.events(id).find((e) => e.type === 'rejected')).toMatchObject({ actor: 'admin2@localhost', reason: 'we are full this month' });
});

it('refuses an id in both lists with bad-request, changing nothing', async () => {
  const { id } = await newInvite();
  const { sessionid } = await pendingPage(admin1);
  const reply = await adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#pending', { sessionid, action: 'complete', fields: { approve: [id], reject: [id] } });
  expect(errorCondition(reply)).toBe('bad-request');
  expect(service.app.invites.get(id)?.state).toBe('pending');
});

it('makes one approval and one delivery when two admins approve at once', async () => {
  const { id } = await newInvite();
  const [p1, p2] = await Promise.all([pendingPage(admin1), pendingPage(admin2)]);
  const replies = await Promise.all([
    adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#pending', { sessionid: p1.sessionid, action: 'complete', fields: { approve: [id] } }),
    adhoc(admin2, COMPONENT, 'urn:xmpp-invites:0#pending', { sessionid: p2.sessionid, action: 'complete', fields: { approve: [id] } }),
  ]);
  for (const r of replies) expect(commandOf(r)?.attrs.status).toBe('completed');
  await notified(alice, 'approved', id);
  await sleep(1_000);
  expect(countNotified(alice, 'approved', id)).toBe(1);
  expect(service.app.invites.events(id).filter((e) => e.type === 'approved')).toHaveLength(1);
  const notes = replies.flatMap((r) => commandNotes(r).map((n) => n.text)).join(' ');
  expect(notes).toMatch(/already approved/);
});

it('refuses to approve a rejected or revoked invite, saying why', async () => {
  const { id } = await newInvite();
  service.app.invites.revoke({ kind: 'user', jid: 'alice@localhost', isAdmin: false }, id);
  const { sessionid } = await pendingPage(admin1);
  const reply = await adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#pending', { sessionid, action: 'complete', fields: { approve: [id] } });
  // Nothing was done: an error, not a completion.
  expect(errorCondition(reply)).toBe('bad-request');
  expect(errorText(reply)).toBe(`Nothing was approved or rejected.\n"${id}" not approved: Invite ${id} is revoked and cannot be approved`);
});

it('lets the owner revoke through My invites, and an admin through All invites', async () => {
  const mine = await newInvite();
  const first = await adhoc(alice, COMPONENT, 'urn:xmpp-invites:0#mine');
  const done = await adhoc(alice, COMPONENT, 'urn:xmpp-invites:0#mine', { sessionid: commandOf(first)!.attrs.sessionid, action: 'execute', fields: { revoke: [mine.id] } });
  expect(commandNotes(done)).toEqual([{ type: 'info', text: '1 invite revoked.' }]);
  expect(service.app.invites.get(mine.id)?.state).toBe('revoked');

  const other = await newInvite();
  const filter = await adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#list');
  const results = await adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#list', {
    sessionid: commandOf(filter)!.attrs.sessionid,
    action: 'next',
    fields: { state: 'pending', inviter: 'alice@localhost' },
  });
  const revokeField = commandOf(results)!.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'revoke')!;
  expect(revokeField.getChildren('option').map((o) => o.getChildText('value'))).toContain(other.id);
  const revoked = await adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#list', {
    sessionid: commandOf(results)!.attrs.sessionid,
    action: 'complete',
    fields: { revoke: [other.id], reason: 'duplicate' },
  });
  expect(commandNotes(revoked)).toEqual([{ type: 'info', text: '1 invite revoked.' }]);
  expect(service.app.invites.events(other.id).at(-1)).toMatchObject({ type: 'revoked', actor: 'admin1@localhost', reason: 'duplicate' });
});

describe('replays of Gajim 1.7’s submissions (the ticked options’ labels as values)', () => {
  /** Opens a command as Gajim does and sends its form back as Gajim 1.7 would, with these options ticked. */
  async function gajim(client: TestClient, node: string, ticked: Record<string, string[]>, text: Record<string, string> = {}, first?: XmlElement) {
    const opened = first ?? (await adhoc(client, COMPONENT, node, { action: 'execute' }));
    const cmd = commandOf(opened)!;
    const form = cmd.getChild('x', 'jabber:x:data')!;
    const submitted = gajim17Submit(form, ticked, text);
    const labels = submitted.getChildren('field').flatMap((f) => (f.attrs.var! in ticked ? f.getChildren('value').map((v) => v.text()) : []));
    return { labels, reply: await adhoc(client, COMPONENT, node, { sessionid: cmd.attrs.sessionid, action: 'complete', form: submitted }) };
  }

  it('approves', async () => {
    const { id } = await newInvite();
    const { labels, reply } = await gajim(admin1, 'urn:xmpp-invites:0#pending', { approve: [id] });
    expect(labels).toHaveLength(1);
    expect(labels[0]).toMatch(/^link, by alice, /);
    expect(commandOf(reply)?.attrs.status).toBe('completed');
    expect(commandNotes(reply)).toEqual([{ type: 'info', text: '1 invite approved.' }]);
    expect(service.app.invites.get(id)?.state).toBe('open');
    await notified(alice, 'approved', id);
  });

  it('rejects, with the reason', async () => {
    const { id } = await newInvite();
    const { reply } = await gajim(admin2, 'urn:xmpp-invites:0#pending', { reject: [id] }, { reason: 'not now' });
    expect(commandNotes(reply)).toEqual([{ type: 'info', text: '1 invite rejected.' }]);
    expect(service.app.invites.events(id).at(-1)).toMatchObject({ type: 'rejected', actor: 'admin2@localhost', reason: 'not now' });
  });

  it('revokes in My invites and in All invites', async () => {
    const mine = await newInvite();
    const own = await gajim(alice, 'urn:xmpp-invites:0#mine', { revoke: [mine.id] });
    expect(commandNotes(own.reply)).toEqual([{ type: 'info', text: '1 invite revoked.' }]);
    expect(service.app.invites.get(mine.id)?.state).toBe('revoked');

    const other = await newInvite();
    const filter = commandOf(await adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#list'))!;
    const results = await adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#list', {
      sessionid: filter.attrs.sessionid,
      action: 'next',
      form: gajim17Submit(filter.getChild('x', 'jabber:x:data')!, {}, { state: 'pending', inviter: 'alice@localhost' }),
    });
    const all = await gajim(admin1, 'urn:xmpp-invites:0#list', { revoke: [other.id] }, { reason: 'duplicate' }, results);
    expect(commandNotes(all.reply)).toEqual([{ type: 'info', text: '1 invite revoked.' }]);
    expect(service.app.invites.events(other.id).at(-1)).toMatchObject({ type: 'revoked', actor: 'admin1@localhost', reason: 'duplicate' });
  });
});

it('does not let a user revoke someone else’s invite', async () => {
  const adminInvite = service.app.invites.create({ kind: 'user', jid: 'admin1@localhost', isAdmin: true }, { kind: 'contact-account', source: 'command' });
  const first = await adhoc(alice, COMPONENT, 'urn:xmpp-invites:0#mine');
  const done = await adhoc(alice, COMPONENT, 'urn:xmpp-invites:0#mine', { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: { revoke: [adminInvite.invite.id] } });
  expect(errorCondition(done)).toBe('bad-request');
  expect(errorText(done)).toMatch(/^Nothing was changed\.\n".+" not revoked: No invite/);
  expect(service.app.invites.get(adminInvite.invite.id)?.state).toBe('open');
});

it('does not let an admin revoke or resend someone else’s invite through My invites', async () => {
  const own = service.app.invites.create({ kind: 'user', jid: 'admin2@localhost', isAdmin: true }, { kind: 'contact-account', source: 'command' });
  const others = [0, 1].map(() => service.app.invites.create({ kind: 'user', jid: 'alice@localhost', isAdmin: false }, { kind: 'contact', source: 'command' }).invite);
  const first = await adhoc(admin2, COMPONENT, 'urn:xmpp-invites:0#mine');
  const offered = formFields(first);
  expect(commandOf(first)?.attrs.status).toBe('executing');
  expect(offered).toHaveProperty('revoke');
  const done = await adhoc(admin2, COMPONENT, 'urn:xmpp-invites:0#mine', {
    sessionid: commandOf(first)!.attrs.sessionid,
    action: 'complete',
    fields: { revoke: [others[0].id], resend: [others[1].id] },
  });
  expect(errorCondition(done)).toBe('bad-request');
  expect(errorText(done)).toMatch(new RegExp(`^Nothing was changed\\.\\n"${others[0].id}" not revoked: No invite[^\\n]*\\n"${others[1].id}" not given a new link: No invite`));
  expect(service.app.invites.get(others[0].id)).toMatchObject({ state: 'open', generation: 0 });
  expect(service.app.invites.get(others[1].id)).toMatchObject({ state: 'open', generation: 0 });
  expect(service.app.invites.get(own.invite.id)?.state).toBe('open');
});

it('delivers an approval made at the CLI through the running service', async () => {
  const { id } = await newInvite();
  const out: string[] = [];
  const code = await run(['invite', 'approve', id, '--config', configFile], { out: (l) => out.push(l), err: (l) => out.push(l), env: {} });
  expect(code).toBe(0);
  expect(out).toEqual([`${id}: approved`]);
  await notified(alice, 'approved', id);
  expect(service.app.invites.events(id).find((e) => e.type === 'approved')?.actor).toBe('operator');
});

it('delivers after a restart what a crash left in sending', async () => {
  const { id } = await newInvite();
  await service.stop();
  // Simulate a crash in the middle of a delivery: an approval notice queued and taken for sending.
  const db = openStoreOf(service.config.database, { write: true });
  const { inviteServiceFor, outboxFor } = await import('../../src/services');
  const outbox = outboxFor(service.config, db);
  inviteServiceFor(service.config, db, { outbox }).approve({ kind: 'operator' }, id);
  const [row] = outbox.claimDue(10);
  expect(row).toMatchObject({ kind: 'approved', state: 'sending' });
  db.close();
  service = await startService(service.config);
  await notified(alice, 'approved', id);
  expect(service.app.outbox.get(row.id)?.state).toBe('sent');
});

it('neither shows nor runs the admin commands for a non-admin', async () => {
  const items = await alice.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: 'http://jabber.org/protocol/commands' })));
  const nodes = items.getChild('query')!.getChildren('item').map((i) => i.attrs.node);
  expect(nodes.sort()).toEqual(['urn:xmpp-invites:0#mine', 'urn:xmpp-invites:0#send', 'urn:xmpp:invite#invite'].sort());
  for (const node of ['urn:xmpp-invites:0#pending', 'urn:xmpp-invites:0#list', 'urn:xmpp-invites:0#stats', 'urn:xmpp:invite#create-account']) {
    expect(errorCondition(await adhoc(alice, COMPONENT, node))).toBe('forbidden');
  }
});

it('shows counts and the per-inviter funnel to admins', async () => {
  const reply = await adhoc(admin1, COMPONENT, 'urn:xmpp-invites:0#stats');
  const f = formFields(reply);
  expect(Number(f['state-pending'][0])).toBeGreaterThanOrEqual(0);
  expect(Number(f['state-revoked'][0])).toBeGreaterThanOrEqual(2);
  expect(f.funnel.join('\n')).toMatch(/alice@localhost: created \d+, approved \d+, used 1, accounts 1/);
});
