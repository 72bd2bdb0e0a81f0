/**
 * The pages, as functions from a view to `Html`. Plain HTML that works without JavaScript: forms
 * post to the contract's routes, the QR code is inline SVG, the one stylesheet is inline and hashed.
 * Every value reaches the markup through the `html` tag, which escapes it; dates and people read as
 * in the e-mails and messages (src/present/invite.ts).
 */
import type { ClientEntry, Platform } from '../config.types';
import type { Choice } from '../domain/respond';
import type { Accepted } from '../domain/registration';
import { isContactKind, roomLabel, type Invite, type RoomInvitation } from '../domain/types';
import type { AnsweredRoom } from '../domain/room-answers';
import { html, trusted, type Fragment, type Html } from '../present/html';
import { endedReason, invitationTitle, inviterForInvitee, longDate } from '../present/invite';
import { STYLESHEET } from './style';

export interface Site {
  name: string;
  /** the XMPP domain of the accounts */
  host: string;
  /** path prefix of web.public_url ('' at the root) */
  base: string;
  clients: readonly ClientEntry[];
  minPasswordLength: number;
  /** the bridge module is installed: register;preauth and ibr=y URIs work in standard clients */
  serverBridge: boolean;
}

const PLATFORM_NAMES: Record<Platform, string> = {
  android: 'Android',
  ios: 'iPhone and iPad',
  macos: 'macOS',
  windows: 'Windows',
  linux: 'Linux',
  web: 'In the browser',
};

function when(ms: number): Html {
  return html`<time datetime="${new Date(ms).toISOString()}">${longDate(ms)}</time>`;
}

function inviterOf(invite: Invite, site: Site): string {
  return inviterForInvitee(invite, site.name);
}

/**
 * The page around every body: the landing pages' (narrow, the site's name on top) and the
 * console's (`header` with its navigation, `wide` for tables and charts).
 */
export function layout(site: Site, title: string, body: Fragment, opts: { header?: Html; wide?: boolean } = {}): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${title} · ${site.name}</title>
<style>${trusted(STYLESHEET)}</style>
</head>
<body>
<header class="site">${opts.header ?? html`<p>${site.name}</p>`}</header>
<main${opts.wide ? trusted(' class="wide"') : ''}>
${body}
<footer><p>${site.name} · invitations for ${site.host}</p></footer>
</main>
</body>
</html>
`;
}

function clientList(site: Site): Html {
  const order = Object.keys(PLATFORM_NAMES) as Platform[];
  const groups = order
    .map((p) => ({ platform: p, clients: site.clients.filter((c) => c.platforms.includes(p)) }))
    .filter((g) => g.clients.length > 0);
  return html`<ul class="clients">${groups.map(
    (g) => html`<li><strong>${PLATFORM_NAMES[g.platform]}:</strong> ${g.clients.map(
      (c, i) => html`${i > 0 ? ', ' : ''}<a href="${c.url}" rel="noopener noreferrer">${c.name}</a>`,
    )}</li>`,
  )}</ul>`;
}

function action(site: Site, token: string, what: 'register' | 'decline' | 'opt-out' | 'respond'): string {
  return `${site.base}/i/${token}/${what}`;
}

function csrfField(csrf: string): Html {
  return html`<input type="hidden" name="csrf" value="${csrf}">`;
}

/** The xmpp: URI as a link and a QR code, with words that say what an app will do with it. */
function appSection(site: Site, invite: Invite, uri: string, qr: Html): Html {
  const who = inviterOf(invite, site);
  let intro: Html;
  if (isContactKind(invite.kind)) {
    const registers = site.serverBridge && invite.kind === 'contact-account' && invite.state === 'open';
    intro = registers
      ? html`<p>Or open the invitation in an XMPP app: it creates your account there and adds ${who} as a contact.</p>`
      : html`<p>Already have an XMPP account? Open the invitation in your app to add ${who} as a contact.</p>`;
  } else {
    intro = site.serverBridge
      ? html`<p>Or open the invitation in an XMPP app that supports invitations: it creates your account there.</p>`
      : html`<p>Apps that support invitations can open this link too; creating the account on this page works everywhere.</p>`;
  }
  return html`<h2 id="apps">Use an app</h2>
