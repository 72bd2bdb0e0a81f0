/**
 * Invite requests carried in presence, end to end on a real Prosody with real client sessions:
 * directed and broadcast presence, replays, two resources at once, admins, bad addresses,
 * structural faults, other domains, subscriptions, and what the inviter and a JID invitee are told
 * afterwards (approved, declined, expired, joined, invitation).
 */
import { adhoc, commandOf, errorCondition, errorText, TestClient, xml, type XmlElement } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';

const NS = 'urn:xmpp-invites:0';
/** A second component on the same server, for a service whose invites live one second. */
const SHORT = 'invites-short.localhost';
const USERS = ['alice', 'admin', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan'] as const;
const password = (u: string) => `${u}-password`;

let prosody: TestProsody;
let service: RunningService;
const clients: TestClient[] = [];

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [
      { domain: COMPONENT, secret: COMPONENT_SECRET },
      { domain: SHORT, secret: COMPONENT_SECRET },
    ],
    hostAdmins: [COMPONENT],
    anonymousHost: 'anon.localhost',
  });
  for (const u of USERS) await prosody.register(u, password(u));
  service = await startService(
    serviceConfig(prosody, {
      admins: ['admin@localhost'],
      presence: { max_invitees: 4, max_message_length: 40 },
      registration: { requester_domains: ['anon.localhost'] },
    }),
  );
});

afterAll(async () => {
  for (const c of clients) await c.stop();
  await service?.stop();
  await prosody?.stop();
});

async function login(user: string, resource?: string): Promise<TestClient> {
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: user, password: password(user), resource });
  clients.push(c);
  return c;
}

async function anonymous(): Promise<TestClient> {
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
  clients.push(c);
  return c;
}

type Invitee = { email: string; name?: string } | { jid: string; name?: string };

function inviteRequest(invitees: Invitee[], opts: { id?: string; message?: string } = {}): XmlElement {
  return xml(
    'invite-request',
    { xmlns: NS, id: opts.id },
    ...invitees.map((i) => xml('invitee', i as Record<string, string>)),
    opts.message === undefined ? null : xml('message', {}, opts.message),
  );
}

/** A presence to the component (directed) or to nobody (broadcast), carrying `children`. */
function presence(to: string | undefined, ...children: (XmlElement | null)[]): XmlElement {
  return xml('presence', { to }, ...children);
}

function resultOf(s: XmlElement): XmlElement | undefined {
  return s.name === 'message' ? s.getChild('invite-request-result', NS) : undefined;
}

function acknowledgement(client: TestClient, timeoutMs = 20_000): Promise<XmlElement> {
  return client.waitFor((s) => resultOf(s) !== undefined, timeoutMs);
}

function acknowledgements(client: TestClient): XmlElement[] {
  return client.received.filter((s) => resultOf(s) !== undefined);
}

function invitees(ack: XmlElement): Record<string, string>[] {
  return resultOf(ack)!.getChildren('invitee').map((i) => ({ ...i.attrs }) as Record<string, string>);
}

function notified(client: TestClient, kind: string, invite: string, timeoutMs = 20_000): Promise<XmlElement> {
  return client.waitFor((s) => s.name === 'message' && s.getChildren('notification', NS).some((n) => n.attrs.kind === kind && n.attrs.invite === invite), timeoutMs);
}

function presenceError(client: TestClient, id: string): Promise<XmlElement> {
  return client.waitFor((s) => s.name === 'presence' && s.attrs.type === 'error' && s.attrs.id === id);
}

