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
  /** admins: membership requests wait (params.requests: their ids, space-separated; folded like `pending`) */
  'request',
  /** the e-mail with the link that verifies a membership request's address (params.request) */
  'request-verify',
  /** the e-mail telling an address its membership request was rejected (params.request, reason) */
  'request-rejected',
  /** the e-mail telling a rejected address when it may ask again (params.request, until) */
  'request-wait',
  /** the owner of an account: its password was set with a reset link (params.reset, jid) */
  'password-reset',
  /** a sign-in link to the web console (src/domain/console-auth.ts): params.login is the sign-in's id */
  'login',
  /** a webhook event: the recipient is the endpoint's URL, the params hold the body (webhooks.ts) */
  'webhook',
  /** room invitations (params: room, roomName, jid, inviter, reason): to the inviter; joined to the room's owners and admins */
  'room-accepted',
  'room-declined',
  'room-joined',
  'room-failed',
] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

export type Channel = 'xmpp' | 'email' | 'webhook';

export type NoticeParams = Record<string, string | number | boolean | null>;

export interface Notice {
  channel: Channel;
  kind: NoticeKind;
  /** a bare JID (xmpp) or an e-mail address (email); a full JID for `request-result`; a URL (webhook) */
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
