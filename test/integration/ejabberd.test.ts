/**
 * The component against a real ejabberd 23.01 (Debian's package) and the real service: it connects,
 * answers disco and New Invite, and registration at the component creates accounts that log in,
 * through both provisioners (XEP-0133 `add-user`, and mod_http_api `register`); a taken username
 * is `conflict`; whether an account exists is answered right by both, so that held claims settle
 * right; a contact invite links inviter and new account through the API; a wrong component secret
 * stops `serve` with exit 1.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { OPERATOR } from '../../src/domain/types';
import { EjabberdApiProvisioner } from '../../src/provisioners/ejabberd-api';
import { Xep0133Provisioner } from '../../src/provisioners/xep0133';
import type { Provisioner } from '../../src/domain/registration';
import { adhoc, commandOf, errorCondition, formFields, TestClient, xml, type XmlElement } from '../support/client';
import { TestEjabberd } from '../support/ejabberd';
import { PROJECT_ROOT } from '../support/prosody';
import { rawTestConfig } from '../support/fixtures';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';

const REGISTER = 'jabber:iq:register';
const ANON = 'anon.localhost';

let ejabberd: TestEjabberd;

beforeAll(async () => {
  const started = Date.now();
  ejabberd = await TestEjabberd.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    componentAdmin: true,
    httpApi: true,
    anonymousHost: ANON,
  });
  console.log(`ejabberd started in ${Date.now() - started} ms (ports open after ${ejabberd.startMs} ms)`);
  await ejabberd.register('alice', 'alice-password');
  await ejabberd.register('admin', 'admin-password');
});

afterAll(async () => {
  await ejabberd?.stop();
});

/** ejabberd's log, to read when a test fails. */
function withLog<T>(fn: () => Promise<T>): () => Promise<T> {
  return async () => {
    try {
      return await fn();
    } catch (err) {
      (err as Error).message += `\n--- ejabberd log (tail)\n${ejabberd.log().split('\n').slice(-60).join('\n')}`;
      throw err;
    }
  };
}

const login = (username: string, password: string) =>
  TestClient.connect({ port: ejabberd.ports.c2s, domain: ejabberd.host, username, password });
const anonymous = () => TestClient.connect({ port: ejabberd.ports.c2s, domain: ANON, anonymous: true });

async function canLogIn(username: string, password: string): Promise<boolean> {
  try {
    const c = await login(username, password);
    await c.stop();
    return true;
  } catch {
    return false;
  }
}

const preauth = (client: TestClient, token: string) =>
  client.iq(xml('iq', { type: 'set', to: COMPONENT }, xml('preauth', { xmlns: 'urn:xmpp:pars:0', token })));

function registerIq(client: TestClient, username: string, password: string, token?: string): Promise<XmlElement> {
  return client.iq(
    xml(
      'iq',
      { type: 'set', to: COMPONENT },
      xml('query', { xmlns: REGISTER }, xml('username', {}, username), xml('password', {}, password), token ? xml('token', {}, token) : null),
    ),
    20_000,
  );
}

/** Registers at the component from a fresh anonymous session: preauth, form, submit. */
async function registerAnonymously(token: string, username: string, password: string): Promise<XmlElement> {
  const client = await anonymous();
  try {
    expect(client.bareJid.endsWith(`@${ANON}`)).toBe(true);
    const pre = await preauth(client, token);
    expect(pre.attrs.type).toBe('result');
    const form = await client.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: REGISTER })));
    expect(form.getChild('query', REGISTER)?.getChild('username')).toBeDefined();
    return await registerIq(client, username, password);
  } finally {
    await client.stop();
  }
}

/** The roster of a logged-in client: jid → subscription. */
async function rosterOf(client: TestClient): Promise<Record<string, string>> {
  const reply = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  expect(reply.attrs.type).toBe('result');
  const out: Record<string, string> = {};
  for (const item of reply.getChild('query', 'jabber:iq:roster')?.getChildren('item') ?? []) out[String(item.attrs.jid)] = String(item.attrs.subscription);
  return out;
}