${intro}
<p><a class="button" href="${uri}">Open in your app</a></p>
<p class="muted">Or scan this code with your app:</p>
${qr}
<p class="muted">The invitation link: <span class="uri">${uri}</span></p>
<h3>Apps for ${site.host}</h3>
${clientList(site)}`;
}

export interface FormState {
  username: string;
  error?: string;
  choices?: ReadonlyMap<string, Choice>;
  reason?: string;
  /** the room boxes ticked (room JIDs) */
  rooms?: ReadonlySet<string>;
}

export interface LandingView {
  invite: Invite;
  token: string;
  uri: string;
  qr: Html;
  csrf: string;
  now: number;
  /** open and able to create an account */
  canRegister: boolean;
  /** a known invitee and one use, pending or open */
  declinable: boolean;
  companions: readonly Invite[];
  /** the rooms of an account-capable invite, offered as ticked boxes with the registration */
  rooms?: readonly RoomInvitation[];
  /** a room invitation's page: every open room invitation of the invitee, from every inviter */
  roomAnswers?: readonly { row: RoomInvitation; invite: Invite }[];
  form?: FormState;
}

function companionChoice(c: Invite, site: Site, chosen: Choice, declinable: boolean): Html {
  const name = `choice-${c.id}`;
  const radio = (value: Choice, label: string) =>
    html`<label><input type="radio" name="${name}" value="${value}"${chosen === value ? trusted(' checked') : ''}> ${label}</label>`;
  return html`<fieldset>
<legend>${inviterOf(c, site)} invites you too</legend>
${c.note ? html`<blockquote>${c.note}</blockquote>` : ''}
<p class="muted">Valid until ${when(c.expiresAt)}.${c.kind === 'account-locked' ? html` For the username <strong>${c.username}</strong>.` : ''}</p>
${radio('accept', 'Accept')}
${declinable ? radio('decline', 'Decline') : ''}
${radio('later', 'Decide later')}
</fieldset>`;
}

export function landingPage(site: Site, v: LandingView): Html {
  const { invite } = v;
  const who = inviterOf(invite, site);
  const pending = invite.state === 'pending';
  const heading = invitationTitle(invite.inviter, site.name);
  const locked = invite.kind === 'account-locked' ? invite.username : null;
  const form = v.form;
  const registerForm = v.canRegister
    ? html`<h2 id="create">Create your account</h2>
${form?.error ? html`<p class="error" role="alert" id="form-error">${form.error}</p>` : ''}
<form method="post" action="${action(site, v.token, 'register')}">
${csrfField(v.csrf)}
${v.companions.length > 0
  ? html`<p>You have ${v.companions.length + 1} invitations to ${site.name}. One account accepts those you choose; declining tells the person who invited you.</p>
${v.companions.map((c) => companionChoice(c, site, form?.choices?.get(c.id) ?? 'accept', c.maxUses === 1))}
<label for="reason-companions">A note for those you decline <span class="hint">(optional)</span></label>
<textarea id="reason-companions" name="reason" maxlength="1000">${form?.reason ?? ''}</textarea>`
  : ''}
${invite.source === 'request' && invite.inviteeEmail
  ? html`<label for="verified-email">E-mail address <span class="hint">Verified; your account is recorded with it.</span></label>
<input type="email" id="verified-email" value="${invite.inviteeEmail}" readonly>`
  : ''}
${v.rooms && v.rooms.length > 0
  ? html`<fieldset><legend>Rooms to join with your account</legend>
${v.rooms.map((r) => html`<label class="check"><input type="checkbox" name="room" value="${r.room}"${!form?.rooms || form.rooms.has(r.room) ? trusted(' checked') : ''}> ${roomLabel(r)} <span class="muted">(${r.room})</span></label>`)}
</fieldset>`
  : ''}
<label for="username">Username <span class="hint">Your address will be <em>username</em>@${site.host}. Letters a–z, digits, “.”, “_” and “-”.</span></label>
<input type="text" id="username" name="username" value="${locked ?? form?.username ?? ''}" required maxlength="64"
  autocomplete="username" autocapitalize="none" spellcheck="false"${locked ? trusted(' readonly') : ''}${form?.error ? trusted(' aria-describedby="form-error"') : ''}>
<label for="password">Password <span class="hint">At least ${site.minPasswordLength} characters.</span></label>
<input type="password" id="password" name="password" required minlength="${site.minPasswordLength}" autocomplete="new-password">
<button type="submit">Create my account</button>
</form>`
    : '';
  const declineForm = v.declinable
    ? html`<h2 id="decline">Not interested?</h2>
<form method="post" action="${action(site, v.token, 'decline')}">
${csrfField(v.csrf)}
<p>${who} will be told that you declined.</p>
<label for="reason">A note for ${who} <span class="hint">(optional)</span></label>
<textarea id="reason" name="reason" maxlength="1000"></textarea>
${v.companions
  .filter((c) => c.maxUses === 1)
  .map((c) => html`<label class="check"><input type="checkbox" name="also" value="${c.id}"> Also decline the invitation from ${inviterOf(c, site)}</label>`)}
