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
import type { MembershipRequest, MembershipService } from '../domain/membership';

export interface Rendered {
  subject: string;
  text: string;
}

export interface RenderContext {
  siteName: string;
  component: string;
  /** the XMPP domain of local users (they may answer room invitations with a command) */
  host?: string;
  invites: InviteService;
  now: () => number;
  /** membership requests (`request`, `request-verify`, …); without it those notices say nothing */
  membership?: MembershipReader;
  /** the web console's approval queue (`{web.public_url}/admin`), named in the admins' pending and request messages */
  consoleUrl?: string;
  /** the web console's sign-ins: the link and phrase of one, while it can be used */
  logins?: { renderLogin(id: string): { link: string; phrase: string; expiresAt: number } | undefined };
}

/** What the words of membership notices need. */
export type MembershipReader = Pick<MembershipService, 'get' | 'verifyUrl' | 'verifyUntil' | 'shownState' | 'count'>;

/** The membership request ids of a notice (params.requests, space-separated). */
export function requestIds(params: NoticeParams): string[] {
  return typeof params.requests === 'string' ? params.requests.split(' ').filter(Boolean) : [];
}

/** The rooms an invitation notice names: [jid, name] pairs (params.rooms, JSON). */
export function roomsParam(params: NoticeParams): [string, string | null][] {
  if (typeof params.rooms !== 'string') return [];
  try {
    const parsed: unknown = JSON.parse(params.rooms);
    return Array.isArray(parsed) ? parsed.filter((p): p is [string, string | null] => Array.isArray(p) && typeof p[0] === 'string') : [];
  } catch {
    return [];
  }
}

