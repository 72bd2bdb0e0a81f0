/**
 * The component as a client of a real Prosody MUC service (rooms.service): rooms, owner/admin
 * lists, membership, XEP-0249 invitations, and the rights check at connect. One Prosody runs two
 * MUC services: `conference.localhost` lists the component in its `admins`, `norights.localhost`
 * does not. Rooms are made by real client sessions (Prosody locks a new room until its owner
 * submits the configuration form).
 */
import { TestClient } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import type { RoomsPort } from '../../src/domain/rooms';
import { createRoom, grant, join, NS_MUC_USER } from '../support/muc';

const MUC = 'conference.localhost';
const NORIGHTS = 'norights.localhost';
const ROOM = `team@${MUC}`;
const OTHER = `garden@${MUC}`;
const LOCKED_OUT = `closed@${NORIGHTS}`;

let prosody: TestProsody;
let service: RunningService;
let rooms: RoomsPort;
const clients: TestClient[] = [];

async function login(username: string): Promise<TestClient> {
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: prosody.host, username, password: 'pw' });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  const started = Date.now();
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    muc: [
      { domain: MUC, admins: [COMPONENT] },
      { domain: NORIGHTS, admins: [] },
    ],
  });
  for (const u of ['alice', 'bob', 'carol', 'dave']) await prosody.register(u, 'pw');
  const alice = await login('alice');
  await createRoom(alice, ROOM, 'The Team');
  await createRoom(alice, OTHER, 'Garden');
  await createRoom(alice, LOCKED_OUT, 'Closed');
  await grant(alice, ROOM, 'bob@localhost', 'admin');
  service = await startService(serviceConfig(prosody, { rooms: { service: MUC } }));
  rooms = service.app.rooms!;
  console.log(`Prosody, 3 rooms and the service ready in ${Date.now() - started} ms`);
});

afterAll(async () => {
  for (const c of clients) await c.stop();
  await service?.stop();
  await prosody?.stop();
});

/** The service's log lines, parsed. */
function logLines(s: RunningService): { level: number; msg: string }[] {
  return s.logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string });
}