function ping(client: TestClient, to = COMPONENT): Promise<XmlElement> {
  return client.iq(xml('iq', { type: 'get', to }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fetches the roster: the session becomes "interested" and gets roster pushes (RFC 6121 §2.1.6). */
async function fetchRoster(client: TestClient): Promise<void> {
  const reply = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  expect(reply.attrs.type).toBe('result');
}

/** The next roster push about the component with this subscription state. */
function rosterPush(client: TestClient, subscription: string): Promise<XmlElement> {
  return client.waitFor((s) => {
    const item = s.name === 'iq' && s.attrs.type === 'set' ? s.getChild('query', 'jabber:iq:roster')?.getChild('item') : undefined;
    return item?.attrs.jid === COMPONENT && item.attrs.subscription === subscription;
  });
}

function presenceFromComponent(client: TestClient, type: string | undefined): Promise<XmlElement> {
  return client.waitFor((s) => s.name === 'presence' && s.attrs.from === COMPONENT && s.attrs.type === type);
}

/**
 * Waits until the component has handled everything `client` sent, has delivered every
 * acknowledgement it queued, and those have reached the client.
 */
async function settle(client: TestClient, running: RunningService = service, to = COMPONENT): Promise<void> {
  await ping(client, to);
  const queued = running.app.db.prepare(`SELECT count(*) AS n FROM outbox WHERE kind = 'request-result' AND state IN ('queued', 'sending')`);
  for (let i = 0; (queued.get() as { n: number }).n > 0; i++) {
    if (i > 200) throw new Error('acknowledgements still queued after 10 s');
    await sleep(50);
  }
  await ping(client, to);
}

/** Every table of record, and who the outbox was asked to tell what (its states move on their own). */
function snapshot(running: RunningService = service): string {
  const db = running.app.db;
  const tables = ['invites', 'events', 'invite_requests', 'subscriptions', 'opt_outs'].map((t) => db.prepare(`SELECT * FROM ${t}`).all().map((r) => JSON.stringify(r)).sort());
  return JSON.stringify([...tables, db.prepare('SELECT id, kind, recipient FROM outbox ORDER BY id').all()]);
}

function invitesOf(inviter: string, running: RunningService = service) {
  return running.app.invites.list({ inviter, oldestFirst: true });
}

function token(id: string, running: RunningService = service): string {
  return running.app.invites.links(running.app.invites.get(id)!).token;
}

it('turns a directed presence with two invitees into two invites and one acknowledgement to the sending resource', async () => {
  const alice = await login('alice', 'phone');
  await alice.send(
    presence(COMPONENT, inviteRequest([{ email: 'bob@example.org', name: 'Bob' }, { jid: 'carol@elsewhere.net' }], { message: 'Come and chat with us' })),
  );

  const ack = await acknowledgement(alice);
  expect(ack.attrs).toMatchObject({ type: 'chat', from: COMPONENT, to: 'alice@localhost/phone' });
  const [bob, carol] = invitees(ack);
  expect(bob).toEqual({ email: 'bob@example.org', status: 'pending', id: expect.stringMatching(/^[A-Za-z0-9_-]{10}$/) });
  expect(carol).toEqual({ jid: 'carol@elsewhere.net', status: 'pending', id: expect.any(String) });
  expect(ack.getChildText('body')).toContain(`bob@example.org: waits for an admin's approval (invite ${bob.id})`);

  const row = (id: string) => {
    const i = service.app.invites.get(id)!;
    return [i.inviter, i.kind, i.state, i.source, i.inviteeEmail, i.inviteeJid, i.inviteeName, i.note];
  };
  expect(row(bob.id)).toEqual(['alice@localhost', 'contact-account', 'pending', 'presence', 'bob@example.org', null, 'Bob', 'Come and chat with us']);
  expect(row(carol.id)).toEqual(['alice@localhost', 'contact-account', 'pending', 'presence', null, 'carol@elsewhere.net', null, 'Come and chat with us']);
  expect(invitesOf('alice@localhost')).toHaveLength(2);
  await settle(alice);
  expect(acknowledgements(alice)).toHaveLength(1);
});

it('creates and sends nothing when the same presence comes ten more times, also with a new status', async () => {
  const frank = await login('frank');
  const request = () => inviteRequest([{ email: 'judy@example.org' }, { jid: 'karl@elsewhere.net' }], { message: 'Hi' });
  await frank.send(presence(COMPONENT, request()));
  await acknowledgement(frank);
  const before = snapshot();

  for (let i = 0; i < 10; i++) await frank.send(presence(COMPONENT, request()));
  await frank.send(presence(COMPONENT, xml('show', {}, 'away'), xml('status', {}, 'Back soon'), request()));
  await settle(frank);

  expect(invitesOf('frank@localhost')).toHaveLength(2);
  expect(acknowledgements(frank)).toHaveLength(1);
  expect(snapshot()).toBe(before);
});

it('after Bob declines, the old presence still creates nothing, and a new request id invites him again', async () => {
  const grace = await login('grace');
  const old = () => presence(COMPONENT, inviteRequest([{ email: 'bob.g@example.org', name: 'Bob' }]));
  await grace.send(old());
  const [first] = invitees(await acknowledgement(grace));

  service.app.invites.decline(token(first.id), 'not interested');
  service.app.worker.poke();
  const declined = await notified(grace, 'declined', first.id);
  expect(declined.getChildText('body')).toMatch(/bob\.g@example\.org declined your invite: “not interested”/);

  const before = snapshot();
  await grace.send(old());
  await settle(grace);
  expect(snapshot()).toBe(before);
  expect(acknowledgements(grace)).toHaveLength(1);

  await grace.send(presence(COMPONENT, inviteRequest([{ email: 'bob.g@example.org', name: 'Bob' }], { id: 'again-1' })));
  const [again] = invitees(await acknowledgement(grace));
  expect(again).toEqual({ email: 'bob.g@example.org', status: 'pending', id: expect.any(String) });
  expect(again.id).not.toBe(first.id);
  expect(invitesOf('grace@localhost').map((i) => i.state).sort()).toEqual(['declined', 'pending']);
});

it('after Bob’s invite expires, the old presence still creates nothing, and a new request id invites him again', async () => {
  const short = await startService(
    serviceConfig(prosody, { component: { server: prosody.componentUrl(), domain: SHORT, secret: COMPONENT_SECRET }, invites: { expiry: '1s' } }),
  );
  try {
    const heidi = await login('heidi');
    const old = () => presence(SHORT, inviteRequest([{ email: 'bob.h@example.org' }]));
    await heidi.send(old());
    const [first] = invitees(await acknowledgement(heidi));
    expect(first.status).toBe('pending');

    await sleep(1_100);
    expect(await short.app.jobs.run('expiry')).toBe(1);
    await notified(heidi, 'expired', first.id);

    const before = snapshot(short);
    await heidi.send(old());
    await settle(heidi, short, SHORT);
    expect(snapshot(short)).toBe(before);
    expect(acknowledgements(heidi)).toHaveLength(1);

    await heidi.send(presence(SHORT, inviteRequest([{ email: 'bob.h@example.org' }], { id: 'after-expiry' })));
    const [again] = invitees(await acknowledgement(heidi));
    expect(again.status).toBe('pending');
    expect(again.id).not.toBe(first.id);
  } finally {
    await short.stop();
  }
});

it('subscribes a local user both ways: subscribed at once, one subscribe back, and the roster says both', async () => {
  const dave = await login('dave');
  await fetchRoster(dave);
  await dave.send(xml('presence', { to: COMPONENT, type: 'subscribe' }));
  await presenceFromComponent(dave, 'subscribed');
  await rosterPush(dave, 'to');
  await presenceFromComponent(dave, undefined);
  await presenceFromComponent(dave, 'subscribe');
  await dave.send(xml('presence', { to: COMPONENT, type: 'subscribed' }));
  await rosterPush(dave, 'both');
  await settle(dave);
  expect(service.app.db.prepare('SELECT subscription, pending_out FROM subscriptions WHERE jid = ?').get('dave@localhost')).toEqual({ subscription: 'both', pending_out: 0 });

  // Asking again is approved again (the server keeps that `subscribed` to itself: nothing changed)
  // with the component's presence, and the component does not ask twice.
  await dave.send(xml('presence', { to: COMPONENT, type: 'subscribe' }));
  await presenceFromComponent(dave, undefined);
  await settle(dave);
  expect(dave.received.filter((s) => s.name === 'presence' && s.attrs.from === COMPONENT && s.attrs.type === 'subscribe')).toHaveLength(1);
});

it('takes a broadcast presence from a user subscribed both ways the same way, once', async () => {
  const dave = clients.find((c) => c.bareJid === 'dave@localhost')!;
  const request = () => inviteRequest([{ email: 'lena@example.org' }, { jid: 'mike@elsewhere.net' }]);
  await dave.send(presence(undefined, request()));
  const ack = await acknowledgement(dave);
  expect(ack.attrs.to).toBe(dave.jid);
  expect(invitees(ack).map((i) => [i.email ?? i.jid, i.status])).toEqual([
    ['lena@example.org', 'pending'],
    ['mike@elsewhere.net', 'pending'],
  ]);
  const before = snapshot();
  await dave.send(presence(undefined, xml('status', {}, 'Lunch'), request()));
  await settle(dave);
  expect(snapshot()).toBe(before);
  expect(acknowledgements(dave)).toHaveLength(1);
});

it('answers the probe of a subscribed user’s new session with its presence', async () => {
  const second = await login('dave', 'tablet');
  await second.waitFor((s) => s.name === 'presence' && s.attrs.from === COMPONENT && s.attrs.type === undefined);
});

it('records unsubscribe and unsubscribed, answering only the first with unavailable', async () => {
  const erin = await login('erin', 'desk');
  await fetchRoster(erin);
  await erin.send(xml('presence', { to: COMPONENT, type: 'subscribe' }));
  await presenceFromComponent(erin, 'subscribe');
  await erin.send(xml('presence', { to: COMPONENT, type: 'subscribed' }));
  await rosterPush(erin, 'both');
  await settle(erin);
  const row = service.app.db.prepare('SELECT subscription, pending_out FROM subscriptions WHERE jid = ?');
  expect(row.get('erin@localhost')).toEqual({ subscription: 'both', pending_out: 0 });

  await erin.send(xml('presence', { to: COMPONENT, type: 'unsubscribe' }));
  await presenceFromComponent(erin, 'unavailable');
  await rosterPush(erin, 'from');
  await settle(erin);
  expect(row.get('erin@localhost')).toEqual({ subscription: 'to', pending_out: 0 });

  const seen = erin.received.length;
  await erin.send(xml('presence', { to: COMPONENT, type: 'unsubscribed' }));
  await rosterPush(erin, 'none');
  await settle(erin);
  expect(row.get('erin@localhost')).toEqual({ subscription: 'none', pending_out: 0 });
  expect(erin.received.slice(seen).filter((s) => s.name === 'presence' && s.attrs.from === COMPONENT)).toEqual([]);
});

it('makes one invite per invitee when two resources of one user send the same presence at once', async () => {
  const [one, two] = await Promise.all([login('erin', 'one'), login('erin', 'two')]);
  const request = () => presence(COMPONENT, inviteRequest([{ email: 'nina@example.org' }, { jid: 'otto@elsewhere.net' }], { message: 'Both of us' }));
  await Promise.all([one.send(request()), two.send(request())]);
  await Promise.all([settle(one), settle(two)]);

  const made = invitesOf('erin@localhost').filter((i) => i.source === 'presence');
  expect(made.map((i) => i.inviteeEmail ?? i.inviteeJid).sort()).toEqual(['nina@example.org', 'otto@elsewhere.net']);
  expect(acknowledgements(one).length + acknowledgements(two).length).toBe(1);
  expect(service.app.db.prepare(`SELECT count(*) AS n FROM invite_requests WHERE sender = 'erin@localhost'`).get()).toEqual({ n: 1 });
});

it('opens an admin’s request at once', async () => {
  const admin = await login('admin');
  await admin.send(presence(COMPONENT, inviteRequest([{ email: 'pat@example.org' }, { jid: 'quinn@elsewhere.net' }])));
  const ack = await acknowledgement(admin);
  expect(invitees(ack).map((i) => [i.email ?? i.jid, i.status])).toEqual([
    ['pat@example.org', 'open'],
    ['quinn@elsewhere.net', 'open'],
  ]);
  expect(invitesOf('admin@localhost').every((i) => i.state === 'open' && i.approvedBy === 'admin@localhost')).toBe(true);
});

it('refuses a bad address with a reason and lets the others proceed', async () => {
  const alice = await login('alice', 'bad-address');
  await alice.send(
    presence(
      COMPONENT,
      inviteRequest([{ email: 'Rita <rita@example.org>' }, { email: 'sam@example.org' }, { jid: 'not a jid@@' }, { jid: 'tom@elsewhere.net' }], { id: 'bad-1' }),
    ),
  );
  const ack = await acknowledgement(alice);
  expect(resultOf(ack)!.attrs.id).toBe('bad-1');
  expect(invitees(ack)).toEqual([
    { email: 'Rita <rita@example.org>', status: 'refused', reason: 'Not a valid e-mail address: give one address such as bob@example.org' },
    { email: 'sam@example.org', status: 'pending', id: expect.any(String) },
    { jid: 'not a jid@@', status: 'refused', reason: 'Not a valid JID' },
    { jid: 'tom@elsewhere.net', status: 'pending', id: expect.any(String) },
  ]);
  expect(ack.getChildText('body')).toContain('Rita <rita@example.org>: not invited: Not a valid e-mail address');
  const mine = invitesOf('alice@localhost').map((i) => i.inviteeKey);
  expect(mine).toEqual(expect.arrayContaining(['sam@example.org', 'tom@elsewhere.net']));
  expect(mine).not.toContain('rita@example.org');
});

it('answers a duplicate with the existing invite and its state', async () => {
  const alice = await login('alice', 'dup');
  await alice.send(presence(COMPONENT, inviteRequest([{ email: 'BOB@example.org' }, { jid: 'uma@elsewhere.net' }], { id: 'dup-1' })));
  const [bob, uma] = invitees(await acknowledgement(alice));
  const existing = invitesOf('alice@localhost').find((i) => i.inviteeEmail === 'bob@example.org')!;
  expect(bob).toEqual({ email: 'BOB@example.org', status: 'duplicate', id: existing.id, state: 'pending' });
  expect(uma.status).toBe('pending');
});

describe('structural faults', () => {
  const faults: [string, XmlElement, RegExp][] = [
    ['no invitee', inviteRequest([], { message: 'Hello' }), /at least one invitee/],
    ['an unknown child', xml('invite-request', { xmlns: NS }, xml('invitee', { jid: 'v@elsewhere.net' }), xml('expires', {}, '1d')), /Unknown element <expires\/>/],
    ['an invitee with neither address', xml('invite-request', { xmlns: NS }, xml('invitee', { name: 'Vic' })), /either an email or a jid/],
    ['an invitee with both addresses', xml('invite-request', { xmlns: NS }, xml('invitee', { jid: 'v@elsewhere.net', email: 'v@example.org' })), /either an email or a jid/],
    ['too many invitees', inviteRequest(['a', 'b', 'c', 'd', 'e'].map((x) => ({ jid: `${x}@elsewhere.net` }))), /at most 4 invitees \(this one names 5\)/],
    ['a message too long', inviteRequest([{ jid: 'v@elsewhere.net' }], { message: 'x'.repeat(41) }), /longer than 40 characters/],
  ];

  it.each(faults)('answers %s with bad-request and stores nothing', async (_what, element, text) => {
    const alice = clients.find((c) => c.jid === 'alice@localhost/phone')!;
    await settle(alice);
    const before = snapshot();
    const id = `fault-${Math.random().toString(36).slice(2)}`;
    await alice.send(xml('presence', { to: COMPONENT, id }, element));
    const error = await presenceError(alice, id);
    expect(error.attrs.from).toBe(COMPONENT);
    expect(error.getChild('error')?.attrs.type).toBe('modify');
    expect(errorCondition(error)).toBe('bad-request');
    expect(errorText(error)).toMatch(text);
    await settle(alice);
    expect(snapshot()).toBe(before);
    expect(acknowledgements(alice)).toHaveLength(1);
  });
});

it('answers a user of another domain with forbidden and stores nothing', async () => {
  const stranger = await anonymous();
  const before = snapshot();
  await stranger.send(xml('presence', { to: COMPONENT, id: 'stranger-1' }, inviteRequest([{ email: 'wanda@example.org' }])));
  const error = await presenceError(stranger, 'stranger-1');
  expect(errorCondition(error)).toBe('forbidden');
  expect(errorText(error)).toBe('Invite requests are for users of localhost');
  await settle(stranger);
  expect(snapshot()).toBe(before);
  expect(acknowledgements(stranger)).toEqual([]);
});

it('answers a subscribe from another domain with unsubscribed and records nothing', async () => {
  const stranger = await anonymous();
  await fetchRoster(stranger);
  const before = snapshot();
  await stranger.send(xml('presence', { to: COMPONENT, type: 'subscribe' }));
  await presenceFromComponent(stranger, 'unsubscribed');
  await settle(stranger);
  expect(snapshot()).toBe(before);
});

it('ignores presences without the element, unavailable presences and error presences', async () => {
  const alice = clients.find((c) => c.jid === 'alice@localhost/phone')!;
  await settle(alice);
  const before = snapshot();
  const seen = alice.received.length;
  await alice.send(xml('presence', { to: COMPONENT }, xml('status', {}, 'Here')));
  await alice.send(xml('presence', { to: COMPONENT, type: 'error' }, inviteRequest([{ jid: 'xavier@elsewhere.net' }]), xml('error', { type: 'cancel' }, xml('gone', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }))));
  await alice.send(xml('presence', { to: COMPONENT, type: 'unavailable' }, inviteRequest([{ jid: 'xavier@elsewhere.net' }])));
  await settle(alice);
  expect(snapshot()).toBe(before);
  expect(alice.received.slice(seen).filter((s) => s.name === 'presence' || resultOf(s))).toEqual([]);
});

it('sends a JID invitee the invitation once an admin approves, and tells the inviter', async () => {
  const [alice, carol, admin] = await Promise.all([login('alice', 'invites-carol'), login('carol'), login('admin', 'approver')]);
  await alice.send(presence(COMPONENT, inviteRequest([{ jid: 'carol@localhost', name: 'Carol' }], { message: 'Join my group chat' })));
  const [invitee] = invitees(await acknowledgement(alice));
  expect(invitee).toMatchObject({ jid: 'carol@localhost', status: 'pending' });
  await settle(alice);
  expect(carol.received.filter((s) => s.getChild?.('notification', NS))).toEqual([]);

  const page = await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#pending');
  await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#pending', { sessionid: commandOf(page)!.attrs.sessionid, action: 'complete', fields: { approve: [invitee.id] } });

  const invitation = await notified(carol, 'invitation', invitee.id);
  expect(invitation.attrs).toMatchObject({ type: 'chat', from: COMPONENT });
  expect(invitation.attrs.to).toMatch(/^carol@localhost/);
  const body = invitation.getChildText('body')!;
  expect(body).toContain('alice@localhost invites you to localhost.');
  expect(body).toContain('“Join my group chat”');
  expect(body).toContain(`/i/${token(invitee.id)}`);
  await notified(alice, 'approved', invitee.id);
  await sleep(300);
  expect(service.app.invites.get(invitee.id)?.messageDelivery).toBe('sent');
});

it('tells the inviter when someone joins with an invite from a presence', async () => {
  const alice = await login('alice', 'joined');
  await alice.send(presence(COMPONENT, inviteRequest([{ email: 'yara@example.org' }], { id: 'joined-1' })));
  const [yara] = invitees(await acknowledgement(alice));
  service.app.invites.approve({ kind: 'user', jid: 'admin@localhost', isAdmin: true }, yara.id);
  service.app.worker.poke();
  await notified(alice, 'approved', yara.id);

  const anon = await anonymous();
  const reply = await anon.iq(
    xml(
      'iq',
      { type: 'set', to: COMPONENT },
      xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, 'yara'), xml('password', {}, 'password-123'), xml('token', {}, token(yara.id))),
    ),
    20_000,
  );
  expect(reply.attrs.type).toBe('result');
  const joined = await notified(alice, 'joined', yara.id);
  expect(joined.getChildText('body')).toBe('yara@localhost has joined localhost with your invite.');
});