<button type="submit" class="secondary">Decline</button>
<button type="submit" class="danger" formaction="${action(site, v.token, 'opt-out')}">${v.companions.length > 0 ? 'Decline all, and never invite me again' : 'Decline, and never invite me again'}</button>
</form>`
    : '';
  const body = html`<h1>${heading}</h1>
${invite.inviteeName ? html`<p>Hello ${invite.inviteeName},</p>` : ''}
${invite.note ? html`<blockquote aria-label="Message from ${who}">${invite.note}</blockquote>` : ''}
<p>${site.name} is a chat service for ${site.host} that works with any XMPP app. This invitation is valid until ${when(invite.expiresAt)}.</p>
${pending
  ? html`<p class="card" role="status"><strong>This invitation waits for an admin’s approval.</strong> You can create your account on this page once it is approved; ${who} will be told.</p>`
  : ''}
${invite.kind === 'contact' && !pending ? html`<p>This invitation adds ${who} to your contacts; it does not create an account on ${site.host}.</p>` : ''}
${registerForm}
${v.roomAnswers ? roomAnswerForm(site, v) : appSection(site, invite, v.uri, v.qr)}
${declineForm}`;
  return layout(site, heading, body);
}

/** The answers of a room invitation's page: one choice per open room invitation, one note, one button. */
function roomAnswerForm(site: Site, v: LandingView): Html {
  const open = v.roomAnswers ?? [];
  if (open.length === 0) return html`<p>No room invitation waits for your answer.</p>`;
  return html`<h2 id="rooms">Your room invitations</h2>
<form method="post" action="${action(site, v.token, 'respond')}">
${csrfField(v.csrf)}
${roomChoices(site, open)}
<label for="room-note">A note for those whose invitation you answer <span class="hint">(optional)</span></label>
<textarea id="room-note" name="reason" maxlength="1000"></textarea>
<button type="submit">Send my answers</button>
</form>`;
}

/**
 * One fieldset per open room invitation (`room-ID/ROOMJID`: accept, decline, later), for the
 * landing page's answers and the console's `/my/invitations` alike.
 */
export function roomChoices(site: Site, open: readonly { row: RoomInvitation; invite: Invite }[]): Html {
  const choice = (name: string, value: Choice, label: string, checked: boolean) =>
    html`<label><input type="radio" name="${name}" value="${value}"${checked ? trusted(' checked') : ''}> ${label}</label>`;
  return html`<p>${open.length === 1 ? 'One room invitation waits' : `${open.length} room invitations wait`} for your answer. Accepting makes you a member of the room; declining tells the person who invited you.</p>
${open.map(({ row, invite }) => {
  const name = `room-${row.inviteId}/${row.room}`;
  return html`<fieldset data-room="${row.inviteId}/${row.room}">
<legend>${roomLabel(row)} <span class="muted">(${row.room})</span></legend>
<p class="muted">Invited by ${inviterOf(invite, site)}, valid until ${when(invite.expiresAt)}.</p>
${invite.note ? html`<blockquote>${invite.note}</blockquote>` : ''}
${choice(name, 'accept', 'Accept', true)}
${choice(name, 'decline', 'Decline', false)}
${choice(name, 'later', 'Decide later', false)}
</fieldset>`;
})}`;
}

/** What became of each answer to room invitations; `again` says where to answer those left for later. */
export function answeredRooms(answered: readonly AnsweredRoom[], joinLinks: boolean, again: string): Html {
  const line = (a: AnsweredRoom) => {
    const room = a.roomName ? `${a.roomName} (${a.room})` : a.room;
    switch (a.outcome.kind) {
      case 'accepted':
        return html`<li><strong>${room}</strong>: you are a member now.${joinLinks ? html` <a href="${`xmpp:${a.room}?join`}">Join it in your app</a>.` : ''}</li>`;
      case 'declined':
        return html`<li><strong>${room}</strong>: declined${a.inviter ? html`; ${a.inviter} has been told` : ''}.</li>`;
      case 'later':
        return html`<li><strong>${room}</strong>: left for later; ${again}.</li>`;
      case 'failed':
        return html`<li class="error"><strong>${room}</strong>: you could not be made a member: ${a.outcome.reason}.</li>`;
      case 'pending':
        return html`<li><strong>${room}</strong>: accepted; the room service has not answered yet, and is asked again.</li>`;
      case 'refused':
        return html`<li class="error"><strong>${room}</strong>: not answered: ${a.outcome.reason}.</li>`;
    }
  };
  return html`<ul id="answers">${answered.map(line)}</ul>`;
}

/** What became of each answer of a room invitation's page. */
export function roomAnswersPage(site: Site, answered: readonly AnsweredRoom[], joinLinks: boolean): Html {
  return layout(site, 'Your answers', html`<h1>Thank you for answering</h1>
