/**
 * The invite service: every door (ad-hoc commands, presence, CLI, web) creates, reads and changes
 * invites through this one place, so the rules of the contract live here once.
 */
import { InviteError } from '../errors';
import { emailKey, normalizeBareJid } from './jid';
import type { Clock, InviteFilter, InviteStats, InviteStore, RoomInvitationStore, RoomStats } from './ports';
import { NO_NOTICES, type NoticeQueue } from './notices';
import type { Limits } from './limits';
import { INVITE_EVENT_HOOKS, inviteHookData, type Webhooks } from './webhooks';
import { ID_ALPHABET, ID_LENGTH, randomIdChars, TokenCodec } from './tokens';
import {
  actorName,
  canCreateAccount,
  isContactKind,
  isExpired,
  isPrivileged,
  type Actor,
  type Invite,
  type InviteEvent,
  type InviteKind,
  type InviteSource,
  type InviteState,
  type EventType,
  shownState as shownStateOf,
  type RoomAnswerState,
  type RoomInvitation,
} from './types';
import { cleanOptional, cleanText } from './text';
import { durationLabel } from './durations';
import { normalizeUsername } from './usernames';

export interface InvitePolicy {
  host: string;
  /** base of landing links, without a trailing slash */
  publicUrl: string;
  serverBridge: boolean;
  expiry: number;
  approval: 'none' | 'non-admins' | 'all';
  allowUserInvites: boolean;
  maxUses: number;
  /** bare JIDs of the admins */
  admins: readonly string[];
  /** `rooms.service`: the MUC service whose rooms invites may name (absent: none) */
  roomsService?: string;
  /** `rooms.max_per_invite` */
  maxRoomsPerInvite?: number;
}

/** A room an invite names: its bare JID (a room of `rooms.service`) and its name, when known. */
export interface RoomRef {
  jid: string;
  name?: string | null;
}

const DAY = 86_400_000;

/** The answers that end an open room invitation, and the states they leave it in. */
const LIVE_ROOM: readonly RoomAnswerState[] = ['open'];

export interface CreateRequest {
  kind: InviteKind;
  source: InviteSource;
  /** overrides the actor as inviter (CLI `--inviter`) */
  inviter?: string;
  username?: string;
  email?: string;
  jid?: string;
  name?: string;
  note?: string;
  /** lifetime in ms (default: invites.expiry) */
  expiresIn?: number;
  maxUses?: number;
  rosterSubscription?: boolean;
  /**
   * Operator only: who approved it, when the operator makes it on someone's decision (a membership
   * request approved by an admin, or `system` in open mode); recorded as approver and actor.
   */
  approvedBy?: string;
  /** Operator only: the invitee asked for it themselves, so an opt-out of the address does not apply. */
  selfRequested?: boolean;
  /**
   * rooms of `rooms.service` the invitee is invited to (kind `room`, or any account-capable kind).
   * Who may invite to which room is the door's to check (it asks the MUC service); the operator may
   * name any room of the service.
   */
  rooms?: readonly RoomRef[];
  /**
   * A room that cannot be added (a live invitation of the invitee to it, its daily limit) refuses
   * the whole invite, and nothing is stored; without it such a room is left out and reported in
   * `roomsSkipped` (the CLI and the commands).
   */
  allRoomsOrNone?: boolean;
}

export interface InviteLinks {
  token: string;
  /** the invite's XEP-0401 URI: what an app opens */
  uri: string;
  /** the invite's web page */
  landingUrl: string;
  /**
   * `xmpp:inviter?roster;preauth=…`: adds the inviter as a contact with this token (the welcome
   * message, the success page); null for the operator's invites, which have no inviter
   */
  addInviter: string | null;
}

export interface Created {
  invite: Invite;
  links: InviteLinks;
  /** the rooms it names */
  rooms: RoomInvitation[];
  /** rooms asked for but left out: the invitee has a live invitation to it already, or the room's daily limit is reached */
  roomsSkipped: { room: string; reason: string }[];
}

const ACTIVE: readonly InviteState[] = ['pending', 'open'];

/** What the statistics count per day (InviteService.activity). */
export const ACTIVITY_KINDS = ['created', 'approved', 'rejected', 'joined', 'declined', 'revoked', 'expired'] as const;
export type ActivityKind = (typeof ACTIVITY_KINDS)[number];

export interface InviteServiceDeps {
  store: InviteStore;
  policy: InvitePolicy;
  /** the key of the tokens' MACs and the address hashes (`token_key`) */
  tokenKey: string;
  clock?: Clock;
  /** where notices are queued, in the transaction that causes them (default: dropped) */
  notices?: NoticeQueue;
  /** the configured limits on making invites (default: none) */
  limits?: Limits;
  /** who is blocked from inviting (`user block`; default: nobody) */
  blocks?: { blockOf(jid: string): { reason: string | null } | undefined };
  /** the webhook endpoints told of changes (default: none) */
  webhooks?: Webhooks;
  /** the answers of room invitations (required for invites naming rooms) */
  rooms?: RoomInvitationStore;
  /** `limits.per_room_per_day` */
  perRoomPerDay?: number;
}

export class InviteService {
  readonly tokens: TokenCodec;
  private readonly store: InviteStore;
  private readonly policy: InvitePolicy;
  private readonly clock: Clock;
  private readonly notices: NoticeQueue;
  private readonly limits: Limits | undefined;
  private readonly blocks: InviteServiceDeps['blocks'];
  private readonly webhooks: Webhooks | undefined;
  private readonly roomStore: RoomInvitationStore | undefined;
  private readonly perRoomPerDay: number | undefined;

  constructor(deps: InviteServiceDeps) {
    this.roomStore = deps.rooms;
    this.perRoomPerDay = deps.perRoomPerDay;
    this.store = deps.store;
    this.policy = deps.policy;
    this.tokens = new TokenCodec(deps.tokenKey);
    this.clock = deps.clock ?? Date.now;
    this.notices = deps.notices ?? NO_NOTICES;
    this.limits = deps.limits;
    this.blocks = deps.blocks;
    this.webhooks = deps.webhooks;
  }

