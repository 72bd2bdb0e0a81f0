/** What the domain needs from the outside world. Implemented in src/store (SQLite). */
import type { Invite, InviteEvent, InviteState, RoomAnswerState, RoomInvitation, ShownState } from './types';

export interface InviteFilter {
  state?: ShownState;
  inviter?: string;
  /** an e-mail address or a JID, matched exactly (normalised) */
  invitee?: string;
  /** lower-case text found in the id, the inviter or the invitee (the web console's search) */
  search?: string;
  limit?: number;
  offset?: number;
  /** with state 'expired': only those whose expiry is not recorded yet */
  expiryUnrecorded?: boolean;
  /** oldest first (default: newest first) */
  oldestFirst?: boolean;
  /** with oldestFirst: only invites after this one in that order (keyset paging) */
  after?: { createdAt: number; id: string };
}

export interface InviteStats {
  /** per shown state, `expired` derived */
  states: Record<string, number>;
  /** per channel and delivery state, of invites with an invitee on that channel */
  delivery: { email: Record<string, number>; message: Record<string, number> };
  /**
   * per inviter: created, approved, delivered (sent by e-mail or message, or used: a shared link
   * that was used reached someone), used at least once, accounts made, invitations bounced
   */
  funnel: { inviter: string; created: number; approved: number; delivered: number; used: number; accounts: number; bounced: number }[];
  /** bounces received: permanent (the delivery became `bounced`) and transient (recorded only) */
  bounces: { permanent: number; transient: number };
  /** accounts the server made for a released claim after its use went elsewhere (should stay 0) */
  overruns: number;
  /** registrations whose outcome is not settled yet: how many, and when the oldest began (ms) */
  heldClaims: { count: number; oldestAt: number | null };
}

export type InvitePatch = Partial<
  Pick<
    Invite,
    | 'state'
    | 'expiresAt'
    | 'approvedAt'
    | 'approvedBy'
    | 'endedAt'
    | 'generation'
    | 'uses'
    | 'held'
    | 'expiryRecorded'
    | 'emailDelivery'
    | 'messageDelivery'
    | 'remindedAt'
    | 'maxUses'
    | 'emailBouncedAt'
  >
>;

export interface InviteStore {
  /** Runs `fn` in one write transaction (BEGIN IMMEDIATE): reads inside see a stable snapshot. */
  transaction<T>(fn: () => T): T;
  /** false when the id is taken (the caller draws another) */
  insertInvite(invite: Invite): boolean;
  getInvite(id: string): Invite | undefined;
  /** Applies the patch when the invite is in one of `fromStates`; returns whether it did. */
  updateInvite(id: string, fromStates: readonly InviteState[], patch: InvitePatch): boolean;
  addEvent(event: Omit<InviteEvent, 'id'>): void;
  listInvites(filter: InviteFilter, now: number): Invite[];
  countInvites(filter: InviteFilter, now: number): number;
  listEvents(inviteId: string): InviteEvent[];
  stats(now: number, funnelLimit: number): InviteStats;
  /** Events of these types since `since`, counted per day (day 0 begins at `since`). */
  dailyEvents(types: readonly string[], since: number): { day: number; type: string; n: number }[];
  /** Spends one use without a claim (contact use): false when none is left or the state is wrong. */
  spendDirectUse(id: string, at: number): boolean;
  /** The invite holding the pair inviter|invitee (pending or open, expiry not recorded). */
  findActivePair(activeKey: string): Invite | undefined;
  isOptedOut(addressHash: string): boolean;
  /** false when the address had already opted out */
  addOptOut(addressHash: string, inviteId: string | null, at: number): boolean;
  /** whether the address bounced for good and was not unsuppressed since */
  isSuppressed(addressHash: string): boolean;
  addSuppression(entry: { addressHash: string; suppressed: boolean; bounceId: number | null; actor: string; at: number }): void;
  /** A pending or open, unexpired account-locked invite reserving `username`. */
  findReservation(username: string, now: number): Invite | undefined;
  /**
   * Open e-mail invites due for their one reminder: unused, not reminded yet, their invitation
   * e-mailed, expiring within `before` of `now`, and approved before that window began.
   */
  listRemindersDue(now: number, before: number, limit: number): Invite[];
}

/** Per room: invitations made, and how many are accepted, declined, failed, and without an answer. */
export interface RoomStats {
  room: string;
  invited: number;
  accepted: number;
  declined: number;
  failed: number;
  /** open (no answer yet, the invite still live) */
  noAnswer: number;
}

export type RoomInvitationPatch = Partial<Pick<RoomInvitation, 'state' | 'memberJid' | 'reason' | 'answeredAt'>>;

/** The room_invitations table: one answer per (invite, room). */
export interface RoomInvitationStore {
  /** false when the pair (invite, room) or the live pair (room, invitee) is taken */
  insert(row: RoomInvitation): boolean;
  get(inviteId: string, room: string): RoomInvitation | undefined;
  /** the open or accepting invitation holding `room|inviteeKey` */
  findActive(activeKey: string): RoomInvitation | undefined;
  ofInvite(inviteId: string): RoomInvitation[];
  /** every open invitation to this invitee (any inviter), oldest first */
  openFor(inviteeKey: string, limit: number): RoomInvitation[];
  /** applies the patch when the row is in one of `from`; returns whether it did */
  update(inviteId: string, room: string, from: readonly RoomAnswerState[], patch: RoomInvitationPatch): boolean;
  /** invitations to `room` made since `since` (all inviters); `frees` = the oldest */
  madeTo(room: string, since: number): { count: number; frees: number | null };
  /** accepted by the invitee but not made members yet, answered before `before` */
  accepting(before: number, limit: number): RoomInvitation[];
  stats(now: number, limit: number): RoomStats[];
}

export type Clock = () => number;
