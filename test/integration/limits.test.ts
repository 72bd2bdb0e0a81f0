/**
 * Limits through every door, on a real Prosody with the bridge module: New Invite, create-account,
 * #send and presence for inviting; the component, the landing page and the bridge for registering.
 * Each refusal names the limit and when it frees; admins are exempt from per-user limits; a decline
 * on the web page starts the cooldown; an opt-out is honoured everywhere; two racing requests for
 * the last slot make exactly one invite.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { loadConfig } from '../../src/config';
import { OPERATOR } from '../../src/domain/types';
import { adhoc, commandNotes, commandOf, errorCondition, errorText, TestClient, xml, type XmlElement } from '../support/client';
import { rawTestConfig } from '../support/fixtures';
import { TestProsody } from '../support/prosody';
import { RawStream } from '../support/raw-stream';
import { COMPONENT, COMPONENT_SECRET, startService, type RunningService } from '../support/service';
import { get, post, snapshot } from '../support/web';

const NS = 'urn:xmpp-invites:0';
const LIMIT = /Limit (\w+) reached: .*; it frees at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/;

let prosody: TestProsody;
let service: RunningService | undefined;
let configFile: string;
const clients: TestClient[] = [];

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

/** A fresh service (and database) with these limits. */
async function serve(limits: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<RunningService> {
  const dir = mkdtempSync(join(prosody.dir, 'limits-'));
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
        ...extra,
      }),
    ),
  );
  for (let attempt = 1; ; attempt++) {
    try {
      service = await startService(loadConfig(configFile), { provisionTimeoutMs: 5_000 });
      return service;
    } catch (err) {
      // The server may still hold the previous test's component stream for a moment.
      if (attempt >= 10 || !String(err).includes('conflict')) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

async function login(user: string, resource?: string): Promise<TestClient> {
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: user, password: `${user}-password`, resource });
  clients.push(c);
  return c;
}

function db(): string {
  return snapshot(service!.config.database);
}

const newInvite = (c: TestClient) => adhoc(c, COMPONENT, 'urn:xmpp:invite#invite');

async function send(c: TestClient, emails: string[]): Promise<XmlElement> {
  const first = await adhoc(c, COMPONENT, 'urn:xmpp-invites:0#send');
  return adhoc(c, COMPONENT, 'urn:xmpp-invites:0#send', { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: { emails } });
}

async function presenceRequest(c: TestClient, id: string, email: string): Promise<Record<string, string>[]> {
  await c.send(xml('presence', { to: COMPONENT }, xml('invite-request', { xmlns: NS, id }, xml('invitee', { email }))));
  const ack = await c.waitFor((s) => s.name === 'message' && s.getChild('invite-request-result', NS)?.attrs.id === id, 20_000);
  return ack.getChild('invite-request-result', NS)!.getChildren('invitee').map((i) => ({ ...i.attrs }) as Record<string, string>);
}

function limitOf(text: string | undefined): string | undefined {
  return LIMIT.exec(text ?? '')?.[1];
}

async function webSession(token: string, ip: string) {
  const base = service!.app.web!.url;
  const page = await get(`${base}/i/${token}`, { ip });
  return { base, cookie: page.cookie!, csrf: page.csrf! };
}

it('refuses New Invite past per_user_open with policy-violation naming the limit, and exempts admins', async () => {
  await serve({ per_user_open: 2 });
  const alice = await login('alice');
  for (let i = 0; i < 2; i++) expect(commandOf(await newInvite(alice))?.attrs.status).toBe('completed');
  const before = db();
  const refused = await newInvite(alice);
  expect(errorCondition(refused)).toBe('policy-violation');
  expect(limitOf(errorText(refused))).toBe('per_user_open');
  expect(db()).toBe(before);

  const admin = await login('admin');
  for (let i = 0; i < 4; i++) expect(commandOf(await newInvite(admin))?.attrs.status).toBe('completed');
});

it('lets exactly one of two resources racing for the last slot make an invite', async () => {
  await serve({ per_user_open: 1 });
  const [phone, laptop] = await Promise.all([login('alice', 'phone'), login('alice', 'laptop')]);
  const replies = await Promise.all([newInvite(phone), newInvite(laptop)]);
  expect(replies.filter((r) => r.attrs.type === 'result')).toHaveLength(1);
  expect(replies.filter((r) => errorCondition(r) === 'policy-violation')).toHaveLength(1);
  expect(service!.app.invites.count({ inviter: 'alice@localhost' })).toBe(1);
});

it('refuses past per_user_per_day through #send and presence, listing the limit for that invitee', async () => {
  await serve({ per_user_per_day: 1 });
  const alice = await login('alice');
  await send(alice, ['first@example.org']);
  const before = db();
  const notes = commandNotes(await send(alice, ['second@example.org'])).map((n) => n.text).join('\n');
  expect(notes).toMatch(/second@example\.org/);
  expect(limitOf(notes)).toBe('per_user_per_day');
  const [result] = await presenceRequest(alice, 'over-the-limit', 'third@example.org');
  expect(result).toMatchObject({ email: 'third@example.org', status: 'refused' });
  expect(limitOf(result.reason)).toBe('per_user_per_day');
  expect(service!.app.invites.count({ inviter: 'alice@localhost' })).toBe(1);
  expect(service!.app.invites.count({})).toBe(JSON.parse(before.split('\n')[0]).length);
});

