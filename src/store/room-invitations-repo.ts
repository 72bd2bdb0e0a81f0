/** The room_invitations table behind the domain's RoomInvitationStore port. Every statement is prepared. */
import type { RoomInvitationPatch, RoomInvitationStore, RoomStats } from '../domain/ports';
import type { RoomAnswerState, RoomInvitation } from '../domain/types';
import type { Db } from './database';

interface Row {
  invite_id: string;
  room: string;
  room_name: string | null;
  invitee_key: string | null;
  state: string;
  active_key: string | null;
  member_jid: string | null;
  reason: string | null;
  created_at: number;
  answered_at: number | null;
}

function toRoomInvitation(r: Row): RoomInvitation {
  return {
    inviteId: r.invite_id,
    room: r.room,
    roomName: r.room_name,
    inviteeKey: r.invitee_key,
    state: r.state as RoomAnswerState,
    activeKey: r.active_key,
    memberJid: r.member_jid,
    reason: r.reason,
    createdAt: Number(r.created_at),
    answeredAt: r.answered_at === null ? null : Number(r.answered_at),
  };
}

const COLUMNS: Record<keyof RoomInvitationPatch, string> = {
  state: 'state',
  memberJid: 'member_jid',
  reason: 'reason',
  answeredAt: 'answered_at',
};

export class SqliteRoomInvitations implements RoomInvitationStore {
  readonly #insert;
  readonly #get;
  readonly #active;
  readonly #ofInvite;
  readonly #openFor;
  readonly #madeTo;
  readonly #accepting;
  readonly #stats;
  readonly #cache = new Map<string, ReturnType<Db['prepare']>>();

  constructor(private readonly db: Db) {
    this.#insert = db.prepare(`INSERT INTO room_invitations
        (invite_id, room, room_name, invitee_key, state, active_key, member_jid, reason, created_at, answered_at)
      VALUES (@inviteId, @room, @roomName, @inviteeKey, @state, @activeKey, @memberJid, @reason, @createdAt, @answeredAt)
      ON CONFLICT DO NOTHING`);
    this.#get = db.prepare('SELECT * FROM room_invitations WHERE invite_id = ? AND room = ?');
    this.#active = db.prepare('SELECT * FROM room_invitations WHERE active_key = ?');
    this.#ofInvite = db.prepare('SELECT * FROM room_invitations WHERE invite_id = ? ORDER BY created_at, room');
    this.#openFor = db.prepare(`SELECT * FROM room_invitations WHERE invitee_key = ? AND state = 'open' ORDER BY created_at, invite_id, room LIMIT ?`);
    this.#madeTo = db.prepare('SELECT count(*) AS count, min(created_at) AS frees FROM room_invitations WHERE room = ? AND created_at > ?');
    this.#accepting = db.prepare(`SELECT * FROM room_invitations WHERE state = 'accepting' AND answered_at < ? ORDER BY answered_at LIMIT ?`);
    // `open` rows of an invite past its expiry (not recorded yet) count as no answer, as they are.
    this.#stats = db.prepare(`SELECT room, count(*) AS invited,
        sum(CASE WHEN state IN ('accepted', 'accepting') THEN 1 ELSE 0 END) AS accepted,
        sum(CASE WHEN state = 'declined' THEN 1 ELSE 0 END) AS declined,
        sum(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS failed,
        sum(CASE WHEN state IN ('open', 'expired', 'revoked') THEN 1 ELSE 0 END) AS no_answer
      FROM room_invitations GROUP BY room ORDER BY invited DESC, room LIMIT ?`);
  }

  insert(row: RoomInvitation): boolean {
    return this.#insert.run({ ...row }).changes === 1;
  }

  get(inviteId: string, room: string): RoomInvitation | undefined {
    const r = this.#get.get(inviteId, room) as Row | undefined;
    return r ? toRoomInvitation(r) : undefined;
  }

  findActive(activeKey: string): RoomInvitation | undefined {
    const r = this.#active.get(activeKey) as Row | undefined;
    return r ? toRoomInvitation(r) : undefined;
  }

  ofInvite(inviteId: string): RoomInvitation[] {
    return (this.#ofInvite.all(inviteId) as Row[]).map(toRoomInvitation);
  }

  openFor(inviteeKey: string, limit: number): RoomInvitation[] {
    return (this.#openFor.all(inviteeKey, limit) as Row[]).map(toRoomInvitation);
  }

  update(inviteId: string, room: string, from: readonly RoomAnswerState[], patch: RoomInvitationPatch): boolean {
    const keys = (Object.keys(patch) as (keyof RoomInvitationPatch)[]).sort();
    if (keys.length === 0 || from.length === 0) return false;
    const sql = `UPDATE room_invitations SET ${keys.map((k) => `${COLUMNS[k]} = @${k}`).join(', ')}
      WHERE invite_id = @inviteId AND room = @room AND state IN (${from.map((_, i) => `@s${i}`).join(', ')})`;
    const params: Record<string, unknown> = { inviteId, room };
    from.forEach((s, i) => (params[`s${i}`] = s));
    for (const k of keys) params[k] = patch[k];
    let stmt = this.#cache.get(sql);
    if (!stmt) this.#cache.set(sql, (stmt = this.db.prepare(sql)));
    return stmt.run(params).changes === 1;
  }

  madeTo(room: string, since: number): { count: number; frees: number | null } {
    const r = this.#madeTo.get(room, since) as { count: number; frees: number | null };
    return { count: Number(r.count), frees: r.frees === null ? null : Number(r.frees) };
  }

  accepting(before: number, limit: number): RoomInvitation[] {
    return (this.#accepting.all(before, limit) as Row[]).map(toRoomInvitation);
  }

  stats(_now: number, limit: number): RoomStats[] {
    return (this.#stats.all(limit) as Record<string, unknown>[]).map((r) => ({
      room: String(r.room),
      invited: Number(r.invited),
      accepted: Number(r.accepted),
      declined: Number(r.declined),
      failed: Number(r.failed),
      noAnswer: Number(r.no_answer),
    }));
  }
}
