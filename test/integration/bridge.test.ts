/**
 * The Prosody bridge module (bridge/mod_xmpp_invites.lua) against a real Prosody and the real
 * service: clients register AT THE SERVER with XEP-0445 (raw unauthenticated streams, as
 * Conversations does when it follows `register;preauth=` and `roster;preauth=…;ibr=y` URIs), the
 * module checks and spends the component's invites, and never lets a registration through when the
 * component cannot be asked.
 */
import { OPERATOR } from '../../src/domain/types';
import { accountChecksFor } from '../../src/services';
import { openStore } from '../../src/store/database';
import type { Element } from '../../src/xmpp/xml';
import { adhoc, commandNotes, errorCondition, formFields, TestClient, xml, type XmlElement, canLogIn as canLogInAt } from '../support/client';
import { TestProsody } from '../support/prosody';
import { NS_REGISTER, RawStream, stanzaError } from '../support/raw-stream';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';

const NS_BRIDGE = 'urn:xmpp-invites:bridge:0';
const NS_PARS = 'urn:xmpp:pars:0';
const NS_ROSTER = 'jabber:iq:roster';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const NS_COMMANDS = 'http://jabber.org/protocol/commands';

let prosody: TestProsody;
let service: RunningService;
const clients: TestClient[] = [];
const streams: RawStream[] = [];
/** Every token and password used: none may appear in Prosody's log. */
const secrets: string[] = [];

const BRIDGE_SERVICE = { registration: { server_bridge: true }, invites: { approval: 'none' }, admins: ['admin@localhost'] };

beforeAll(async () => {
  // No `admins` under the VirtualHost: the component has no rights on the server.
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    anonymousHost: 'anon.localhost',
    pluginPaths: ['bridge'],
    hostConfig: ['  modules_enabled = { "xmpp_invites" }', `  xmpp_invites_component = "${COMPONENT}"`].join('\n'),
  });
  for (const user of ['alice', 'bob', 'carol', 'admin']) await prosody.register(user, `${user}-password`);
  service = await startService(serviceConfig(prosody, BRIDGE_SERVICE), { provisionTimeoutMs: 5_000 });
});

afterEach(async () => {
  await Promise.all(streams.splice(0).map((s) => s.close()));
  await Promise.all(clients.splice(0).map((c) => c.stop()));
});

afterAll(async () => {
  await service?.stop();
  await prosody?.stop();
});

// ------------------------------------------------------------------------------------------------

async function login(username: string, password = `${username}-password`): Promise<TestClient> {
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username, password });
  clients.push(c);
  // Ask for the roster: only "interested" resources receive roster pushes and subscription presences.
  await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
  return c;
}

const canLogIn = (username: string, password: string) => canLogInAt(prosody.ports.c2s, username, password);

async function stream(): Promise<RawStream> {
  const s = await RawStream.open(prosody.ports.c2s, 'localhost');
  streams.push(s);
  return s;
}

/** Remembers secrets (tokens, passwords) that must never reach the log; returns the first. */
function track(...values: string[]): string {
  secrets.push(...values);
  return values[0];
}

function tokenOf(uri: string): string {
  return /preauth=([A-Za-z0-9_-]+)/.exec(uri)![1];
}

function accountInvite(opts: { username?: string; expiresIn?: number; maxUses?: number } = {}) {
  const created = service.app.invites.create(OPERATOR, { kind: 'account', source: 'cli', ...opts });
  track(created.links.token);
  return created;
}

async function newInviteOf(client: TestClient): Promise<string> {
  const reply = await adhoc(client, COMPONENT, 'urn:xmpp:invite#invite', { action: 'execute' });
  expect(reply.attrs.type).toBe('result');
  const uri = formFields(reply).uri[0];
  track(tokenOf(uri));
  return uri;
}

async function rosterItem(client: TestClient, jid: string): Promise<XmlElement | undefined> {
  const reply = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
  return reply
    .getChild('query', NS_ROSTER)
    ?.getChildren('item')
    .find((i) => i.attrs.jid === jid);
}

