/**
 * The component as a client of a real ejabberd mod_muc: rights through `access_admin`, owner and
 * admin lists, membership, and the error naming the ejabberd setting when the right is missing.
 * One ejabberd runs two MUC services: `conference.localhost` (the component is in the
 * `access_admin` ACL) and `norights.localhost` (no access_admin).
 */
import { TestClient, adhoc, commandNotes, commandOf, errorCondition, type XmlElement } from '../support/client';
import { TestEjabberd } from '../support/ejabberd';
import { createRoom, grant, join, NS_MUC_USER } from '../support/muc';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';

const MUC = 'conference.localhost';
const NORIGHTS = 'norights.localhost';
const ROOM = `team@${MUC}`;
const LOCKED_OUT = `closed@${NORIGHTS}`;

let ejabberd: TestEjabberd;
const clients: TestClient[] = [];

async function login(username: string): Promise<TestClient> {
  const c = await TestClient.connect({ port: ejabberd.ports.c2s, domain: ejabberd.host, username, password: 'pw' });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  const started = Date.now();
  ejabberd = await TestEjabberd.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    muc: [
      { domain: MUC, componentAdmin: true },
      { domain: NORIGHTS, componentAdmin: false },
    ],
  });
  for (const u of ['alice', 'bob', 'carol', 'dave']) await ejabberd.register(u, 'pw');
  const alice = await login('alice');
  await createRoom(alice, ROOM, 'The Team');
  await createRoom(alice, LOCKED_OUT, 'Closed');
  await grant(alice, ROOM, 'bob@localhost', 'admin');
  console.log(`ejabberd and 2 rooms ready in ${Date.now() - started} ms`);
});

afterAll(async () => {
  for (const c of clients) await c.stop();
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

async function rightsLine(s: RunningService): Promise<{ level: number; msg: string }> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const line = s.logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => /MUC service/.test(l.msg));
    if (line) return line;
    if (Date.now() > deadline) throw new Error('no rights check in the log');
    await new Promise((r) => setTimeout(r, 20));
  }
}

it(
  'as an admin of the service: reads owners and admins, makes a member who can then join, never downgrades',
  withLog(async () => {
    const service = await startService(serviceConfig(ejabberd, { rooms: { service: MUC } }));
    try {
      const rooms = service.app.rooms!;
      expect(await rightsLine(service)).toMatchObject({ level: 30 });
      const listed = await rooms.listRooms();
      // ejabberd lists "The Team (1)" (occupants): the name is the room's own title
      expect(listed).toEqual({ ok: true, value: [{ jid: ROOM, name: 'The Team' }] });
      expect(await rooms.managers(ROOM)).toEqual({ ok: true, value: { owners: ['alice@localhost'], admins: ['bob@localhost'] } });

      const carol = await login('carol');
      const refused = await join(carol, ROOM, 'carol');
      expect(refused.getChild('error')?.getChild('registration-required')).toBeDefined();
      expect(await rooms.makeMember(ROOM, 'carol@localhost')).toEqual({ ok: true, value: { kind: 'made' } });
      const joined = await join(carol, ROOM, 'carol');
      expect(joined.attrs.type).toBeUndefined();
      expect(joined.getChild('x', NS_MUC_USER)?.getChild('item')?.attrs.affiliation).toBe('member');

      expect(await rooms.makeMember(ROOM, 'bob@localhost')).toEqual({ ok: true, value: { kind: 'already', affiliation: 'admin' } });
      expect(await rooms.managers(ROOM)).toMatchObject({ ok: true, value: { admins: ['bob@localhost'] } });
      expect(await rooms.managers(`nosuchroom@${MUC}`)).toMatchObject({ ok: false, error: { kind: 'item-not-found' } });
    } finally {
      await service.stop();
    }
  }),
);

it(
  'without access_admin: forbidden, and the log names the ejabberd setting',
  withLog(async () => {
    const service = await startService(serviceConfig(ejabberd, { rooms: { service: NORIGHTS } }));
    try {
      const line = await rightsLine(service);
      expect(line.level).toBe(50);
      expect(line.msg).toContain(`acl: muc_admin: server: ${COMPONENT}`);
      expect(line.msg).toContain('mod_muc: access_admin: - allow: muc_admin');
      expect(await service.app.rooms!.makeMember(LOCKED_OUT, 'carol@localhost')).toMatchObject({ ok: false, error: { kind: 'forbidden' } });
    } finally {
      await service.stop();
    }
  }),
);

