/**
 * Room invitations through the HTTP API (`POST /invites` with `rooms`, kind `room` with `jid`),
 * against a real Prosody with a real MUC component whose rooms real clients made and own: a key
 * with the admin scope names rooms as `invite create --room` does; a key without it acts for the
 * named user, whom the MUC service must report as owner or admin of each room. Every refusal
 * (400 naming the field, 403, 409, 429) leaves the database unchanged; the invites read back show
 * the rooms and their answers as `invite list --json` does.
 */
import { TestClient, adhoc, commandOf, formFields, type XmlElement } from '../support/client';
import { createRoom, grant } from '../support/muc';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { CreatedOut, ErrorOut, InviteOut, PageOut } from '../../src/web/api/schemas';

const MUC = 'conference.localhost';
const TEAM = `team@${MUC}`;
const GARDEN = `garden@${MUC}`;
const BOBS = `bobs@${MUC}`;
const QUIET = `quiet@${MUC}`;
const NS_PROJECT = 'urn:xmpp-invites:0';
const RESPOND = 'urn:xmpp-invites:0#respond';
const KEYS = {
  admin: 'admin-key-0123456789abcdef0123456789abcdef',
  writer: 'writer-key-0123456789abcdef0123456789abcdef',
};
type KeyName = keyof typeof KEYS;

let prosody: TestProsody;
let service: RunningService;
let base: string;
const clients = new Map<string, TestClient>();

async function login(username: string): Promise<TestClient> {
  const existing = clients.get(username);
  if (existing) return existing;
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: prosody.host, username, password: 'pw' });
  clients.set(username, c);
  return c;
}

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    hostAdmins: [COMPONENT],
    muc: [{ domain: MUC, admins: [COMPONENT] }],
  });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'root']) await prosody.register(u, 'pw');
  const alice = await login('alice');
  await createRoom(alice, TEAM, 'The Team');
  await createRoom(alice, GARDEN, 'Garden');
  await createRoom(alice, QUIET, 'Quiet');
  await grant(alice, TEAM, 'bob@localhost', 'admin');
  await createRoom(await login('bob'), BOBS, 'Bob’s Corner');
  service = await startService(
    serviceConfig(prosody, {
      admins: ['root@localhost'],
      rooms: { service: MUC, max_per_invite: 3 },
      limits: { per_room_per_day: 3 },
      api: {
        keys: [
          { name: 'ops', key: KEYS.admin, scopes: ['admin'] },
          { name: 'site', key: KEYS.writer, scopes: ['invites:write', 'invites:read'] },
        ],
      },
    }),
    { outboxPollMs: 100 },
  );
  base = service.app.web.url;
});