it('caps the site per day for create-account too, while the CLI stays exempt', async () => {
  await serve({ per_site_per_day: 1 });
  const alice = await login('alice');
  await newInvite(alice);
  const admin = await login('admin');
  const first = await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account');
  const before = db();
  const refused = await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account', { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: {} });
  expect(errorCondition(refused)).toBe('policy-violation');
  expect(limitOf(errorText(refused))).toBe('per_site_per_day');
  expect(db()).toBe(before);
  const out: string[] = [];
  expect(await run(['invite', 'create', '--kind', 'account', '--config', configFile], { out: (l) => out.push(l), err: (l) => out.push(l), env: {} })).toBe(0);
});

it('limits registrations per hour at the component, on the web per address, and through the bridge per address', async () => {
  await serve({ registrations_per_hour: 1 });
  const { links } = service!.app.invites.create(OPERATOR, { kind: 'account', source: 'cli', maxUses: 10 });
  const other = service!.app.invites.create(OPERATOR, { kind: 'account', source: 'cli', maxUses: 10 });
  const register = async (username: string, token: string) => {
    const anon = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
    clients.push(anon);
    return anon.iq(
      xml('iq', { type: 'set', to: COMPONENT }, xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, username), xml('password', {}, 'password-123'), xml('token', {}, token))),
      20_000,
    );
  };
  expect((await register('comp1', links.token)).attrs.type).toBe('result');
  const refused = await register('comp2', other.links.token);
  expect(errorCondition(refused)).toBe('policy-violation');
  expect(limitOf(errorText(refused))).toBe('registrations_per_hour');
  expect(await prosody.userExists('comp2')).toBe(false);

  const s = await webSession(other.links.token, '203.0.113.7');
  const ok = await post(`${s.base}/i/${other.links.token}/register`, { csrf: s.csrf, username: 'web1', password: 'password-123' }, { ip: '203.0.113.7', cookie: s.cookie });
  expect(ok.status).toBe(200);
  const again = await webSession(other.links.token, '203.0.113.7');
  const page = await post(`${s.base}/i/${other.links.token}/register`, { csrf: again.csrf, username: 'web2', password: 'password-123' }, { ip: '203.0.113.7', cookie: again.cookie });
  expect(page.status).toBe(429);
  expect(page.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(page.html).toMatch(/registrations_per_hour/);
  expect(await prosody.userExists('web2')).toBe(false);

  // Through the bridge every raw stream comes from 127.0.0.1: the second from that address is refused.
  const third = service!.app.invites.create(OPERATOR, { kind: 'account', source: 'cli', maxUses: 10 });
  const results: XmlElement[] = [];
  for (const name of ['bridge1', 'bridge2']) {
    const stream = await RawStream.open(prosody.ports.c2s, 'localhost');
    try {
      await stream.preauth(third.links.token);
      results.push(await stream.register(name, 'password-123'));
    } finally {
      await stream.close();
    }
  }
  expect(results[0].attrs.type).toBe('result');
  expect(errorCondition(results[1])).toBe('policy-violation');
  expect(limitOf(errorText(results[1]))).toBe('registrations_per_hour');
  expect(await prosody.userExists('bridge2')).toBe(false);
});

it('starts the reinvite cooldown when the invitee declines on the landing page', async () => {
  await serve({ reinvite_after_decline: '30d' });
  const alice = await login('alice');
  await send(alice, ['bob@example.org']);
  const [invite] = service!.app.invites.list({ inviter: 'alice@localhost' });
  const { token } = service!.app.invites.links(invite);
  const s = await webSession(token, '198.51.100.1');
  const declined = await post(`${s.base}/i/${token}/decline`, { csrf: s.csrf, reason: 'not now' }, { ip: '198.51.100.1', cookie: s.cookie });
  expect(declined.status).toBe(200);
  expect(service!.app.invites.get(invite.id)?.state).toBe('declined');

  const before = service!.app.invites.count({});
  const notes = commandNotes(await send(alice, ['bob@example.org'])).map((n) => n.text).join('\n');
  expect(limitOf(notes)).toBe('reinvite_after_decline');
  const [result] = await presenceRequest(alice, 'cooldown', 'Bob@Example.org');
  expect(limitOf(result.reason)).toBe('reinvite_after_decline');
  expect(service!.app.invites.count({})).toBe(before);
});

it('honours "never invite me again" at every door, for every inviter', async () => {
  await serve({});
  const alice = await login('alice');
  await send(alice, ['carol@example.org']);
  const [invite] = service!.app.invites.list({ inviter: 'alice@localhost' });
  const { token } = service!.app.invites.links(invite);
  const s = await webSession(token, '198.51.100.2');
  expect((await post(`${s.base}/i/${token}/opt-out`, { csrf: s.csrf }, { ip: '198.51.100.2', cookie: s.cookie })).status).toBe(200);

  const before = service!.app.invites.count({});
  expect(commandNotes(await send(alice, ['Carol@example.org'])).map((n) => n.text).join('\n')).toMatch(/asked not to be invited/);
  const admin = await login('admin');
  expect(commandNotes(await send(admin, ['carol@example.org'])).map((n) => n.text).join('\n')).toMatch(/asked not to be invited/);
  const [result] = await presenceRequest(alice, 'opted-out', 'carol@example.org');
  expect(result).toMatchObject({ status: 'refused', reason: expect.stringMatching(/asked not to be invited/) });
  const err: string[] = [];
  const code = await run(['invite', 'create', '--kind', 'account', '--email', 'carol@example.org', '--inviter', 'admin@localhost', '--config', configFile], {
    out: () => undefined,
    err: (l) => err.push(l),
    env: {},
  });
  expect(code).toBe(1);
  expect(err.join()).toMatch(/asked not to be invited/);
  expect(service!.app.invites.count({})).toBe(before);
});
