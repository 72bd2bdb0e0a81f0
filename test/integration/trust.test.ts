/**
 * Trust through the real doors, on a real Prosody with the bridge module: accounts registered on
 * the landing page, at the component and through the bridge keep who invited and who approved
 * them; `xmpp-invites tree` and #stats show it; a young account cannot invite yet and is told when
 * it may; one invitation's subtree shares a cap on open invites that holds under a race; a blocked
 * user is refused with the reason at every door; `invite revoke --tree` revokes exactly the
 * subtree's live invites.
 */
import { openStoreOf } from '../support/engine';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { loadConfig } from '../../src/config';
import { OPERATOR } from '../../src/domain/types';
import { adhoc, commandNotes, commandOf, errorCondition, errorText, formFields, TestClient, xml, type XmlElement } from '../support/client';
import { rawTestConfig } from '../support/fixtures';
import { TestProsody } from '../support/prosody';
import { RawStream } from '../support/raw-stream';
import { COMPONENT, COMPONENT_SECRET, startService, type RunningService } from '../support/service';
import { get, post, snapshot } from '../support/web';

const NS = 'urn:xmpp-invites:0';
const PASSWORD = 'password-123';

let prosody: TestProsody;
let service: RunningService | undefined;
let configFile: string;
const clients: TestClient[] = [];
let ipCounter = 1;

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    hostAdmins: [COMPONENT],
    anonymousHost: 'anon.localhost',
    pluginPaths: ['bridge'],
    hostConfig: ['  modules_enabled = { "xmpp_invites" }', `  xmpp_invites_component = "${COMPONENT}"`].join('\n'),
  });
  for (const u of ['alice', 'admin']) await prosody.register(u, `${u}-password`);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await service?.stop();
  service = undefined;
});

afterAll(async () => {
  await prosody?.stop();
});