async function eventually<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${prosody.log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expectError(reply: Element, condition: string, type?: string): void {
  const err = stanzaError(reply);
  expect({ type: reply.attrs.type, condition: err?.condition, ...(type ? { errorType: err?.type } : {}) }).toEqual({
    type: 'error',
    condition,
    ...(type ? { errorType: type } : {}),
  });
}

// ------------------------------------------------------------------------------------------------

describe('registration at the server (XEP-0445)', () => {
  it('follows a register;preauth= URI from create-account: registers, logs in, spends the invite', async () => {
    const { invite, links } = accountInvite();
    expect(links.uri).toBe(`xmpp:localhost?register;preauth=${links.token}`);

    const s = await stream();
    expect(s.hasFeature('register', 'urn:xmpp:ibr-token:0')).toBe(true);
    expect(s.hasFeature('register', 'urn:xmpp:invite')).toBe(true);
    expect((await s.preauth(links.token)).attrs.type).toBe('result');
    const form = await s.registrationForm();
    expect(form.getChild('query', NS_REGISTER)?.getChild('username')).toBeDefined();
    track('romeo-password-1');
    expect((await s.register('romeo', 'romeo-password-1')).attrs.type).toBe('result');

    expect(await canLogIn('romeo', 'romeo-password-1')).toBe(true);
    // user-registered → settle done: the use is spent and the invite records who redeemed it.
    await eventually('the settle', () => service.app.invites.get(invite.id)?.state === 'exhausted');
    expect(service.app.invites.get(invite.id)).toMatchObject({ uses: 1, held: 0 });
    expect(service.app.invites.events(invite.id).map((e) => e.type)).toEqual(['created', 'redeemed']);
    expect(service.app.registration.heldClaims()).toEqual([]);
  });

  it('accepts the token as a field of the registration form, without a preauth', async () => {
    const { invite, links } = accountInvite();
    const s = await stream();
    track('formuser-password');
    expect((await s.register('formuser', 'formuser-password', { formToken: links.token })).attrs.type).toBe('result');
    expect(await canLogIn('formuser', 'formuser-password')).toBe(true);
    await eventually('the settle', () => service.app.invites.get(invite.id)?.state === 'exhausted');
  });

  it('keeps a locked invite to its username', async () => {
    const { links } = accountInvite({ username: 'juliet' });
    expect(links.uri).toBe(`xmpp:juliet@localhost?register;preauth=${links.token}`);
    const s = await stream();
    expect((await s.preauth(links.token)).attrs.type).toBe('result');
    track('juliet-password');
    expectError(await s.register('mallory', 'juliet-password'), 'forbidden');
    expect(await prosody.userExists('mallory')).toBe(false);
    expect((await s.register('juliet', 'juliet-password')).attrs.type).toBe('result');
    expect(await canLogIn('juliet', 'juliet-password')).toBe(true);
  });

  it('refuses bad, used and expired tokens with item-not-found, and no token with not-acceptable', async () => {
    const used = accountInvite();
    const first = await stream();
    expect((await first.preauth(used.links.token)).attrs.type).toBe('result');
    track('used-password');
    expect((await first.register('usedonce', 'used-password')).attrs.type).toBe('result');
    await eventually('the settle', () => service.app.invites.get(used.invite.id)?.state === 'exhausted');

    const expired = accountInvite({ expiresIn: 1 });
    await sleep(20);
    const bad = track('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');

    const s = await stream();
    for (const token of [bad, used.links.token, expired.links.token]) {
      expectError(await s.preauth(token), 'item-not-found', 'cancel');
      // The same token in the form, without a preauth, gets the same answer at registration.
      expectError(await s.register('nobody1', 'nobody-password', { formToken: token }), 'item-not-found', 'cancel');
    }
    const reply = await s.register('nobody2', 'nobody-password');
    expectError(reply, 'not-acceptable');
    expect(stanzaError(reply)?.text).toBe('Registration on this server is through invitation only');
    expect(await prosody.userExists('nobody1')).toBe(false);
    expect(await prosody.userExists('nobody2')).toBe(false);
  });

  it('does not check expiry again for a token that passed the preauth on the same stream', async () => {
    const { invite, links } = accountInvite({ expiresIn: 1_500 });
    const s = await stream();
    expect((await s.preauth(links.token)).attrs.type).toBe('result');
    await sleep(1_600);
    track('latecomer-password');
    expect((await s.register('latecomer', 'latecomer-password')).attrs.type).toBe('result');
    await eventually('the settle', () => service.app.invites.get(invite.id)?.state === 'exhausted');
  });

  it('lets exactly one of two racing streams register with a single-use token', async () => {
    const { invite, links } = accountInvite();
    const [a, b] = await Promise.all([stream(), stream()]);
    expect((await a.preauth(links.token)).attrs.type).toBe('result');
    expect((await b.preauth(links.token)).attrs.type).toBe('result');
    track('racer-password');
    const replies = await Promise.all([a.register('racer1', 'racer-password'), b.register('racer2', 'racer-password')]);
    expect(replies.map((r) => r.attrs.type).sort()).toEqual(['error', 'result']);
    const refused = replies.find((r) => r.attrs.type === 'error')!;
    expect(stanzaError(refused)?.condition).toBe('item-not-found');
    const exists = [await prosody.userExists('racer1'), await prosody.userExists('racer2')];
    expect(exists.filter(Boolean)).toHaveLength(1);
    await eventually('the settle', () => service.app.invites.get(invite.id)?.state === 'exhausted');
    expect(service.app.invites.get(invite.id)).toMatchObject({ uses: 1, held: 0 });
  });

  it('frees the use at once when the registration fails after the claim', async () => {
    const { invite, links } = accountInvite();
    // Make the account appear between the claim and Prosody's creation: the claim's answer is held
    // back until `victim` exists (created behind the module's back with prosodyctl).
    const conn = service.app.connection;
    const originalSend = conn.send;
    conn.send = async (el: Element) => {
      const claim = el.name === 'iq' && el.attrs.type === 'result' ? el.getChild('claim', NS_BRIDGE) : undefined;
      if (claim && service.app.registration.getClaim(claim.attrs.id!)?.username === 'victim') {
        await prosody.register('victim', 'someone-elses-password');
      }
      return originalSend.call(conn, el);
    };
    let claimId: string | undefined;
    try {
      const s = await stream();
      expect((await s.preauth(links.token)).attrs.type).toBe('result');
      track('victim-password', 'someone-elses-password');
      const started = Date.now();
      expectError(await s.register('victim', 'victim-password'), 'conflict');
      const claim = (await eventually('the settled claim', () => {
        const c = findClaim(invite.id, 'victim');
        return c && c.state !== 'held' ? c : undefined;
      }))!;
      claimId = claim.id;
      expect(claim.state).toBe('released');
      // Released by the module's settle, well within the claim lifetime (60 s), not by reconciliation.
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      conn.send = originalSend;
    }
    expect(claimId).toBeDefined();
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
    expect(await canLogIn('victim', 'victim-password')).toBe(false);

    // The use was not burnt: the same token still registers someone.
    const again = await stream();
    expect((await again.preauth(links.token)).attrs.type).toBe('result');
    track('survivor-password');
    expect((await again.register('survivor', 'survivor-password')).attrs.type).toBe('result');
    await eventually('the settle', () => service.app.invites.get(invite.id)?.state === 'exhausted');
  });
});

/** The claim of `username` on invite `inviteId`, through the service's database. */
function findClaim(inviteId: string, username: string) {
  const row = service.app.db
    .prepare<[string, string], { id: string }>('SELECT id FROM claims WHERE invite_id = ? AND username = ? ORDER BY created_at DESC')
    .get(inviteId, username);
  return row ? service.app.registration.getClaim(row.id) : undefined;
}

describe('contact invites', () => {
  it('follows a roster;preauth;ibr=y URI from New Invite: the new account and the inviter are contacts (both)', async () => {
    const alice = await login('alice');
    const uri = await newInviteOf(alice);
    expect(uri).toMatch(/^xmpp:alice@localhost\?roster;preauth=[A-Za-z0-9_-]+;ibr=y$/);
    const token = tokenOf(uri);

    const s = await stream();
    expect((await s.preauth(token)).attrs.type).toBe('result');
    track('dan-password');
    expect((await s.register('dan', 'dan-password')).attrs.type).toBe('result');

    // link-contacts: a roster push to the inviter's online resource (XEP-0401 §3.4).
    const push = await alice.waitFor(
      (st) =>
        st.name === 'iq' &&
        st.attrs.type === 'set' &&
        st.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.jid === 'dan@localhost' &&
        st.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.subscription === 'both',
      20_000,
    );
    expect(push).toBeDefined();
    expect((await rosterItem(alice, 'dan@localhost'))?.attrs.subscription).toBe('both');

    const dan = await login('dan', 'dan-password');
    expect((await rosterItem(dan, 'alice@localhost'))?.attrs.subscription).toBe('both');
    const invite = service.app.invites.findByToken(token)!;
    expect(invite).toMatchObject({ state: 'exhausted', uses: 1 });
  });

  it('pre-approves a subscription carrying the inviter\'s token (XEP-0379), but not one to another user', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const carol = await login('carol');
    const token = tokenOf(await newInviteOf(alice));
    const invite = service.app.invites.findByToken(token)!;

    // alice's token presented to carol: an ordinary request that waits for carol, nothing spent.
    await bob.send(xml('presence', { type: 'subscribe', to: 'carol@localhost' }, xml('preauth', { xmlns: NS_PARS, token })));
    const request = await carol.waitFor((st) => st.name === 'presence' && st.attrs.type === 'subscribe' && st.attrs.from === 'bob@localhost');
    expect(request).toBeDefined();
    await sleep(500);
    expect(bob.unconsumed().some((st) => st.name === 'presence' && st.attrs.type === 'subscribed' && st.attrs.from === 'carol@localhost')).toBe(false);
    expect(carol.unconsumed().filter((st) => st.name === 'presence' && st.attrs.type === 'subscribe')).toEqual([]);
    expect((await rosterItem(carol, 'bob@localhost'))?.attrs.subscription ?? 'none').toBe('none');
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0 });

    // The same token presented to alice: approved, and alice asks back.
    await bob.send(xml('presence', { type: 'subscribe', to: 'alice@localhost' }, xml('preauth', { xmlns: NS_PARS, token })));
    await bob.waitFor((st) => st.name === 'presence' && st.attrs.type === 'subscribed' && st.attrs.from === 'alice@localhost');
    await bob.waitFor((st) => st.name === 'presence' && st.attrs.type === 'subscribe' && st.attrs.from === 'alice@localhost');
    expect((await rosterItem(alice, 'bob@localhost'))?.attrs.subscription).toBe('from');
    // alice never saw a request to answer.
    expect(alice.unconsumed().some((st) => st.name === 'presence' && st.attrs.type === 'subscribe')).toBe(false);
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1 });
  });
});

