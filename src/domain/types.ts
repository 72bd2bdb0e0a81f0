/** The invite model of the contract: kinds, states, delivery, uses, generation, events. */

export const INVITE_KINDS = ['account', 'account-locked', 'contact', 'contact-account'] as const;
export type InviteKind = (typeof INVITE_KINDS)[number];

export const INVITE_STATES = ['pending', 'open', 'exhausted', 'rejected', 'revoked', 'declined'] as const;
export type InviteState = (typeof INVITE_STATES)[number];

/** The states a user sees: the stored ones, and `expired`, derived from pending/open past expiry. */
export type ShownState = InviteState | 'expired';
export const SHOWN_STATES: readonly ShownState[] = [...INVITE_STATES, 'expired'];

export const DELIVERY_STATES = ['none', 'queued', 'sent', 'failed'] as const;
export type Delivery = (typeof DELIVERY_STATES)[number];

/** The doors an invite can come through. */
export type InviteSource = 'command' | 'create-account' | 'cli' | 'presence' | 'send' | 'web' | 'api';

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
  | 'reminded';

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
 * the admin scope (`name` is then `api:NAME`, what the event log records).
 */
export type Actor = { kind: 'user'; jid: string; isAdmin: boolean } | { kind: 'operator'; name?: string };

export const OPERATOR: Actor = { kind: 'operator' };

export function actorName(actor: Actor): string {
  return actor.kind === 'user' ? actor.jid : (actor.name ?? 'operator');
}

export function isPrivileged(actor: Actor): boolean {
  return actor.kind === 'operator' || actor.isAdmin;
}

/** Kinds whose token may create an account. */
export function canCreateAccount(kind: InviteKind): boolean {
  return kind !== 'contact';
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
