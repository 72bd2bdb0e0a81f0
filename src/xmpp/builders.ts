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
 */
export function invitationForm(links: { uri: string; landingUrl: string }, expiresAt: number): Element {
  return dataForm({
    type: 'result',
    title: 'Your invite has been created',
    formType: NS.invitation,
    fields: [
      { var: 'uri', type: 'text-single', label: 'Invite URI', value: links.uri },
      { var: 'landing-url', type: 'text-single', label: 'Invite web page', value: links.landingUrl },
      { var: 'expire', type: 'text-single', label: 'Valid until', value: xepDateTime(expiresAt) },
    ],
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
  | 'welcome';

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
}): Element {
  return xml(
    'message',
    { type: 'chat', from: opts.from, to: opts.to, id: opts.id },
    xml('body', {}, opts.body),
    ...opts.invites.map((invite) => xml('notification', { xmlns: NS.project, kind: opts.kind, invite })),
    // XEP-0334: keep it in the archive and deliver it offline.
    xml('store', { xmlns: 'urn:xmpp:hints' }),
  );
}
