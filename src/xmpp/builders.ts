/** Stanza builders whose exact output the tests pin. */
import { dataForm } from './forms';
import { NS } from './ns';
import { xml, type Element } from './xml';

/** XEP-0082 DateTime in UTC without fractions: 2026-11-28T12:00:00Z */
export function xepDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * XEP-0401 §3.2 result form (FORM_TYPE urn:xmpp:invite#invitation): the mandatory `uri`, the
 * `landing-url`, and `expire` (the name clients parse; the registry's `expiry` is not used by them).
 * With `shareLanding` (a URI that standard clients cannot use on this server), the web page comes
 * first and the labels say which link to share; clients read the fields by name, not by order.
 */
export function invitationForm(links: { uri: string; landingUrl: string }, expiresAt: number, opts: { shareLanding?: boolean } = {}): Element {
  const uri = { var: 'uri', type: 'text-single' as const, value: links.uri };
  const landing = { var: 'landing-url', type: 'text-single' as const, value: links.landingUrl };
  const expire = { var: 'expire', type: 'text-single' as const, label: 'Valid until', value: xepDateTime(expiresAt) };
  return dataForm({
    type: 'result',
    title: 'Your invite has been created',
    formType: NS.invitation,
    fields: opts.shareLanding
      ? [{ ...landing, label: 'Link to share' }, { ...uri, label: 'App link (does not work on this server: share the link above)' }, expire]
      : [{ ...uri, label: 'Invite URI' }, { ...landing, label: 'Invite web page' }, expire],
  });
}

export type NotificationKind =
  | 'pending'
  | 'approved'
  | 'rejected'
  | 'joined'
  | 'declined'
  | 'expired'
  | 'delivery-failed'
  | 'subscribed'
  | 'invitation'
  | 'welcome'
  /** membership requests wait for an admin: `request='ID'` instead of `invite='ID'` */
  | 'request'
  /** a password was set with a reset link: `reset='ID'` */
  | 'password-reset'
  /** a sign-in link to the web console: about no invite */
  | 'login'
  | 'room-accepted'
  | 'room-declined'
  | 'room-joined'
  | 'room-failed';

/**
 * A message from the component to a user: `type='chat'` to the bare JID (so the server stores it
 * while the user is offline), a readable body, and one `<notification/>` per invite it concerns.
 */
export function notificationMessage(opts: {
  from: string;
  to: string;
  id: string;
  kind: NotificationKind;
  body: string;
  invites: readonly string[];
  /** membership requests it concerns (kind `request`) */
  requests?: readonly string[];
  /** the password reset it concerns (kind `password-reset`) */
  reset?: string;
  /** the room a room-* notice concerns (attribute `room`) */
  room?: string;
  /** the rooms an invitation names (`<room jid='…'/>` children) */
  rooms?: readonly string[];
}): Element {
  return xml(
    'message',
    { type: 'chat', from: opts.from, to: opts.to, id: opts.id },
    xml('body', {}, opts.body),
    ...opts.invites.map((invite) =>
      xml('notification', { xmlns: NS.project, kind: opts.kind, invite, room: opts.room }, ...(opts.rooms ?? []).map((jid) => xml('room', { jid }))),
    ),
    ...(opts.requests ?? []).map((request) => xml('notification', { xmlns: NS.project, kind: opts.kind, request })),
    ...(opts.reset ? [xml('notification', { xmlns: NS.project, kind: opts.kind, reset: opts.reset })] : []),
    // about nothing of the store (a sign-in link): the kind alone
    ...(opts.invites.length === 0 && !opts.requests?.length && !opts.reset ? [xml('notification', { xmlns: NS.project, kind: opts.kind })] : []),
    // XEP-0334: keep it in the archive and deliver it offline.
    xml('store', { xmlns: 'urn:xmpp:hints' }),
  );
}

/** One invitee of an invite request's acknowledgement (attributes in the contract's order). */
export interface InviteeResult {
  email?: string;
  jid?: string;
  status: string;
  id?: string;
  state?: string;
  reason?: string;
}

/**
 * The acknowledgement of an invite request carried in presence: a chat message to the sender's full
 * JID with a readable body and `<invite-request-result/>` holding one `<invitee/>` per invitee,
 * `email` or `jid` echoed exactly as sent. `request` echoes the request's `id` when it had one.
 */
export function requestResultMessage(opts: {
  from: string;
  to: string;
  id: string;
  body: string;
  request?: string;
  invitees: readonly InviteeResult[];
}): Element {
  return xml(
    'message',
    { type: 'chat', from: opts.from, to: opts.to, id: opts.id },
    xml('body', {}, opts.body),
    xml(
      'invite-request-result',
      { xmlns: NS.project, id: opts.request },
      ...opts.invitees.map((i) => xml('invitee', { email: i.email, jid: i.jid, status: i.status, id: i.id, state: i.state, reason: i.reason })),
    ),
    xml('store', { xmlns: 'urn:xmpp:hints' }),
  );
}

/** A presence error (RFC 6120 §8.3) in answer to a presence, to its sender. */
export function presenceError(opts: { from: string; to: string; id?: string; error: Element }): Element {
  return xml('presence', { type: 'error', from: opts.from, to: opts.to, id: opts.id }, opts.error);
}
