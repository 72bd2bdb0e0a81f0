/**
 * Room invitations end to end, against a real Prosody with a real MUC component and real client
 * sessions: #invite-to-rooms, #respond, memberships, XEP-0249, and the messages to the inviter and
 * to the room's owners and admins. The last block runs the component on a MUC service where it is
 * no admin: the answer is `failed`, the invitee sees why, the inviter hears it, the log says what to set.
 */
import { TestClient, adhoc, commandNotes, commandOf, errorCondition, errorText, formFields, xml, type XmlElement } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { createRoom, grant, join, NS_MUC_USER } from '../support/muc';
import { get, post, snapshot } from '../support/web';
import { OPERATOR } from '../../src/domain/types';

const MUC = 'conference.localhost';
const NORIGHTS = 'norights.localhost';
const TEAM = `team@${MUC}`;
const GARDEN = `garden@${MUC}`;
const BOBS = `bobs@${MUC}`;
const LOCKED_OUT = `closed@${NORIGHTS}`;
const NS_PROJECT = 'urn:xmpp-invites:0';
const INVITE_TO_ROOMS = 'urn:xmpp-invites:0#invite-to-rooms';
const RESPOND = 'urn:xmpp-invites:0#respond';

let prosody: TestProsody;
let service: RunningService;
const clients = new Map<string, TestClient>();

async function login(username: string): Promise<TestClient> {
  const existing = clients.get(username);
  if (existing) return existing;
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: prosody.host, username, password: 'pw' });
  clients.set(username, c);
  return c;
}

/** The next chat message from the component carrying a notification of `kind`. */
function notification(c: TestClient, kind: string, room?: string): Promise<XmlElement> {
  return c.waitFor(
    (s) =>
      s.name === 'message' &&
      s.attrs.from === COMPONENT &&
      s.getChildren('notification', NS_PROJECT).some((n) => n.attrs.kind === kind && (room === undefined || n.attrs.room === room)),
    10_000,
  );
}

/** Runs #invite-to-rooms in two stages; resolves with the second stage's reply. */
async function inviteToRooms(c: TestClient, fields: Record<string, string | string[]>): Promise<XmlElement> {
  const first = await adhoc(c, COMPONENT, INVITE_TO_ROOMS);
  const sessionid = commandOf(first)!.attrs.sessionid;
  return adhoc(c, COMPONENT, INVITE_TO_ROOMS, { sessionid, action: 'complete', fields });
}

function count(sql: string): number {
  return Number((service.app.db.prepare(sql).get() as { n: number }).n);
}

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    hostAdmins: [COMPONENT],
    muc: [
      { domain: MUC, admins: [COMPONENT] },
      { domain: NORIGHTS, admins: [] },
    ],
  });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'root']) await prosody.register(u, 'pw');
  const alice = await login('alice');
  await createRoom(alice, TEAM, 'The Team');
  await createRoom(alice, GARDEN, 'Garden');
  await createRoom(alice, LOCKED_OUT, 'Closed');
  await grant(alice, TEAM, 'bob@localhost', 'admin');
  await createRoom(await login('bob'), BOBS, 'Bob’s Corner');
  service = await startService(serviceConfig(prosody, { rooms: { service: MUC }, admins: ['root@localhost'] }), { outboxPollMs: 100 });
});

afterAll(async () => {
  for (const c of clients.values()) await c.stop();
  await service?.stop();
  await prosody?.stop();
});

