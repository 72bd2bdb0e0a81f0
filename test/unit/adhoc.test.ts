/**
 * XEP-0050 as the component speaks it, driven through the router: stanza in, stanza out.
 */
import { GroupCommit } from '../../src/store/group-commit';
import pino from 'pino';
import { createAccountCommand } from '../../src/handlers/commands/create-account';
import { newInviteCommand } from '../../src/handlers/commands/new-invite';
import { registerDisco } from '../../src/handlers/disco';
import { ComponentRegistration } from '../../src/handlers/register';
import type { Registration } from '../../src/domain/registration';
import { inviteServiceFor, limitsFor } from '../../src/services';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteCommandSessions } from '../../src/store/command-sessions-repo';
import { openDatabase, type Db } from '../../src/store/database';
import { openTestStore } from '../support/engine';
import { AdhocCommands, type AdhocOptions } from '../../src/xmpp/adhoc';
import { NS, NODES } from '../../src/xmpp/ns';
import { bareOf, type Requester } from '../../src/xmpp/requester';
import { Router } from '../../src/xmpp/router';
import { xml, type Element } from '../../src/xmpp/xml';
import { testConfig } from '../support/fixtures';

const COMPONENT = 'invites.localhost';

function setup(overrides: Record<string, unknown> = {}) {
  const config = testConfig(overrides);
  const db = openTestStore();
  let now = Date.UTC(2026, 10, 21, 12);
  const invites = inviteServiceFor(config, db, { clock: () => now });
  const sent: Element[] = [];
  const logger = pino({ level: 'silent' });
  const router = new Router({ send: async (el) => void sent.push(el), logger, host: config.host, admins: config.admins });
  const adhoc = new AdhocCommands({ jid: COMPONENT, now: () => now, sessionTtlMs: 60_000 });
  const services = { config, invites, logger, limits: limitsFor(config, db), commit: new GroupCommit(db) };
  adhoc.add(newInviteCommand(services)).add(createAccountCommand(services));
  router.iq('set', 'command', NS.commands, (ctx, c) => adhoc.execute(ctx.requester, c));
  registerDisco(router, { adhoc, name: 'test', features: () => [NS.commands] });
  let n = 0;
  async function iq(from: string, type: 'get' | 'set', payload: Element): Promise<Element> {
    const id = `q${++n}`;
    await router.handle(xml('iq', { type, from, to: COMPONENT, id }, payload));
    const reply = sent.find((s) => s.attrs.id === id);
    if (!reply) throw new Error('no reply');
    return reply;
  }
  const command = (from: string, node: string, attrs: Record<string, string> = {}, ...children: Element[]) =>
    iq(from, 'set', xml('command', { xmlns: NS.commands, node, ...attrs }, ...children));
  return { db, iq, command, advance: (ms: number) => (now += ms), config, commit: services.commit };
}

const ALICE = 'alice@localhost/phone';
const ADMIN = 'admin@localhost/laptop';

function fields(form: Element | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of form?.getChildren('field') ?? []) out[f.attrs.var!] = f.getChildText('value') ?? '';
  return out;
}

function condition(reply: Element): string[] {
  const error = reply.getChild('error');
  return (error?.children ?? []).filter((c): c is Element => typeof c !== 'string' && c.name !== 'text').map((c) => c.name);
}

function submit(values: Record<string, string>): Element {
  return xml('x', { xmlns: NS.dataForms, type: 'submit' }, ...Object.entries(values).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))));
}