afterAll(async () => {
  for (const c of clients.values()) await c.stop();
  await service?.stop();
  await prosody?.stop();
});

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(method: string, path: string, key: KeyName, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { Authorization: `Bearer ${KEYS[key]}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${base}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const create = (key: KeyName, body: unknown) => call('POST', '/invites', key, body);

/** Every table a new invite writes to, read through the service's own connection. */
function snapshot(): string {
  const all = (sql: string) => JSON.stringify(service.app.db.prepare(sql).all());
  return [
    all('SELECT * FROM invites ORDER BY id'),
    all('SELECT * FROM events ORDER BY id'),
    all('SELECT * FROM room_invitations ORDER BY invite_id, room'),
    all('SELECT id, channel, kind, recipient, invite_ids, params FROM outbox ORDER BY id'),
  ].join('\n');
}

/** Waits until the outbox has delivered what is due (delivery changes invites and events on its own). */
async function quiet(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { n } = service.app.db.prepare(`SELECT count(*) AS n FROM outbox WHERE state IN ('queued', 'sending') AND not_before <= ?`).get(Date.now()) as { n: number };
    if (Number(n) === 0) return;
    service.app.worker.poke();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the outbox did not empty');
}

/** POST /invites is refused with `status` (and `field`, when given), and the database is unchanged. */
async function refused(key: KeyName, body: unknown, status: number, field?: string): Promise<Answer> {
  await quiet();
  const before = snapshot();
  const answer = await create(key, body);
  expect(answer.status).toBe(status);
  expect(ErrorOut.safeParse(answer.body).success).toBe(true);
  if (field !== undefined) expect(answer.body.error.field).toBe(field);
  await quiet();
  expect(snapshot() === before).toBe(true);
  return answer;
}

function notification(c: TestClient, kind: string): Promise<XmlElement> {
  return c.waitFor((s) => s.name === 'message' && s.attrs.from === COMPONENT && s.getChildren('notification', NS_PROJECT).some((n) => n.attrs.kind === kind), 10_000);
}

describe('a key with the admin scope names rooms as the operator does', () => {
  let id: string;

  it('invites an existing account to two rooms (kind room): 201 with the rooms, and the invitee is told', async () => {
    const carol = await login('carol');
    const res = await create('admin', { kind: 'room', jid: 'carol@localhost', rooms: [TEAM, GARDEN.toUpperCase()], note: 'Join us' });
    expect(res.status).toBe(201);
    expect(CreatedOut.safeParse(res.body).success).toBe(true);
    id = res.body.id;
    expect(res.body).toMatchObject({ kind: 'room', state: 'open', invitee_jid: 'carol@localhost', inviter: null });
    expect(res.body.rooms).toEqual([
      { room: GARDEN, name: null, state: 'open', member: null },
      { room: TEAM, name: null, state: 'open', member: null },
    ]);
    const invitation = await notification(carol, 'invitation');
    const n = invitation.getChildren('notification', NS_PROJECT).find((x) => x.attrs.kind === 'invitation')!;
    expect(n.attrs.invite).toBe(id);
    expect(n.getChildren('room').map((r) => r.attrs.jid).sort()).toEqual([GARDEN, TEAM]);
  });

  it('shows the answers in GET /invites/{id} and in the list once the invitee has answered', async () => {
    const carol = await login('carol');
    const first = await adhoc(carol, COMPONENT, RESPOND);
    expect(formFields(first)[`${id}/${TEAM}`]).toEqual(['accept']);
    await adhoc(carol, COMPONENT, RESPOND, {
      sessionid: commandOf(first)!.attrs.sessionid,
      action: 'complete',
      fields: { [`${id}/${TEAM}`]: 'accept', [`${id}/${GARDEN}`]: 'decline', message: 'Not a gardener' },
    });
    let one: Answer | undefined;
    for (let i = 0; i < 100; i++) {
      one = await call('GET', `/invites/${id}`, 'writer');
      if (one.body.rooms?.every((r: { state: string }) => r.state === 'accepted' || r.state === 'declined')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(one!.status).toBe(200);
    expect(InviteOut.safeParse(one!.body).success).toBe(true);
    expect(one!.body.rooms).toEqual([
      { room: GARDEN, name: null, state: 'declined', member: null },
      { room: TEAM, name: null, state: 'accepted', member: 'carol@localhost' },
    ]);
    const list = await call('GET', `/invites?invitee=carol@localhost`, 'writer');
    expect(PageOut.safeParse(list.body).success).toBe(true);
    expect(list.body.invites.find((i: { id: string }) => i.id === id).rooms).toEqual(one!.body.rooms);
    expect(await service.app.rooms!.affiliation(TEAM, 'carol@localhost')).toEqual({ ok: true, value: 'member' });
  });

  it('attaches rooms to an account invite by e-mail, and leaves `rooms` out of invites that name none', async () => {
    const res = await create('admin', { kind: 'account', email: 'newcomer@example.org', rooms: [QUIET], inviter: 'alice@localhost' });
    expect(res.status).toBe(201);
    expect(res.body.rooms).toEqual([{ room: QUIET, name: null, state: 'open', member: null }]);
    const plain = await create('admin', { kind: 'account' });
    expect(plain.status).toBe(201);
    expect(plain.body).not.toHaveProperty('rooms');
  });

  it('may name a room of the service it does not own, as the CLI operator may', async () => {
    const res = await create('admin', { kind: 'room', jid: 'frank@localhost', rooms: [BOBS] });
    expect(res.status).toBe(201);
    expect(res.body.rooms.map((r: { room: string }) => r.room)).toEqual([BOBS]);
  });

  it('refuses a room outside rooms.service, a malformed one, too many, and rooms where none may go (400 naming the field)', async () => {
    await refused('admin', { kind: 'room', jid: 'dave@localhost', rooms: ['team@elsewhere.localhost'] }, 400, 'rooms');
    await refused('admin', { kind: 'room', jid: 'dave@localhost', rooms: ['not a@@jid'] }, 400, 'rooms');
    await refused('admin', { kind: 'room', jid: 'dave@localhost', rooms: [MUC] }, 400, 'rooms');
    await refused('admin', { kind: 'room', jid: 'dave@localhost', rooms: [''] }, 400, 'rooms');
    await refused('admin', { kind: 'room', jid: 'dave@localhost', rooms: `${TEAM}` }, 400, 'rooms');
    await refused('admin', { kind: 'room', jid: 'dave@localhost', rooms: [TEAM, GARDEN, BOBS, QUIET] }, 400, 'rooms');
    await refused('admin', { kind: 'room', jid: 'dave@localhost', rooms: [] }, 400, 'rooms');
    await refused('admin', { kind: 'room', rooms: [TEAM] }, 400, 'jid');
    await refused('admin', { kind: 'room', jid: 'dave@localhost', email: 'dave@example.org', rooms: [TEAM] }, 400, 'email');
    await refused('admin', { kind: 'room', jid: 'nobody', rooms: [TEAM] }, 400, 'jid');
    await refused('admin', { kind: 'contact', jid: 'dave@localhost', rooms: [TEAM] }, 400, 'rooms');
  });

  it('refuses a duplicate per (room, invitee) with 409, whoever invited, and stores nothing of the other rooms', async () => {
    // frank has an open invitation to BOBS (above)
    const res = await refused('admin', { kind: 'room', jid: 'frank@localhost', rooms: [GARDEN, BOBS] }, 409);
    expect(res.body.error.code).toBe('duplicate');
    expect(res.body.error.detail).toMatchObject({ room: BOBS, state: 'open' });
    const withAccount = await refused('admin', { kind: 'account', jid: 'frank@localhost', rooms: [BOBS] }, 409);
    expect(withAccount.body.error.code).toBe('duplicate');
  });
});

describe('a key without the admin scope acts for the named user, as the commands do', () => {
  it('invites to a room the user owns, with the name the MUC service gives', async () => {
    const res = await create('writer', { kind: 'room', jid: 'dave@localhost', rooms: [GARDEN], inviter: 'alice@localhost' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ kind: 'room', inviter: 'alice@localhost', invitee_jid: 'dave@localhost' });
    expect(res.body.rooms).toEqual([{ room: GARDEN, name: 'Garden', state: 'open', member: null }]);
  });

  it('invites to a room the user administers (affiliation admin)', async () => {
    const res = await create('writer', { kind: 'room', jid: 'erin@localhost', rooms: [TEAM, BOBS], inviter: 'bob@localhost' });
    expect(res.status).toBe(201);
    expect(res.body.rooms.map((r: { name: string }) => r.name).sort()).toEqual(['Bob’s Corner', 'The Team']);
  });

  it('refuses with 403 a room where the user is neither owner nor admin, even with one allowed room beside it', async () => {
    const res = await refused('writer', { kind: 'room', jid: 'dave@localhost', rooms: [BOBS, QUIET], inviter: 'bob@localhost' }, 403, 'rooms');
    expect(res.body.error.message).toContain(QUIET);
    expect(res.body.error.message).not.toContain(BOBS);
    // a site admin's JID gets no admin rights through a key without the admin scope
    await refused('writer', { kind: 'room', jid: 'dave@localhost', rooms: [BOBS], inviter: 'root@localhost' }, 403, 'rooms');
    await refused('writer', { kind: 'contact-account', email: 'x@example.org', rooms: [GARDEN], inviter: 'carol@localhost' }, 403, 'rooms');
  });

  it('refuses with 400 a room the MUC service does not know', async () => {
    const res = await refused('writer', { kind: 'room', jid: 'dave@localhost', rooms: [`nosuch@${MUC}`], inviter: 'alice@localhost' }, 400, 'rooms');
    expect(res.body.error.message).toContain(`nosuch@${MUC}`);
  });

  it('refuses with 409 a second open invitation of the same invitee to a room, from another inviter', async () => {
    // dave is invited to GARDEN by alice (above); bob administers TEAM but dave is not invited there yet
    const res = await refused('writer', { kind: 'room', jid: 'dave@localhost', rooms: [TEAM, GARDEN], inviter: 'alice@localhost' }, 409);
    expect(res.body.error.detail).toMatchObject({ room: GARDEN });
  });

  it('refuses with 429 when a room reached limits.per_room_per_day, storing nothing of the other rooms', async () => {
    // QUIET had one invitation today (the operator's, above): two more by its owner fill it
    for (const jid of ['dave@localhost', 'erin@localhost']) {
      expect((await create('writer', { kind: 'room', jid, rooms: [QUIET], inviter: 'alice@localhost' })).status).toBe(201);
    }
    const res = await refused('writer', { kind: 'room', jid: 'frank@localhost', rooms: [TEAM, QUIET], inviter: 'alice@localhost' }, 429);
    expect(res.body.error.code).toBe('limit-reached');
    expect(res.body.error.detail).toMatchObject({ room: QUIET });
  });

  it('takes account-capable kinds with rooms under the approval rule: the invite waits, its rooms open', async () => {
    const res = await create('writer', { kind: 'contact-account', email: 'friend@example.org', rooms: [GARDEN], inviter: 'alice@localhost' });
    expect(res.status).toBe(201);
    expect(res.body.state).toBe('pending');
    expect(res.body.rooms).toEqual([{ room: GARDEN, name: 'Garden', state: 'open', member: null }]);
  });
});

describe('the OpenAPI document', () => {
  it('describes rooms in the request and in the invites returned', async () => {
    const doc = (await (await fetch(`${base}/api/openapi.json`)).json()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const post = doc.paths['/invites'].post;
    const body = post.requestBody.content['application/json'].schema;
    expect(body.properties.rooms).toMatchObject({ type: 'array', items: { type: 'string' } });
    expect(body.properties.kind.enum).toContain('room');
    const out = post.responses['201'].content['application/json'].schema;
    expect(out.properties.rooms.items.properties.state.enum).toEqual(expect.arrayContaining(['open', 'accepted', 'declined']));
  });
});
