/**
 * The e-mail form of a notice: subject, plain text and HTML, rendered at send time (the token comes
 * from token_key then, and is never stored). The invitation and the reminder have their own words;
 * any other kind sent by e-mail reuses renderNotice's text.
 *
 * Everything that came from a person is treated as hostile: the subject loses line breaks and is
 * capped, the inviter's message is capped and, in HTML, escaped like every other value. The HTML
 * has inline styles only: no image, stylesheet, font or script is loaded from anywhere.
 */
import type { InviteService } from '../domain/invites';
import type { NoticeKind, NoticeParams } from '../domain/notices';
import { isContactKind, shownState, type Invite } from '../domain/types';
import type { Rendered } from '../outbox/render';
import { bodyText, escapeHtml, headerText } from './headers';

export interface EmailContent {
  subject: string;
  text: string;
  html: string;
}

export interface EmailRenderContext {
  siteName: string;
  invites: Pick<InviteService, 'links'>;
  now: () => number;
  /** the inviter's message is cut to this many characters (default 1000) */
  maxMessageLength?: number;
}

export const DEFAULT_MESSAGE_CAP = 1000;

/** "2026-11-28 12:00 UTC" */
export function mailDate(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A paragraph of the e-mail: its text, and its HTML (already escaped). */
interface Part {
  text: string;
  html: string;
}

const p = (text: string, html = `<p>${escapeHtml(text)}</p>`): Part => ({ text, html });

function layout(subject: string, parts: Part[]): EmailContent {
  const html = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(subject)}</title></head>`,
    '<body style="margin:0;padding:16px;background:#ffffff;color:#1f2328;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5">',
    '<div style="max-width:560px;margin:0 auto">',
    ...parts.map((part) => part.html),
    '</div></body></html>',
  ].join('\n');
  return { subject, text: `${parts.map((part) => part.text).join('\n\n')}\n`, html };
}

function quote(message: string): Part {
  const lines = message.split('\n');
  return {
    text: lines.map((l) => `> ${l}`.trimEnd()).join('\n'),
    html: `<blockquote style="margin:16px 0;padding:8px 16px;border-left:4px solid #d0d7de;color:#424a53;white-space:pre-wrap">${lines.map(escapeHtml).join('<br>')}</blockquote>`,
  };
}

function button(label: string, url: string): Part {
  const href = escapeHtml(url);
  return {
    text: `${label}:\n${url}`,
    html:
      `<p style="margin:24px 0"><a href="${href}" style="display:inline-block;padding:10px 20px;background:#1f6feb;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">${escapeHtml(label)}</a></p>` +
      `<p style="font-size:14px;color:#57606a">Or copy this link into your browser:<br><a href="${href}" style="color:#1f6feb;word-break:break-all">${href}</a></p>`,
  };
}

const small = (text: string): Part => p(text, `<p style="font-size:14px;color:#57606a">${escapeHtml(text)}</p>`);

/** Who invites, as the invitee sees it: the inviter's JID, or the site for the operator's invites. */
function inviterOf(invite: Invite, site: string): string {
  return invite.inviter ?? site;
}

function what(invite: Invite, site: string): string {
  switch (invite.kind) {
    case 'account':
      return `to create an account on ${site}`;
    case 'account-locked':
      return `to create the account “${invite.username}” on ${site}`;
    case 'contact':
      return `to become their contact on XMPP, the open chat network (${site})`;
    case 'contact-account':
      return `to join ${site} and chat with them`;
  }
}

function invitation(invite: Invite, ctx: EmailRenderContext): EmailContent {
  const site = headerText(ctx.siteName);
  const inviter = headerText(inviterOf(invite, site));
  const links = ctx.invites.links(invite);
  const subject = headerText(invite.inviter ? `${inviter} invites you to ${site}` : `You are invited to ${site}`);
  const name = invite.inviteeName ? headerText(invite.inviteeName, 100) : '';
  const note = invite.note ? bodyText(invite.note, ctx.maxMessageLength ?? DEFAULT_MESSAGE_CAP) : '';
  const parts: Part[] = [p(name ? `Hello ${name},` : 'Hello,')];
  const intro = invite.inviter ? `${inviter} invites you ${what(invite, site)}.` : `You are invited ${what(invite, site)}.`;
  parts.push(
    p(
      intro,
      invite.inviter
        ? `<p><strong>${escapeHtml(inviter)}</strong> invites you ${escapeHtml(what(invite, site))}.</p>`
        : `<p>You are invited ${escapeHtml(what(invite, site))}.</p>`,
    ),
  );
  if (note) parts.push(p(invite.inviter ? 'Their message:' : 'Message:'), quote(note));
  parts.push(button('Accept the invitation', links.landingUrl));
  if (isContactKind(invite.kind)) {
    parts.push(small(`Already using an XMPP chat app? Open this address with it instead: ${links.uri}`));
  }
  parts.push(
    small(
      `This invitation is personal and valid until ${mailDate(invite.expiresAt)}. If you do not want it, open the link and decline: ` +
        `you can also ask never to be invited again. If you did not expect this e-mail, you can ignore it.`,
    ),
  );
  return layout(subject, parts);
}

function reminder(invite: Invite, ctx: EmailRenderContext): EmailContent {
  const site = headerText(ctx.siteName);
  const inviter = headerText(inviterOf(invite, site));
  const links = ctx.invites.links(invite);
  const subject = headerText(`Reminder: your invitation to ${site} expires on ${mailDate(invite.expiresAt)}`);
  const name = invite.inviteeName ? headerText(invite.inviteeName, 100) : '';
  return layout(subject, [
    p(name ? `Hello ${name},` : 'Hello,'),
    p(
      `${invite.inviter ? `${inviter}’s` : 'Your'} invitation ${what(invite, site)} is still waiting for you, until ${mailDate(invite.expiresAt)}.`,
    ),
    button('Accept the invitation', links.landingUrl),
    small('This is the only reminder. If you do not want the invitation, open the link and decline, or ignore this e-mail: it expires by itself.'),
  ]);
}

/**
 * The e-mail for a notice; undefined when there is nothing left to say (the invite is no longer
 * open, so its link would only show an error).
 */
export function renderEmail(kind: NoticeKind, invites: Invite[], _params: NoticeParams, ctx: EmailRenderContext, fallback: Rendered): EmailContent | undefined {
  const first = invites[0];
  switch (kind) {
    case 'invitation':
      return first && shownState(first, ctx.now()) === 'open' ? invitation(first, ctx) : undefined;
    case 'reminder':
      return first && shownState(first, ctx.now()) === 'open' ? reminder(first, ctx) : undefined;
    default: {
      const text = bodyText(fallback.text, 10_000);
      return layout(
        headerText(fallback.subject),
        text.split(/\n{2,}/).map((para) => p(para, `<p>${para.split('\n').map(escapeHtml).join('<br>')}</p>`)),
      );
    }
  }
}
