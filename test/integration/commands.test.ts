/**
 * The foundation against a real Prosody: real client sessions run the XEP-0401 commands on the
 * component, and the database never holds what the token could be recovered from.
 */
import { everyRow, openStoreOf } from '../support/engine';
import { adhoc, commandNotes, commandOf, errorCondition, formFields, TestClient, xml } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';

let prosody: TestProsody;
let service: RunningService;
let alice: TestClient;
let admin: TestClient;

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    hostAdmins: [COMPONENT],
    anonymousHost: 'anon.localhost',
  });
  await prosody.register('alice', 'alice-password');
  await prosody.register('admin', 'admin-password');
  service = await startService(
    serviceConfig(prosody, { admins: ['admin@localhost'], invites: { approval: 'none' }, registration: { requester_domains: ['anon.localhost'] } }),
  );
  alice = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
  admin = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'admin', password: 'admin-password' });
});

afterAll(async () => {
  await alice?.stop();
  await admin?.stop();
  await service?.stop();
  await prosody?.stop();
});

function tokenOf(uri: string): string {
  return /preauth=([A-Za-z0-9_-]+)/.exec(uri)![1];
}

it('answers New Invite with an XEP-0401 invitation whose token the store accepts and cannot recover', async () => {
  const reply = await adhoc(alice, COMPONENT, 'urn:xmpp:invite#invite', { action: 'execute' });
  expect(reply.attrs.type).toBe('result');
  expect(commandOf(reply)?.attrs.status).toBe('completed');
  const f = formFields(reply);
  expect(f.FORM_TYPE).toEqual(['urn:xmpp:invite#invitation']);
  expect(f.uri[0]).toMatch(/^xmpp:alice@localhost\?roster;preauth=[A-Za-z0-9_-]{34}$/);
  const token = tokenOf(f.uri[0]);
  expect(f['landing-url']).toEqual([`https://invites.example.org/i/${token}`]);
  expect(f.expire[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const invite = service.app.invites.findByToken(token);
  expect(invite).toMatchObject({ kind: 'contact-account', state: 'open', inviter: 'alice@localhost' });

  // Nothing in the store holds the token or its MAC.
  const everything = everyRow(service.config.database);
  expect(everything).not.toContain(token);
  expect(everything).not.toContain(token.slice(10));
});

it('lets an admin run Create account invite the way Conversations does', async () => {
  const first = await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account', { action: 'execute' });
  const cmd = commandOf(first)!;
  expect(cmd.attrs.status).toBe('executing');
  const done = await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account', {
    sessionid: cmd.attrs.sessionid,
    action: 'execute',
    fields: { username: 'juliet', 'roster-subscription': true },
  });
  expect(commandOf(done)?.attrs.status).toBe('completed');
  const f = formFields(done);
  expect(f.uri[0]).toMatch(/^xmpp:juliet@localhost\?register;preauth=[A-Za-z0-9_-]{34}$/);
  const invite = service.app.invites.findByToken(tokenOf(f.uri[0]));
  expect(invite).toMatchObject({ kind: 'account-locked', username: 'juliet', rosterSubscription: true, inviter: 'admin@localhost' });
  // No bridge here: the note leads with the link to share, the web page.
  expect(commandNotes(done)[0].text).toBe(
    `Share this link with the person you invite: ${f['landing-url'][0]}\n` +
      'It opens a web page where they choose a username and a password, and which shows them the apps to use. ' +
      'The app link below does not work on this server (it needs the xmpp-invites server module).',
  );
});

it('hides Create account invite from a non-admin and refuses it with forbidden', async () => {
  const items = await alice.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: 'http://jabber.org/protocol/commands' })));
  const nodes = items.getChild('query')!.getChildren('item').map((i) => i.attrs.node);
  expect(nodes).toContain('urn:xmpp:invite#invite');
  expect(nodes).not.toContain('urn:xmpp:invite#create-account');
  const before = service.app.invites.count({});
  expect(errorCondition(await adhoc(alice, COMPONENT, 'urn:xmpp:invite#create-account'))).toBe('forbidden');
  expect(service.app.invites.count({})).toBe(before);
});

