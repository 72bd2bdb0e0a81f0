/** The invite model of the contract: kinds, states, delivery, uses, generation, events. */

/** `room`: an existing account (local or remote) is invited to rooms of `rooms.service`; no account, no contact. */
export const INVITE_KINDS = ['account', 'account-locked', 'contact', 'contact-account', 'room'] as const;
export type InviteKind = (typeof INVITE_KINDS)[number];

export const INVITE_STATES = ['pending', 'open', 'exhausted', 'rejected', 'revoked', 'declined'] as const;
export type InviteState = (typeof INVITE_STATES)[number];

/** The states a user sees: the stored ones, and `expired`, derived from pending/open past expiry. */
export type ShownState = InviteState | 'expired';
export const SHOWN_STATES: readonly ShownState[] = [...INVITE_STATES, 'expired'];

export const DELIVERY_STATES = ['none', 'queued', 'sent', 'failed'] as const;
export type Delivery = (typeof DELIVERY_STATES)[number];
/** Delivery as shown: an e-mail that was sent and came back as a permanent bounce is `bounced`. */
export type ShownDelivery = Delivery | 'bounced';

/** The doors an invite can come through. */
export type InviteSource = 'command' | 'create-account' | 'cli' | 'presence' | 'send' | 'web' | 'api' | 'invite-to-rooms'
  /** the approval of a membership request (src/domain/membership.ts): made for the verified address */
  | 'request';

export interface Invite {
  id: string;
  kind: InviteKind;
  state: InviteState;
  inviter: string | null;
  source: InviteSource;
  inviteeEmail: string | null;
  inviteeEmailKey: string | null;
  inviteeJid: string | null;
  inviteeName: string | null;
  /** the invitee as the duplicate rule compares them: e-mail key or bare JID */
  inviteeKey: string | null;
  /** inviter|inviteeKey while pending or open (the database keeps it unique) */
  activeKey: string | null;
  remindedAt: number | null;
  username: string | null;
  note: string | null;
  rosterSubscription: boolean;
  maxUses: number;
  uses: number;
  held: number;
  generation: number;
  createdAt: number;
  expiresAt: number;
  approvedAt: number | null;
  approvedBy: string | null;
  endedAt: number | null;
  expiryRecorded: boolean;
  emailDelivery: Delivery;
  messageDelivery: Delivery;
  /** when the invitation e-mail bounced for good (a resend clears it) */
  emailBouncedAt?: number | null;
}

export type EventType =
  | 'created'
  | 'approved'
  | 'rejected'
  | 'delivered'
  | 'redeemed'
  | 'declined'
  | 'revoked'
  | 'expired'
  | 'resent'
  /** a pre-approved subscription (XEP-0379) used the invite's contact part */
  | 'subscribed'
  /** the one reminder before expiry was queued (mail.reminder_before) */
  | 'reminded'
  /** an open invite's lifetime or uses were raised (`invite extend`, the web console) */
  | 'extended'
  /** an e-mail of the invite came back as a permanent bounce (mail bounce, the LMTP listener) */
  | 'bounced'
  /** the invitee used the one-click unsubscribe link of an e-mail (RFC 8058) */
  | 'unsubscribed'
  /** one room of the invite was answered or ended (data: `room`); see RoomAnswerState */
  | 'room-accepted'
  | 'room-declined'
  | 'room-failed'
  | 'room-expired'
  | 'room-revoked';

export interface InviteEvent {
  id: number;
  inviteId: string;
  at: number;
  type: EventType;
  actor: string;
  reason: string | null;
  data: Record<string, unknown> | null;
}

/**
 * Who acts: a local user (bare JID), or the operator: at the CLI, or through an HTTP API key with
 * the admin scope (`name` is then `api:NAME`, what the event log records). `via` names a user's
 * door when it is not XMPP (the web console): every event the actor causes records it.
 */
export type Actor = { kind: 'user'; jid: string; isAdmin: boolean; via?: 'web' } | { kind: 'operator'; name?: string };

export const OPERATOR: Actor = { kind: 'operator' };

export function actorName(actor: Actor): string {
  return actor.kind === 'user' ? actor.jid : (actor.name ?? 'operator');
}

export function isPrivileged(actor: Actor): boolean {
  return actor.kind === 'operator' || actor.isAdmin;
}

/** Kinds whose token may create an account. */
export function canCreateAccount(kind: InviteKind): boolean {
  return kind !== 'contact' && kind !== 'room';
}

/** Kinds whose token makes the holder a contact of the inviter. */
export function isContactKind(kind: InviteKind): boolean {
  return kind === 'contact' || kind === 'contact-account';
}

export function isExpired(invite: Invite, now: number): boolean {
  return (invite.state === 'pending' || invite.state === 'open') && now >= invite.expiresAt;
}

export function shownState(invite: Invite, now: number): ShownState {
  return isExpired(invite, now) ? 'expired' : invite.state;
}

/** Uses left for new claims. */
export function usesLeft(invite: Invite): number {
  return invite.maxUses - invite.uses - invite.held;
}

/**
 * The answer of one (invite, room) pair: `open` (none yet), `accepting` (yes; the membership is
 * being made, tried again until the MUC service answers definitely), `accepted`, `declined`,
 * `failed` (the service refused the membership), `expired`, `revoked` (the invite ended first).
 */
export const ROOM_ANSWER_STATES = ['open', 'accepting', 'accepted', 'declined', 'failed', 'expired', 'revoked'] as const;
export type RoomAnswerState = (typeof ROOM_ANSWER_STATES)[number];

export interface RoomInvitation {
  inviteId: string;
  room: string;
  /** the room's name when the invitation was made (null: its localpart is shown) */
  roomName: string | null;
  inviteeKey: string | null;
  state: RoomAnswerState;
  activeKey: string | null;
  memberJid: string | null;
  reason: string | null;
  createdAt: number;
  answeredAt: number | null;
}

/** How a room reads to a person: its name, else its localpart. */
export function roomLabel(r: { room: string; roomName: string | null }): string {
  return r.roomName ?? r.room.slice(0, r.room.indexOf('@'));
}
