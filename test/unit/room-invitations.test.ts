/**
 * Room invitations in the invite model (the rules, on a real SQLite store): one answer per
 * (invite, room) with its own state and events; the duplicate rule per (room, invitee), whoever
 * invites; limits.per_room_per_day; opt-outs; expiry, revocation and rejection end the open answers;
 * the answers and what the inviters hear.
 */
import { InviteService, type InvitePolicy } from '../../src/domain/invites';
import type { Notice } from '../../src/domain/notices';
import type { Actor } from '../../src/domain/types';
import Database from 'better-sqlite3';
import { immediateTransaction, migrate, openDatabase, readMigrations } from '../../src/store/database';
import { Respond } from '../../src/domain/respond';
import { SqliteInviteStore } from '../../src/store/invites-repo';
import { SqliteRoomInvitations } from '../../src/store/room-invitations-repo';

const KEY = 'k'.repeat(40);
const DAY = 86_400_000;
const MUC = 'conference.example.com';
const TEAM = `team@${MUC}`;
const GARDEN = `garden@${MUC}`;
const alice: Actor = { kind: 'user', jid: 'alice@example.com', isAdmin: false };
const bob: Actor = { kind: 'user', jid: 'bob@example.com', isAdmin: false };
const admin: Actor = { kind: 'user', jid: 'admin@example.com', isAdmin: true };

function setup(opts: { policy?: Partial<InvitePolicy>; perRoomPerDay?: number } = {}) {
  const db = openDatabase(':memory:');
  let now = Date.UTC(2026, 10, 21, 12);
  const notices: Notice[] = [];
  const service = new InviteService({
    store: new SqliteInviteStore(db),
    policy: {
      host: 'example.com',
      publicUrl: 'https://invites.example.com',
      serverBridge: false,
      expiry: 7 * DAY,
      approval: 'non-admins',
      allowUserInvites: true,
      maxUses: 1,
      admins: ['admin@example.com'],
      roomsService: MUC,
      maxRoomsPerInvite: 3,
      ...opts.policy,
    },
    tokenKey: KEY,
    clock: () => now,
    notices: { enqueue: (n) => notices.push(n) },
    rooms: new SqliteRoomInvitations(db),
    perRoomPerDay: opts.perRoomPerDay,
  });
  const dump = () => ['invites', 'events', 'room_invitations'].map((t) => JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all())).join('\n');
  return { db, service, notices, dump, advance: (ms: number) => (now += ms) };
}

const roomInvite = (jid: string, rooms: string[]) => ({ kind: 'room' as const, source: 'invite-to-rooms' as const, jid, rooms: rooms.map((r) => ({ jid: r })) });