it('refuses a JID outside the host with forbidden', async () => {
  const anon = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
  try {
    const before = service.app.invites.count({});
    expect(errorCondition(await adhoc(anon, COMPONENT, 'urn:xmpp:invite#invite'))).toBe('forbidden');
    expect(service.app.invites.count({})).toBe(before);
  } finally {
    await anon.stop();
  }
});

it('answers bad-sessionid for an unknown session and session-expired for a finished one', async () => {
  const unknown = await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account', { sessionid: 'no-such-session', action: 'complete', fields: {} });
  expect(errorCondition(unknown)).toBe('bad-request');
  expect(unknown.getChild('error')!.getChild('bad-sessionid', 'http://jabber.org/protocol/commands')).toBeDefined();

  const first = commandOf(await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account'))!;
  await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account', { sessionid: first.attrs.sessionid, action: 'complete', fields: {} });
  const again = await adhoc(admin, COMPONENT, 'urn:xmpp:invite#create-account', { sessionid: first.attrs.sessionid, action: 'complete', fields: {} });
  expect(errorCondition(again)).toBe('not-allowed');
  expect(again.getChild('error')!.getChild('session-expired', 'http://jabber.org/protocol/commands')).toBeDefined();
});

it('describes itself in disco#info, offering registration only to the sign-up domain', async () => {
  const discoInfo = xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
  const info = await alice.iq(discoInfo);
  const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
  expect(features).toContain('http://jabber.org/protocol/commands');
  expect(features).not.toContain('jabber:iq:register');
  expect(features).not.toContain('urn:xmpp:pars:0');
  expect(info.getChild('query')!.getChild('identity')?.attrs.category).toBe('component');
  const anon = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
  try {
    const anonInfo = await anon.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const anonFeatures = anonInfo.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    expect(anonFeatures).toEqual(expect.arrayContaining(['http://jabber.org/protocol/commands', 'jabber:iq:register', 'urn:xmpp:pars:0']));
  } finally {
    await anon.stop();
  }
});

it('comes back online after Prosody restarts, and commands work again', async () => {
  const offline = new Promise<void>((resolve) => service.app.connection.once('offline', () => resolve()));
  const online = new Promise<void>((resolve) => service.app.connection.once('online', () => resolve()));
  const started = Date.now();
  await prosody.restart();
  await offline;
  await online;
  console.log(`component back online ${Date.now() - started} ms after the restart began`);
  const client = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
  try {
    const reply = await adhoc(client, COMPONENT, 'urn:xmpp:invite#invite');
    expect(commandOf(reply)?.attrs.status).toBe('completed');
  } finally {
    await client.stop();
  }
  alice = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
  admin = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'admin', password: 'admin-password' });
});

it('never writes a token, password or secret to its logs', async () => {
  const reply = await adhoc(alice, COMPONENT, 'urn:xmpp:invite#invite');
  const token = tokenOf(formFields(reply).uri[0]);
  const logs = service.logs.text();
  expect(logs.length).toBeGreaterThan(0);
  expect(logs).toContain('urn:xmpp:invite#invite'); // stanzas are logged at debug level, sanitised
  expect(logs).not.toContain(token);
  expect(logs).not.toContain(COMPONENT_SECRET);
  expect(logs).not.toContain(service.config.tokenKey);
  expect(logs).not.toContain('alice-password');
});

// Last: it stops the service, and starts it again.
it('answers a New Invite’s ended session session-expired after a restart, having stored nothing for it', async () => {
  const reply = await adhoc(alice, COMPONENT, 'urn:xmpp:invite#invite');
  const sessionid = commandOf(reply)!.attrs.sessionid!;
  expect(errorCondition(await adhoc(alice, COMPONENT, 'urn:xmpp:invite#invite', { sessionid }))).toBe('not-allowed');
  await service.stop();
  const db = openStoreOf(service.config.database);
  try {
    expect(db.prepare('SELECT count(*) AS n FROM command_sessions WHERE node = ?').get('urn:xmpp:invite#invite')).toEqual({ n: 0 });
  } finally {
    db.close();
  }
  // The id carries its own proof, keyed from token_key: the next process knows it too.
  service = await startService(service.config);
  const again = await adhoc(alice, COMPONENT, 'urn:xmpp:invite#invite', { sessionid });
  expect(errorCondition(again)).toBe('not-allowed');
  expect(again.getChild('error')?.getChild('session-expired', 'http://jabber.org/protocol/commands')).toBeDefined();
});