describe('discovery', () => {
  it("lists the component's New Invite on the host's commands node, and the bridge feature", async () => {
    const alice = await login('alice');
    const items = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_ITEMS, node: NS_COMMANDS })));
    expect(items.attrs.type).toBe('result');
    const listed = items.getChild('query', NS_DISCO_ITEMS)!.getChildren('item').map((i) => ({ ...i.attrs }));
    expect(listed).toContainEqual({ jid: COMPONENT, node: 'urn:xmpp:invite#invite', name: 'New Invite' });
    // Admin commands are the component's admins' only.
    expect(listed.some((i) => i.node === 'urn:xmpp-invites:0#pending')).toBe(false);

    const admin = await login('admin');
    const adminItems = await admin.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_ITEMS, node: NS_COMMANDS })));
    const adminNodes = adminItems.getChild('query', NS_DISCO_ITEMS)!.getChildren('item').map((i) => i.attrs.node);
    expect(adminNodes).toContain('urn:xmpp:invite#create-account');

    const info = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
    const features = info.getChild('query', NS_DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
    expect(features).toContain(NS_BRIDGE);
  });
});

describe('settles', () => {
  it('keeps a settle the component did not acknowledge in storage and delivers it after a restart', async () => {
    const { invite, links } = accountInvite();
    const registration = service.app.registration;
    let refusals = 0;
    // The component fails to record the outcome (internal-server-error): the module must keep it.
    registration.settleDone = async () => {
      refusals++;
      throw new Error('simulated failure while settling');
    };
    try {
      const s = await stream();
      expect((await s.preauth(links.token)).attrs.type).toBe('result');
      track('persisted-password');
      expect((await s.register('persisted', 'persisted-password')).attrs.type).toBe('result');
      await eventually('the refused settle', () => refusals > 0);
    } finally {
      delete (registration as { settleDone?: unknown }).settleDone; // back to the prototype's
    }
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'open', held: 1 });

    await prosody.restart();
    // Sent again from storage once the component is back, long before the component would
    // reconcile the claim itself (60 s), so the outcome is the module's.
    const claim = (await eventually('the settle after the restart', () => {
      const c = findClaim(invite.id, 'persisted');
      return c && c.state !== 'held' ? c : undefined;
    }, 40_000))!;
    expect(claim).toMatchObject({ state: 'spent', outcome: 'created at the server' });
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
    expect(await canLogIn('persisted', 'persisted-password')).toBe(true);
  });
});