describe('an owner invites an existing user and an e-mail address to two members-only rooms', () => {
  let invitation: XmlElement;

  it('offers the rooms the requester owns or administers, and invites both', async () => {
    const alice = await login('alice');
    const carol = await login('carol');
    const first = await adhoc(alice, COMPONENT, INVITE_TO_ROOMS);
    const options = commandOf(first)!
      .getChild('x', 'jabber:x:data')!
      .getChildren('field')
      .find((f) => f.attrs.var === 'rooms')!
      .getChildren('option')
      .map((o) => o.getChildText('value'));
    expect(options.sort()).toEqual([GARDEN, TEAM]);
    const reply = await adhoc(alice, COMPONENT, INVITE_TO_ROOMS, {
      sessionid: commandOf(first)!.attrs.sessionid,
      action: 'complete',
      fields: { jids: ['carol@localhost'], emails: 'newcomer@example.org', rooms: [TEAM, GARDEN], message: 'Come and join us' },
    });
    expect(commandOf(reply)!.attrs.status).toBe('completed');
    const text = commandNotes(reply)[0].text;
    expect(text).toContain('2 people invited');
    expect(text).toMatch(/carol@localhost: invited to The Team, Garden/);
    expect(text).toMatch(/newcomer@example.org: (invited|pending)/);

    invitation = await notification(carol, 'invitation');
    const n = invitation.getChild('notification', NS_PROJECT)!;
    // in the order of their JIDs
    expect(n.getChildren('room').map((r) => r.attrs.jid)).toEqual([GARDEN, TEAM]);
    expect(invitation.attrs.type).toBe('chat');
    expect(invitation.getChildText('body')).toContain('alice@localhost invites you to 2 rooms');
    expect(invitation.getChildText('body')).toContain('Answer room invitations');
  });

  it('lets the user accept one and decline the other with #respond, with a note', async () => {
    const carol = await login('carol');
    const first = await adhoc(carol, COMPONENT, RESPOND);
    const fields = formFields(first);
    const id = String(invitation.getChild('notification', NS_PROJECT)!.attrs.invite);
    expect(fields[`${id}/${TEAM}`]).toEqual(['accept']);
    expect(fields[`${id}/${GARDEN}`]).toEqual(['accept']);
    const reply = await adhoc(carol, COMPONENT, RESPOND, {
      sessionid: commandOf(first)!.attrs.sessionid,
      action: 'complete',
      fields: { [`${id}/${TEAM}`]: 'accept', [`${id}/${GARDEN}`]: 'decline', message: 'Not a gardener, sorry' },
    });
    const text = commandNotes(reply)[0].text;
    expect(text).toContain('The Team (team@conference.localhost): accepted; you are a member now');
    expect(text).toContain('Garden (garden@conference.localhost): declined');
    const rooms = service.app.rooms!;
    expect(await rooms.affiliation(TEAM, 'carol@localhost')).toEqual({ ok: true, value: 'member' });
    expect(await rooms.affiliation(GARDEN, 'carol@localhost')).toEqual({ ok: true, value: 'none' });
  });

  it('sends the user a XEP-0249 invitation to the accepted room, which the user can join', async () => {
    const carol = await login('carol');
    const direct = await carol.waitFor((s) => s.name === 'message' && !!s.getChild('x', 'jabber:x:conference'), 10_000);
    expect(direct.getChild('x', 'jabber:x:conference')!.attrs.jid).toBe(TEAM);
    const joined = await join(carol, TEAM, 'carol');
    expect(joined.attrs.type).toBeUndefined();
    expect(joined.getChild('x', NS_MUC_USER)?.getChild('item')?.attrs.affiliation).toBe('member');
    const refused = await join(carol, GARDEN, 'carol');
    expect(refused.getChild('error')?.getChild('registration-required')).toBeDefined();
  });

  it('tells the owner room-accepted and room-declined (with the note), and the other admin room-joined', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const accepted = await notification(alice, 'room-accepted', TEAM);
    expect(accepted.getChildText('body')).toContain('carol@localhost accepted your invitation to The Team');
    const declined = await notification(alice, 'room-declined', GARDEN);
    expect(declined.getChildText('body')).toContain('“Not a gardener, sorry”');
    const joined = await notification(bob, 'room-joined', TEAM);
    expect(joined.getChildText('body')).toContain('carol@localhost is now a member of The Team (team@conference.localhost), invited by alice@localhost');
  });

  it('records each answer with its own state and event, and the invite is done', () => {
    const id = String(invitation.getChild('notification', NS_PROJECT)!.attrs.invite);
    const rows = service.app.invites.roomsOf(id);
    expect(rows.map((r) => [r.room, r.state, r.reason])).toEqual([
      [GARDEN, 'declined', 'Not a gardener, sorry'],
      [TEAM, 'accepted', null],
    ]);
    expect(service.app.invites.events(id).map((e) => e.type)).toEqual(expect.arrayContaining(['created', 'room-declined', 'room-accepted']));
    expect(service.app.invites.get(id)!.state).toBe('exhausted');
  });
});