async function serve(limits: Record<string, unknown> = {}): Promise<RunningService> {
  const dir = mkdtempSync(join(prosody.dir, 'trust-'));
  configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    stringify(
      rawTestConfig({
        component: { server: prosody.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET },
        host: prosody.host,
        admins: ['admin@localhost'],
        database: './invites.sqlite',
        invites: { approval: 'none' },
        registration: { requester_domains: ['anon.localhost'], server_bridge: true },
        web: { listen: '127.0.0.1:0', trusted_proxies: ['127.0.0.1'] },
        limits,
      }),
    ),
  );
  for (let attempt = 1; ; attempt++) {
    try {
      service = await startService(loadConfig(configFile), { provisionTimeoutMs: 5_000 });
      return service;
    } catch (err) {
      if (attempt >= 10 || !String(err).includes('conflict')) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

async function login(user: string, password = `${user}-password`, resource?: string): Promise<TestClient> {
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: user, password, resource });
  clients.push(c);
  return c;
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run([...args, '--config', configFile], { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const newInvite = (c: TestClient) => adhoc(c, COMPONENT, 'urn:xmpp:invite#invite');

/** New Invite's token (from its landing URL). */
async function newInviteToken(c: TestClient): Promise<string> {
  const reply = await newInvite(c);
  const landing = formFields(commandOf(reply)!)['landing-url']?.[0];
  if (!landing) throw new Error(`New Invite failed: ${reply.toString()}`);
  return landing.split('/i/')[1];
}

async function send(c: TestClient, emails: string[]): Promise<XmlElement> {
  const first = await adhoc(c, COMPONENT, 'urn:xmpp-invites:0#send');
  return adhoc(c, COMPONENT, 'urn:xmpp-invites:0#send', { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: { emails } });
}

/** Registers on the landing page (each from its own client address). */
async function registerOnWeb(token: string, username: string): Promise<void> {
  const ip = `198.51.100.${ipCounter++}`;
  const base = service!.app.web!.url;
  const page = await get(`${base}/i/${token}`, { ip });
  const done = await post(`${base}/i/${token}/register`, { csrf: page.csrf!, username, password: PASSWORD }, { ip, cookie: page.cookie! });
  if (done.status !== 200) throw new Error(`registration of ${username} failed: ${done.status} ${done.html.slice(0, 500)}`);
}

/** Registers at the component (XEP-0077 with the token), from an anonymous session. */
async function registerAtComponent(token: string, username: string): Promise<void> {
  const anon = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
  clients.push(anon);
  const reply = await anon.iq(
    xml('iq', { type: 'set', to: COMPONENT }, xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, username), xml('password', {}, PASSWORD), xml('token', {}, token))),
    20_000,
  );
  if (reply.attrs.type !== 'result') throw new Error(`registration of ${username} failed: ${reply.toString()}`);
}

/** Registers at the server through the bridge (XEP-0445 preauth, then XEP-0077). */
async function registerThroughBridge(token: string, username: string): Promise<void> {
  const stream = await RawStream.open(prosody.ports.c2s, 'localhost');
  try {
    await stream.preauth(token);
    const reply = await stream.register(username, PASSWORD);
    if (reply.attrs.type !== 'result') throw new Error(`registration of ${username} failed: ${reply.toString()}`);
  } finally {
    await stream.close();
  }
}

function db(): string {
  return [snapshot(service!.config.database), blocks()].join('\n');
}

function blocks(): string {
  const d = openStoreOf(service!.config.database);
  try {
    return JSON.stringify(d.prepare('SELECT * FROM user_blocks ORDER BY id').all());
  } finally {
    d.close();
  }
}

function joinedAt(username: string): number {
  const d = openStoreOf(service!.config.database);
  try {
    return (d.prepare(`SELECT settled_at FROM claims WHERE username = ? AND state = 'spent'`).get(username) as { settled_at: number }).settled_at;
  } finally {
    d.close();
  }
}

interface Node {
  jid: string;
  made_here: boolean;
  inviter: string | null;
  approved_by: string | null;
  invite: string | null;
  joined: string | null;
  invites: { id: string; kind: string; state: string; invitee_email: string | null; accounts: string[] }[];
  children: Node[];
}

it('keeps who invited and approved each account of three generations made at three doors; tree --json and #stats show it', async () => {
  await serve();
  const admin = await login('admin');
  // Generation 1: an admin's create-account invite, used on the landing page.
  const first = await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account');
  const made = await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account', { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: {} });
  const gen1Token = formFields(commandOf(made)!)['landing-url'][0].split('/i/')[1];
  await registerOnWeb(gen1Token, 'gen1');
  // Generation 2: gen1's New Invite, used at the component.
  const gen1 = await login('gen1', PASSWORD);
  await registerAtComponent(await newInviteToken(gen1), 'gen2');
  // Generation 3: gen2's New Invite, used through the bridge; gen2 also invites someone by e-mail.
  const gen2 = await login('gen2', PASSWORD);
  await registerThroughBridge(await newInviteToken(gen2), 'gen3');
  await send(gen2, ['dora@example.org']);

  const { code, out } = await cli('tree', 'admin@localhost', '--json');
  expect(code).toBe(0);
  const tree = JSON.parse(out) as Node;
  const invitesOf = (jid: string) => service!.app.invites.list({ inviter: jid, oldestFirst: true });
  const [adminInvite] = invitesOf('admin@localhost');
  const [gen1Invite] = invitesOf('gen1@localhost');
  const [gen2Invite, doraInvite] = invitesOf('gen2@localhost');
  const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  expect(tree).toEqual({
    jid: 'admin@localhost',
    made_here: false,
    inviter: null,
    approved_by: null,
    invite: null,
    joined: null,
    blocked: null,
    invites: [{ id: adminInvite.id, kind: 'account', state: 'exhausted', invitee_email: null, invitee_jid: null, created: iso(adminInvite.createdAt), accounts: ['gen1@localhost'] }],
    children: [
      {
        jid: 'gen1@localhost',
        made_here: true,
        inviter: 'admin@localhost',
        approved_by: 'admin@localhost',
        invite: adminInvite.id,
        joined: iso(joinedAt('gen1')),
        blocked: null,
        invites: [{ id: gen1Invite.id, kind: 'contact-account', state: 'exhausted', invitee_email: null, invitee_jid: null, created: iso(gen1Invite.createdAt), accounts: ['gen2@localhost'] }],
        children: [
          {
            jid: 'gen2@localhost',
            made_here: true,
            inviter: 'gen1@localhost',
            approved_by: 'gen1@localhost',
            invite: gen1Invite.id,
            joined: iso(joinedAt('gen2')),
            blocked: null,
            invites: [
              { id: gen2Invite.id, kind: 'contact-account', state: 'exhausted', invitee_email: null, invitee_jid: null, created: iso(gen2Invite.createdAt), accounts: ['gen3@localhost'] },
              { id: doraInvite.id, kind: 'contact-account', state: 'open', invitee_email: 'dora@example.org', invitee_jid: null, created: iso(doraInvite.createdAt), accounts: [] },
            ],
            children: [
              {
                jid: 'gen3@localhost',
                made_here: true,
                inviter: 'gen2@localhost',
                approved_by: 'gen2@localhost',
                invite: gen2Invite.id,
                joined: iso(joinedAt('gen3')),
                blocked: null,
                invites: [],
                children: [],
              },
            ],
          },
        ],
      },
    ],
  });

  // The whole forest holds that tree, and alice (who invited nobody) is not in it.
  const forest = JSON.parse((await cli('tree', '--json')).out) as Node[];
  expect(forest.map((n) => n.jid)).toEqual(['admin@localhost']);
  expect(forest[0]).toEqual(tree);
  // The subtree of gen2 starts at gen2.
  expect((JSON.parse((await cli('tree', 'gen2@localhost', '--json')).out) as Node).children.map((c) => c.jid)).toEqual(['gen3@localhost']);

  const text = (await cli('tree')).out.split('\n');
  expect(text[0]).toBe('admin@localhost  (account not made here)');
  expect(text).toContain(`  - invite ${adminInvite.id} (account) exhausted, created ${new Date(adminInvite.createdAt).toISOString().slice(0, 16).replace('T', ' ')} UTC → gen1@localhost`);
  expect(text.some((l) => l.startsWith(`      gen3@localhost  joined `) && l.endsWith(`with invite ${gen2Invite.id} of gen2@localhost`))).toBe(true);

  const stats = await adhoc(admin, COMPONENT, `${NS}#stats`);
  expect(formFields(commandOf(stats)!).tree.join('\n')).toBe(text.join('\n'));
});

it('refuses a young account made here with policy-violation saying when it may invite; older accounts are exempt', async () => {
  await serve({ min_account_age: '3d' });
  const { links } = service!.app.invites.create(OPERATOR, { kind: 'account', source: 'cli' });
  await registerOnWeb(links.token, 'young');
  const young = await login('young', PASSWORD);
  const before = db();
  const refused = await newInvite(young);
  expect(errorCondition(refused)).toBe('policy-violation');
  const may = new Date(joinedAt('young') + 3 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  expect(errorText(refused)).toBe(`Limit min_account_age reached: your account joined at ${new Date(joinedAt('young')).toISOString().replace(/\.\d{3}Z$/, 'Z')}; accounts made here may invite 3 days after joining; it frees at ${may}`);
  // Presence and #send say the same for each invitee.
  expect(commandNotes(await send(young, ['x@example.org'])).map((n) => n.text).join('\n')).toContain(`it frees at ${may}`);
  await young.send(xml('presence', { to: COMPONENT }, xml('invite-request', { xmlns: NS, id: 'young-1' }, xml('invitee', { email: 'y@example.org' }))));
  const ack = await young.waitFor((s) => s.name === 'message' && s.getChild('invite-request-result', NS)?.attrs.id === 'young-1', 20_000);
  expect(ack.getChild('invite-request-result', NS)!.getChild('invitee')!.attrs).toMatchObject({ status: 'refused', reason: expect.stringContaining('min_account_age') });
  expect(snapshot(service!.config.database).split('\n').slice(0, 3)).toEqual(before.split('\n').slice(0, 3));

  // alice's account was not made here: she may invite.
  const alice = await login('alice');
  expect(commandOf(await newInvite(alice))?.attrs.status).toBe('completed');
});

it('holds the subtree cap on open invites when two members race for the last slot', async () => {
  await serve({ per_tree_open: 2 });
  const { links } = service!.app.invites.create(OPERATOR, { kind: 'account', source: 'cli' });
  await registerOnWeb(links.token, 'root1');
  const root1 = await login('root1', PASSWORD);
  await registerOnWeb(await newInviteToken(root1), 'kid1');
  await send(root1, ['first@example.org']); // one open invite in the tree; one slot left
  const kid1 = await login('kid1', PASSWORD);

  const replies = await Promise.all([newInvite(root1), newInvite(kid1)]);
  expect(replies.filter((r) => r.attrs.type === 'result')).toHaveLength(1);
  const refused = replies.find((r) => r.attrs.type === 'error')!;
  expect(errorCondition(refused)).toBe('policy-violation');
  expect(errorText(refused)).toMatch(/^Limit per_tree_open reached: root1@localhost and the accounts invited below it have 2 open invites \(at most 2\); it frees at /);
  const open = [...service!.app.invites.list({ inviter: 'root1@localhost', state: 'open' }), ...service!.app.invites.list({ inviter: 'kid1@localhost', state: 'open' })];
  expect(open).toHaveLength(2);

  // Outside the tree, alice and the admin invite freely.
  expect(commandOf(await newInvite(await login('alice')))?.attrs.status).toBe('completed');
  expect(commandOf(await newInvite(await login('admin')))?.attrs.status).toBe('completed');
});

it("refuses a blocked user's invites as forbidden with the reason, at every door, until unblocked", async () => {
  await serve();
  const alice = await login('alice');
  const open = await newInviteToken(alice);
  expect((await cli('user', 'block', 'Alice@localhost', '--reason', 'three spam reports')).out).toBe('alice@localhost: blocked from inviting');

  const before = db();
  const refused = await newInvite(alice);
  expect(errorCondition(refused)).toBe('forbidden');
  expect(errorText(refused)).toBe('alice@localhost may not invite: three spam reports');
  expect(commandNotes(await send(alice, ['bob@example.org'])).map((n) => n.text).join('\n')).toContain('three spam reports');
  await alice.send(xml('presence', { to: COMPONENT }, xml('invite-request', { xmlns: NS, id: 'blocked-1' }, xml('invitee', { email: 'c@example.org' }))));
  const ack = await alice.waitFor((s) => s.name === 'message' && s.getChild('invite-request-result', NS)?.attrs.id === 'blocked-1', 20_000);
  expect(ack.getChild('invite-request-result', NS)!.getChild('invitee')!.attrs).toMatchObject({ status: 'refused', reason: 'alice@localhost may not invite: three spam reports' });
  const resend = await cli('invite', 'resend', service!.app.invites.findByToken(open)!.id);
  expect(resend.code).toBe(1);
  expect(resend.err).toContain('three spam reports');
  expect(snapshot(service!.config.database).split('\n').slice(0, 3)).toEqual(before.split('\n').slice(0, 3));

  expect(JSON.parse((await cli('user', 'blocked', '--json')).out)).toEqual([{ jid: 'alice@localhost', reason: 'three spam reports', by: 'operator', at: expect.any(String) }]);
  expect((await cli('tree', 'alice@localhost')).out.split('\n')[0]).toBe('alice@localhost  (account not made here)  BLOCKED: three spam reports');
  expect((await cli('user', 'unblock', 'alice@localhost')).out).toBe('alice@localhost: may invite again');
  expect(commandOf(await newInvite(alice))?.attrs.status).toBe('completed');
});

it('refuses bad user and tree commands with exit 2 and changes nothing', async () => {
  await serve();
  const before = db();
  expect((await cli('user', 'block', 'alice@localhost')).code).toBe(2);
  expect((await cli('user', 'block', 'alice@localhost', '--reason', '  ')).code).toBe(2);
  expect((await cli('user', 'block', 'not a jid', '--reason', 'x')).code).toBe(2);
  expect((await cli('user', 'block', 'localhost', '--reason', 'x')).code).toBe(2);
  expect((await cli('invite', 'revoke', '--tree', '@@')).code).toBe(2);
  expect((await cli('invite', 'revoke', '--tree', 'alice@localhost', 'extra')).code).toBe(2);
  expect((await cli('tree', 'a@localhost', 'b@localhost')).code).toBe(2);
  expect((await cli('user', 'unblock', 'alice@localhost')).out).toBe('alice@localhost: was not blocked');
  expect(db()).toBe(before);
});

it('revokes with invite revoke --tree exactly the live invites of the subtree', async () => {
  await serve();
  const { links } = service!.app.invites.create(OPERATOR, { kind: 'account', source: 'cli' });
  await registerOnWeb(links.token, 'top');
  const top = await login('top', PASSWORD);
  const kidToken = await newInviteToken(top);
  await registerOnWeb(kidToken, 'kid');
  const kid = await login('kid', PASSWORD);
  await send(top, ['t1@example.org', 't2@example.org']);
  await send(kid, ['k1@example.org']);
  await newInvite(kid);
  const alice = await login('alice');
  await send(alice, ['a1@example.org']);
  const adminInvite = service!.app.invites.create(OPERATOR, { kind: 'account', source: 'cli', inviter: 'admin@localhost' }).invite;

  const inTree = [...service!.app.invites.list({ inviter: 'top@localhost' }), ...service!.app.invites.list({ inviter: 'kid@localhost' })]
    .filter((i) => i.state === 'open')
    .map((i) => i.id)
    .sort();
  expect(inTree).toHaveLength(4);
  const { code, out } = await cli('invite', 'revoke', '--tree', 'top@localhost', '--reason', 'spam ring');
  expect(code).toBe(0);
  expect(out.split('\n').at(-1)).toBe('4 invites revoked in the tree of top@localhost');
  const revoked = service!.app.invites.list({ state: 'revoked' }).map((i) => i.id).sort();
  expect(revoked).toEqual(inTree);
  for (const id of revoked) expect(service!.app.invites.events(id).at(-1)).toMatchObject({ type: 'revoked', actor: 'operator', reason: 'spam ring' });
  // Outside the subtree nothing changed, nor did the used invites inside it.
  expect(service!.app.invites.list({ inviter: 'alice@localhost' }).map((i) => i.state)).toEqual(['open']);
  expect(service!.app.invites.get(adminInvite.id)?.state).toBe('open');
  expect(service!.app.invites.findByToken(kidToken)?.state).toBe('exhausted');
  expect(service!.app.invites.findByToken(links.token)?.state).toBe('exhausted');
  // A second run finds nothing left.
  expect((await cli('invite', 'revoke', '--tree', 'top@localhost')).out).toBe('0 invites revoked in the tree of top@localhost');
});

it('caps each admin per day with per_admin_per_day, while admins stay exempt from the per-user limits', async () => {
  await serve({ per_admin_per_day: 2, per_user_per_day: 1 });
  const admin = await login('admin');
  for (let i = 0; i < 2; i++) expect(commandOf(await newInvite(admin))?.attrs.status).toBe('completed');
  const before = db();
  const refused = await newInvite(admin);
  expect(errorCondition(refused)).toBe('policy-violation');
  expect(errorText(refused)).toMatch(/^Limit per_admin_per_day reached: at most 2 invites a day per admin; it frees at /);
  expect(db()).toBe(before);
  // The operator at the CLI is exempt, even on an admin's behalf.
  expect((await cli('invite', 'create', '--kind', 'account', '--inviter', 'admin@localhost')).code).toBe(0);
});