describe('without the component', () => {
  it('refuses registration with a temporary error (wait), never allows it', async () => {
    const { links } = accountInvite();
    const early = await stream();
    expect((await early.preauth(links.token)).attrs.type).toBe('result');

    await service.stop();
    try {
      // A preauth that succeeded before is no licence: the claim cannot be made.
      track('orphan-password');
      expectError(await early.register('orphan1', 'orphan-password'), 'service-unavailable', 'wait');

      const s = await stream();
      expectError(await s.preauth(links.token), 'service-unavailable', 'wait');
      expectError(await s.register('orphan2', 'orphan-password', { formToken: links.token }), 'service-unavailable', 'wait');
      expectError(await s.register('orphan3', 'orphan-password'), 'service-unavailable', 'wait');
      for (const u of ['orphan1', 'orphan2', 'orphan3']) expect(await prosody.userExists(u)).toBe(false);

      // The host lists none of the component's commands when it cannot ask.
      const alice = await login('alice');
      const items = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_ITEMS, node: NS_COMMANDS })));
      expect(items.attrs.type).toBe('result');
      // (cached for a minute per user: bob has not asked before)
      const bob = await login('bob');
      const bobItems = await bob.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_ITEMS, node: NS_COMMANDS })));
      expect(bobItems.getChild('query', NS_DISCO_ITEMS)!.getChildren('item').filter((i) => i.attrs.jid === COMPONENT)).toEqual([]);
    } finally {
      service = await startService(service.config, { provisionTimeoutMs: 5_000 });
    }
  });
});