describe('the e-mail invitee registers on the landing page', () => {
  it('with one room ticked and one unticked: the new account is a member of the ticked room only', async () => {
    const invite = service.app.invites.list({ invitee: 'newcomer@example.org' })[0];
    expect(invite.kind).toBe('contact-account');
    // alice is no admin: her invite that creates an account waits for one
    if (invite.state === 'pending') service.app.invites.approve(OPERATOR, invite.id);
    const { token } = service.app.invites.links(invite);
    const url = `${service.app.web.url}/i/${token}`;
    const page = await get(url);
    expect(page.status).toBe(200);
    expect(page.html).toContain(`name="room" value="${TEAM}" checked`);
    expect(page.html).toContain(`name="room" value="${GARDEN}" checked`);
    const done = await post(`${url}/register`, { csrf: page.csrf!, username: 'newcomer', password: 'a-long-password', room: [TEAM] }, { cookie: page.cookie });
    expect(done.status).toBe(200);
    const rooms = service.app.rooms!;
    await until(async () => (await rooms.affiliation(TEAM, 'newcomer@localhost')).ok && (await rooms.affiliation(TEAM, 'newcomer@localhost') as { value: string }).value === 'member');
    expect(await rooms.affiliation(GARDEN, 'newcomer@localhost')).toEqual({ ok: true, value: 'none' });
    expect(service.app.invites.roomsOf(invite.id).map((r) => [r.room, r.state, r.memberJid])).toEqual([
      [GARDEN, 'declined', null],
      [TEAM, 'accepted', 'newcomer@localhost'],
    ]);
    // the welcome names the room joined
    const newcomer = await TestClient.connect({ port: prosody.ports.c2s, domain: prosody.host, username: 'newcomer', password: 'a-long-password' });
    clients.set('newcomer', newcomer);
    const welcome = await notification(newcomer, 'welcome');
    expect(welcome.getChildText('body')).toContain('You are a member of:\n• The Team (team@conference.localhost)');
    expect(welcome.getChildText('body')).not.toContain('Garden');
  });
});

async function until(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the answers page of a room invitation', () => {
  it('lists the invitations from two inviters together, changes nothing on GET, and accepts them all with one button', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const gina = await login('gina');
    expect(commandOf(await inviteToRooms(alice, { jids: ['gina@localhost'], rooms: [TEAM] }))!.attrs.status).toBe('completed');
    expect(commandOf(await inviteToRooms(bob, { jids: ['gina@localhost'], rooms: [BOBS] }))!.attrs.status).toBe('completed');
    const message = await notification(gina, 'invitation');
    await notification(gina, 'invitation');
    // both delivered: the worker writes nothing more
    await until(async () => Number((service.app.db.prepare(`SELECT count(*) AS n FROM outbox WHERE recipient = 'gina@localhost' AND state <> 'sent'`).get() as { n: number }).n) === 0);
    const id = String(message.getChild('notification', NS_PROJECT)!.attrs.invite);
    const url = `${service.app.web.url}/i/${service.app.invites.links(service.app.invites.get(id)!).token}`;
    const before = snapshot(service.config.database);
    const page = await get(url);
    expect(page.status).toBe(200);
    expect(page.html).toContain('2 room invitations wait');
    expect(page.html).toContain('Invited by alice@localhost');
    expect(page.html).toContain('Invited by bob@localhost');
    expect(snapshot(service.config.database)).toBe(before);

    // refused: without the CSRF token, and with an invitation the page did not list
    const pairs = [...page.html.matchAll(/name="(room-[^"]+)" value="accept"/g)].map((m) => m[1]);
    expect(pairs).toHaveLength(2);
    expect((await post(`${url}/respond`, Object.fromEntries(pairs.map((p) => [p, 'accept'])), { cookie: page.cookie })).status).toBe(403);
    const foreign = await post(`${url}/respond`, { csrf: page.csrf!, [`room-AAAAAAAAAA/${GARDEN}`]: 'accept' }, { cookie: page.cookie });
    expect(foreign.status).toBe(400);
    // a room invitation makes no account
    const register = await post(`${url}/register`, { csrf: page.csrf!, username: 'someone', password: 'a-long-password' }, { cookie: page.cookie });
    expect(register.status).toBe(410);
    expect(register.html).toContain('it cannot create an account');
    expect(snapshot(service.config.database)).toBe(before);

    const done = await post(`${url}/respond`, { csrf: page.csrf!, ...Object.fromEntries(pairs.map((p) => [p, 'accept'])) }, { cookie: page.cookie });
    expect(done.status).toBe(200);
    expect(done.html).toContain('The Team (team@conference.localhost)</strong>: you are a member now');
    expect(done.html).toContain('Bob’s Corner (bobs@conference.localhost)</strong>: you are a member now');
    expect(await service.app.rooms!.affiliation(TEAM, 'gina@localhost')).toEqual({ ok: true, value: 'member' });
    expect(await service.app.rooms!.affiliation(BOBS, 'gina@localhost')).toEqual({ ok: true, value: 'member' });
    // every room answered: the link has done its work
    const after = await get(url);
    expect(after.status).toBe(410);
    expect(after.html).toContain('Every room it names has been answered.');
  });
});