describe('making room invitations', () => {
  it('makes one open answer per room, open at once (no account: no approval), and delivers the rooms with the invitation', () => {
    const { service, notices } = setup();
    const { invite, rooms } = service.create(alice, roomInvite('Carol@Elsewhere.net', [TEAM, GARDEN]));
    expect(invite).toMatchObject({ kind: 'room', state: 'open', inviteeJid: 'carol@elsewhere.net', activeKey: null });
    expect(rooms.map((r) => [r.room, r.state, r.inviteeKey])).toEqual([
      [TEAM, 'open', 'carol@elsewhere.net'],
      [GARDEN, 'open', 'carol@elsewhere.net'],
    ]);
    const invitation = notices.find((n) => n.kind === 'invitation')!;
    expect(invitation.recipient).toBe('carol@elsewhere.net');
    expect(JSON.parse(String(invitation.params!.rooms))).toEqual([
      [GARDEN, null],
      [TEAM, null],
    ]);
  });

  it('keeps the rooms of an account invite waiting for approval, and revokes them on rejection', () => {
    const { service } = setup();
    const { invite, rooms } = service.create(alice, { kind: 'contact-account', source: 'send', email: 'new@example.org', rooms: [{ jid: TEAM }] });
    expect(invite.state).toBe('pending');
    expect(rooms[0].state).toBe('open');
    service.reject(admin, invite.id, 'no');
    expect(service.roomsOf(invite.id)[0].state).toBe('revoked');
    expect(service.events(invite.id).map((e) => e.type)).toEqual(['created', 'rejected', 'room-revoked']);
  });

  it('refuses a second open invitation to a room for the same invitee, from any inviter, and allows it once the first is answered', () => {
    const { service, dump } = setup();
    const first = service.create(alice, roomInvite('carol@example.com', [TEAM]));
    const before = dump();
    expect(() => service.create(bob, roomInvite('CAROL@example.com', [TEAM]))).toThrow(/already an open invitation to team@conference.example.com for carol@example.com/);
    expect(dump()).toBe(before);
    // another room is fine, and one of two rooms taken leaves only the other
    const second = service.create(bob, roomInvite('carol@example.com', [TEAM, GARDEN]));
    expect(second.rooms.map((r) => r.room)).toEqual([GARDEN]);
    expect(second.roomsSkipped).toEqual([{ room: TEAM, reason: expect.stringContaining('already an open invitation') }]);
    service.answerRoom(first.invite.id, TEAM, 'decline', { inviteeKey: 'carol@example.com', memberJid: 'carol@example.com' }, null);
    expect(service.create(bob, roomInvite('carol@example.com', [TEAM])).rooms).toHaveLength(1);
  });

  it('with allRoomsOrNone (the API), refuses the whole invite for one taken room and stores nothing', () => {
    const { service, dump } = setup({ perRoomPerDay: 1 });
    service.create(alice, roomInvite('carol@example.com', [TEAM]));
    const before = dump();
    expect(() => service.create(bob, { ...roomInvite('carol@example.com', [GARDEN, TEAM]), allRoomsOrNone: true })).toThrow(/already an open invitation to team@conference.example.com/);
    expect(() => service.create(bob, { kind: 'contact-account', source: 'api', email: 'dan@example.org', rooms: [{ jid: GARDEN }, { jid: TEAM }], allRoomsOrNone: true })).toThrow(
      /per_room_per_day/,
    );
    expect(dump()).toBe(before);
  });

  it('frees the pair once the holder has expired', () => {
    const { service, advance } = setup();
    const first = service.create(alice, roomInvite('carol@example.com', [TEAM]));
    advance(8 * DAY);
    expect(service.create(bob, roomInvite('carol@example.com', [TEAM])).rooms).toHaveLength(1);
    expect(service.roomsOf(first.invite.id)[0].state).toBe('expired');
  });

  it('counts limits.per_room_per_day over every inviter; the operator is exempt', () => {
    const { service, dump, advance } = setup({ perRoomPerDay: 2 });
    service.create(alice, roomInvite('a@example.com', [TEAM]));
    service.create(bob, roomInvite('b@example.com', [TEAM]));
    const before = dump();
    expect(() => service.create(alice, roomInvite('c@example.com', [TEAM]))).toThrow(/Limit per_room_per_day reached: team@conference.example.com had 2 invitations today \(at most 2\)/);
    expect(dump()).toBe(before);
    expect(service.create({ kind: 'operator' }, roomInvite('c@example.com', [TEAM])).rooms).toHaveLength(1);
    advance(DAY + 1);
    expect(service.create(alice, roomInvite('d@example.com', [TEAM])).rooms).toHaveLength(1);
  });

  it('honours opt-outs', () => {
    const { service } = setup();
    const { invite } = service.create(alice, roomInvite('carol@example.com', [TEAM]));
    service.decline(service.links(invite).token, null, true);
    expect(service.roomsOf(invite.id)[0].state).toBe('declined');
    expect(() => service.create(bob, roomInvite('carol@example.com', [GARDEN]))).toThrow(/asked not to be invited again/);
  });

  it.each([
    [{ kind: 'room' as const, source: 'cli' as const, jid: 'c@example.com', rooms: [] }, /names at least one room/],
    [{ kind: 'room' as const, source: 'cli' as const, email: 'c@example.com', rooms: [{ jid: TEAM }] }, /give its JID/],
    [{ kind: 'contact' as const, source: 'cli' as const, jid: 'c@example.com', rooms: [{ jid: TEAM }] }, /Rooms go with an invite that creates an account/],
    [roomInvite('c@example.com', ['team@elsewhere.org']), /is not a room of conference.example.com/],
    [roomInvite('c@example.com', [MUC]), /is not a room of/],
    [roomInvite('c@example.com', ['a@conference.example.com', 'b@conference.example.com', 'c@conference.example.com', 'd@conference.example.com']), /At most 3 rooms/],
  ])('refuses %j and changes nothing', (req, message) => {
    const { service, dump } = setup();
    const before = dump();
    expect(() => service.create(alice, req)).toThrow(message);
    expect(dump()).toBe(before);
  });

  it('refuses rooms when rooms.service is not set', () => {
    const { service } = setup({ policy: { roomsService: undefined } });
    expect(() => service.create(alice, roomInvite('c@example.com', [TEAM]))).toThrow(/rooms.service is not set/);
  });
});