describe('the prosody-bridge provisioner', () => {
  it('creates accounts through the module, with the component not listed in admins', async () => {
    await service.stop();
    service = await startService(
      serviceConfig(prosody, {
        ...BRIDGE_SERVICE,
        registration: { server_bridge: true, provisioner: { type: 'prosody-bridge' }, requester_domains: ['anon.localhost'] },
      }),
      { provisionTimeoutMs: 5_000 },
    );
    const { invite, links } = accountInvite();
    // Registration at the component JID (XEP-0077) from an anonymous session.
    const anon = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
    clients.push(anon);
    const pre = await anon.iq(xml('iq', { type: 'set', to: COMPONENT }, xml('preauth', { xmlns: NS_PARS, token: links.token })));
    expect(pre.attrs.type).toBe('result');
    track('viaprov-password');
    const reply = await anon.iq(
      xml(
        'iq',
        { type: 'set', to: COMPONENT },
        xml('query', { xmlns: NS_REGISTER }, xml('username', {}, 'viaprov'), xml('password', {}, 'viaprov-password')),
      ),
      20_000,
    );
    expect(errorCondition(reply) ?? reply.attrs.type).toBe('result');
    expect(await canLogIn('viaprov', 'viaprov-password')).toBe(true);
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1 });
    // The create-account IQ went out at debug level with its password attribute masked.
    const outLines = service.logs.lines.filter((l) => l.includes('create-account'));
    expect(outLines.length).toBeGreaterThan(0);
    expect(outLines.join('\n')).toContain('password=\\"[redacted]\\"');
    expect(service.logs.text()).not.toContain('viaprov-password');

    // A username that exists is a conflict, and the invite stays usable.
    const second = accountInvite();
    const anon2 = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
    clients.push(anon2);
    const dup = await anon2.iq(
      xml(
        'iq',
        { type: 'set', to: COMPONENT },
        xml('query', { xmlns: NS_REGISTER }, xml('username', {}, 'alice'), xml('password', {}, 'whatever-password'), xml('token', {}, second.links.token)),
      ),
      20_000,
    );
    expect(errorCondition(dup)).toBe('conflict');
    expect(service.app.invites.get(second.invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
  });
});

