/** How invites are shown in command forms: one line each, with who invited whom and when. */
import { shownState, type Invite } from '../../domain/types';

export function when(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function inviteeOf(invite: Invite): string {
  if (invite.inviteeJid) return invite.inviteeJid;
  if (invite.inviteeEmail) return invite.inviteeEmail;
  if (invite.username) return `account ${invite.username}`;
  return 'anyone with the link';
}

/** For the approval queue: "alice@example.com → bob@example.org (contact-account), 2026-11-21 12:00 UTC — “note”" */
export function approvalLabel(invite: Invite): string {
  const note = invite.note ? ` — “${invite.note.length > 120 ? `${invite.note.slice(0, 119)}…` : invite.note}”` : '';
  return `${invite.inviter ?? 'operator'} → ${inviteeOf(invite)} (${invite.kind}), ${when(invite.createdAt)}${note}`;
}

/** For lists: "k3x9q2m7ab open, by alice@…, to bob@…, 0/1 uses, expires …, delivery sent" */
export function listLine(invite: Invite, now: number): string {
  const delivery = invite.inviteeEmail ? invite.emailDelivery : invite.inviteeJid ? invite.messageDelivery : null;
  return [
    `${invite.id} ${shownState(invite, now)}`,
    `${invite.kind}`,
    invite.inviter ? `by ${invite.inviter}` : 'by the operator',
    `to ${inviteeOf(invite)}`,
    `${invite.uses}/${invite.maxUses} used`,
    `expires ${when(invite.expiresAt)}`,
    ...(delivery && delivery !== 'none' ? [`delivery ${delivery}`] : []),
  ].join(', ');
}
