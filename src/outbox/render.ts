/**
 * The words of every notice, rendered when it is sent (so tokens come from token_key at that time
 * and are never stored). Plain text for XMPP bodies; the e-mail transport adds a subject and HTML.
 * Dates, invitees, inviters and the one-line summary of an invite read as everywhere else
 * (src/present/invite.ts).
 */
import type { InviteService } from '../domain/invites';
import type { NoticeKind, NoticeParams } from '../domain/notices';
import { shownState, type Invite } from '../domain/types';
import { dateTime, invitationTitle, inviteeOf, inviterForInvitee, summary } from '../present/invite';
import { outcomesOf, requestResultText } from './request-result';

export interface Rendered {
  subject: string;
  text: string;
}

export interface RenderContext {
  siteName: string;
  component: string;
  invites: InviteService;
  now: () => number;
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Undefined when the notice has nothing left to say (e.g. its invite no longer exists). */
export function renderNotice(kind: NoticeKind, invites: Invite[], params: NoticeParams, ctx: RenderContext): Rendered | undefined {
  const site = ctx.siteName;
  const first = invites[0];
  switch (kind) {
    case 'pending': {
      const waiting = invites.filter((i) => shownState(i, ctx.now()) === 'pending');
      if (waiting.length === 0) return undefined;
      const lines =
        waiting.length === 1
          ? [`An invite waits for your approval: ${summary(waiting[0])}.`]
          : [`${waiting.length} invites wait for your approval:`, ...waiting.map((i) => `• ${summary(i)}`)];
      // A folded message names at most MAX_FOLDED invites; a flood is counted, not listed.
      const total = ctx.invites.count({ state: 'pending' });
      if (total > waiting.length) lines.push(`${total - waiting.length} more wait as well (${total} in all).`);
      lines.push(`Run “Pending approvals” on ${ctx.component} to approve or reject.`);
      return { subject: `${waiting.length} invite(s) wait for approval on ${site}`, text: lines.join('\n') };
    }
    case 'approved': {
      if (!first) return undefined;
      const links = ctx.invites.links(first);
      return {
        subject: `Your invite on ${site} was approved`,
        text: [
          `Your invite ${first.id} was approved: it can now create an account on ${site}.`,
          `Share this link: ${links.landingUrl}`,
          `XMPP URI: ${links.uri}`,
          `Valid until ${dateTime(first.expiresAt)}.`,
        ].join('\n'),
      };
    }
    case 'rejected': {
      const reason = text(params.reason);
      return {
        subject: `Your invite on ${site} was rejected`,
        text: `Your invite ${first?.id ?? ''} (to ${first ? inviteeOf(first) : 'someone'}) was rejected by an admin${reason ? `: ${reason}` : '.'}`,
      };
    }
    case 'joined':
      return { subject: `${String(params.jid)} joined ${site}`, text: `${String(params.jid)} has joined ${site} with your invite.` };
    case 'declined': {
      const reason = text(params.reason);
      return {
        subject: `Your invite on ${site} was declined`,
        text: `${first ? inviteeOf(first) : 'The invitee'} declined your invite${reason ? `: “${reason}”` : '.'}`,
      };
    }
    case 'expired':
      return {
        subject: `Your invite on ${site} expired`,
        text: `Your invite ${first?.id ?? ''} (to ${first ? inviteeOf(first) : 'someone'}) expired unused.`,
      };
    case 'delivery-failed':
      return {
        subject: `Your invite on ${site} could not be delivered`,
        text: `Your invite to ${first ? inviteeOf(first) : 'someone'} could not be delivered by ${params.channel === 'email' ? 'e-mail' : 'message'}${text(params.error) ? `: ${String(params.error)}` : '.'}`,
      };
    case 'subscribed':
      return { subject: `${String(params.jid)} added you`, text: `${String(params.jid)} used your invite and is now your contact.` };
    case 'invitation': {
      if (!first || shownState(first, ctx.now()) !== 'open') return undefined;
      const links = ctx.invites.links(first);
      const title = invitationTitle(first.inviter, site);
      const lines = [`${title}.`];
      if (first.note) lines.push(`“${first.note}”`);
      lines.push(`Add them as a contact: ${links.uri}`, `Or open: ${links.landingUrl}`, `Valid until ${dateTime(first.expiresAt)}.`);
      return { subject: title, text: lines.join('\n') };
    }
    case 'welcome': {
      const jid = String(params.jid);
      const lines = [`Welcome to ${site}, ${jid}!`];
      // Several invites when the account accepted more than one invitation on the landing page.
      const linked = typeof params.linked === 'string' ? new Set(params.linked.split(' ')) : null;
      for (const invite of invites) {
        if (!invite.inviter) continue;
        lines.push(`${invite.inviter} invited you.`);
        if (linked ? linked.has(invite.id) : params.contactsLinked === true) lines.push('You are already each other’s contacts.');
        else lines.push(`Add them as a contact: ${ctx.invites.links(invite).addInviter}`);
      }
      return { subject: `Welcome to ${site}`, text: lines.join('\n') };
    }
    case 'reminder': {
      if (!first || shownState(first, ctx.now()) !== 'open') return undefined;
      const links = ctx.invites.links(first);
      return {
        subject: `Reminder: your invitation to ${site} expires soon`,
        text: `Your invitation from ${inviterForInvitee(first, site)} to ${site} expires at ${dateTime(first.expiresAt)}.\n${links.landingUrl}`,
      };
    }
    case 'request-result':
      return { subject: `Your invite request on ${site}`, text: requestResultText(outcomesOf(params), site) };
    case 'webhook':
      // The body was fixed when the event happened: every attempt sends the same bytes.
      return { subject: String(params.type), text: String(params.body) };
  }
}