describe('password reset links through the bridge', () => {
  it('sets the new password with set-password: the old one stops working, the new one logs in; a missing account is item-not-found', async () => {
    const bridge = service.app.bridge!;
    const { links } = service.app.resets.create(OPERATOR, 'carol', await bridge.accountExists('carol'));
    track('carol-new-password');
    const done = await service.app.resets.use(links.token, 'carol-new-password', bridge, null);
    expect(done.state).toBe('used');
    expect(await canLogIn('carol', 'carol-password')).toBe(false);
    expect(await canLogIn('carol', 'carol-new-password')).toBe(true);
    await expect(service.app.resets.use(links.token, 'carol-newer-password', bridge, null)).rejects.toMatchObject({ code: 'invite-not-found' });
    expect(await bridge.setPassword('no-such-user', 'whatever-password')).toEqual({ kind: 'no-account' });
    // The set-password IQ went out with its password attribute masked.
    expect(service.logs.lines.filter((l) => l.includes('set-password')).join('\n')).toContain('password=\\"[redacted]\\"');
    expect(service.logs.text()).not.toContain('carol-new-password');
  });

  it("answers the command line's question whether an account exists through the bridge (a reset link is made only for one that does)", async () => {
    expect(service.config.registration.provisioner.type).toBe('prosody-bridge');
    // Another connection to the store, as the command line opens (it talks no XMPP).
    const store = openStore(service.config.database);
    try {
      const checks = accountChecksFor(store);
      await expect(checks.ask('operator', 'Carol', { waitMs: 10_000 })).resolves.toMatchObject({ kind: 'exists', by: service.app.instanceId });
      await expect(checks.ask('operator', 'no-such-user', { waitMs: 10_000 })).resolves.toMatchObject({ kind: 'missing', by: service.app.instanceId });
    } finally {
      store.close();
    }
    // Asked of the server through the bridge's account-exists.
    expect(service.logs.lines.filter((l) => l.includes('account-exists') && l.includes('no-such-user')).length).toBeGreaterThan(0);
  });
});

describe('logging', () => {
  it('never writes a token or a password to Prosody\'s log', () => {
    const log = prosody.log();
    expect(log).toContain('xmpp_invites');
    for (const secret of secrets.filter((s) => s.length >= 8)) expect(log).not.toContain(secret);
  });
});