describe('the migration that adds rooms', () => {
  it('rebuilds invites with every row, index and trigger, the references of events, claims and opt-outs intact', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    db.pragma('recursive_triggers = ON');
    const all = readMigrations();
    const rooms = all.findIndex((m) => /room invitations/.test(m.title));
    migrate(db, all.slice(0, rooms));
    const T = Date.UTC(2026, 0, 1);
    db.prepare(`INSERT INTO invites (id, kind, state, source, inviter, invitee_key, active_key, created_at, expires_at) VALUES ('abcdefghij', 'contact', 'open', 'cli', 'a@x', 'b@y', 'a@x|b@y', ?, ?)`).run(T, T + DAY);
    db.prepare(`INSERT INTO events (invite_id, at, type, actor) VALUES ('abcdefghij', ?, 'created', 'operator')`).run(T);
    db.prepare(`INSERT INTO claims (id, invite_id, username, door, state, created_at) VALUES ('c1', 'abcdefghij', 'bob', 'web', 'released', ?)`).run(T);
    db.prepare(`INSERT INTO opt_outs (address_hash, created_at, invite_id) VALUES ('h', ?, 'abcdefghij')`).run(T);
    const shape = () => db.prepare(`SELECT type, name FROM sqlite_master WHERE tbl_name = 'invites' ORDER BY type, name`).all();
    const rows = () => JSON.stringify(['invites', 'events', 'claims', 'opt_outs'].map((t) => db.prepare(`SELECT * FROM ${t}`).all()));
    const before = { shape: shape(), rows: rows() };
    migrate(db, all.slice(0, rooms + 1));
    expect(shape()).toEqual(before.shape);
    expect(rows()).toBe(before.rows);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect(() => db.prepare(`INSERT INTO events (invite_id, at, type, actor) VALUES ('nosuchinvi', 1, 'x', 'y')`).run()).toThrow(/FOREIGN KEY/);
    expect(() => db.prepare('DELETE FROM invites').run()).toThrow(/never deleted/);
    expect(() => db.prepare(`UPDATE invites SET kind = 'account'`).run()).toThrow(/never change/);
    db.prepare(`UPDATE invites SET state = 'revoked'`).run();
    expect(db.prepare('SELECT active_key FROM invites').get()).toEqual({ active_key: null });
    expect(() => db.prepare(`INSERT INTO invites (id, kind, state, source, created_at, expires_at) VALUES ('roomnojid1', 'room', 'open', 'cli', 1, 2)`).run()).toThrow(/CHECK/);
  });
});

describe('the table of record', () => {
  it('refuses to delete a room invitation or to change what it is, and keeps one live invitation per room and invitee', () => {
    const { service, db } = setup();
    const { invite } = service.create(alice, roomInvite('carol@example.com', [TEAM]));
    expect(() => db.prepare('DELETE FROM room_invitations').run()).toThrow(/never deleted/);
    expect(() => db.prepare(`UPDATE room_invitations SET room = 'x@conference.example.com'`).run()).toThrow(/never change/);
    expect(() =>
      db.prepare(`INSERT INTO room_invitations (invite_id, room, invitee_key, state, active_key, created_at) VALUES (?, ?, 'carol@example.com', 'open', ?, 1)`).run(invite.id, GARDEN, `${TEAM}|carol@example.com`),
    ).toThrow(/UNIQUE/);
    // leaving open frees the pair
    db.prepare(`UPDATE room_invitations SET state = 'declined'`).run();
    expect(db.prepare('SELECT active_key FROM room_invitations').get()).toEqual({ active_key: null });
  });
});

describe('beside other invitations', () => {
  it('is no companion of an account invite to the same person (it makes no account)', () => {
    const { service, db } = setup();
    const contact = service.create(alice, { kind: 'contact-account', source: 'command', jid: 'carol@elsewhere.net' });
    service.approve(admin, contact.invite.id);
    service.create(bob, roomInvite('carol@elsewhere.net', [TEAM]));
    const respond = new Respond({ invites: service, registration: undefined as never, tx: { transaction: immediateTransaction(db) } });
    expect(respond.companions(service.get(contact.invite.id)!)).toEqual([]);
  });
});