/** "The Team (team@conference.example.com)", or the JID alone when the room has no name. */
function roomText(jid: unknown, name: unknown): string {
  return typeof name === 'string' && name !== '' ? `${name} (${String(jid)})` : String(jid);
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
      lines.push(`Run “Pending approvals” on ${ctx.component} to approve or reject${ctx.consoleUrl ? `, or open ${ctx.consoleUrl}` : ''}.`);
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
      const rooms = roomsParam(params);
      if (first.kind === 'room') {
        const title = `${first.inviter ?? site} invites you to ${rooms.length === 1 ? 'a room' : `${rooms.length} rooms`} on ${site}`;
        const lines = [`${title}:`, ...rooms.map(([jid, name]) => `• ${roomText(jid, name)}`)];
        if (first.note) lines.push(`“${first.note}”`);
        lines.push(`Answer each room (accept, decline, or later): ${links.landingUrl}`);
        if (ctx.host && first.inviteeJid?.endsWith(`@${ctx.host}`)) lines.push(`Or run the command “Answer room invitations” on ${ctx.component}.`);
        lines.push(`Valid until ${dateTime(first.expiresAt)}.`);
        return { subject: title, text: lines.join('\n') };
      }
      const title = invitationTitle(first.inviter, site);
      const lines = [`${title}.`];
      if (first.note) lines.push(`“${first.note}”`);
      if (rooms.length) lines.push('With your account, you are invited to:', ...rooms.map(([jid, name]) => `• ${roomText(jid, name)}`));
      lines.push(`Add them as a contact: ${links.uri}`, `Or open: ${links.landingUrl}`, `Valid until ${dateTime(first.expiresAt)}.`);
      return { subject: title, text: lines.join('\n') };
    }
    case 'room-accepted':
      return {
        subject: `${String(params.jid)} joined ${roomText(params.room, params.roomName)}`,
        text: `${String(params.jid)} accepted your invitation to ${roomText(params.room, params.roomName)} and is now a member.`,
      };
    case 'room-declined': {
      const reason = text(params.reason);
      return {
        subject: `${String(params.jid)} declined ${roomText(params.room, params.roomName)}`,
        text: `${String(params.jid)} declined your invitation to ${roomText(params.room, params.roomName)}${reason ? `: “${reason}”` : '.'}`,
      };
    }
    case 'room-joined':
      return {
        subject: `${String(params.jid)} joined ${roomText(params.room, params.roomName)}`,
        text: `${String(params.jid)} is now a member of ${roomText(params.room, params.roomName)}${text(params.inviter) ? `, invited by ${String(params.inviter)}` : ''}.`,
      };
    case 'room-failed':
      return {
        subject: `${String(params.jid)} could not be made a member of ${roomText(params.room, params.roomName)}`,
        text: `${String(params.jid)} accepted your invitation to ${roomText(params.room, params.roomName)}, but the room service refused the membership: ${text(params.reason) ?? 'no reason given'}.`,
      };
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
      const rooms = invites.flatMap((i) => ctx.invites.roomsOf(i.id)).filter((r) => r.state === 'accepting' || r.state === 'accepted');
      if (rooms.length) lines.push('You are a member of:', ...rooms.map((r) => `• ${roomText(r.room, r.roomName)}`));
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
    case 'login': {
      // Rendered when sent, from the sign-in's id: the link's code is derived, never stored.
      const login = typeof params.login === 'string' ? ctx.logins?.renderLogin(params.login) : undefined;
      if (!login) return undefined;
      return {
        subject: `Sign in to ${site}`,
        text: [
          `Someone asked to sign in to ${site} as you. If it was you, check that the page shows the words “${login.phrase}”, then open:`,
          login.link,
          `The link works once, until ${dateTime(login.expiresAt)}. If it was not you, ignore this message: nothing happens without the link.`,
        ].join('\n'),
      };
    }
    case 'request-result':
      return { subject: `Your invite request on ${site}`, text: requestResultText(outcomesOf(params), site) };
    case 'request': {
      const m = ctx.membership;
      const waiting = m
        ? requestIds(params)
            .map((id) => m.get(id))
            .filter((r): r is MembershipRequest => r !== undefined && m.shownState(r) === 'pending')
        : [];
      if (!m || waiting.length === 0) return undefined;
      // The reason is a stranger's text, cut as notes are in the queue's lines.
      const line = (r: MembershipRequest) =>
        `${r.email}${r.reason ? ` (“${[...r.reason].slice(0, 300).join('')}”)` : ''}, verified ${dateTime(r.verifiedAt ?? r.createdAt)} [${r.id}]`;
      const lines =
        waiting.length === 1
          ? [`A membership request waits for your approval: ${line(waiting[0])}.`]
          : [`${waiting.length} membership requests wait for your approval:`, ...waiting.map((r) => `• ${line(r)}`)];
      const total = m.count('pending');
      if (total > waiting.length) lines.push(`${total - waiting.length} more wait as well (${total} in all).`);
      lines.push(`Run “Pending approvals” on ${ctx.component} to approve or reject${ctx.consoleUrl ? `, or open ${ctx.consoleUrl}` : ''}.`);
      return { subject: `${waiting.length} membership request(s) wait on ${site}`, text: lines.join('\n') };
    }
    case 'request-verify': {
      const r = typeof params.request === 'string' ? ctx.membership?.get(params.request) : undefined;
      // Past its 24 hours the link would only show an error.
      if (!r || !ctx.membership || r.state !== 'unverified' || ctx.now() >= ctx.membership.verifyUntil(r)) return undefined;
      return {
        subject: `Confirm your e-mail address for ${site}`,
        text: [
          `Someone (we hope you) asked to join ${site} with this e-mail address.`,
          `To confirm that it is yours, open this link and press the button: ${ctx.membership.verifyUrl(r)}`,
          `The link works until ${dateTime(ctx.membership.verifyUntil(r))}. If you did not ask, ignore this e-mail: nothing happens.`,
        ].join('\n\n'),
      };
    }
    case 'password-reset':
      return {
        subject: `Your password on ${site} was changed`,
        text: `The password of ${String(params.jid)} was changed at ${dateTime(ctx.now())} with a password reset link made by an admin of ${site}. If it was not you, tell an admin at once.`,
      };
    case 'request-rejected': {
      const reason = text(params.reason);
      return {
        subject: `Your request to join ${site}`,
        text: `Your request to join ${site} was not accepted${reason ? `: ${reason}` : '.'}`,
      };
    }
    case 'request-wait': {
      const until = text(params.until);
      return {
        subject: `Your request to join ${site}`,
        text: `Your earlier request to join ${site} was not accepted. You may ask again from ${until ? dateTime(Date.parse(until)) : 'a later date'}.`,
      };
    }
    case 'webhook':
      // The body was fixed when the event happened: every attempt sends the same bytes.
      return { subject: String(params.type), text: String(params.body) };
  }
}
