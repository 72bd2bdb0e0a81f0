/**
 * What the service tells people, as durable notices: the domain decides who is told what, inside
 * the transaction of the change that causes it, so nothing is lost when the process dies; the
 * outbox renders and delivers them later (tokens are rendered at send time, never stored).
 */

export const NOTICE_KINDS = [
  'pending',
  'approved',
  'rejected',
  'joined',
  'declined',
  'expired',
  'delivery-failed',
  'subscribed',
  'invitation',
  'welcome',
  'reminder',
  /** the acknowledgement of an invite request carried in presence, to the sender's full JID */
  'request-result',
  /** room invitations (params: room, roomName, jid, inviter, reason): to the inviter; joined to the room's owners and admins */
  'room-accepted',
  'room-declined',
  'room-joined',
  'room-failed',
] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

export type Channel = 'xmpp' | 'email';

export type NoticeParams = Record<string, string | number | boolean | null>;

export interface Notice {
  channel: Channel;
  kind: NoticeKind;
  /** a bare JID (xmpp) or an e-mail address (email); a full JID for `request-result` */
  recipient: string;
  inviteIds: string[];
  params?: NoticeParams;
}

export interface NoticeQueue {
  /** Records the notice; called inside the caller's transaction. */
  enqueue(notice: Notice): void;
}

/** A queue that drops everything: for tools that must not notify (and for tests). */
export const NO_NOTICES: NoticeQueue = { enqueue: () => undefined };