/** What both provisioners must get right, with the service running on one of them. */
function registrationSuite(name: string, ctx: { service: () => RunningService; provisioner: () => Provisioner }): void {
  const createInvite = (opts: { kind?: 'account' | 'contact-account'; inviter?: string } = {}) =>
    ctx.service().app.invites.create(OPERATOR, { kind: opts.kind ?? 'account', source: 'cli', inviter: opts.inviter });

  it(
    `[${name}] registers an anonymous session at the component; the account logs in over c2s`,
    withLog(async () => {
      const user = `new-${name.replace(/[^a-z0-9]/g, '')}`;
      const { invite, links } = createInvite();
      const reply = await registerAnonymously(links.token, user, 'new-password');
      expect(reply.attrs.type).toBe('result');
      expect(await ejabberd.userExists(user)).toBe(true);
      expect(await canLogIn(user, 'new-password')).toBe(true);
      expect(await canLogIn(user, 'wrong-password')).toBe(false);
      expect(ctx.service().app.invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
      expect(ctx.service().app.invites.events(invite.id).map((e) => e.type)).toEqual(['created', 'redeemed']);
    }),
  );

  it(
    `[${name}] answers a taken username with conflict and gives the use back`,
    withLog(async () => {
      const { invite, links } = createInvite();
      const client = await anonymous();
      try {
        const reply = await registerIq(client, 'alice', 'another-password', links.token);
        expect(errorCondition(reply)).toBe('conflict');
      } finally {
        await client.stop();
      }
      expect(ctx.service().app.invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
      expect(await canLogIn('alice', 'alice-password')).toBe(true);
    }),
  );

  it(
    `[${name}] knows which accounts exist`,
    withLog(async () => {
      const p = ctx.provisioner();
      expect(await p.accountExists('alice')).toBe(true);
      expect(await p.accountExists('admin')).toBe(true);
      expect(await p.accountExists('no-such-user')).toBe(false);
      expect(await p.accountExists('alic')).toBe(false);
      expect(await p.accountExists('zzz-last')).toBe(false);
    }),
  );

  it(
    `[${name}] settles held claims by asking the server: no account → released, an account made after the claim → spent, one from before → released`,
    withLog(async () => {
      const registration = ctx.service().app.registration;
      const missing = createInvite();
      const ghost = registration.claim({ token: missing.links.token, username: `ghost-${name.replace(/[^a-z0-9]/g, '')}`, door: 'component' });
      await registration.reconcile(ghost.id);
      expect(registration.getClaim(ghost.id)?.state).toBe('released');
      expect(ctx.service().app.invites.get(missing.invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });

      const made = createInvite();
      const user = `made-${name.replace(/[^a-z0-9]/g, '')}`;
      // The server says the account is absent when claimed, then makes it before a crash.
      const claim = await registration.claimNew({ token: made.links.token, username: user, door: 'component' });
      expect(claim.absentAtClaim).toBe(true);
      await ejabberd.register(user, 'made-password');
      await registration.reconcile(claim.id);
      expect(registration.getClaim(claim.id)?.state).toBe('spent');
      expect(ctx.service().app.invites.get(made.invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });

      // An account that existed before the claim: `conflict` before claiming, and a claim not
      // shown absent is never credited with it.
      const other = createInvite();
      await expect(registration.claimNew({ token: other.links.token, username: user, door: 'component' })).rejects.toMatchObject({ code: 'conflict' });
      const unchecked = registration.claim({ token: other.links.token, username: user, door: 'component' });
      await registration.reconcile(unchecked.id);
      expect(registration.getClaim(unchecked.id)?.state).toBe('released');
      expect(ctx.service().app.invites.get(other.invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
    }),
  );
}

describe('with the xep-0133 provisioner', () => {
  let service: RunningService;
  let alice: TestClient;
  let provisioner: Xep0133Provisioner;

  beforeAll(async () => {
    service = await startService(
      serviceConfig(ejabberd, {
        admins: ['admin@localhost'],
        invites: { approval: 'none' },
        registration: { requester_domains: [ANON], provisioner: { type: 'xep-0133' } },
      }),
      { provisionTimeoutMs: 5_000 },
    );
    provisioner = new Xep0133Provisioner({ request: (iq, timeout) => service.app.connection.request(iq, timeout), host: ejabberd.host, timeoutMs: 5_000 });
    alice = await login('alice', 'alice-password');
  });

  afterAll(async () => {
    await alice?.stop();
    await service?.stop();
  });

  it(
    '[xep-0133] a password reset link sets a new password: the old one stops working, the new one logs in, the link is used up',
    withLog(async () => {
      await ejabberd.register('xep0133reset', 'old-password-1');
      const resets = service.app.resets;
      const { links } = resets.create(OPERATOR, 'xep0133reset', await provisioner.accountExists('xep0133reset'));
      const done = await resets.use(links.token, 'new-password-1', provisioner, null);
      expect(done.state).toBe('used');
      expect(await canLogIn('xep0133reset', 'old-password-1')).toBe(false);
      expect(await canLogIn('xep0133reset', 'new-password-1')).toBe(true);
      await expect(resets.use(links.token, 'newer-password-1', provisioner, null)).rejects.toMatchObject({ code: 'invite-not-found' });
      expect(await provisioner.setPassword('no-such-user', 'whatever-1')).toEqual({ kind: 'no-account' });
      expect(() => resets.create(OPERATOR, 'no-such-user', false)).toThrow(/There is no account/);
    }),
  );

  it('connects as the component', async () => {
    expect(service.app.connection.online).toBe(true);
    expect(service.logs.text()).toMatch(/Connected to the XMPP server/);
    // ejabberd writes its log file with a delay
    const accepted = `Accepted external component handshake authentication for ${COMPONENT}`;
    for (let i = 0; i < 100 && !ejabberd.log().includes(accepted); i++) await new Promise((r) => setTimeout(r, 100));
    expect(ejabberd.log()).toContain(accepted);
  });

  it(
    'answers disco#info',
    withLog(async () => {
      const info = await alice.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
      expect(info.attrs.type).toBe('result');
      const query = info.getChild('query', 'http://jabber.org/protocol/disco#info')!;
      const features = query.getChildren('feature').map((f) => f.attrs.var);
      expect(features).toContain('http://jabber.org/protocol/commands');
      // Registration at the component is for the sign-up domain only, and advertised only there.
      expect(features).not.toContain(REGISTER);
      expect(query.getChild('identity')?.attrs.category).toBe('component');
      const anon = await anonymous();
      try {
        const anonInfo = await anon.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
        const anonFeatures = anonInfo.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
        expect(anonFeatures).toEqual(expect.arrayContaining([REGISTER, 'urn:xmpp:pars:0']));
      } finally {
        await anon.stop();
      }
    }),
  );

  it(
    'answers New Invite from a logged-in user with the XEP-0401 form',
    withLog(async () => {
      const reply = await adhoc(alice, COMPONENT, 'urn:xmpp:invite#invite', { action: 'execute' });
      expect(reply.attrs.type).toBe('result');
      expect(commandOf(reply)?.attrs.status).toBe('completed');
      const f = formFields(reply);
      expect(f.FORM_TYPE).toEqual(['urn:xmpp:invite#invitation']);
      expect(f.uri[0]).toMatch(/^xmpp:alice@localhost\?roster;preauth=[A-Za-z0-9_-]{34}$/);
      expect(f.expire[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const token = /preauth=([A-Za-z0-9_-]+)/.exec(f.uri[0])![1];
      expect(service.app.invites.findByToken(token)).toMatchObject({ kind: 'contact-account', state: 'open', inviter: 'alice@localhost' });
    }),
  );

  registrationSuite('xep-0133', { service: () => service, provisioner: () => provisioner });

  it(
    '[xep-0133] still knows which accounts exist when ejabberd lists its users in ranges (over 100)',
    withLog(async () => {
      // Bulk accounts through the API (ejabberdctl would take half a second each).
      const api = new EjabberdApiProvisioner({ url: ejabberd.apiUrl(), host: ejabberd.host, timeoutMs: 5_000 });
      const names = Array.from({ length: 120 }, (_, i) => `bulk${String(i).padStart(3, '0')}`);
      for (const n of names) expect(await api.createAccount(n, 'bulk-password')).toEqual({ kind: 'created' });
      const top = await service.app.connection.request(
        xml('iq', { type: 'get', to: ejabberd.host }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: 'all users' })),
      );
      expect(top.getChild('query')!.getChildren('item')[0].attrs.node).toMatch(/^all users\/@1-/);
      for (const n of ['admin', 'alice', 'bulk000', 'bulk001', 'bulk059', 'bulk060', 'bulk119']) {
        expect([n, await provisioner.accountExists(n)]).toEqual([n, true]);
      }
      for (const n of ['aaa', 'admin0', 'bulk0595', 'bulk120', 'bulk', 'zzz']) {
        expect([n, await provisioner.accountExists(n)]).toEqual([n, false]);
      }
    }),
  );
});

describe('with the ejabberd-api provisioner', () => {
  let service: RunningService;
  let provisioner: EjabberdApiProvisioner;

  beforeAll(async () => {
    service = await startService(
      serviceConfig(ejabberd, {
        admins: ['admin@localhost'],
        invites: { approval: 'none' },
        registration: { requester_domains: [ANON], provisioner: { type: 'ejabberd-api', url: ejabberd.apiUrl() } },
      }),
      { provisionTimeoutMs: 5_000 },
    );
    provisioner = new EjabberdApiProvisioner({ url: ejabberd.apiUrl(), host: ejabberd.host, timeoutMs: 5_000 });
  });

  afterAll(async () => {
    await service?.stop();
  });

  registrationSuite('ejabberd-api', { service: () => service, provisioner: () => provisioner });

  it(
    '[ejabberd-api] makes the inviter and the new account of a contact invite mutual contacts',
    withLog(async () => {
      const { invite, links } = service.app.invites.create(OPERATOR, { kind: 'contact-account', source: 'cli', inviter: 'alice@localhost' });
      const reply = await registerAnonymously(links.token, 'carol', 'carol-password');
      expect(reply.attrs.type).toBe('result');
      expect(service.app.invites.get(invite.id)).toMatchObject({ uses: 1, held: 0 });
      const alice = await login('alice', 'alice-password');
      const carol = await login('carol', 'carol-password');
      try {
        expect(await rosterOf(alice)).toMatchObject({ 'carol@localhost': 'both' });
        expect(await rosterOf(carol)).toMatchObject({ 'alice@localhost': 'both' });
      } finally {
        await alice.stop();
        await carol.stop();
      }
    }),
  );

  it(
    '[ejabberd-api] a password reset link sets a new password: the old one stops working, the new one logs in, the link is used up',
    withLog(async () => {
      await ejabberd.register('ejabberdapireset', 'old-password-1');
      const resets = service.app.resets;
      const { links } = resets.create(OPERATOR, 'ejabberdapireset', await provisioner.accountExists('ejabberdapireset'));
      const done = await resets.use(links.token, 'new-password-1', provisioner, null);
      expect(done.state).toBe('used');
      expect(await canLogIn('ejabberdapireset', 'old-password-1')).toBe(false);
      expect(await canLogIn('ejabberdapireset', 'new-password-1')).toBe(true);
      await expect(resets.use(links.token, 'newer-password-1', provisioner, null)).rejects.toMatchObject({ code: 'invite-not-found' });
      expect(await provisioner.setPassword('no-such-user', 'whatever-1')).toEqual({ kind: 'no-account' });
      expect(() => resets.create(OPERATOR, 'no-such-user', false)).toThrow(/There is no account/);
    }),
  );

  it(
    '[ejabberd-api] does not take a wrong URL for "no such account"',
    withLog(async () => {
      const wrong = new EjabberdApiProvisioner({ url: `http://127.0.0.1:${ejabberd.ports.http}/not-the-api`, host: ejabberd.host, timeoutMs: 5_000 });
      await expect(wrong.accountExists('alice')).rejects.toMatchObject({ name: 'ProvisionUnclear' });
      await expect(wrong.accountExists('no-such-user')).rejects.toMatchObject({ name: 'ProvisionUnclear' });
    }),
  );
});

it(
  'serve exits 1 with a message naming component.secret when ejabberd refuses the secret',
  withLog(async () => {
    const dir = mkdtempSync(join(ejabberd.dir, 'serve-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      stringify(
        rawTestConfig({
          component: { server: ejabberd.componentUrl(), domain: COMPONENT, secret: 'not-the-secret' },
          host: ejabberd.host,
          database: './invites.sqlite',
        }),
      ),
    );
    // `node --import tsx` runs the CLI in the child itself: signals and kill reach the service.
    const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), 'serve', '--config', file], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, XMPP_INVITES_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(timer);
    expect({ code, out }).toMatchObject({ code: 1 });
    expect(out).toMatch(/component\.secret/);
    expect(out).not.toContain('not-the-secret');
  }),
);
