/**
 * How invites read in command forms. Clients cut option labels short (Gajim at about 40
 * characters), so a label starts with what tells one invite from another: the invitee, then the
 * inviter, then a short date. The details follow as lines of their own, which clients wrap.
 */
import { shownState, type Invite } from '../../domain/types';

export function when(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "21 Nov 12:00" (UTC; the detail lines say so): short enough for a label. */
export function shortWhen(ms: number): string {
  const d = new Date(ms);
  const hm = d.toISOString().slice(11, 16);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${hm}`;
}

export function inviteeOf(invite: Invite): string {
  if (invite.inviteeJid) return invite.inviteeJid;
  if (invite.inviteeEmail) return invite.inviteeEmail;
  if (invite.username) return `account ${invite.username}`;
  return 'anyone with the link';
}

/** The invitee in a few characters: "link" for an invite anyone holding the link may use. */
function shortInvitee(invite: Invite): string {
  return invite.inviteeJid ?? invite.inviteeEmail ?? (invite.username ? `account ${invite.username}` : 'link');
}

/** The inviter as a person reads it: the user name alone for users of `host`. */
function inviterName(invite: Invite, host: string): string {
  if (!invite.inviter) return 'the operator';
  return invite.inviter.endsWith(`@${host}`) ? invite.inviter.slice(0, -host.length - 1) : invite.inviter;
}

/**
 * An option label: "bob@example.org, by alice, 21 Nov 12:00"; without the inviter (for one's own
 * invites) "bob@example.org, 21 Nov 12:00, open".
 */
export function inviteLabel(invite: Invite, opts: { host: string; now: number; inviter: boolean }): string {
  if (opts.inviter) return `${shortInvitee(invite)}, by ${inviterName(invite, opts.host)}, ${shortWhen(invite.createdAt)}`;
  return `${shortInvitee(invite)}, ${shortWhen(invite.createdAt)}, ${shownState(invite, opts.now)}`;
}

/** Free text on one line, cut to `max` characters. */
function excerpt(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * The details of an invite, after its label: "bob@example.org, by alice, 21 Nov 12:00: k3x9q2m7ab,
 * contact-account, from alice@example.com, created 2026-11-21 12:00 UTC, “note”".
 */
export function approvalLine(invite: Invite, host: string): string {
  return [
    `${inviteLabel(invite, { host, now: 0, inviter: true })}: ${invite.id}`,
    invite.kind,
    `from ${invite.inviter ?? 'the operator'} to ${inviteeOf(invite)}`,
    `created ${when(invite.createdAt)}`,
    ...(invite.note ? [`note “${excerpt(invite.note, 200)}”`] : []),
  ].join(', ');
}

/**
 * For lists: "bob@example.org, by alice, 21 Nov 12:00: k3x9q2m7ab open, contact-account, 0/1 used,
 * expires …, delivery sent".
 */
export function listLine(invite: Invite, opts: { host: string; now: number; inviter: boolean }): string {
  const delivery = invite.inviteeEmail ? invite.emailDelivery : invite.inviteeJid ? invite.messageDelivery : null;
  return [
    // Without the inviter, the label already ends with the state.
    `${inviteLabel(invite, opts)}: ${invite.id}${opts.inviter ? ` ${shownState(invite, opts.now)}` : ''}`,
    invite.kind,
    ...(opts.inviter ? [invite.inviter ? `by ${invite.inviter}` : 'by the operator'] : []),
    `to ${inviteeOf(invite)}`,
    `${invite.uses}/${invite.maxUses} used`,
    `created ${when(invite.createdAt)}`,
    `expires ${when(invite.expiresAt)}`,
    ...(delivery && delivery !== 'none' ? [`delivery ${delivery}`] : []),
  ].join(', ');
}