describe("beside Prosody's own invites", () => {
  // Prosody 13's Debian config enables mod_invites_register globally. The module refuses to load
  // beside it; loaded before it, it stays and refuses every preauth and registration (fails closed).
  let other: TestProsody;

  beforeAll(async () => {
    other = await TestProsody.start({
      pluginPaths: ['bridge'],
      hostAdmins: ['admin@localhost'],
      hostConfig: ['  modules_enabled = { "xmpp_invites" }', `  xmpp_invites_component = "${COMPONENT}"`].join('\n'),
    });
    await other.register('admin', 'admin-password');
  });

  afterAll(async () => {
    await other?.stop();
  });

  it('refuses preauth and registration while mod_invites_register is loaded, and logs it in clean lines', async () => {
    const admin = await TestClient.connect({ port: other.ports.c2s, domain: 'localhost', username: 'admin', password: 'admin-password' });
    clients.push(admin);
    const loaded = await adhoc(admin, 'localhost', 'http://prosody.im/protocol/modules#load', {
      action: 'complete',
      fields: { FORM_TYPE: 'http://prosody.im/protocol/modules#load', module: 'invites_register' },
    });
    expect(commandNotes(loaded)).toEqual([{ type: 'info', text: 'Module "invites_register" successfully loaded on host "localhost".' }]);

    const s = await RawStream.open(other.ports.c2s, 'localhost');
    streams.push(s);
    expectError(await s.preauth('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 'service-unavailable', 'wait');
    // (mod_invites_register's own check refuses this one first: not-acceptable, "through invitation only".)
    expect((await s.register('blocked', 'blocked-password', { formToken: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })).attrs.type).toBe('error');
    expect(await other.userExists('blocked')).toBe(false);

    // Each refusal is one log line naming the module, and nothing after it (no stray "[true]").
    const log = other.log();
    expect(log).toContain(
      '\terror\tmod_invites_register was loaded beside mod_xmpp_invites: registration on localhost is refused until it is unloaded: ' +
        'write modules_disabled = { "invites", "invites_adhoc", "invites_register" } under VirtualHost "localhost" ' +
        '(or remove them from the global modules_enabled)\n',
    );
    expect(log).toMatch(/\terror\tRefusing a preauth: mod_invites_register is loaded beside mod_xmpp_invites\n/);
  });

  // Debian's prosody.cfg.lua (bookworm's 0.12, and 13 from backports) enables all three globally;
  // the README tells operators to disable them under each VirtualHost, the anonymous one included.
  const DEBIAN_GLOBAL = ['invites', 'invites_adhoc', 'invites_register'];
  const README_LINE = '  modules_disabled = { "invites", "invites_adhoc", "invites_register" }';

  async function debianLike(disable: boolean): Promise<TestProsody> {
    const p = await TestProsody.start({
      pluginPaths: ['bridge'],
      modules: DEBIAN_GLOBAL,
      anonymousHost: 'anon.localhost',
      hostConfig: ['  modules_enabled = { "xmpp_invites" }', `  xmpp_invites_component = "${COMPONENT}"`, disable ? README_LINE : ''].join('\n'),
      anonymousHostConfig: disable ? README_LINE : '',
    });
    await p.register('alice', 'alice-password');
    return p;
  }

  /** What a client sees: the bridge's feature on the host, and the commands an anonymous session is offered. */
  async function seen(p: TestProsody): Promise<{ bridge: boolean; anonCommands: string[] }> {
    const alice = await TestClient.connect({ port: p.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
    clients.push(alice);
    const info = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
    const bridge = !!info.getChild('query', NS_DISCO_INFO)?.getChildren('feature').some((f) => f.attrs.var === NS_BRIDGE);
    const anon = await TestClient.connect({ port: p.ports.c2s, domain: 'anon.localhost', anonymous: true });
    clients.push(anon);
    const items = await anon.iq(xml('iq', { type: 'get', to: 'anon.localhost' }, xml('query', { xmlns: NS_DISCO_ITEMS, node: NS_COMMANDS })));
    const anonCommands = (items.getChild('query', NS_DISCO_ITEMS)?.getChildren('item') ?? []).map((i) => String(i.attrs.node));
    return { bridge, anonCommands };
  }

  it("with Prosody's invites enabled globally as in Debian's config, the README's modules_disabled lines let the bridge run and keep them from anonymous sessions", async () => {
    const plain = await debianLike(false);
    try {
      // Without the lines: the bridge refuses to load, or (when it loaded first) to register anyone,
      // and says what to write; anonymous sessions may create Prosody's own invites (one file each
      // on internal storage).
      expect(plain.log()).toMatch(/\terror\t.*beside .*write modules_disabled = \{ "invites", "invites_adhoc", "invites_register" \} under VirtualHost "localhost"/);
      expect((await seen(plain)).anonCommands).toContain('urn:xmpp:invite#invite');
    } finally {
      await plain.stop();
    }

    const fixed = await debianLike(true);
    try {
      expect(fixed.log()).not.toContain('beside');
      const after = await seen(fixed);
      expect(after.bridge).toBe(true);
      expect(after.anonCommands.filter((n) => n.startsWith('urn:xmpp:invite#'))).toEqual([]);
    } finally {
      await fixed.stop();
    }
  });
});