${answeredRooms(answered, joinLinks, 'open your invitation again to answer')}`);
}

export interface SuccessView {
  jid: string;
  accepted: readonly Accepted[];
  /** xmpp: link to add the inviter of an accepted invite, where the contacts could not be linked */
  addLinks: ReadonlyMap<string, string>;
  declined: readonly Invite[];
  skipped: readonly { invite: Invite | undefined; reason: string }[];
}

export function successPage(site: Site, v: SuccessView): Html {
  const withInviter = v.accepted.filter((a) => a.invite.inviter);
  const body = html`<h1>Your account is ready</h1>
<p class="ok" role="status">Welcome to ${site.name}!</p>
<p>Your address is <strong id="jid">${v.jid}</strong>.</p>
<h2>How to log in</h2>
<ol>
<li>Install an XMPP app (below).</li>
<li>Choose to log in with an existing account (not to create one).</li>
<li>Enter your address <strong>${v.jid}</strong> and the password you just chose.</li>
</ol>
${withInviter.length > 0
  ? html`<h2>Your contacts</h2><ul>${withInviter.map((a) => {
      const link = v.addLinks.get(a.invite.id);
      return html`<li>${a.invite.inviter}: ${a.contactsLinked
        ? 'already in your contacts.'
        : link
          ? html`<a href="${link}">add as a contact</a> once you are logged in.`
          : 'has been told that you joined.'}</li>`;
    })}</ul>`
  : ''}
${v.declined.length > 0 ? html`<p>You declined the invitation${v.declined.length > 1 ? 's' : ''} from ${v.declined.map((d, i) => html`${i > 0 ? ', ' : ''}${inviterOf(d, site)}`)}; they have been told.</p>` : ''}
${v.skipped.map((s) => html`<p class="error">The invitation${s.invite ? html` from ${inviterOf(s.invite, site)}` : ''} could not be taken into account: ${s.reason}.</p>`)}
<h2>Apps for ${site.host}</h2>
${clientList(site)}`;
  return layout(site, 'Your account is ready', body);
}

export function declinedPage(site: Site, declined: readonly Invite[], neverAgain: boolean): Html {
  const body = html`<h1>${neverAgain ? 'You will not be invited again' : 'You declined the invitation'}</h1>
${declined.length > 0
  ? html`<p>${declined.map((d, i) => html`${i > 0 ? ', ' : ''}${inviterOf(d, site)}`)} ${declined.length > 1 ? 'have' : 'has'} been told. Thank you for answering.</p>`
  : ''}
${neverAgain ? html`<p>Nobody on ${site.name} can invite this address any more.</p>` : ''}`;
  return layout(site, neverAgain ? 'You will not be invited again' : 'Declined', body);
}

/** A domain message as a sentence of a page. */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

export interface GoneView {
  invite: Invite;
  token: string;
  now: number;
  /** a personal invite: the opt-out is still offered */
  csrf: string | null;
  message?: string;
}

export function gonePage(site: Site, v: GoneView): Html {
  const who = v.invite.inviter;
  const body = html`<h1>This invitation can no longer be used</h1>
<p>${v.message ? sentence(v.message) : endedReason(v.invite, v.now)}${who ? html` Ask ${who} for a new invitation if you still want to join.` : ''}</p>
${v.csrf
  ? html`<h2>Never be invited again?</h2>
<form method="post" action="${action(site, v.token, 'opt-out')}">
${csrfField(v.csrf)}
<p>Nobody on ${site.name} will be able to invite this address any more.</p>
<button type="submit" class="danger">Never invite me again</button>
</form>`
  : ''}`;
  return layout(site, 'Invitation no longer valid', body);
}

/** GET /u/{code}: one button (RFC 8058: the one-click POST goes to the same URL, and GET changes nothing). */
export function unsubscribePage(site: Site, code: string): Html {
  return layout(
    site,
    'Unsubscribe',
    html`<h1>Stop invitations to this address?</h1>
<p>Nobody on ${site.name} will be able to invite this address again, and any invitation waiting for you is declined.</p>
<form method="post" action="${site.base}/u/${code}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit" class="danger">Never invite me again</button>
</form>`,
  );
}

export function notFoundPage(site: Site): Html {
  return layout(
    site,
    'Invitation not found',
    html`<h1>This invitation link is not valid</h1>
<p>Check that you opened the whole link from your invitation. If it was resent, only the newest link works.</p>`,
  );
}

export function problemPage(site: Site, title: string, message: string, back?: string): Html {
  return layout(site, title, html`<h1>${title}</h1><p>${message}</p>${back ? html`<p><a href="${back}">Back to the invitation</a></p>` : ''}`);
}