describe('answers', () => {
  it('declines tell the inviter with the note; accepts wait for the membership; the invite ends once all are answered', () => {
    const { service, notices } = setup();
    const { invite } = service.create(alice, roomInvite('carol@example.com', [TEAM, GARDEN]));
    const carol = { inviteeKey: 'carol@example.com', memberJid: 'carol@example.com' };
    service.answerRoom(invite.id, GARDEN, 'decline', carol, 'Not for me');
    expect(notices.find((n) => n.kind === 'room-declined')).toMatchObject({ recipient: 'alice@example.com', params: { room: GARDEN, reason: 'Not for me', jid: 'carol@example.com' } });
    expect(service.get(invite.id)!.state).toBe('open');
    expect(service.answerRoom(invite.id, TEAM, 'accept', carol, null).state).toBe('accepting');
    expect(service.get(invite.id)!.state).toBe('exhausted');
    expect(service.acceptingRooms(Date.now() * 2).map((r) => r.room)).toEqual([TEAM]);
    expect(service.settleRoom(invite.id, TEAM, { ok: true, managers: ['alice@example.com', 'dave@example.com'] })).toBe(true);
    expect(notices.filter((n) => n.kind === 'room-accepted').map((n) => n.recipient)).toEqual(['alice@example.com']);
    expect(notices.filter((n) => n.kind === 'room-joined').map((n) => n.recipient)).toEqual(['dave@example.com']);
    // settled once
    expect(service.settleRoom(invite.id, TEAM, { ok: false, reason: 'x' })).toBe(false);
    expect(service.events(invite.id).map((e) => e.type)).toEqual(['created', 'room-declined', 'room-accepted']);
  });

  it('refuses an answer to someone else’s invitation, to an answered one, and to an expired invite', () => {
    const { service, advance, dump } = setup();
    const { invite } = service.create(alice, roomInvite('carol@example.com', [TEAM, GARDEN]));
    const before = dump();
    expect(() => service.answerRoom(invite.id, TEAM, 'accept', { inviteeKey: 'mallory@example.com', memberJid: 'mallory@example.com' }, null)).toThrow(/No invitation/);
    expect(dump()).toBe(before);
    const carol = { inviteeKey: 'carol@example.com', memberJid: 'carol@example.com' };
    service.answerRoom(invite.id, TEAM, 'decline', carol, null);
    expect(() => service.answerRoom(invite.id, TEAM, 'accept', carol, null)).toThrow(/is declined already/);
    advance(8 * DAY);
    expect(() => service.answerRoom(invite.id, GARDEN, 'accept', carol, null)).toThrow(/has expired/);
    service.recordExpiries();
    expect(service.roomsOf(invite.id).map((r) => r.state)).toEqual(['expired', 'declined']);
  });

  it('lists the open room invitations of an invitee from every inviter, oldest first, without ended invites', () => {
    const { service, advance } = setup();
    const a = service.create(alice, roomInvite('carol@example.com', [TEAM]));
    advance(1000);
    const b = service.create(bob, roomInvite('carol@example.com', [GARDEN]));
    expect(service.openRoomInvitations('carol@example.com').map(({ row, invite }) => [invite.inviter, row.room])).toEqual([
      ['alice@example.com', TEAM],
      ['bob@example.com', GARDEN],
    ]);
    service.revoke(alice, a.invite.id);
    expect(service.openRoomInvitations('carol@example.com').map(({ invite }) => invite.id)).toEqual([b.invite.id]);
  });

  it('accepts the rooms of an account invite on registration, but the unticked ones', () => {
    const { service, notices } = setup();
    const { invite } = service.create(admin, { kind: 'account', source: 'cli', email: 'new@example.org', rooms: [{ jid: TEAM }, { jid: GARDEN }] });
    const accepting = service.acceptRoomsOnRegistration(invite.id, 'new@example.com', [GARDEN]);
    expect(accepting.map((r) => [r.room, r.memberJid])).toEqual([[TEAM, 'new@example.com']]);
    expect(service.roomsOf(invite.id).map((r) => [r.room, r.state])).toEqual([
      [GARDEN, 'declined'],
      [TEAM, 'accepting'],
    ]);
    expect(notices.filter((n) => n.kind === 'room-declined').map((n) => n.recipient)).toEqual(['admin@example.com']);
  });

  it('counts per room: invited, accepted, declined, failed, no answer', () => {
    const { service } = setup();
    const carol = { inviteeKey: 'carol@example.com', memberJid: 'carol@example.com' };
    const a = service.create(alice, roomInvite('carol@example.com', [TEAM, GARDEN]));
    service.create(alice, roomInvite('dave@example.com', [TEAM]));
    service.answerRoom(a.invite.id, TEAM, 'accept', carol, null);
    service.settleRoom(a.invite.id, TEAM, { ok: false, reason: 'forbidden' });
    service.answerRoom(a.invite.id, GARDEN, 'decline', carol, null);
    expect(service.roomStats()).toEqual([
      { room: TEAM, invited: 2, accepted: 0, declined: 0, failed: 1, noAnswer: 1 },
      { room: GARDEN, invited: 1, accepted: 0, declined: 1, failed: 0, noAnswer: 0 },
    ]);
  });
});