describe('New Invite', () => {
  it('completes at once with the XEP-0401 invitation form', async () => {
    const { command } = setup({ invites: { approval: 'none' } });
    const reply = await command(ALICE, NODES.newInvite, { action: 'execute' });
    expect(reply.attrs.type).toBe('result');
    const cmd = reply.getChild('command', NS.commands)!;
    expect(cmd.attrs.status).toBe('completed');
    // A one-stage session: 16 random characters and 16 of their MAC, stored nowhere.
    expect(cmd.attrs.sessionid).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const form = cmd.getChild('x', NS.dataForms)!;
    expect(form.attrs.type).toBe('result');
    const f = fields(form);
    expect(f.FORM_TYPE).toBe('urn:xmpp:invite#invitation');
    expect(f.uri).toMatch(/^xmpp:alice@localhost\?roster;preauth=[A-Za-z0-9_-]{34}$/);
    expect(f['landing-url']).toBe(`https://invites.example.org/i/${f.uri.split('preauth=')[1]}`);
    expect(f.expire).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('answers its ended session session-expired by its id alone; a forged, altered or foreign id is unknown', async () => {
    const { db, command } = setup({ invites: { approval: 'none' } });
    const sessionid = (await command(ALICE, NODES.newInvite)).getChild('command', NS.commands)!.attrs.sessionid!;
    expect(condition(await command(ALICE, NODES.newInvite, { sessionid }))).toEqual(['not-allowed', 'session-expired']);
    expect(condition(await command(ALICE, NODES.newInvite, { sessionid, action: 'cancel' }))).toEqual(['not-allowed', 'session-expired']);
    expect(db.prepare('SELECT count(*) AS n FROM command_sessions').get()).toEqual({ n: 0 });
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    for (const altered of [
      flip(sessionid[0]) + sessionid.slice(1), // the random part
      sessionid.slice(0, -1) + flip(sessionid.at(-1)!), // the MAC
      sessionid.slice(0, 16) + 'A'.repeat(16),
      'A'.repeat(32),
    ]) {
      expect(condition(await command(ALICE, NODES.newInvite, { sessionid: altered }))).toEqual(['bad-request', 'bad-sessionid']);
    }
    // Made with another key (another process that does not share it): unknown here.
    const other = new AdhocCommands({ jid: COMPONENT }).add({ node: NODES.newInvite, name: 'x', allowed: () => true, start: () => ({ status: 'completed' }) });
    const foreign = (await other.execute({ full: ALICE, bare: 'alice@localhost', isLocal: true, isAdmin: false }, xml('command', { xmlns: NS.commands, node: NODES.newInvite }))).attrs.sessionid!;
    expect(condition(await command(ALICE, NODES.newInvite, { sessionid: foreign }))).toEqual(['bad-request', 'bad-sessionid']);
  });

  it('gives a contact-only URI and a note when the account part waits for approval', async () => {
    const { command } = setup({ registration: { server_bridge: true } });
    const cmd = (await command(ALICE, NODES.newInvite)).getChild('command', NS.commands)!;
    expect(fields(cmd.getChild('x', NS.dataForms)).uri).not.toContain('ibr=y');
    expect(cmd.getChild('note')?.text()).toMatch(/admin must approve/);
  });

  it('commits the commands that arrive together in one transaction, and answers each once it is durable', async () => {
    const { db, command, commit } = setup();
    const users = Array.from({ length: 20 }, (_, i) => `user${i}@localhost/phone`);
    const replies = await Promise.all(users.map((u) => command(u, NODES.newInvite)));
    const uris = replies.map((r) => fields(r.getChild('command')?.getChild('x')).uri);
    expect(new Set(uris).size).toBe(20);
    expect(replies.every((r) => r.attrs.type === 'result')).toBe(true);
    expect((db.prepare('SELECT count(*) AS n FROM invites').get() as { n: number }).n).toBe(20);
    expect(commit.counts).toEqual({ batches: 1, jobs: 20 });
  });

  it('refuses users of other domains with forbidden', async () => {
    const { command, db } = setup();
    const reply = await command('eve@evil.example/x', NODES.newInvite);
    expect(condition(reply)).toEqual(['forbidden']);
    expect(db.prepare('SELECT count(*) AS n FROM invites').get()).toEqual({ n: 0 });
  });
});

describe('Create account invite', () => {
  it('is hidden from non-admins and refused to them', async () => {
    const { iq, command } = setup();
    const items = await iq(ALICE, 'get', xml('query', { xmlns: NS.discoItems, node: NS.commands }));
    const nodes = items.getChild('query')!.getChildren('item').map((i) => i.attrs.node);
    expect(nodes).toEqual([NODES.newInvite]);
    expect(condition(await command(ALICE, NODES.createAccount))).toEqual(['forbidden']);
    const adminItems = await iq(ADMIN, 'get', xml('query', { xmlns: NS.discoItems, node: NS.commands }));
    expect(adminItems.getChild('query')!.getChildren('item').map((i) => i.attrs.node)).toEqual([NODES.newInvite, NODES.createAccount]);
  });

  it('asks for a username, then completes on execute as Conversations submits it', async () => {
    const { command } = setup();
    const first = (await command(ADMIN, NODES.createAccount, { action: 'execute' })).getChild('command', NS.commands)!;
    expect(first.attrs.status).toBe('executing');
    expect(first.getChild('actions')?.attrs.execute).toBe('complete');
    const form = first.getChild('x', NS.dataForms)!;
    expect(form.getChildren('field').map((f) => [f.attrs.var, f.attrs.type])).toEqual([
      ['username', 'text-single'],
      ['roster-subscription', 'boolean'],
    ]);
    const done = (
      await command(ADMIN, NODES.createAccount, { sessionid: first.attrs.sessionid!, action: 'execute' }, submit({ username: 'Juliet', 'roster-subscription': 'true' }))
    ).getChild('command', NS.commands)!;
    expect(done.attrs.status).toBe('completed');
    const f = fields(done.getChild('x', NS.dataForms));
    expect(f.uri).toMatch(/^xmpp:juliet@localhost\?register;preauth=[A-Za-z0-9_-]{34}$/);
    // Without the bridge, the link to share is said first, and comes first in the form.
    expect(done.getChildren('note').map((n) => [n.attrs.type, n.text()])).toEqual([
      [
        'info',
        `Share this link with the person you invite: ${f['landing-url']}\n` +
          'It opens a web page where they choose a username and a password, and which shows them the apps to use. ' +
          'The app link below does not work on this server (it needs the xmpp-invites server module).',
      ],
    ]);
    const shown = done.getChild('x', NS.dataForms)!.getChildren('field').filter((x) => x.attrs.type !== 'hidden');
    expect(shown.map((x) => [x.attrs.var, x.attrs.label])).toEqual([
      ['landing-url', 'Link to share'],
      ['uri', 'App link (does not work on this server: share the link above)'],
      ['expire', 'Valid until'],
    ]);
  });

  it('keeps the XEP-0401 order and adds no note where the bridge module makes the URI usable', async () => {
    const { command } = setup({ registration: { server_bridge: true }, invites: { approval: 'none' } });
    const first = (await command(ADMIN, NODES.createAccount)).getChild('command', NS.commands)!;
    const done = (await command(ADMIN, NODES.createAccount, { sessionid: first.attrs.sessionid! }, submit({}))).getChild('command', NS.commands)!;
    expect(done.getChildren('note')).toHaveLength(0);
    const shown = done.getChild('x', NS.dataForms)!.getChildren('field').filter((x) => x.attrs.type !== 'hidden');
    expect(shown.map((x) => x.attrs.var)).toEqual(['uri', 'landing-url', 'expire']);
  });

  it('gives the username rule in the instructions, where every client shows it', async () => {
    const { command } = setup();
    const form = (await command(ADMIN, NODES.createAccount)).getChild('command', NS.commands)!.getChild('x', NS.dataForms)!;
    expect(form.getChildren('instructions').map((i) => i.text())).toEqual([
      'Leave the username empty to let the invitee choose one.',
      'A username is 1 to 64 characters: letters a-z, digits, ".", "_" or "-", not starting or ending with ".".',
    ]);
  });

  it('shows the form again with the rule when the username is invalid', async () => {
    const { command, db } = setup();
    const first = (await command(ADMIN, NODES.createAccount)).getChild('command', NS.commands)!;
    const again = (await command(ADMIN, NODES.createAccount, { sessionid: first.attrs.sessionid! }, submit({ username: '.bad name' }))).getChild(
      'command',
      NS.commands,
    )!;
    expect(again.attrs.status).toBe('executing');
    expect(again.getChild('note')?.attrs.type).toBe('error');
    expect(again.getChild('note')?.text()).toBe(
      'No invite was created: ".bad name" is not a valid username: use 1 to 64 characters: letters a-z, digits, ".", "_" or "-", not starting or ending with ".".',
    );
    expect(db.prepare('SELECT count(*) AS n FROM invites').get()).toEqual({ n: 0 });
  });
});

describe('sessions', () => {
  it('answers bad-sessionid for an unknown session and session-expired for a finished one', async () => {
    const { command } = setup();
    expect(condition(await command(ADMIN, NODES.createAccount, { sessionid: 'nope' }))).toEqual(['bad-request', 'bad-sessionid']);
    const first = (await command(ADMIN, NODES.createAccount)).getChild('command', NS.commands)!;
    const sessionid = first.attrs.sessionid!;
    await command(ADMIN, NODES.createAccount, { sessionid, action: 'complete' }, submit({}));
    expect(condition(await command(ADMIN, NODES.createAccount, { sessionid, action: 'complete' }, submit({})))).toEqual([
      'not-allowed',
      'session-expired',
    ]);
  });

  it('binds a session to the full JID that started it', async () => {
    const { command } = setup();
    const first = (await command(ADMIN, NODES.createAccount)).getChild('command', NS.commands)!;
    const other = await command('admin@localhost/other', NODES.createAccount, { sessionid: first.attrs.sessionid!, action: 'complete' }, submit({}));
    expect(condition(other)).toEqual(['bad-request', 'bad-sessionid']);
  });

  it('cancels a session, after which it has expired', async () => {
    const { command } = setup();
    const first = (await command(ADMIN, NODES.createAccount)).getChild('command', NS.commands)!;
    const sessionid = first.attrs.sessionid!;
    const cancelled = await command(ADMIN, NODES.createAccount, { sessionid, action: 'cancel' });
    expect(cancelled.getChild('command', NS.commands)?.attrs.status).toBe('canceled');
    expect(condition(await command(ADMIN, NODES.createAccount, { sessionid }, submit({})))).toEqual(['not-allowed', 'session-expired']);
  });

  it('times sessions out', async () => {
    const { command, advance } = setup();
    const first = (await command(ADMIN, NODES.createAccount)).getChild('command', NS.commands)!;
    advance(61_000);
    expect(condition(await command(ADMIN, NODES.createAccount, { sessionid: first.attrs.sessionid! }, submit({})))).toEqual([
      'not-allowed',
      'session-expired',
    ]);
  });

  it('refuses an action the stage does not allow with bad-action', async () => {
    const { command } = setup();
    const first = (await command(ADMIN, NODES.createAccount)).getChild('command', NS.commands)!;
    expect(condition(await command(ADMIN, NODES.createAccount, { sessionid: first.attrs.sessionid!, action: 'next' }, submit({})))).toEqual([
      'bad-request',
      'bad-action',
    ]);
    expect(condition(await command(ADMIN, NODES.createAccount, { sessionid: first.attrs.sessionid!, action: 'dance' }))).toEqual([
      'bad-request',
      'malformed-action',
    ]);
  });

  it('checks permission again at every stage', async () => {
    const { command, config } = setup();
    const first = (await command(ADMIN, NODES.createAccount)).getChild('command', NS.commands)!;
    (config.admins as string[]).length; // frozen: a demoted admin is simulated by another JID below
    const reply = await command(ALICE, NODES.createAccount, { sessionid: first.attrs.sessionid! }, submit({}));
    expect(condition(reply)).toEqual(['forbidden']);
  });

  it('answers item-not-found for an unknown node', async () => {
    const { command } = setup();
    expect(condition(await command(ALICE, 'urn:nope'))).toEqual(['item-not-found']);
  });
});

describe('disco', () => {
  it('describes a command node only to those who may run it', async () => {
    const { iq } = setup();
    const info = await iq(ADMIN, 'get', xml('query', { xmlns: NS.discoInfo, node: NODES.createAccount }));
    expect(info.getChild('query')?.getChild('identity')?.attrs).toMatchObject({ category: 'automation', type: 'command-node' });
    expect(condition(await iq(ALICE, 'get', xml('query', { xmlns: NS.discoInfo, node: NODES.createAccount })))).toEqual(['forbidden']);
  });

  it('advertises registration only to users of the sign-up domains', async () => {
    const config = testConfig({ registration: { requester_domains: ['anon.localhost'] } });
    const registration = new ComponentRegistration({ config, registration: {} as Registration });
    const sent: Element[] = [];
    const router = new Router({ send: async (el) => void sent.push(el), logger: pino({ level: 'silent' }), host: config.host, admins: config.admins });
    registerDisco(router, { adhoc: new AdhocCommands({ jid: COMPONENT }), name: 'test', features: (req) => [NS.commands, ...registration.features(req.bare)] });
    const features = async (from: string) => {
      await router.handle(xml('iq', { type: 'get', from, to: COMPONENT, id: from }, xml('query', { xmlns: NS.discoInfo })));
      return sent.find((r) => r.attrs.id === from)!.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    };
    expect(await features('alice@localhost/gajim')).toEqual([NS.commands]);
    expect(await features('x1y2@anon.localhost/r')).toEqual([NS.commands, NS.register, NS.pars].sort());
  });

  it('lists no commands to users of other domains', async () => {
    const { iq } = setup();
    const items = await iq('eve@evil.example/x', 'get', xml('query', { xmlns: NS.discoItems, node: NS.commands }));
    expect(items.getChild('query')!.getChildren('item')).toHaveLength(0);
  });

  it('answers unknown IQs with service-unavailable and malformed ones with bad-request', async () => {
    const { iq } = setup();
    expect(condition(await iq(ALICE, 'get', xml('query', { xmlns: 'urn:unknown' })))).toEqual(['service-unavailable']);
  });
});

/** The two places sessions are kept: in the process, and in the store (a file, as `serve` has it). */
const KEPT: [string, () => AdhocOptions['sessions']][] = [
  ['in memory', () => undefined],
  [
    'in the store',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'adhoc-sessions-'));
      dirs.push(dir);
      const db = openDatabase(join(dir, 'store.sqlite'));
      dbs.push(db);
      return (limits) => new SqliteCommandSessions(db, limits);
    },
  ],
];
const dirs: string[] = [];
const dbs: Db[] = [];
afterAll(() => {
  for (const db of dbs) db.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.each(KEPT)('the session table under a flood, sessions kept %s', (_, kept) => {
  // A two-stage command anyone local may run: the first stage leaves a session open.
  const twoStage = {
    node: 'urn:test#two',
    name: 'Two stages',
    allowed: () => true,
    start: () => ({ status: 'executing' as const, form: xml('x', { xmlns: NS.dataForms, type: 'form' }), actions: { allowed: ['complete' as const], execute: 'complete' as const } }),
    next: () => ({ status: 'completed' as const, notes: [{ type: 'info' as const, text: 'done' }] }),
  };
  const who = (full: string): Requester => ({ full, bare: bareOf(full), isLocal: true, isAdmin: full.startsWith('admin@') });
  const open = async (adhoc: AdhocCommands, full: string) =>
    (await adhoc.execute(who(full), xml('command', { xmlns: NS.commands, node: twoStage.node }))).attrs.sessionid!;
  const finish = (adhoc: AdhocCommands, full: string, sessionid: string) =>
    adhoc.execute(who(full), xml('command', { xmlns: NS.commands, node: twoStage.node, sessionid }));

  it('keeps the admin’s open session working through 10,000 sessions from bob’s resources', async () => {
    const adhoc = new AdhocCommands({ jid: COMPONENT, sessions: kept() }).add(twoStage);
    const mine = await open(adhoc, ADMIN);
    for (let i = 0; i < 10_000; i++) await open(adhoc, `bob@localhost/r${i}`);
    // bob holds at most his own cap; the admin's session is still there and completes.
    expect(await adhoc.openSessions()).toBe(11);
    const done = await finish(adhoc, ADMIN, mine);
    expect(done.attrs.status).toBe('completed');
  });

  it('drops only bob’s own oldest session when bob passes his cap', async () => {
    const adhoc = new AdhocCommands({ jid: COMPONENT, maxSessionsPerJid: 3, sessions: kept() }).add(twoStage);
    const first = await open(adhoc, 'bob@localhost/a');
    await open(adhoc, 'bob@localhost/b');
    await open(adhoc, 'bob@localhost/c');
    const alice = await open(adhoc, ALICE);
    await open(adhoc, 'bob@localhost/d');
    await expect(finish(adhoc, 'bob@localhost/a', first)).rejects.toMatchObject({ condition: 'not-allowed' });
    expect((await finish(adhoc, ALICE, alice)).attrs.status).toBe('completed');
  });

  it('still answers session-expired for the admin’s finished session after bob ends three times the table of his', async () => {
    // In the store, a tenth of the table and of the flood (the same rule, in 3,000 commits rather than 30,000).
    const sessions = kept();
    const max = sessions === undefined ? 10_000 : 1_000;
    const adhoc = new AdhocCommands({ jid: COMPONENT, maxSessions: max, sessions }).add(twoStage);
    const mine = await open(adhoc, ADMIN);
    await finish(adhoc, ADMIN, mine);
    for (let i = 0; i < 3 * max; i++) await open(adhoc, `bob@localhost/r${i}`);
    await expect(finish(adhoc, ADMIN, mine)).rejects.toMatchObject({ condition: 'not-allowed', message: 'This command session has ended' });
  });

  it('remembers the last twice-the-table ended ids of all users together, and forgets the oldest beyond', async () => {
    // 2 open at most, so 4 ended ids in all and 10 per user: ten users ending one each keep the last 4.
    const adhoc = new AdhocCommands({ jid: COMPONENT, maxSessionsPerJid: 1, maxSessions: 2, sessions: kept() }).add(twoStage);
    const ended: string[] = [];
    for (let u = 0; u < 10; u++) {
      const id = await open(adhoc, `user${u}@localhost/r`);
      await finish(adhoc, `user${u}@localhost/r`, id);
      ended.push(id);
    }
    const answers = await Promise.all(ended.map((id, u) => finish(adhoc, `user${u}@localhost/r`, id).catch((e: { message: string }) => e.message)));
    expect(answers).toEqual([...Array(6).fill('Unknown command session'), ...Array(4).fill('This command session has ended')]);
  });

  it('when full, ends the oldest session of whoever holds the most, the newest holder among equals', async () => {
    const adhoc = new AdhocCommands({ jid: COMPONENT, maxSessionsPerJid: 2, maxSessions: 4, sessions: kept() }).add(twoStage);
    const a1 = await open(adhoc, 'a@localhost/1');
    const b1 = await open(adhoc, 'b@localhost/1');
    const a2 = await open(adhoc, 'a@localhost/2');
    const b2 = await open(adhoc, 'b@localhost/2');
    // Full, a and b hold two each; c's first evicts from b (whose sessions began last): b1.
    await open(adhoc, 'c@localhost/1');
    // Now a holds two, b one, c one: a's oldest goes, whoever asks.
    await open(adhoc, 'd@localhost/1');
    const alive = async (full: string, id: string) => (await finish(adhoc, full, id).then(() => true, () => false));
    expect([await alive('a@localhost/1', a1), await alive('b@localhost/1', b1), await alive('a@localhost/2', a2), await alive('b@localhost/2', b2)]).toEqual([
      false,
      false,
      true,
      true,
    ]);
  });

  it('when the whole table is full, evicts from whoever holds the most, never from a lighter user', async () => {
    const adhoc = new AdhocCommands({ jid: COMPONENT, maxSessionsPerJid: 5, maxSessions: 12, sessions: kept() }).add(twoStage);
    const mine = await open(adhoc, ADMIN);
    const alice = await open(adhoc, ALICE);
    // Many users, each under the per-user cap, fill the table and keep going.
    for (let u = 0; u < 20; u++) for (let r = 0; r < 5; r++) await open(adhoc, `user${u}@localhost/r${r}`);
    expect(await adhoc.openSessions()).toBe(12);
    expect((await finish(adhoc, ADMIN, mine)).attrs.status).toBe('completed');
    expect((await finish(adhoc, ALICE, alice)).attrs.status).toBe('completed');
  });
});