async function until<T>(what: string, get: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('checks at connect that it is an admin of the MUC service, and says so', async () => {
  const line = await until('the rights check', () => logLines(service).find((l) => /MUC service/.test(l.msg)));
  expect(line.level).toBe(30);
  expect(line.msg).toContain(`admin of the MUC service ${MUC}`);
});

it('lists the rooms of the service with their names', async () => {
  const listed = await rooms.listRooms();
  expect(listed).toEqual({ ok: true, value: expect.arrayContaining([{ jid: ROOM, name: 'The Team' }, { jid: OTHER, name: 'Garden' }]) });
});

it("reads a room's owners and admins", async () => {
  expect(await rooms.managers(ROOM)).toEqual({ ok: true, value: { owners: ['alice@localhost'], admins: ['bob@localhost'] } });
  expect(await rooms.managers(OTHER)).toEqual({ ok: true, value: { owners: ['alice@localhost'], admins: [] } });
});

it("lets the room's owners and admins and the site's admins invite, and nobody else", async () => {
  expect(await rooms.mayInvite(ROOM, 'alice@localhost', { siteAdmin: false })).toEqual({ ok: true, value: true });
  expect(await rooms.mayInvite(ROOM, 'Bob@localhost', { siteAdmin: false })).toEqual({ ok: true, value: true });
  expect(await rooms.mayInvite(OTHER, 'bob@localhost', { siteAdmin: false })).toEqual({ ok: true, value: false });
  expect(await rooms.mayInvite(ROOM, 'carol@localhost', { siteAdmin: false })).toEqual({ ok: true, value: false });
  expect(await rooms.mayInvite(ROOM, 'carol@localhost', { siteAdmin: true })).toEqual({ ok: true, value: true });
  // a site admin's rights stop at the configured service
  expect(await rooms.mayInvite(LOCKED_OUT, 'carol@localhost', { siteAdmin: true })).toEqual({ ok: true, value: false });
});

it('makes a user a member, who can then join the members-only room', async () => {
  const carol = await login('carol');
  const refused = await join(carol, ROOM, 'carol');
  expect(refused.attrs.type).toBe('error');
  expect(refused.getChild('error')?.getChild('registration-required')).toBeDefined();

  expect(await rooms.affiliation(ROOM, 'carol@localhost')).toEqual({ ok: true, value: 'none' });
  expect(await rooms.makeMember(ROOM, 'carol@localhost')).toEqual({ ok: true, value: { kind: 'made' } });
  expect(await rooms.affiliation(ROOM, 'carol@localhost')).toEqual({ ok: true, value: 'member' });

  const joined = await join(carol, ROOM, 'carol');
  expect(joined.attrs.type).toBeUndefined();
  expect(joined.getChild('x', NS_MUC_USER)?.getChild('item')?.attrs.affiliation).toBe('member');
  // a second time changes nothing
  expect(await rooms.makeMember(ROOM, 'carol@localhost')).toEqual({ ok: true, value: { kind: 'already', affiliation: 'member' } });
});

it('does not downgrade an admin or an owner to member', async () => {
  expect(await rooms.makeMember(ROOM, 'bob@localhost')).toEqual({ ok: true, value: { kind: 'already', affiliation: 'admin' } });
  expect(await rooms.makeMember(ROOM, 'alice@localhost')).toEqual({ ok: true, value: { kind: 'already', affiliation: 'owner' } });
  expect(await rooms.managers(ROOM)).toEqual({ ok: true, value: { owners: ['alice@localhost'], admins: ['bob@localhost'] } });
});

it('reads a ban, and lifts it on making the member (the contract: member unless higher)', async () => {
  const alice = clients[0];
  await grant(alice, OTHER, 'dave@localhost', 'outcast');
  expect(await rooms.affiliation(OTHER, 'dave@localhost')).toEqual({ ok: true, value: 'outcast' });
  expect(await rooms.makeMember(OTHER, 'dave@localhost')).toEqual({ ok: true, value: { kind: 'made' } });
  expect(await rooms.affiliation(OTHER, 'dave@localhost')).toEqual({ ok: true, value: 'member' });
});

it('maps a room that does not exist to item-not-found', async () => {
  const missing = `nosuchroom@${MUC}`;
  expect(await rooms.managers(missing)).toEqual({ ok: false, error: { kind: 'item-not-found', reason: expect.stringContaining('item-not-found') } });
  expect(await rooms.makeMember(missing, 'dave@localhost')).toMatchObject({ ok: false, error: { kind: 'item-not-found' } });
});

it('sends a XEP-0249 direct invitation that reaches the invitee with the room JID', async () => {
  const dave = await login('dave');
  expect(await rooms.sendInvitation(ROOM, 'dave@localhost', 'Alice invites you\u0007 to the team')).toEqual({ ok: true, value: undefined });
  const msg = await dave.waitFor((s) => s.name === 'message' && !!s.getChild('x', 'jabber:x:conference'));
  expect(msg.attrs.from).toBe(COMPONENT);
  const x = msg.getChild('x', 'jabber:x:conference')!;
  expect(x.attrs.jid).toBe(ROOM);
  expect(x.attrs.reason).toBe('Alice invites you to the team');
});

describe('without admin rights on the MUC service', () => {
  let bare: RunningService;
  beforeAll(async () => {
    // the component can hold one stream at a time
    await service.stop();
    bare = await startService(serviceConfig(prosody, { rooms: { service: NORIGHTS } }));
    rooms = bare.app.rooms!;
  });
  afterAll(async () => {
    await bare?.stop();
  });

  it('logs an error at connect naming the Prosody and ejabberd settings to add', async () => {
    const line = await until('the rights check', () => logLines(bare).find((l) => /MUC service/.test(l.msg)));
    expect(line.level).toBe(50);
    expect(line.msg).toContain(`Component "${NORIGHTS}" "muc", add admins = { "${COMPONENT}" }`);
    expect(line.msg).toContain(`acl: muc_admin: server: ${COMPONENT}`);
    expect(line.msg).toContain('access_admin');
  });

  it('maps the refusals to forbidden, and makes nobody a member', async () => {
    expect(await rooms.checkRights()).toMatchObject({ kind: 'missing', room: LOCKED_OUT });
    expect(await rooms.managers(LOCKED_OUT)).toMatchObject({ ok: false, error: { kind: 'forbidden' } });
    expect(await rooms.makeMember(LOCKED_OUT, 'dave@localhost')).toMatchObject({ ok: false, error: { kind: 'forbidden' } });
    const dave = await login('dave');
    const refused = await join(dave, LOCKED_OUT, 'dave');
    expect(refused.getChild('error')?.getChild('registration-required')).toBeDefined();
  });
});