const NS_PROJECT = 'urn:xmpp-invites:0';

function notification(c: TestClient, kind: string): Promise<XmlElement> {
  return c.waitFor((s) => s.name === 'message' && s.getChildren('notification', NS_PROJECT).some((n) => n.attrs.kind === kind), 10_000);
}

it(
  'an owner invites with #invite-to-rooms, the invitee accepts with #respond: a member, told, invited to join; no rights: failed',
  withLog(async () => {
    const service = await startService(serviceConfig(ejabberd, { rooms: { service: MUC }, admins: ['carol@localhost'] }), { outboxPollMs: 100 });
    try {
      const alice = clients[0];
      const bob = await login('bob');
      const dave = await login('dave');
      const first = await adhoc(alice, COMPONENT, 'urn:xmpp-invites:0#invite-to-rooms');
      const made = await adhoc(alice, COMPONENT, 'urn:xmpp-invites:0#invite-to-rooms', {
        sessionid: commandOf(first)!.attrs.sessionid,
        action: 'complete',
        fields: { jids: ['dave@localhost'], rooms: [ROOM] },
      });
      expect(commandOf(made)!.attrs.status).toBe('completed');
      const invitation = await notification(dave, 'invitation');
      const id = String(invitation.getChild('notification', NS_PROJECT)!.attrs.invite);
      const form = await adhoc(dave, COMPONENT, 'urn:xmpp-invites:0#respond');
      const reply = await adhoc(dave, COMPONENT, 'urn:xmpp-invites:0#respond', {
        sessionid: commandOf(form)!.attrs.sessionid,
        action: 'complete',
        fields: { [`${id}/${ROOM}`]: 'accept' },
      });
      expect(commandNotes(reply)[0].text).toContain('The Team (team@conference.localhost): accepted; you are a member now');
      expect(await service.app.rooms!.affiliation(ROOM, 'dave@localhost')).toEqual({ ok: true, value: 'member' });
      const direct = await dave.waitFor((s) => s.name === 'message' && !!s.getChild('x', 'jabber:x:conference'), 10_000);
      expect(direct.getChild('x', 'jabber:x:conference')!.attrs.jid).toBe(ROOM);
      await notification(alice, 'room-accepted');
      await notification(bob, 'room-joined');
    } finally {
      await service.stop();
    }
    // a site admin names a room of a service where the component has no rights: failed
    const service2 = await startService(serviceConfig(ejabberd, { rooms: { service: NORIGHTS }, admins: ['carol@localhost'] }), { outboxPollMs: 100 });
    try {
      const carol = await login('carol');
      const dave = clients.find((c) => c.jid.startsWith('dave@'))!;
      const first = await adhoc(carol, COMPONENT, 'urn:xmpp-invites:0#invite-to-rooms');
      expect(errorCondition(first)).toBeUndefined();
      const made = await adhoc(carol, COMPONENT, 'urn:xmpp-invites:0#invite-to-rooms', {
        sessionid: commandOf(first)!.attrs.sessionid,
        action: 'complete',
        fields: { jids: ['dave@localhost'], rooms: [LOCKED_OUT] },
      });
      const id = /\(invite (\w{10})\)/.exec(commandNotes(made)[0].text)![1];
      const form = await adhoc(dave, COMPONENT, 'urn:xmpp-invites:0#respond');
      const reply = await adhoc(dave, COMPONENT, 'urn:xmpp-invites:0#respond', {
        sessionid: commandOf(form)!.attrs.sessionid,
        action: 'complete',
        fields: { [`${id}/${LOCKED_OUT}`]: 'accept' },
      });
      expect(commandNotes(reply)[0].text).toContain('you could not be made a member');
      expect(service2.app.invites.roomsOf(id)[0].state).toBe('failed');
      await notification(carol, 'room-failed');
    } finally {
      await service2.stop();
    }
  }),
);