describe('who may invite, and the duplicate rule', () => {
  it('answers forbidden to a user who is not an owner or admin of a room, and makes nothing', async () => {
    const bob = await login('bob');
    const before = count('SELECT count(*) AS n FROM invites');
    const reply = await inviteToRooms(bob, { jids: ['dave@localhost'], rooms: [GARDEN] });
    expect(reply.attrs.type).toBe('error');
    expect(errorCondition(reply)).toBe('forbidden');
    expect(errorText(reply)).toContain(`${GARDEN}: you are not an owner or admin`);
    expect(count('SELECT count(*) AS n FROM invites')).toBe(before);
  });

  it('refuses a room of another service, and a form without rooms, as bad-request', async () => {
    const alice = await login('alice');
    const before = count('SELECT count(*) AS n FROM invites');
    const other = await inviteToRooms(alice, { jids: ['dave@localhost'], rooms: [LOCKED_OUT] });
    expect(errorCondition(other)).toBe('bad-request');
    const none = await inviteToRooms(alice, { jids: ['dave@localhost'], rooms: [] });
    expect(errorCondition(none)).toBe('bad-request');
    expect(count('SELECT count(*) AS n FROM invites')).toBe(before);
  });

  it('refuses a second invitation to a room someone has not answered, from any inviter', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const first = await inviteToRooms(alice, { jids: ['dave@localhost'], rooms: [TEAM] });
    expect(commandOf(first)!.attrs.status).toBe('completed');
    const before = count('SELECT count(*) AS n FROM room_invitations');
    const again = await inviteToRooms(alice, { jids: ['dave@localhost'], rooms: [TEAM] });
    expect(errorCondition(again)).toBe('conflict');
    expect(errorText(again)).toContain(`already has an open invitation to ${TEAM}`);
    const byBob = await inviteToRooms(bob, { jids: ['Dave@localhost'], rooms: [TEAM] });
    expect(errorCondition(byBob)).toBe('conflict');
    expect(count('SELECT count(*) AS n FROM room_invitations')).toBe(before);
  });

  it('takes <room/> in an invite request carried in presence, and answers forbidden for a room the sender may not invite to', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const frank = await login('frank');
    const request = (id: string, room: string) =>
      xml('presence', { to: COMPONENT }, xml('invite-request', { xmlns: NS_PROJECT, id }, xml('invitee', { jid: 'frank@localhost' }), xml('room', { jid: room })));
    await alice.send(request('r1', TEAM));
    const result = await alice.waitFor((s) => s.name === 'message' && !!s.getChild('invite-request-result', NS_PROJECT), 10_000);
    expect(result.getChild('invite-request-result', NS_PROJECT)!.getChild('invitee')!.attrs).toMatchObject({ jid: 'frank@localhost', status: 'open' });
    const invitation = await notification(frank, 'invitation');
    expect(invitation.getChild('notification', NS_PROJECT)!.getChildren('room').map((r) => r.attrs.jid)).toEqual([TEAM]);

    const before = count('SELECT count(*) AS n FROM invites');
    await bob.send(request('r2', GARDEN));
    const refused = await bob.waitFor((s) => s.name === 'presence' && s.attrs.type === 'error', 10_000);
    expect(errorCondition(refused)).toBe('forbidden');
    await alice.send(xml('presence', { to: COMPONENT }, xml('invite-request', { xmlns: NS_PROJECT, id: 'r3' }, xml('invitee', { jid: 'frank@localhost' }), xml('room', {}))));
    const malformed = await alice.waitFor((s) => s.name === 'presence' && s.attrs.type === 'error', 10_000);
    expect(errorCondition(malformed)).toBe('bad-request');
    expect(count('SELECT count(*) AS n FROM invites')).toBe(before);
  });

  it("lets a site admin invite to every room of the service", async () => {
    const root = await login('root');
    const reply = await inviteToRooms(root, { jids: ['frank@localhost'], rooms: [GARDEN] });
    await notification(await login('frank'), 'invitation');
    expect(commandOf(reply)!.attrs.status).toBe('completed');
  });
});