it('advertises the project namespace in disco#info', async () => {
  const alice = clients.find((c) => c.jid === 'alice@localhost/phone')!;
  const info = await alice.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
  expect(info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).toContain(NS);
});

describe('a flood of invite requests from one user', () => {
  /** `n` presences, each a new request (its own id) of `size` fresh e-mail invitees. */
  async function flood(client: TestClient, tag: string, n: number, size: number): Promise<void> {
    for (let p = 0; p < n; p++) {
      const list = Array.from({ length: size }, (_, i) => ({ email: `${tag}.${p}.${i}@example.org` }));
      await client.send(presence(COMPONENT, inviteRequest(list, { id: `${tag}-${p}` })));
    }
    await settle(client);
  }

  it('is cut off at the default limits, each refused presence answered policy-violation', async () => {
    const ivan = await login('ivan');
    const started = performance.now();
    await flood(ivan, 'flood', 300, 4);
    const ms = Math.round(performance.now() - started);
    // 10 new requests a minute (invite_requests_per_minute), 4 invitees each; 290 refused whole.
    expect(invitesOf('ivan@localhost')).toHaveLength(40);
    expect(acknowledgements(ivan)).toHaveLength(10);
    const refused = ivan.received.filter((s) => s.name === 'presence' && s.attrs.type === 'error');
    expect(refused).toHaveLength(290);
    expect(errorCondition(refused[0])).toBe('policy-violation');
    expect(errorText(refused[0])).toMatch(/^Limit invite_requests_per_minute reached: at most 10 invite requests a minute/);
    console.log(`flood: 300 presences of 4 invitees from one user in ${ms} ms: ${invitesOf('ivan@localhost').length} invites, ${refused.length} refused`);
  });

  it('leaves admins unaffected', async () => {
    const admin = await login('admin', 'flood');
    const count = service.app.db.prepare(`SELECT count(*) AS n FROM invites WHERE inviter = 'admin@localhost'`);
    const before = (count.get() as { n: number }).n;
    await flood(admin, 'admin-flood', 30, 4);
    expect((count.get() as { n: number }).n - before).toBe(120);
    expect(admin.received.filter((s) => s.name === 'presence' && s.attrs.type === 'error')).toHaveLength(0);
  });
});