  /** A blocked user cannot invite, at any door; the reason is shown (`forbidden`). */
  #checkBlocked(inviter: string | null): void {
    const block = inviter === null ? undefined : this.blocks?.blockOf(inviter);
    if (block) throw new InviteError('forbidden', `${inviter} may not invite: ${block.reason ?? 'blocked by an admin'}`);
  }

  isAdmin(bareJid: string): boolean {
    return this.policy.admins.includes(bareJid);
  }

  /** The kind of a "New Invite": it may create an account only where user invites may. */
  newInviteKind(actor: Actor): InviteKind {
    return isPrivileged(actor) || this.policy.allowUserInvites ? 'contact-account' : 'contact';
  }

  /** Whether an invite of this kind by this actor waits for an admin. */
  needsApproval(actor: Actor, kind: InviteKind): boolean {
    // The operator at the CLI is the highest authority: what it creates is approved.
    if (actor.kind === 'operator' || !canCreateAccount(kind)) return false;
    if (this.policy.approval === 'all') return true;
    return this.policy.approval === 'non-admins' && !actor.isAdmin;
  }

  create(actor: Actor, req: CreateRequest): Created {
    const now = this.clock();
    if ((req.approvedBy !== undefined || req.selfRequested) && actor.kind !== 'operator') {
      throw new InviteError('forbidden', 'Only the operator may make an invite on someone else\'s decision');
    }
    const inviter = this.#inviterOf(actor, req);
    if (isContactKind(req.kind) && inviter === null) {
      throw new InviteError('invalid-input', 'A contact invite needs an inviter: the user whose contact the invitee becomes', { field: 'inviter' });
    }
    if (actor.kind === 'user' && !actor.isAdmin && canCreateAccount(req.kind) && !this.policy.allowUserInvites) {
      throw new InviteError('forbidden', 'Only admins may create invites that create accounts on this server');
    }
    const username = req.username !== undefined && req.username !== '' ? withField('username', () => normalizeUsername(req.username!)) : null;
    const kind: InviteKind = req.kind === 'account' && username !== null ? 'account-locked' : req.kind;
    if (kind === 'account-locked' && username === null) {
      throw new InviteError('invalid-input', 'An account-locked invite needs a username', { field: 'username' });
    }
    if (kind !== 'account-locked' && username !== null) {
      throw new InviteError('invalid-input', 'Only account invites can reserve a username', { field: 'username' });
    }
    const maxUses = req.maxUses ?? (canCreateAccount(kind) ? this.policy.maxUses : 1);
    if (!Number.isInteger(maxUses) || maxUses < 1) throw new InviteError('invalid-input', 'Uses must be a whole number of at least 1', { field: 'uses' });
    if (kind === 'account-locked' && maxUses !== 1) {
      throw new InviteError('invalid-input', 'An invite locked to one username creates one account: it has one use', { field: 'uses' });
    }
    const expiresIn = req.expiresIn ?? this.policy.expiry;
    if (!(expiresIn > 0)) throw new InviteError('invalid-input', 'The lifetime must be positive', { field: 'expire' });
    const inviteeJid = req.jid === undefined ? null : normalizeBareJid(req.jid);
    if (inviteeJid === undefined) throw new InviteError('invalid-input', `Not a valid JID: ${req.jid}`, { field: 'jid' });
    const pending = this.needsApproval(actor, kind);
    const email = req.email === undefined || req.email === '' ? null : req.email;
    const inviteeKey = email !== null ? emailKey(email) : inviteeJid;
    const rooms = this.#roomsOfRequest(kind, req, inviteeJid ?? null, email);
    // Kind room: the duplicate rule is per room and invitee (below), not per inviter and invitee,
    // so that an owner may invite the same person to another room while the first is unanswered.
    const activeKey = kind !== 'room' && inviter !== null && inviteeKey !== null ? `${inviter}|${inviteeKey}` : null;

    return this.store.transaction(() => {
      this.#checkBlocked(inviter);
      // An opt-out stops others from inviting an address, not the address from asking itself.
      if (inviteeKey !== null && !req.selfRequested && this.store.isOptedOut(this.tokens.addressHash(inviteeKey))) {
        throw new InviteError('opted-out', `${email ?? inviteeJid} asked not to be invited again`);
      }
      this.#checkSuppressed(email);
      if (activeKey !== null) this.#checkDuplicate(activeKey);
      this.limits?.checkInvite(actor, inviter, inviteeKey, now);
      if (username !== null) {
        const holder = this.store.findReservation(username, now);
        if (holder) throw new InviteError('conflict', `The username ${username} is reserved by another invite`);
      }
      const base: Omit<Invite, 'id'> = {
        kind,
        state: pending ? 'pending' : 'open',
        inviter,
        source: req.source,
        inviteeEmail: email,
        inviteeEmailKey: email !== null ? emailKey(email) : null,
        inviteeJid,
        inviteeName: req.name === undefined ? null : cleanText(req.name),
        inviteeKey,
        activeKey,
        remindedAt: null,
        username,
        note: req.note === undefined ? null : cleanText(req.note),
        rosterSubscription: req.rosterSubscription ?? false,
        maxUses,
        uses: 0,
        held: 0,
        generation: 0,
        createdAt: now,
        expiresAt: now + expiresIn,
        approvedAt: pending ? null : now,
        approvedBy: pending ? null : (req.approvedBy ?? actorName(actor)),
        endedAt: null,
        expiryRecorded: false,
        emailDelivery: 'none',
        messageDelivery: 'none',
      };
      let invite: Invite;
      do invite = { ...base, id: newInviteId(now) };
      while (!this.store.insertInvite(invite));
      this.#event(invite.id, 'created', req.approvedBy ?? actor, null, {
        kind,
        source: req.source,
        state: invite.state,
        ...(inviter !== actorName(actor) && inviter !== null ? { inviter } : {}),
      });
      const added = this.#addRooms(invite, rooms, actor, now, req.allRoomsOrNone ?? false);
      if (pending) this.#tellAdmins(invite);
      else invite = this.#deliverInvitation(invite);
      return { invite, links: this.links(invite), rooms: added.rooms, roomsSkipped: added.skipped };
    });
  }

  /** The rooms a request names, checked: only where the kind allows, on `rooms.service`, at most `rooms.max_per_invite`. */
  #roomsOfRequest(kind: InviteKind, req: CreateRequest, inviteeJid: string | null, email: string | null): RoomRef[] {
    const asked = req.rooms ?? [];
    if (kind === 'room') {
      if (inviteeJid === null || email !== null) throw new InviteError('invalid-input', 'A room invitation is for one XMPP account: give its JID (and no e-mail address)', { field: email !== null ? 'email' : 'jid' });
      if (asked.length === 0) throw new InviteError('invalid-input', 'A room invitation names at least one room', { field: 'rooms' });
    }
    if (asked.length === 0) return [];
    if (kind === 'contact') throw new InviteError('invalid-input', 'Rooms go with an invite that creates an account, or with a room invitation', { field: 'rooms' });
    const service = this.policy.roomsService;
    if (!service || !this.roomStore) throw new InviteError('invalid-input', 'Room invitations are off on this site (rooms.service is not set)', { field: 'rooms' });
    const max = this.policy.maxRoomsPerInvite ?? 10;
    const rooms = new Map<string, RoomRef>();
    for (const r of asked) {
      const jid = normalizeBareJid(r.jid);
      if (!jid || !jid.includes('@') || jid.slice(jid.indexOf('@') + 1) !== service) {
        throw new InviteError('invalid-input', `${r.jid} is not a room of ${service}`, { field: 'rooms' });
      }
      if (!rooms.has(jid)) rooms.set(jid, { jid, name: r.name === undefined || r.name === null ? null : cleanText(r.name) });
    }
    if (rooms.size > max) throw new InviteError('invalid-input', `At most ${max} rooms per invitation (rooms.max_per_invite); ${rooms.size} were named`, { field: 'rooms' });
    return [...rooms.values()];
  }

  /**
   * Inside create's transaction: one open answer per room. The duplicate rule per room and invitee
   * (at most one live invitation, whoever invites; an expired one is recorded as expired, which
   * frees it) and `limits.per_room_per_day` (the operator exempt, as from every invite limit) leave
   * a room out; a room invitation left with no room is refused whole.
   */
  #addRooms(invite: Invite, rooms: readonly RoomRef[], actor: Actor, now: number, allOrNone = false): { rooms: RoomInvitation[]; skipped: Created['roomsSkipped'] } {
    const out: RoomInvitation[] = [];
    const skipped: Created['roomsSkipped'] = [];
    if (rooms.length === 0 || !this.roomStore) return { rooms: out, skipped };
    const errors: InviteError[] = [];
    for (const r of rooms) {
      const activeKey = invite.inviteeKey !== null ? `${r.jid}|${invite.inviteeKey}` : null;
      const refusal = this.#roomRefusal(r.jid, activeKey, actor, now);
      if (refusal) {
        // inside create's transaction: throwing here stores nothing
        if (allOrNone) throw refusal;
        errors.push(refusal);
        skipped.push({ room: r.jid, reason: refusal.message });
        continue;
      }
      const row: RoomInvitation = {
        inviteId: invite.id,
        room: r.jid,
        roomName: r.name ?? null,
        inviteeKey: invite.inviteeKey,
        state: 'open',
        activeKey,
        memberJid: null,
        reason: null,
        createdAt: now,
        answeredAt: null,
      };
      if (!this.roomStore.insert(row)) throw new InviteError('duplicate', `${invite.inviteeJid ?? invite.inviteeEmail} already has an open invitation to ${r.jid}`);
      out.push(row);
    }
    if (invite.kind === 'room' && out.length === 0) throw errors[0];
    return { rooms: out, skipped };
  }

  #roomRefusal(room: string, activeKey: string | null, actor: Actor, now: number): InviteError | undefined {
    if (activeKey !== null) {
      const existing = this.roomStore!.findActive(activeKey);
      const holder = existing ? this.store.getInvite(existing.inviteId) : undefined;
      if (existing && holder && existing.state === 'open' && isExpired(holder, now)) this.#recordExpiry(holder);
      else if (existing) {
        return new InviteError('duplicate', `There is already an open invitation to ${room} for ${activeKey.slice(activeKey.indexOf('|') + 1)} (invite ${existing.inviteId})`, {
          id: existing.inviteId,
          state: existing.state,
          room,
        });
      }
    }
    if (this.perRoomPerDay !== undefined && actor.kind !== 'operator') {
      const w = this.roomStore!.madeTo(room, now - DAY);
      if (w.count >= this.perRoomPerDay) {
        const frees = w.frees === null ? '' : `; it frees at ${new Date(w.frees + DAY).toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
        return new InviteError('limit-reached', `Limit per_room_per_day reached: ${room} had ${w.count} invitations today (at most ${this.perRoomPerDay})${frees}`, {
          limit: 'per_room_per_day',
          room,
        });
      }
    }
    return undefined;
  }

  /** The rooms an invite names, with their answers. */
  roomsOf(inviteId: string): RoomInvitation[] {
    return this.roomStore?.ofInvite(inviteId) ?? [];
  }

  /** Per room: invited, accepted, declined, failed, no answer. */
  roomStats(limit = 50): RoomStats[] {
    return this.roomStore?.stats(this.clock(), limit) ?? [];
  }

  /**
   * Every open room invitation to `inviteeKey` (a bare JID or an e-mail key), from every inviter,
   * whose invite is open and unexpired, oldest first, with its invite.
   */
  openRoomInvitations(inviteeKey: string, limit = 100): { row: RoomInvitation; invite: Invite }[] {
    if (!this.roomStore) return [];
    const now = this.clock();
    const out: { row: RoomInvitation; invite: Invite }[] = [];
    for (const row of this.roomStore.openFor(inviteeKey, limit)) {
      const invite = this.store.getInvite(row.inviteId);
      if (invite && invite.state === 'open' && !isExpired(invite, now)) out.push({ row, invite });
    }
    return out;
  }

  /**
   * The invitee answers one open room invitation (inside the caller's transaction): `accept` makes
   * it `accepting` (the membership of `memberJid` is made next, RoomAnswers), `decline` records it
   * and tells the inviter with the note. Throws when it is not open any more, or not theirs.
   */
  answerRoom(inviteId: string, room: string, answer: 'accept' | 'decline', by: { inviteeKey: string; memberJid: string; via?: 'web' }, note: string | null): RoomInvitation {
    note = cleanOptional(note); // text from people: src/domain/text.ts
    return this.store.transaction(() => {
      const now = this.clock();
      const row = this.roomStore?.get(inviteId, room);
      const invite = this.store.getInvite(inviteId);
      // Someone else's invitation is reported as unknown, so invitations cannot be probed.
      if (!row || !invite || row.inviteeKey !== by.inviteeKey) throw new InviteError('invite-not-found', `No invitation ${inviteId} to ${room}`);
      if (row.state !== 'open') throw new InviteError('wrong-state', `The invitation to ${roomName(row)} is ${row.state} already`);
      if (invite.state !== 'open' || isExpired(invite, now)) {
        throw new InviteError('wrong-state', `The invitation to ${roomName(row)} has ${isExpired(invite, now) ? 'expired' : `been ${invite.state}`}`);
      }
      let patch;
      if (answer === 'accept') {
        patch = { state: 'accepting' as const, memberJid: by.memberJid, answeredAt: now };
      } else {
        patch = { state: 'declined' as const, reason: note, answeredAt: now };
      }
      if (!this.roomStore!.update(inviteId, room, LIVE_ROOM, patch)) throw new InviteError('wrong-state', `The invitation to ${roomName(row)} changed meanwhile`);
      if (answer === 'decline') {
        this.#event(inviteId, 'room-declined', by.memberJid, note, { room, ...(by.via ? { via: by.via } : {}) });
        if (invite.inviter) {
          this.notices.enqueue({ channel: 'xmpp', kind: 'room-declined', recipient: invite.inviter, inviteIds: [inviteId], params: { room, roomName: row.roomName, jid: by.memberJid, reason: note } });
        }
      }
      this.#closeIfAnswered(invite, now);
      return { ...row, ...patch };
    });
  }

  /**
   * What the MUC service did with an accepted invitation (inside one transaction): `accepted` (the
   * inviter hears `room-accepted`, and `managers`, the room's owners and admins but the inviter,
   * hear `room-joined`) or `failed` with the service's error (the inviter hears `room-failed`).
   * False when the row was not `accepting` (settled meanwhile by another attempt).
   */
  settleRoom(inviteId: string, room: string, outcome: { ok: true; managers: readonly string[] } | { ok: false; reason: string }): boolean {
    return this.store.transaction(() => {
      const row = this.roomStore?.get(inviteId, room);
      const invite = this.store.getInvite(inviteId);
      if (!row || !invite || row.state !== 'accepting') return false;
      const patch = outcome.ok ? { state: 'accepted' as const } : { state: 'failed' as const, reason: outcome.reason };
      if (!this.roomStore!.update(inviteId, room, ['accepting'], patch)) return false;
      const params = { room, roomName: row.roomName, jid: row.memberJid, inviter: invite.inviter };
      if (outcome.ok) {
        this.#event(inviteId, 'room-accepted', row.memberJid ?? 'system', null, { room, jid: row.memberJid });
        if (invite.inviter) this.notices.enqueue({ channel: 'xmpp', kind: 'room-accepted', recipient: invite.inviter, inviteIds: [inviteId], params });
        for (const m of new Set(outcome.managers)) {
          if (m !== invite.inviter && m !== row.memberJid) this.notices.enqueue({ channel: 'xmpp', kind: 'room-joined', recipient: m, inviteIds: [inviteId], params });
        }
      } else {
        this.#event(inviteId, 'room-failed', 'system', outcome.reason, { room, jid: row.memberJid });
        if (invite.inviter) this.notices.enqueue({ channel: 'xmpp', kind: 'room-failed', recipient: invite.inviter, inviteIds: [inviteId], params: { ...params, reason: outcome.reason } });
      }
      return true;
    });
  }

  /** Accepted invitations whose membership is not made yet (answered before `before`). */
  acceptingRooms(before: number, limit = 100): RoomInvitation[] {
    return this.roomStore?.accepting(before, limit) ?? [];
  }

  /**
   * An account was made with the invite (inside the settling transaction): each of its open rooms
   * the registration accepted becomes `accepting` for the new JID, the others `declined` (the
   * boxes left unticked on the registration form).
   */
  acceptRoomsOnRegistration(inviteId: string, jid: string, declined: readonly string[] = []): RoomInvitation[] {
    if (!this.roomStore) return [];
    const now = this.clock();
    const accepting: RoomInvitation[] = [];
    const invite = this.store.getInvite(inviteId);
    for (const row of this.roomStore.ofInvite(inviteId)) {
      if (row.state !== 'open') continue;
      if (declined.includes(row.room)) {
        if (this.roomStore.update(inviteId, row.room, LIVE_ROOM, { state: 'declined', answeredAt: now })) {
          this.#event(inviteId, 'room-declined', jid, null, { room: row.room });
          if (invite?.inviter) {
            this.notices.enqueue({ channel: 'xmpp', kind: 'room-declined', recipient: invite.inviter, inviteIds: [inviteId], params: { room: row.room, roomName: row.roomName, jid, reason: null } });
          }
        }
      } else if (this.roomStore.update(inviteId, row.room, LIVE_ROOM, { state: 'accepting', memberJid: jid, answeredAt: now })) {
        accepting.push({ ...row, state: 'accepting', memberJid: jid, answeredAt: now });
      }
    }
    return accepting;
  }

  /** Ends the open answers of an invite that ended (revoked, rejected, expired, declined). */
  #endRooms(invite: Invite, state: 'revoked' | 'expired' | 'declined', actor: string, reason: string | null): void {
    if (!this.roomStore) return;
    const now = this.clock();
    for (const row of this.roomStore.ofInvite(invite.id)) {
      if (row.state !== 'open') continue;
      const patch = state === 'declined' ? { state, answeredAt: now, reason } : { state, answeredAt: now };
      if (this.roomStore.update(invite.id, row.room, LIVE_ROOM, patch)) this.#event(invite.id, `room-${state}`, actor, reason, { room: row.room });
    }
  }

  /** A room invitation whose every room is answered is done: exhausted when one was accepted, declined when all were. */
  #closeIfAnswered(invite: Invite, now: number): void {
    if (invite.kind !== 'room' || !this.roomStore) return;
    const rows = this.roomStore.ofInvite(invite.id);
    if (rows.some((r) => r.state === 'open')) return;
    const anyYes = rows.some((r) => r.state === 'accepting' || r.state === 'accepted' || r.state === 'failed');
    this.store.updateInvite(invite.id, ['open'], anyYes ? { state: 'exhausted', uses: 1, endedAt: now } : { state: 'declined', endedAt: now });
  }

  get(id: string): Invite | undefined {
    return this.store.getInvite(id);
  }

  /** The invite a token belongs to, whatever its state; undefined for unknown or voided tokens. */
  findByToken(token: string): Invite | undefined {
    const id = this.tokens.idOf(token);
    if (id === undefined) return undefined;
    const invite = this.store.getInvite(id);
    if (!invite || !this.tokens.verify(token, invite.id, invite.generation)) return undefined;
    return invite;
  }

  /** The service's time, so that what adapters show as expired agrees with what it lists. */
  now(): number {
    return this.clock();
  }

  list(filter: InviteFilter): Invite[] {
    return this.store.listInvites(filter, this.clock());
  }

  count(filter: InviteFilter): number {
    return this.store.countInvites(filter, this.clock());
  }

  stats(funnelLimit = 50): InviteStats {
    return this.store.stats(this.clock(), funnelLimit);
  }

  /**
   * Invites per day over the last `days` UTC days (today included), by what happened to them:
   * created, approved, rejected, joined (an account made, or a contact use), declined, revoked and
   * expired, as the event log records them.
   */
  activity(days = 90): { since: number; days: number; series: Record<ActivityKind, number[]> } {
    const DAY = 86_400_000;
    const since = Math.floor(this.clock() / DAY) * DAY - (days - 1) * DAY;
    const series = Object.fromEntries(ACTIVITY_KINDS.map((k) => [k, new Array<number>(days).fill(0)])) as Record<ActivityKind, number[]>;
    const byType: Record<string, ActivityKind> = { redeemed: 'joined', subscribed: 'joined' };
    const types = [...ACTIVITY_KINDS.filter((k) => k !== 'joined'), 'redeemed', 'subscribed'];
    for (const row of this.store.dailyEvents(types, since)) {
      const kind = byType[row.type] ?? (row.type as ActivityKind);
      if (row.day >= 0 && row.day < days) series[kind][row.day] += row.n;
    }
    return { since, days, series };
  }

  events(id: string): InviteEvent[] {
    return this.store.listEvents(id);
  }

  /** The pending or open, unexpired invite reserving `username`, if any. */
  reservationOf(username: string): Invite | undefined {
    return this.store.findReservation(username, this.clock());
  }

  /** Records that an account was made from the invite (inside the settling transaction). */
  recordRedeemed(inviteId: string, jid: string, door: string, claimId: string): void {
    const invite = this.store.getInvite(inviteId);
    // An account made from a membership request keeps the address it verified and who approved it.
    const verified = invite?.source === 'request' ? { email: invite.inviteeEmail, approvedBy: invite.approvedBy } : {};
    this.#event(inviteId, 'redeemed', jid, null, { jid, door, claim: claimId, ...verified });
  }

  /**
   * XEP-0379 contact use: may the subscription `from` → `to` carrying `token` be approved? Only when
   * the token is pending or open and unexpired, of a contact kind, issued by `to`, and (when the
   * invite names an invitee JID) sent by that JID. It spends one use, as in Prosody. The account
   * made from the invite may use it even once it is exhausted (the welcome message's link), without
   * spending anything.
   */
  useForSubscription(token: string, from: string, to: string, redeemedBy: (inviteId: string) => string[]): { invite: Invite; spent: boolean } {
    const subscriber = normalizeBareJid(from);
    const target = normalizeBareJid(to);
    return this.store.transaction(() => {
      const invite = this.findByToken(token);
      if (!invite || !subscriber || !target) throw new InviteError('invite-not-found', 'This invite is not valid');
      if (!isContactKind(invite.kind) || invite.inviter !== target) {
        throw new InviteError('invite-not-found', 'This invite is not for a subscription to this user');
      }
      const [local, domain] = subscriber.split('@');
      if (domain === this.policy.host && redeemedBy(invite.id).includes(local)) return { invite, spent: false };
      if (!ACTIVE.includes(invite.state)) throw new InviteError('invite-not-found', `This invite has been ${invite.state}`);
      if (isExpired(invite, this.clock())) throw new InviteError('invite-not-found', 'This invite has expired');
      if (invite.inviteeJid && invite.inviteeJid !== subscriber) {
        throw new InviteError('invite-not-found', 'This invite is for someone else');
      }
      if (!this.store.spendDirectUse(invite.id, this.clock())) throw new InviteError('invite-not-found', 'This invite has been used');
      this.#event(invite.id, 'subscribed', subscriber, null, { to: target });
      this.notices.enqueue({ channel: 'xmpp', kind: 'subscribed', recipient: target, inviteIds: [invite.id], params: { jid: subscriber } });
      return { invite: this.store.getInvite(invite.id)!, spent: true };
    });
  }

  /** Token, URI and landing URL as they are now (they follow the state: ibr=y once approved). */
  links(invite: Invite): InviteLinks {
    const token = this.tokens.render(invite.id, invite.generation);
    return {
      token,
      uri: this.uri(invite, token),
      landingUrl: `${this.policy.publicUrl}/i/${token}`,
      addInviter: invite.inviter ? `xmpp:${invite.inviter}?roster;preauth=${token}` : null,
    };
  }

  uri(invite: Invite, token: string): string {
    const { host, serverBridge } = this.policy;
    if (invite.kind === 'room') {
      // The first room the invitation names: what a client opens to join (XEP-0147 `join`).
      const first = this.roomStore?.ofInvite(invite.id)[0];
      return first ? `xmpp:${first.room}?join` : `${this.policy.publicUrl}/i/${token}`;
    }
    if (isContactKind(invite.kind)) {
      // XEP-0401 §3: "If the server does not support or allow in-band registration for invited
      // users, the server MUST omit the ibr=y query component." Registration needs the bridge,
      // and a pending invite cannot register yet.
      const ibr = serverBridge && invite.kind === 'contact-account' && invite.state === 'open';
      return `xmpp:${invite.inviter}?roster;preauth=${token}${ibr ? ';ibr=y' : ''}`;
    }
    const target = invite.kind === 'account-locked' ? `${invite.username}@${host}` : host;
    return `xmpp:${target}?register;preauth=${token}`;
  }

  /** Approve a pending invite; approving an approved one again changes nothing. */
  approve(actor: Actor, id: string): { invite: Invite; changed: boolean } {
    this.#requirePrivileged(actor);
    return this.store.transaction(() => {
      const invite = this.#mustGet(id);
      const now = this.clock();
      if (invite.state === 'open' || invite.state === 'exhausted') return { invite, changed: false };
      if (invite.state !== 'pending') throw new InviteError('wrong-state', `Invite ${id} is ${invite.state} and cannot be approved`);
      if (isExpired(invite, now)) throw new InviteError('wrong-state', `Invite ${id} has expired and cannot be approved`);
      if (actor.kind === 'user' && invite.inviter === actor.jid && this.policy.admins.length > 1) {
        throw new InviteError('forbidden', 'Another admin must approve your own invite');
      }
      // The invitee may have asked never to be invited again while the invite waited.
      if (invite.inviteeKey && this.store.isOptedOut(this.tokens.addressHash(invite.inviteeKey))) {
        throw new InviteError('opted-out', `${invite.inviteeEmail ?? invite.inviteeJid} asked not to be invited again`);
      }
      this.#checkSuppressed(invite.inviteeEmail);
      const patch = { state: 'open' as const, approvedAt: now, approvedBy: actorName(actor), expiresAt: now + this.policy.expiry };
      if (!this.store.updateInvite(id, ['pending'], patch)) throw new InviteError('wrong-state', `Invite ${id} changed meanwhile`);
      this.#event(id, 'approved', actor, null, { expires: new Date(patch.expiresAt).toISOString() });
      let approved: Invite = { ...invite, ...patch };
      if (approved.inviter && approved.inviter !== actorName(actor)) {
        this.notices.enqueue({ channel: 'xmpp', kind: 'approved', recipient: approved.inviter, inviteIds: [id] });
      }
      approved = this.#deliverInvitation(approved);
      return { invite: approved, changed: true };
    });
  }

  /** Reject a pending invite; rejecting a rejected one again changes nothing. */
  reject(actor: Actor, id: string, reason: string | null): { invite: Invite; changed: boolean } {
    reason = cleanOptional(reason); // text from people: src/domain/text.ts
    this.#requirePrivileged(actor);
    return this.store.transaction(() => {
      const invite = this.#mustGet(id);
      if (invite.state === 'rejected') return { invite, changed: false };
      if (invite.state !== 'pending') throw new InviteError('wrong-state', `Invite ${id} is ${invite.state} and cannot be rejected`);
      const patch = { state: 'rejected' as const, endedAt: this.clock() };
      if (!this.store.updateInvite(id, ['pending'], patch)) throw new InviteError('wrong-state', `Invite ${id} changed meanwhile`);
      this.#event(id, 'rejected', actor, reason, null);
      this.#endRooms(invite, 'revoked', actorName(actor), reason);
      if (invite.inviter && invite.inviter !== actorName(actor)) {
        this.notices.enqueue({ channel: 'xmpp', kind: 'rejected', recipient: invite.inviter, inviteIds: [id], params: { reason } });
      }
      return { invite: { ...invite, ...patch }, changed: true };
    });
  }

  /** Revoke a pending or open invite: by its inviter, an admin or the operator. */
  revoke(actor: Actor, id: string, reason: string | null = null): { invite: Invite; changed: boolean } {
    reason = cleanOptional(reason); // text from people: src/domain/text.ts
    return this.store.transaction(() => {
      const invite = this.#mustGet(id);
      this.#requireOwnerOrPrivileged(actor, invite);
      if (invite.state === 'revoked') return { invite, changed: false };
      if (!ACTIVE.includes(invite.state)) throw new InviteError('wrong-state', `Invite ${id} is ${invite.state} and cannot be revoked`);
      if (isExpired(invite, this.clock())) throw new InviteError('wrong-state', `Invite ${id} has already expired`);
      const patch = { state: 'revoked' as const, endedAt: this.clock() };
      this.store.updateInvite(id, ACTIVE, patch);
      this.#event(id, 'revoked', actor, reason, null);
      this.#endRooms(invite, 'revoked', actorName(actor), reason);
      return { invite: { ...invite, ...patch }, changed: true };
    });
  }

  /**
   * Gives an open, unexpired invite a longer lifetime (`expiresIn`, counted from now) or more uses
   * (`maxUses`, the new total). Its inviter, an admin or the operator may. Policy: a user's or an
   * admin's invite never ends later than `invites.expiry` from now (the longest lifetime the
   * operator allows anyone at creation), and a non-admin's never allows more than `invites.max_uses`
   * uses (what approval covers); the operator at the CLI is the highest authority. Both only grow:
   * lowering them is revoking, which has its own door. One conditional UPDATE, so a use spent meanwhile
   * cannot slip past the check.
   */
  extend(actor: Actor, id: string, change: { expiresIn?: number; maxUses?: number }): { invite: Invite; changed: boolean } {
    const { expiresIn, maxUses } = change;
    if (expiresIn === undefined && maxUses === undefined) throw new InviteError('invalid-input', 'Give a new lifetime or a new number of uses', { field: 'expire' });
    if (expiresIn !== undefined && !(Number.isFinite(expiresIn) && expiresIn > 0)) throw new InviteError('invalid-input', 'The lifetime must be positive', { field: 'expire' });
    if (maxUses !== undefined && !(Number.isInteger(maxUses) && maxUses >= 1)) throw new InviteError('invalid-input', 'Uses must be a whole number of at least 1', { field: 'uses' });
    return this.store.transaction(() => {
      const invite = this.#mustGet(id);
      this.#requireOwnerOrPrivileged(actor, invite);
      const now = this.clock();
      if (invite.state !== 'open' || isExpired(invite, now)) {
        throw new InviteError('wrong-state', `Invite ${id} is ${shownStateOf(invite, now)}: only an open invite can be extended`);
      }
      const patch: { expiresAt?: number; maxUses?: number } = {};
      if (expiresIn !== undefined) {
        if (actor.kind === 'user' && expiresIn > this.policy.expiry) {
          throw new InviteError('invalid-input', `An invite is valid for at most ${durationLabel(this.policy.expiry)} from now`, { field: 'expire' });
        }
        const expiresAt = now + expiresIn;
        if (expiresAt < invite.expiresAt) throw new InviteError('invalid-input', `Invite ${id} already runs longer: a lifetime can only be extended`, { field: 'expire' });
        if (expiresAt > invite.expiresAt) patch.expiresAt = expiresAt;
      }
      if (maxUses !== undefined) {
        if (maxUses < invite.maxUses) throw new InviteError('invalid-input', `Invite ${id} already allows ${invite.maxUses} uses: uses can only be raised`, { field: 'uses' });
        if (maxUses > invite.maxUses && invite.kind === 'account-locked') {
          throw new InviteError('invalid-input', 'An invite locked to one username creates one account: it has one use', { field: 'uses' });
        }
        if (actor.kind === 'user' && !actor.isAdmin && maxUses > this.policy.maxUses) {
          throw new InviteError('forbidden', `Your invites allow at most ${this.policy.maxUses} use${this.policy.maxUses === 1 ? '' : 's'}; ask an admin for more`);
        }
        if (maxUses > invite.maxUses) patch.maxUses = maxUses;
      }
      if (Object.keys(patch).length === 0) return { invite, changed: false };
      if (!this.store.updateInvite(id, ['open'], patch)) throw new InviteError('wrong-state', `Invite ${id} changed meanwhile`);
      this.#event(id, 'extended', actor, null, {
        ...(patch.expiresAt !== undefined ? { expires: new Date(patch.expiresAt).toISOString(), was: new Date(invite.expiresAt).toISOString() } : {}),
        ...(patch.maxUses !== undefined ? { maxUses: patch.maxUses, wasMaxUses: invite.maxUses } : {}),
      });
      return { invite: { ...invite, ...patch }, changed: true };
    });
  }

  /** A new token for a pending or open invite; the previous token stops working. */
  resend(actor: Actor, id: string): Created {
    return this.store.transaction(() => {
      const invite = this.#mustGet(id);
      this.#requireOwnerOrPrivileged(actor, invite);
      if (!ACTIVE.includes(invite.state) || isExpired(invite, this.clock())) {
        throw new InviteError('wrong-state', `Invite ${id} is ${isExpired(invite, this.clock()) ? 'expired' : invite.state} and cannot be resent`);
      }
      this.#checkBlocked(invite.inviter);
      this.#checkSuppressed(invite.inviteeEmail);
      this.limits?.checkResend(actor, invite, this.clock());
      const generation = invite.generation + 1;
      this.store.updateInvite(id, ACTIVE, { generation });
      this.#event(id, 'resent', actor, null, { generation });
      // The new token goes to the invitee again wherever the invitation was delivered.
      const updated = this.#deliverInvitation({ ...invite, generation });
      return { invite: updated, links: this.links(updated), rooms: this.roomsOf(id), roomsSkipped: [] };
    });
  }

  /**
   * Records expiry of every pending or open invite past its expiry (once each), tells the
   * inviters, and so frees reserved usernames (a reservation only holds while unexpired).
   */
  recordExpiries(limit = 500): Invite[] {
    return this.store.transaction(() => {
      const now = this.clock();
      const due = this.store.listInvites({ state: 'expired', expiryUnrecorded: true, limit, oldestFirst: true }, now);
      for (const invite of due) this.#recordExpiry(invite);
      return due;
    });
  }

  /**
   * Queues the one reminder before expiry (`mail.reminder_before`) for each open e-mail invite that
   * is due: neither used nor declined, its invitation e-mailed, expiring within `before`. Marking
   * `reminded_at` in the same transaction as the notice means there are never two for one invite.
   */
  queueReminders(before: number, limit = 500): Invite[] {
    return this.store.transaction(() => {
      const now = this.clock();
      const reminded: Invite[] = [];
      for (const invite of this.store.listRemindersDue(now, before, limit)) {
        if (!invite.inviteeEmail || !this.store.updateInvite(invite.id, ['open'], { remindedAt: now })) continue;
        this.notices.enqueue({ channel: 'email', kind: 'reminder', recipient: invite.inviteeEmail, inviteIds: [invite.id] });
        this.#event(invite.id, 'reminded', 'system', null, { channel: 'email', expires: new Date(invite.expiresAt).toISOString() });
        reminded.push({ ...invite, remindedAt: now });
      }
      return reminded;
    });
  }

  /** The outbox reports how an invitation went: delivery state, event, and the inviter on failure. */
  recordDelivery(inviteId: string, channel: 'xmpp' | 'email', outcome: 'sent' | 'failed', error: string | null): void {
    this.store.transaction(() => {
      const invite = this.store.getInvite(inviteId);
      if (!invite) return;
      const key = channel === 'email' ? 'emailDelivery' : 'messageDelivery';
      this.store.updateInvite(inviteId, [invite.state], { [key]: outcome });
      this.#event(inviteId, 'delivered', 'system', outcome === 'failed' ? error : null, { channel, outcome });
      if (outcome === 'failed' && invite.inviter) {
        this.notices.enqueue({
          channel: 'xmpp',
          kind: 'delivery-failed',
          recipient: invite.inviter,
          inviteIds: [inviteId],
          params: { channel, error },
        });
      }
    });
  }

  /**
   * The duplicate rule: one pending or open, unexpired invite per inviter and invitee, whatever
   * door it came through. An expired one is recorded as expired here, which frees the pair; the
   * unique index on active_key is the guard against races.
   */
  #checkDuplicate(activeKey: string): void {
    const existing = this.store.findActivePair(activeKey);
    if (!existing) return;
    if (isExpired(existing, this.clock())) {
      this.#recordExpiry(existing);
      return;
    }
    throw new InviteError('duplicate', `There is already a ${existing.state} invite (${existing.id}) for ${existing.inviteeEmail ?? existing.inviteeJid}`, {
      id: existing.id,
      state: existing.state,
    });
  }

  #recordExpiry(invite: Invite): void {
    const now = this.clock();
    this.store.updateInvite(invite.id, ACTIVE, { expiryRecorded: true, endedAt: now });
    this.#event(invite.id, 'expired', 'system', null, { state: invite.state });
    this.#endRooms(invite, 'expired', 'system', null);
    if (invite.inviter) this.notices.enqueue({ channel: 'xmpp', kind: 'expired', recipient: invite.inviter, inviteIds: [invite.id] });
  }

  /**
   * The invitee says no (landing page): only for invites with a known invitee and one use, so that
   * nobody holding a shared link can kill it for others. The inviter is told, with the reason.
   * `neverAgain` also records a hashed opt-out of the address, honoured by every way of inviting.
   */
  decline(token: string, reason: string | null, neverAgain = false): Invite {
    reason = cleanOptional(reason); // text from people: src/domain/text.ts
    return this.store.transaction(() => {
      const invite = this.findByToken(token);
      if (!invite) throw new InviteError('invite-not-found', 'This invite is not valid');
      if (!invite.inviteeKey || invite.maxUses !== 1) {
        throw new InviteError('forbidden', 'This invite is a shared link: it cannot be declined for everyone');
      }
      const now = this.clock();
      let declined = invite;
      if (ACTIVE.includes(invite.state) && !isExpired(invite, now)) {
        const patch = { state: 'declined' as const, endedAt: now };
        this.store.updateInvite(invite.id, ACTIVE, patch);
        this.#event(invite.id, 'declined', invite.inviteeKey, reason, neverAgain ? { optOut: true } : null);
        this.#endRooms(invite, 'declined', invite.inviteeKey, reason);
        if (invite.inviter) {
          this.notices.enqueue({ channel: 'xmpp', kind: 'declined', recipient: invite.inviter, inviteIds: [invite.id], params: { reason } });
        }
        declined = { ...invite, ...patch };
      } else if (!neverAgain) {
        throw new InviteError('invite-not-found', `This invite has been ${isExpired(invite, now) ? 'expired' : invite.state}`);
      }
      if (neverAgain) this.store.addOptOut(this.tokens.addressHash(invite.inviteeKey), invite.id, now);
      return declined;
    });
  }

  /** An address whose e-mail bounced for good is not invited again until `mail unsuppress`. */
  #checkSuppressed(email: string | null): void {
    if (email !== null && this.store.isSuppressed(this.tokens.addressHash(emailKey(email)))) {
      throw new InviteError('suppressed', `E-mail to ${email} bounced; it is not invited again until an admin runs mail unsuppress`);
    }
  }

  /** Whether e-mail to the address bounced for good (and was not unsuppressed since). */
  isSuppressed(email: string): boolean {
    return this.store.isSuppressed(this.tokens.addressHash(emailKey(email)));
  }

  /**
   * A permanent bounce of an e-mail to `recipient` about `inviteIds` (src/domain/bounces.ts): each
   * invite addressed to it shows the delivery `bounced`, gets a `bounced` event, and its inviter
   * a `delivery-failed` notice with the status and diagnostic; the address is suppressed. Runs in
   * the caller's transaction.
   */
  recordBounce(recipient: string, inviteIds: readonly string[], bounce: { id: number; status: string; diagnostic: string | null; outboxId: number }): string[] {
    const now = this.clock();
    const key = emailKey(recipient);
    const bounced: string[] = [];
    for (const id of inviteIds) {
      const invite = this.store.getInvite(id);
      if (!invite || invite.inviteeEmailKey !== key) continue;
      this.store.updateInvite(id, [invite.state], { emailBouncedAt: now });
      this.#event(id, 'bounced', 'system', bounce.diagnostic, { status: bounce.status, outbox: bounce.outboxId });
      bounced.push(id);
      if (invite.inviter) {
        this.notices.enqueue({
          channel: 'xmpp',
          kind: 'delivery-failed',
          recipient: invite.inviter,
          inviteIds: [id],
          params: { channel: 'email', error: `bounced (${bounce.status})${bounce.diagnostic ? `: ${bounce.diagnostic}` : ''}`, status: bounce.status, diagnostic: bounce.diagnostic },
        });
      }
    }
    const hash = this.tokens.addressHash(key);
    if (!this.store.isSuppressed(hash)) this.store.addSuppression({ addressHash: hash, suppressed: true, bounceId: bounce.id, actor: 'system', at: now });
    return bounced;
  }

  /** Lets invites to a suppressed address be made again; false when it was not suppressed. */
  unsuppress(actor: Actor, email: string): boolean {
    this.#requirePrivileged(actor);
    const hash = this.tokens.addressHash(emailKey(email));
    return this.store.transaction(() => {
      if (!this.store.isSuppressed(hash)) return false;
      this.store.addSuppression({ addressHash: hash, suppressed: false, bounceId: null, actor: actorName(actor), at: this.clock() });
      return true;
    });
  }

  /**
   * RFC 8058 one-click unsubscribe from an e-mail of the invite: records "never invite me again" for
   * its invitee's address, as the landing page's opt-out does (and, for a personal invite still
   * live, declines it, telling the inviter). Doing it again changes nothing.
   */
  unsubscribe(inviteId: string): { invite: Invite; declined: boolean } {
    return this.store.transaction(() => {
      const invite = this.store.getInvite(inviteId);
      if (!invite || !invite.inviteeKey) throw new InviteError('invite-not-found', 'This link is not valid');
      const hash = this.tokens.addressHash(invite.inviteeKey);
      if (this.store.isOptedOut(hash)) return { invite, declined: false };
      const now = this.clock();
      let result = invite;
      if (ACTIVE.includes(invite.state) && !isExpired(invite, now) && invite.maxUses === 1) {
        const patch = { state: 'declined' as const, endedAt: now };
        this.store.updateInvite(invite.id, ACTIVE, patch);
        this.#event(invite.id, 'declined', invite.inviteeKey, null, { optOut: true, via: 'list-unsubscribe' });
        if (invite.inviter) this.notices.enqueue({ channel: 'xmpp', kind: 'declined', recipient: invite.inviter, inviteIds: [invite.id], params: { reason: null } });
        result = { ...invite, ...patch };
      } else {
        this.#event(invite.id, 'unsubscribed', invite.inviteeKey, null, { optOut: true, via: 'list-unsubscribe' });
      }
      this.store.addOptOut(hash, invite.id, now);
      return { invite: result, declined: result !== invite };
    });
  }

  /** Whether the address (e-mail key or bare JID) asked never to be invited again. */
  isOptedOut(inviteeKey: string): boolean {
    return this.store.isOptedOut(this.tokens.addressHash(inviteeKey));
  }

  /** The admins told about a pending invite: all but its inviter, unless that leaves nobody. */
  #tellAdmins(invite: Invite): void {
    const others = this.policy.admins.filter((a) => a !== invite.inviter);
    for (const admin of others.length > 0 ? others : this.policy.admins) {
      this.notices.enqueue({ channel: 'xmpp', kind: 'pending', recipient: admin, inviteIds: [invite.id] });
    }
  }

  /**
   * An open invite with a known invitee is delivered to them: a message to a JID, an e-mail to an
   * address. Pending invites wait: nothing is sent before an admin approves.
   */
  #deliverInvitation(invite: Invite): Invite {
    if (invite.state !== 'open') return invite;
    let delivered = invite;
    const open = this.roomStore?.ofInvite(invite.id).filter((r) => r.state === 'open') ?? [];
    // The rooms travel with the notice (JSON of [jid, name] pairs): its <room/> children and its words.
    const params = open.length ? { rooms: JSON.stringify(open.map((r) => [r.room, r.roomName])) } : undefined;
    if (invite.inviteeJid) {
      this.notices.enqueue({ channel: 'xmpp', kind: 'invitation', recipient: invite.inviteeJid, inviteIds: [invite.id], ...(params ? { params } : {}) });
      this.store.updateInvite(invite.id, ACTIVE, { messageDelivery: 'queued' });
      delivered = { ...delivered, messageDelivery: 'queued' };
    }
    if (invite.inviteeEmail) {
      this.notices.enqueue({ channel: 'email', kind: 'invitation', recipient: invite.inviteeEmail, inviteIds: [invite.id], ...(params ? { params } : {}) });
      // A new e-mail (a resend after `mail unsuppress`) is no longer the one that bounced.
      const patch = invite.emailBouncedAt ? { emailDelivery: 'queued' as const, emailBouncedAt: null } : { emailDelivery: 'queued' as const };
      this.store.updateInvite(invite.id, ACTIVE, patch);
      delivered = { ...delivered, ...patch };
    }
    return delivered;
  }

  #inviterOf(actor: Actor, req: CreateRequest): string | null {
    if (req.inviter !== undefined) {
      if (actor.kind !== 'operator') throw new InviteError('forbidden', 'Only the operator may create invites on behalf of someone else');
      const jid = normalizeBareJid(req.inviter);
      if (!jid || !jid.includes('@')) throw new InviteError('invalid-input', `Not a valid user JID: ${req.inviter}`, { field: 'inviter' });
      return jid;
    }
    return actor.kind === 'user' ? actor.jid : null;
  }

  #mustGet(id: string): Invite {
    const invite = this.store.getInvite(id);
    if (!invite) throw new InviteError('invite-not-found', `No invite ${id}`);
    return invite;
  }

  #requirePrivileged(actor: Actor): void {
    if (!isPrivileged(actor)) throw new InviteError('forbidden', 'Only admins may do this');
  }

  #requireOwnerOrPrivileged(actor: Actor, invite: Invite): void {
    if (isPrivileged(actor)) return;
    // Someone else's invite is reported as unknown, so ids cannot be probed.
    if (actor.kind === 'user' && invite.inviter === actor.jid) return;
    throw new InviteError('invite-not-found', `No invite ${invite.id}`);
  }

  #event(inviteId: string, type: EventType, actor: Actor | string, reason: string | null, data: Record<string, unknown> | null): void {
    // The door, when it is not XMPP (the web console), is part of every event the actor causes.
    const via = typeof actor !== 'string' && actor.kind === 'user' ? actor.via : undefined;
    const by = typeof actor === 'string' ? actor : actorName(actor);
    this.store.addEvent({ inviteId, at: this.clock(), type, actor: by, reason, data: via ? { ...data, via } : data });
    // Told to the webhooks in the same transaction: sent if and only if the change is stored.
    const hook = INVITE_EVENT_HOOKS[type];
    if (hook && this.webhooks?.wants(hook)) {
      const invite = this.store.getInvite(inviteId);
      if (invite) this.webhooks.emit(hook, { invite: inviteHookData(invite), actor: by, reason, ...(data ? { details: data } : {}) }, [inviteId]);
    }
  }
}

/** Runs `fn`, naming `field` in an invalid-input error that does not name one yet (for the API's 400). */
function withField<T>(field: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InviteError && err.code === 'invalid-input' && !err.detail?.field) throw new InviteError(err.code, err.message, { ...err.detail, field });
    throw err;
  }
}

/** Characters of an id that encode its second of creation (20 bits: they come round every 12 days). */
const ID_TIME_CHARS = 4;

/**
 * A new invite id: 4 characters from the second of creation, then 6 random ones (30 bits).
 *
 * Ids are the primary key, and the key of every event: fully random ids sent each new invite to a
 * random page of those indexes, which a large store must read, rewrite in the WAL and write back
 * at a random place in the file (at 1,000,000 invites that made each invite cost twice as much as
 * on an empty store). Ids of the same moment sit together instead, like UUIDv7 or ULID, so the
 * pages being written stay few and cached. An id is a name, not a secret (the token's MAC is), and
 * the random part keeps ids of the same second apart; a clash is drawn again (insertInvite).
 */
export function newInviteId(now: number): string {
  let t = Math.floor(now / 1000) % 2 ** (5 * ID_TIME_CHARS);
  let id = '';
  for (let i = 0; i < ID_TIME_CHARS; i++, t >>>= 5) id = ID_ALPHABET[t & 31] + id;
  return id + randomIdChars(ID_LENGTH - ID_TIME_CHARS);
}

function roomName(r: { room: string; roomName: string | null }): string {
  return r.roomName ? `${r.roomName} (${r.room})` : r.room;
}