describe('invitations from two inviters', () => {
  it('are listed together by #respond, and answered in one go', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const erin = await login('erin');
    expect(commandOf(await inviteToRooms(alice, { jids: ['erin@localhost'], rooms: [GARDEN] }))!.attrs.status).toBe('completed');
    expect(commandOf(await inviteToRooms(bob, { jids: ['erin@localhost'], rooms: [BOBS] }))!.attrs.status).toBe('completed');
    const first = await adhoc(erin, COMPONENT, RESPOND);
    const form = commandOf(first)!.getChild('x', 'jabber:x:data')!;
    const lists = form.getChildren('field').filter((f) => f.attrs.type === 'list-single');
    expect(lists.map((f) => f.attrs.label)).toEqual([
      expect.stringMatching(/^Garden \(garden@conference.localhost\), invited by alice@localhost on /),
      expect.stringMatching(/^Bob’s Corner \(bobs@conference.localhost\), invited by bob@localhost on /),
    ]);
    const fields = Object.fromEntries(lists.map((f) => [String(f.attrs.var), String(f.attrs.var).endsWith(GARDEN) ? 'later' : 'accept']));
    const reply = await adhoc(erin, COMPONENT, RESPOND, { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields });
    expect(commandNotes(reply)[0].text).toContain('Garden (garden@conference.localhost): left for later.');
    expect(await service.app.rooms!.affiliation(BOBS, 'erin@localhost')).toEqual({ ok: true, value: 'member' });
    await notification(bob, 'room-accepted', BOBS);
    // later: still open, offered again
    const again = formFields(await adhoc(erin, COMPONENT, RESPOND));
    expect(Object.keys(again).filter((k) => k.includes('/'))).toEqual([expect.stringMatching(new RegExp(`/${GARDEN}$`))]);
  });

  it('refuses an answer that is not one of the three, and an invitation not offered, recording nothing', async () => {
    const erin = await login('erin');
    const first = await adhoc(erin, COMPONENT, RESPOND);
    const pair = Object.keys(formFields(first)).find((k) => k.includes('/'))!;
    const before = count(`SELECT count(*) AS n FROM room_invitations WHERE state <> 'open'`);
    const bad = await adhoc(erin, COMPONENT, RESPOND, { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: { [pair]: 'maybe' } });
    expect(errorCondition(bad)).toBe('bad-request');
    const second = await adhoc(erin, COMPONENT, RESPOND);
    const foreign = await adhoc(erin, COMPONENT, RESPOND, {
      sessionid: commandOf(second)!.attrs.sessionid,
      action: 'complete',
      fields: { [pair]: 'later', [`AAAAAAAAAA/${TEAM}`]: 'accept' },
    });
    expect(errorCondition(foreign)).toBe('bad-request');
    expect(count(`SELECT count(*) AS n FROM room_invitations WHERE state <> 'open'`)).toBe(before);
  });
});

