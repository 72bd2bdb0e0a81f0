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
import type { MembershipReader, Rendered } from '../outbox/render';
import { html, joined, type Html } from '../present/html';
import { dateTime, invitationTitle, inviterForInvitee, offer } from '../present/invite';
import { bodyText, headerText } from './headers';

export interface EmailContent {
  subject: string;
  text: string;
  html: string;
}

export interface EmailRenderContext {
  siteName: string;
  invites: Pick<InviteService, 'links'> & Partial<Pick<InviteService, 'roomsOf'>>;
  /** membership requests, for the verification e-mail's button */
  membership?: MembershipReader;
  now: () => number;
  /** the inviter's message is cut to this many characters (default 1000) */
  maxMessageLength?: number;
}

export const DEFAULT_MESSAGE_CAP = 1000;

/** A paragraph of the e-mail: its text, and its HTML. */
interface Part {
  text: string;
  html: Html;
}

const p = (text: string, markup: Html = html`<p>${text}</p>`): Part => ({ text, html: markup });

function layout(subject: string, parts: Part[]): EmailContent {
  const markup = html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${subject}</title></head>
<body style="margin:0;padding:16px;background:#ffffff;color:#1f2328;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5">
<div style="max-width:560px;margin:0 auto">
${joined(parts.map((part) => part.html), '\n')}
</div></body></html>`;
  return { subject, text: `${parts.map((part) => part.text).join('\n\n')}\n`, html: markup.value };
}

/** Lines of text as HTML, a <br> between them. */
const lines = (text: string): Html => joined(text.split('\n'), html`<br>`);

function quote(message: string): Part {
  return {
    text: message.split('\n').map((l) => `> ${l}`.trimEnd()).join('\n'),
    html: html`<blockquote style="margin:16px 0;padding:8px 16px;border-left:4px solid #d0d7de;color:#424a53;white-space:pre-wrap">${lines(message)}</blockquote>`,
  };
}

function button(label: string, url: string): Part {
  return {
    text: `${label}:\n${url}`,
    html: html`<p style="margin:24px 0"><a href="${url}" style="display:inline-block;padding:10px 20px;background:#1f6feb;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">${label}</a></p><p style="font-size:14px;color:#57606a">Or copy this link into your browser:<br><a href="${url}" style="color:#1f6feb;word-break:break-all">${url}</a></p>`,
  };
}

const small = (text: string): Part => p(text, html`<p style="font-size:14px;color:#57606a">${text}</p>`);

function invitation(invite: Invite, ctx: EmailRenderContext): EmailContent {
  const site = headerText(ctx.siteName);
  const inviter = headerText(inviterForInvitee(invite, site));
  const links = ctx.invites.links(invite);
  const subject = headerText(invitationTitle(invite.inviter && inviter, site));
  const name = invite.inviteeName ? headerText(invite.inviteeName, 100) : '';
  const note = invite.note ? bodyText(invite.note, ctx.maxMessageLength ?? DEFAULT_MESSAGE_CAP) : '';
  const parts: Part[] = [p(name ? `Hello ${name},` : 'Hello,')];
  const offered = offer(invite, site);
  parts.push(
    invite.inviter
      ? p(`${inviter} invites you ${offered}.`, html`<p><strong>${inviter}</strong> invites you ${offered}.</p>`)
      : p(`You are invited ${offered}.`),
  );
  if (note) parts.push(p(invite.inviter ? 'Their message:' : 'Message:'), quote(note));
  // Rooms that go with the account (rooms.service): the registration form offers them as ticked boxes.
  const rooms = (ctx.invites.roomsOf?.(invite.id) ?? []).filter((r) => r.state === 'open').map((r) => headerText(r.roomName ? `${r.roomName} (${r.room})` : r.room));
  if (rooms.length) {
    parts.push(
      p('With your account you are invited to these rooms (you choose which to join when you create it):'),
      p(rooms.map((r) => `• ${r}`).join('\n'), html`<ul>${rooms.map((r) => html`<li>${r}</li>`)}</ul>`),
    );
  }
  parts.push(button('Accept the invitation', links.landingUrl));
  if (isContactKind(invite.kind)) {
    parts.push(small(`Already using an XMPP chat app? Open this address with it instead: ${links.uri}`));
  }
  parts.push(
    small(
      `This invitation is personal and valid until ${dateTime(invite.expiresAt)}. If you do not want it, open the link and decline: ` +
        `you can also ask never to be invited again. If you did not expect this e-mail, you can ignore it.`,
    ),
  );
  return layout(subject, parts);
}

function reminder(invite: Invite, ctx: EmailRenderContext): EmailContent {
  const site = headerText(ctx.siteName);
  const inviter = headerText(inviterForInvitee(invite, site));
  const links = ctx.invites.links(invite);
  const subject = headerText(`Reminder: your invitation to ${site} expires on ${dateTime(invite.expiresAt)}`);
  const name = invite.inviteeName ? headerText(invite.inviteeName, 100) : '';
  return layout(subject, [
    p(name ? `Hello ${name},` : 'Hello,'),
    p(
      `${invite.inviter ? `${inviter}’s` : 'Your'} invitation ${offer(invite, site)} is still waiting for you, until ${dateTime(invite.expiresAt)}.`,
    ),
    button('Accept the invitation', links.landingUrl),
    small('This is the only reminder. If you do not want the invitation, open the link and decline, or ignore this e-mail: it expires by itself.'),
  ]);
}

/**
 * The e-mail for a notice; undefined when there is nothing left to say (the invite is no longer
 * open, so its link would only show an error).
 */
export function renderEmail(kind: NoticeKind, invites: Invite[], params: NoticeParams, ctx: EmailRenderContext, fallback: Rendered): EmailContent | undefined {
  const first = invites[0];
  switch (kind) {
    case 'request-verify': {
      const m = ctx.membership;
      const r = m && typeof params.request === 'string' ? m.get(params.request) : undefined;
      if (!m || !r || r.state !== 'unverified' || ctx.now() >= m.verifyUntil(r)) return undefined;
      const site = headerText(ctx.siteName);
      return layout(headerText(`Confirm your e-mail address for ${site}`), [
        p('Hello,'),
        p(`Someone (we hope you) asked to join ${site} with this e-mail address. To confirm that it is yours, open the link and press the button on the page.`),
        button('Confirm my address', m.verifyUrl(r)),
        small(`The link works until ${dateTime(m.verifyUntil(r))}. If you did not ask, ignore this e-mail: nothing happens.`),
      ]);
    }
    case 'invitation':
      return first && shownState(first, ctx.now()) === 'open' ? invitation(first, ctx) : undefined;
    case 'reminder':
      return first && shownState(first, ctx.now()) === 'open' ? reminder(first, ctx) : undefined;
    default: {
      const text = bodyText(fallback.text, 10_000);
      return layout(
        headerText(fallback.subject),
        text.split(/\n{2,}/).map((para) => p(para, html`<p>${lines(para)}</p>`)),
      );
    }
  }
}