describe('rooms on #send and #create-account', () => {
  it('offers the rooms the requester may invite to, attaches them, and refuses one the requester may not', async () => {
    const bob = await login('bob');
    const root = await login('root');
    const first = await adhoc(bob, COMPONENT, 'urn:xmpp-invites:0#send');
    const options = commandOf(first)!.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'rooms')!.getChildren('option').map((o) => o.getChildText('value'));
    expect(options.sort()).toEqual([BOBS, TEAM]);
    const sent = await adhoc(bob, COMPONENT, 'urn:xmpp-invites:0#send', { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: { emails: 'friend@example.org', rooms: [BOBS] } });
    expect(commandOf(sent)!.attrs.status).toBe('completed');
    const invite = service.app.invites.list({ invitee: 'friend@example.org' })[0];
    expect(service.app.invites.roomsOf(invite.id).map((r) => [r.room, r.state])).toEqual([[BOBS, 'open']]);

    const before = count('SELECT count(*) AS n FROM invites');
    const again = await adhoc(bob, COMPONENT, 'urn:xmpp-invites:0#send');
    const refused = await adhoc(bob, COMPONENT, 'urn:xmpp-invites:0#send', { sessionid: commandOf(again)!.attrs.sessionid, action: 'complete', fields: { emails: 'other@example.org', rooms: [GARDEN] } });
    expect(errorCondition(refused)).toBe('forbidden');
    expect(count('SELECT count(*) AS n FROM invites')).toBe(before);

    const create = await adhoc(root, COMPONENT, 'urn:xmpp:invite#create-account');
    const made = await adhoc(root, COMPONENT, 'urn:xmpp:invite#create-account', { sessionid: commandOf(create)!.attrs.sessionid, action: 'complete', fields: { rooms: [GARDEN, TEAM] } });
    expect(commandOf(made)!.attrs.status).toBe('completed');
    const link = service.app.invites.list({ inviter: 'root@localhost' }).find((i) => i.kind === 'account')!;
    expect(service.app.invites.roomsOf(link.id).map((r) => r.room)).toEqual([GARDEN, TEAM]);
  });
});

describe('statistics', () => {
  it('#stats counts per room: invited, accepted, declined, failed, no answer', async () => {
    const root = await login('root');
    const reply = await adhoc(root, COMPONENT, 'urn:xmpp-invites:0#stats');
    const rooms = formFields(reply).rooms.join('\n');
    expect(rooms).toMatch(/^garden@conference\.localhost: invited \d+, accepted \d+, declined [1-9]\d*, failed 0, no answer [1-9]\d*$/m);
    expect(rooms).toMatch(/^team@conference\.localhost: invited \d+, accepted [1-9]\d*, declined \d+, failed 0, no answer \d+$/m);
    const counted = service.app.invites.roomStats().find((r) => r.room === TEAM)!;
    expect(counted.invited).toBe(Number((service.app.db.prepare(`SELECT count(*) AS n FROM room_invitations WHERE room = ?`).get(TEAM) as { n: number }).n));
  });
});

describe('without admin rights on the MUC service', () => {
  let bare: RunningService;
  beforeAll(async () => {
    await service.stop();
    bare = await startService(serviceConfig(prosody, { rooms: { service: NORIGHTS }, admins: ['root@localhost'] }), { outboxPollMs: 100 });
  });
  afterAll(async () => {
    await bare?.stop();
  });

  it('records failed, shows the invitee why, tells the inviter room-failed, and the log names the setting', async () => {
    const root = await login('root');
    const dave = await login('dave');
    // A site admin may invite to every room of the service: no affiliation needs reading.
    const invited = await inviteToRooms(root, { jids: ['dave@localhost'], rooms: [LOCKED_OUT] });
    expect(commandOf(invited)!.attrs.status).toBe('completed');
    const id = /\(invite (\w{10})\)/.exec(commandNotes(invited)[0].text)![1];
    const respond = await adhoc(dave, COMPONENT, RESPOND);
    const reply = await adhoc(dave, COMPONENT, RESPOND, { sessionid: commandOf(respond)!.attrs.sessionid, action: 'complete', fields: { [`${id}/${LOCKED_OUT}`]: 'accept' } });
    const text = commandNotes(reply)[0].text;
    expect(text).toContain('Closed (closed@norights.localhost): accepted, but you could not be made a member');
    expect(text).toContain('the component is not an admin of norights.localhost');
    expect(bare.app.invites.roomsOf(id)[0]).toMatchObject({ state: 'failed', reason: expect.stringContaining('forbidden') });
    const failed = await notification(root, 'room-failed', LOCKED_OUT);
    expect(failed.getChildText('body')).toContain('dave@localhost accepted your invitation to Closed');
    const logged = bare.logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.level === 50 && /MUC service/.test(l.msg));
    expect(logged?.msg).toContain(`Component "${NORIGHTS}" "muc", add admins = { "${COMPONENT}" }`);
  });
});
