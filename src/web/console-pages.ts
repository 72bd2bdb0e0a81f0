/**
 * The web console's pages, as functions from a view to `Html` (escaped by the `html` tag). Plain
 * HTML that works without JavaScript: every change is a POST form with its CSRF token; "select
 * all" is a link that renders the boxes ticked. Invites read as everywhere else (src/present).
 *
 * Answering room invitations is the page `/my/invitations` (linked when rooms.service is set);
 * membership requests join the admin queue as a second fieldset of `queuePage` (their ids carry
 * the `request/` prefix, as in the pending command); `/admin/tree` renders the invitation tree
 * with the same lines as `xmpp-invites tree` (src/present/tree.ts).
 */
import type { ActivityKind } from '../domain/invites';
import { REQUEST_STATES, type MembershipRequest, type RequestEvent, type RequestState, type RequestStats } from '../domain/membership';
import type { AnsweredRoom } from '../domain/room-answers';
import type { TreeNode } from '../domain/trust';
import type { RoomInvitation } from '../domain/types';
import { headLine, inviteLine } from '../present/tree';
import type { InviteStats } from '../domain/ports';
import type { LifetimeChoice } from '../domain/invite-by-email';
import { shownState, SHOWN_STATES, type Invite, type InviteEvent, type ShownState } from '../domain/types';
import { html, trusted, type Fragment, type Html } from '../present/html';
import { dateTime, delivery, inviteeOf, inviterOf, longDate } from '../present/invite';
import { groupedBarChart, legend, PALETTE, stackedBarChart, type Series } from './charts';
import { answeredRooms, layout, roomChoices, type Site } from './pages';

export interface Viewer {
  jid: string;
  isAdmin: boolean;
  csrf: string;
  /** room invitations are answered here (rooms.service is set): `/my/invitations` is linked */
  rooms: boolean;
  /** membership requests are taken (registration.requests is not off): `/admin/requests` is linked */
  requests: boolean;
}

function csrfField(csrf: string): Html {
  return html`<input type="hidden" name="csrf" value="${csrf}">`;
}

function when(ms: number): Html {
  return html`<time datetime="${new Date(ms).toISOString()}">${dateTime(ms)}</time>`;
}

function nav(site: Site, viewer: Viewer | null): Html {
  if (!viewer) return html`<nav><strong>${site.name}</strong></nav>`;
  const b = site.base;
  return html`<nav aria-label="Console">
<strong>${site.name}</strong>
<a href="${b}/my/invites">My invites</a>
${viewer.rooms ? html`<a href="${b}/my/invitations">Room invitations</a>` : ''}
${viewer.isAdmin
  ? html`<a href="${b}/admin">Approvals</a> <a href="${b}/admin/invites">All invites</a>${viewer.requests ? html` <a href="${b}/admin/requests">Requests</a>` : ''} <a href="${b}/admin/tree">Invitation tree</a> <a href="${b}/admin/stats">Statistics</a>`
  : ''}
<form method="post" action="${b}/logout">${csrfField(viewer.csrf)}<span class="who">${viewer.jid}</span> <button type="submit" class="secondary">Sign out</button></form>
</nav>`;
}

export function consoleLayout(site: Site, title: string, viewer: Viewer | null, body: Fragment, wide = true): Html {
  return layout(site, title, body, { header: nav(site, viewer), wide });
}

/** A message at the top of a page: what was just done (`done`), or what went wrong. */
export interface Flash {
  done?: string;
  error?: string;
  /** lines refused, each with why */
  refused?: readonly string[];
}

function flash(f: Flash | undefined): Html {
  if (!f) return html``;
  return html`${f.done ? html`<p class="done" role="status">${f.done}</p>` : ''}
${f.error ? html`<p class="error" role="alert">${f.error}</p>` : ''}
${f.refused?.length ? html`<ul class="refused" aria-label="Not done">${f.refused.map((r) => html`<li>${r}</li>`)}</ul>` : ''}`;
}

// ---- signing in ---------------------------------------------------------------------------------

export function loginPage(site: Site, v: { csrf: string; jid?: string; error?: string; ended?: boolean }): Html {
  return consoleLayout(
    site,
    'Sign in',
    null,
    html`<h1>Sign in to ${site.name}</h1>
${v.ended ? html`<p class="done" role="status">You are signed out.</p>` : ''}
<p>Enter your address on ${site.host}. We send a sign-in link to your XMPP app: no password is asked here.</p>
${v.error ? html`<p class="error" role="alert" id="login-error">${v.error}</p>` : ''}
<form method="post" action="${site.base}/login">
${csrfField(v.csrf)}
<label for="jid">Your address</label>
<input type="text" id="jid" name="jid" value="${v.jid ?? ''}" required maxlength="3071" placeholder="alice@${site.host}"
  autocomplete="username" autocapitalize="none" spellcheck="false"${v.error ? trusted(' aria-describedby="login-error"') : ''}>
<button type="submit">Send me a sign-in link</button>
</form>`,
    false,
  );
}

export function loginSentPage(site: Site, v: { jid: string; phrase: string; expiresAt: number }): Html {
  return consoleLayout(
    site,
    'Check your XMPP app',
    null,
    html`<h1>Check your XMPP app</h1>
<p>If <strong>${v.jid}</strong> is an account on ${site.host}, it has been sent a message with a sign-in link.
Open the link only if the message shows these words:</p>
<p class="phrase card" id="phrase">${v.phrase}</p>
<p class="muted">The link works once, until ${when(v.expiresAt)}. You can close this page.</p>`,
    false,
  );
}

export function loginConfirmPage(site: Site, v: { csrf: string; code: string; jid: string; phrase: string }): Html {
  return consoleLayout(
    site,
    'Sign in',
    null,
    html`<h1>Sign in as ${v.jid}?</h1>
<p>This sign-in was asked for with the words:</p>
<p class="phrase card" id="phrase">${v.phrase}</p>
<p>Go on only if the page where you asked showed the same words.</p>
<form method="post" action="${site.base}/login/${v.code}">
${csrfField(v.csrf)}
<button type="submit">Sign in</button>
</form>`,
    false,
  );
}

export function loginEndedPage(site: Site, why: 'unknown' | 'used' | 'expired'): Html {
  const text = {
    unknown: 'This sign-in link is not valid. Check that you opened the whole link.',
    used: 'This sign-in link has already been used: each link works once.',
    expired: 'This sign-in link has expired: links work for 10 minutes.',
  }[why];
  return consoleLayout(
    site,
    'Sign-in link not valid',
    null,
    html`<h1>This link cannot sign you in</h1><p>${text}</p><p><a href="${site.base}/login">Ask for a new link</a></p>`,
    false,
  );
}

// ---- invites ------------------------------------------------------------------------------------

function stateCell(invite: Invite, now: number): Html {
  return html`<span class="state">${shownState(invite, now)}</span>`;
}

function inviteRows(invites: readonly Invite[], now: number, href: (i: Invite) => string, showInviter: boolean): Html {
  return html`<div class="table-wrap"><table class="cards">
<thead><tr><th scope="col">Invite</th>${showInviter ? html`<th scope="col">By</th>` : ''}<th scope="col">To</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Delivery</th><th scope="col" class="n">Used</th><th scope="col">Created</th><th scope="col">Expires</th></tr></thead>
<tbody>
${invites.map(
  (i) => html`<tr data-invite="${i.id}"><td data-label="Invite"><a href="${href(i)}">${i.id}</a></td>${showInviter ? html`<td data-label="By">${inviterOf(i)}</td>` : ''}<td data-label="To">${inviteeOf(i)}</td><td data-label="Kind">${i.kind}</td><td data-label="State">${stateCell(i, now)}</td><td data-label="Delivery">${delivery(i)}</td><td class="n" data-label="Used">${i.uses}/${i.maxUses}</td><td data-label="Created">${when(i.createdAt)}</td><td data-label="Expires">${when(i.expiresAt)}</td></tr>`,
)}
</tbody></table></div>`;
}

function pager(base: string, page: number, pages: number, query: URLSearchParams): Html {
  if (pages <= 1) return html``;
  const link = (p: number) => {
    const q = new URLSearchParams(query);
    q.set('page', String(p));
    return `${base}?${q.toString()}`;
  };
  return html`<nav class="pager" aria-label="Pages">
${page > 1 ? html`<a href="${link(page - 1)}" rel="prev">Previous page</a>` : ''}
<span>Page ${page} of ${pages}</span>
${page < pages ? html`<a href="${link(page + 1)}" rel="next">Next page</a>` : ''}
</nav>`;
}

export interface MyInvitesView {
  viewer: Viewer;
  invites: readonly Invite[];
  total: number;
  page: number;
  pages: number;
  now: number;
  /** "Invite by e-mail" is offered (the command's rule: local users, or admins only when user invites may not create accounts) */
  canEmail: boolean;
  /** new invites wait for an admin */
  waits: boolean;
  choices: readonly LifetimeChoice[];
  maxAddresses: number;
  maxMessage: number;
  flash?: Flash;
  /** what the e-mail form held when it is shown again */
  emailForm?: { emails: string; message: string; expire: string };
}

export function myInvitesPage(site: Site, v: MyInvitesView): Html {
  const b = site.base;
  const form = v.emailForm;
  const defaultChoice = v.choices[v.choices.length - 1]?.value;
  return consoleLayout(
    site,
    'My invites',
    v.viewer,
    html`<h1>My invites</h1>
${flash(v.flash)}
<section aria-labelledby="new-heading">
<h2 id="new-heading">Invite someone</h2>
<p>A new invitation link to share as you like: whoever opens it can join ${site.name} and becomes your contact.${v.waits ? ' An admin approves it before it can create an account.' : ''}</p>
<form method="post" action="${b}/my/invites/new">${csrfField(v.viewer.csrf)}<button type="submit">Create an invitation link</button></form>
</section>
${v.canEmail
  ? html`<section aria-labelledby="email-heading">
<h2 id="email-heading">Invite by e-mail</h2>
<form method="post" action="${b}/my/invites/email">
${csrfField(v.viewer.csrf)}
<label for="emails">E-mail addresses <span class="hint">One per line, at most ${v.maxAddresses}. Each gets its own invitation from you.${v.waits ? ' They are e-mailed once an admin approves.' : ''}</span></label>
<textarea id="emails" name="emails" required>${form?.emails ?? ''}</textarea>
<label for="message">Message <span class="hint">Optional, put in each e-mail (at most ${v.maxMessage} characters).</span></label>
<textarea id="message" name="message" maxlength="${v.maxMessage}">${form?.message ?? ''}</textarea>
<label for="expire">Valid for</label>
<select id="expire" name="expire">${v.choices.map((c) => html`<option value="${c.value}"${(form?.expire ?? defaultChoice) === c.value ? trusted(' selected') : ''}>${c.label}</option>`)}</select>
<div><button type="submit">Send the invitations</button></div>
</form>
</section>`
  : ''}
<section aria-labelledby="list-heading">
<h2 id="list-heading">Your invites (${v.total})</h2>
${v.invites.length === 0 ? html`<p>You have not invited anyone yet.</p>` : inviteRows(v.invites, v.now, (i) => `${b}/my/invites/${i.id}`, false)}
${pager(`${b}/my/invites`, v.page, v.pages, new URLSearchParams())}
</section>`,
  );
}

export interface InviteView {
  viewer: Viewer;
  invite: Invite;
  now: number;
  /** the link and QR code, shown while the invite can be used (pending or open, unexpired) */
  links?: { uri: string; landingUrl: string; qr: Html };
  events: readonly InviteEvent[];
  choices: readonly LifetimeChoice[];
  /** the highest number of uses this viewer may give (undefined: no limit) */
  maxUses?: number;
  /** where the forms post: `${base}/my/invites/ID` or `${base}/admin/invites/ID` */
  action: string;
  /** approve and reject (admins, pending invites) */
  decide: boolean;
  flash?: Flash;
}

/** A line of an event log: an invite's, or a membership request's. */
function eventLine(e: Pick<InviteEvent, 'at' | 'actor' | 'reason' | 'data'> & { type: string }): Html {
  const data = e.data ? Object.entries(e.data).map(([k, val]) => `${k}: ${typeof val === 'string' ? val : JSON.stringify(val)}`) : [];
  return html`<tr><td>${when(e.at)}</td><td>${e.type}</td><td>${e.actor}</td><td>${e.reason ?? ''}</td><td>${data.join(', ')}</td></tr>`;
}

export function invitePage(site: Site, v: InviteView): Html {
  const { invite } = v;
  const state: ShownState = shownState(invite, v.now);
  const live = state === 'pending' || state === 'open';
  const csrf = csrfField(v.viewer.csrf);
  return consoleLayout(
    site,
    `Invite ${invite.id}`,
    v.viewer,
    html`<h1>Invite ${invite.id}</h1>
${flash(v.flash)}
<dl class="card">
<dt>State</dt><dd id="invite-state">${state}</dd>
<dt>By</dt><dd>${inviterOf(invite)}</dd>
<dt>To</dt><dd>${inviteeOf(invite)}</dd>
<dt>Kind</dt><dd>${invite.kind}</dd>
<dt>Uses</dt><dd>${invite.uses} of ${invite.maxUses}</dd>
<dt>Delivery</dt><dd>${delivery(invite)}</dd>
<dt>Created</dt><dd>${when(invite.createdAt)}</dd>
<dt>${live ? 'Valid until' : 'Expiry'}</dt><dd id="invite-expires">${when(invite.expiresAt)}</dd>
${invite.note ? html`<dt>Message</dt><dd><blockquote>${invite.note}</blockquote></dd>` : ''}
</dl>
${state === 'pending' ? html`<p class="card" role="status">This invite waits for an admin’s approval. Until then the link adds you as a contact; once approved it also creates accounts.</p>` : ''}
${v.links
  ? html`<h2>The invitation link</h2>
<p>Share this link: <a id="landing-url" href="${v.links.landingUrl}">${v.links.landingUrl}</a></p>
<p class="muted">Or let someone scan it:</p>
${v.links.qr}
<p class="muted">App link: <span class="uri" id="uri">${v.links.uri}</span></p>`
  : ''}
${v.decide && state === 'pending'
  ? html`<h2>Approve or reject</h2>
<form method="post" action="${v.action}/decide">${csrf}
<label for="reason">Reason for a rejection <span class="hint">Sent to the inviter.</span></label>
<input type="text" id="reason" name="reason" maxlength="1000">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="reject" class="danger">Reject</button>
</form>`
  : ''}
${state === 'open'
  ? html`<h2>Extend</h2>
<form method="post" action="${v.action}/extend">${csrf}
<div class="filters">
<div><label for="extend-expire">Valid for, from now</label>
<select id="extend-expire" name="expire"><option value="">(unchanged)</option>${v.choices.map((c) => html`<option value="${c.value}">${c.label}</option>`)}</select></div>
${invite.kind === 'account-locked'
  ? ''
  : html`<div><label for="extend-uses">Uses in all</label>
<input type="number" id="extend-uses" name="uses" min="${invite.maxUses}"${v.maxUses !== undefined ? trusted(` max="${v.maxUses}"`) : ''} value="${invite.maxUses}"></div>`}
</div>
<button type="submit" class="secondary">Extend</button>
</form>`
  : ''}
${live
  ? html`<h2>Stop or renew</h2>
<form method="post" action="${v.action}/resend">${csrf}<p>A new link replaces the old one, which stops working${invite.inviteeEmail || invite.inviteeJid ? '; it is sent to the invitee again' : ''}.</p><button type="submit" class="secondary">New link</button></form>
<form method="post" action="${v.action}/revoke">${csrf}<button type="submit" class="danger">Revoke this invite</button></form>`
  : ''}
${eventsSection(v.events)}`,
  );
}

/** "What happened": the event log of an invite or a request, oldest first. */
function eventsSection(events: readonly Parameters<typeof eventLine>[0][]): Html {
  return html`<h2>What happened</h2>
<div class="table-wrap"><table id="events">
<thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Who</th><th scope="col">Reason</th><th scope="col">Details</th></tr></thead>
<tbody>${events.map(eventLine)}</tbody>
</table></div>`;
}

export interface EmailResultView {
  viewer: Viewer;
  invited: readonly { address: string; invite: Invite }[];
  refused: readonly { line: string; why: string }[];
}

export function emailResultPage(site: Site, v: EmailResultView): Html {
  const b = site.base;
  const sent = v.invited.filter((i) => i.invite.state === 'open');
  const waiting = v.invited.filter((i) => i.invite.state === 'pending');
  const n = v.invited.length;
  return consoleLayout(
    site,
    'Invitations sent',
    v.viewer,
    html`<h1>${n === 0 ? 'Nobody was invited' : `${n} ${n === 1 ? 'address' : 'addresses'} invited`}</h1>
${sent.length ? html`<h2>E-mailed now</h2><ul id="sent">${sent.map((i) => html`<li><a href="${b}/my/invites/${i.invite.id}">${i.address}</a></li>`)}</ul>` : ''}
${waiting.length ? html`<h2>E-mailed once an admin approves</h2><ul id="waiting">${waiting.map((i) => html`<li><a href="${b}/my/invites/${i.invite.id}">${i.address}</a></li>`)}</ul>` : ''}
${v.refused.length
  ? html`<h2>Not invited</h2><ul class="refused" id="refused">${v.refused.map((r) => html`<li><span class="uri">${r.line}</span>: ${r.why}</li>`)}</ul>`
  : ''}
<p><a href="${b}/my/invites">Back to my invites</a></p>`,
  );
}

// ---- admins -------------------------------------------------------------------------------------

export interface QueueView {
  viewer: Viewer;
  pending: readonly Invite[];
  total: number;
  /** verified membership requests waiting, oldest first (the first page of them) */
  requests: readonly MembershipRequest[];
  requestTotal: number;
  page: number;
  pages: number;
  /** render every box ticked ("Select all", without script) */
  all: boolean;
  flash?: Flash;
}

/** The value of a membership request's box: `request/ID`, as in the pending command. */
export const REQUEST_PREFIX = 'request/';

function requestsFieldset(site: Site, v: QueueView): Html {
  if (v.requests.length === 0) return html``;
  return html`<fieldset>
<legend>${v.requestTotal} ${v.requestTotal === 1 ? 'membership request waits' : 'membership requests wait'} for approval, oldest first${v.requestTotal > v.requests.length ? html`; here are the ${v.requests.length} oldest` : ''}</legend>
<div class="table-wrap"><table class="cards">
<thead><tr><th scope="col">Select</th><th scope="col">Request</th><th scope="col">Address</th><th scope="col">Verified</th><th scope="col">Reason</th></tr></thead>
<tbody>
${v.requests.map(
  (r) => html`<tr data-request="${r.id}"><td class="pick"><input type="checkbox" name="id" value="${REQUEST_PREFIX}${r.id}" id="pick-request-${r.id}" aria-label="Select the membership request of ${r.email}"${v.all ? trusted(' checked') : ''}></td>
<td data-label="Request"><a href="${site.base}/admin/requests/${r.id}">${r.id}</a></td><td data-label="Address">${r.email}</td><td data-label="Verified">${r.verifiedAt === null ? '' : when(r.verifiedAt)}</td><td data-label="Reason">${r.reason ?? ''}</td></tr>`,
)}
</tbody></table></div>
</fieldset>`;
}

export function queuePage(site: Site, v: QueueView): Html {
  const b = site.base;
  const q = (all: boolean) => `${b}/admin?${new URLSearchParams({ ...(v.page > 1 ? { page: String(v.page) } : {}), ...(all ? { select: 'all' } : {}) }).toString()}`;
  return consoleLayout(
    site,
    'Approvals',
    v.viewer,
    html`<h1>Approvals</h1>
${flash(v.flash)}
${v.total === 0 && v.requestTotal === 0
  ? html`<p>No invites or membership requests wait for approval.</p>`
  : html`<form method="post" action="${b}/admin/decide">
${csrfField(v.viewer.csrf)}
<p><a href="${q(true)}">Select all</a> · <a href="${q(false)}">Select none</a></p>
${requestsFieldset(site, v)}
${v.total === 0
  ? html`<p>No invites wait for approval.</p>`
  : html`<fieldset>
<legend>${v.total} ${v.total === 1 ? 'invite waits' : 'invites wait'} for approval, oldest first</legend>
<div class="table-wrap"><table class="cards">
<thead><tr><th scope="col">Select</th><th scope="col">Invite</th><th scope="col">By</th><th scope="col">To</th><th scope="col">Kind</th><th scope="col">Created</th><th scope="col">Message</th></tr></thead>
<tbody>
${v.pending.map(
  (i) => html`<tr data-invite="${i.id}"><td class="pick"><input type="checkbox" name="id" value="${i.id}" id="pick-${i.id}" aria-label="Select invite ${i.id} by ${inviterOf(i)} to ${inviteeOf(i)}"${v.all ? trusted(' checked') : ''}></td>
<td data-label="Invite"><a href="${b}/admin/invites/${i.id}">${i.id}</a></td><td data-label="By">${inviterOf(i)}</td><td data-label="To">${inviteeOf(i)}</td><td data-label="Kind">${i.kind}</td><td data-label="Created">${when(i.createdAt)}</td><td data-label="Message">${i.note ?? ''}</td></tr>`,
)}
</tbody></table></div>
</fieldset>`}
<label for="reason">Reason for the rejections <span class="hint">Optional; sent to the inviters, and to the addresses of rejected requests.</span></label>
<input type="text" id="reason" name="reason" maxlength="1000">
<button type="submit" name="decision" value="approve">Approve selected</button>
<button type="submit" name="decision" value="reject" class="danger">Reject selected</button>
</form>
${pager(`${b}/admin`, v.page, v.pages, new URLSearchParams())}`}`,
  );
}

export interface RequestsView {
  viewer: Viewer;
  requests: readonly MembershipRequest[];
  shownState: (r: MembershipRequest) => RequestState;
  total: number;
  state: RequestState | '';
  /** the query of the next page (keyset), when there is one */
  next?: string;
}

export function requestsPage(site: Site, v: RequestsView): Html {
  const b = site.base;
  return consoleLayout(
    site,
    'Membership requests',
    v.viewer,
    html`<h1>Membership requests</h1>
<form method="get" action="${b}/admin/requests" class="filters">
<div><label for="request-state">State</label>
<select id="request-state" name="state"><option value="">any</option>${REQUEST_STATES.map((st) => html`<option value="${st}"${v.state === st ? trusted(' selected') : ''}>${st}</option>`)}</select></div>
<div><button type="submit" class="secondary">Show</button></div>
</form>
<p id="count">${v.total} ${v.total === 1 ? 'request' : 'requests'}, oldest first</p>
${v.requests.length === 0
  ? html`<p>No membership request here.</p>`
  : html`<div class="table-wrap"><table class="cards">
<thead><tr><th scope="col">Request</th><th scope="col">Address</th><th scope="col">State</th><th scope="col">Asked</th><th scope="col">Verified</th><th scope="col">Decided by</th><th scope="col">Reason</th></tr></thead>
<tbody>
${v.requests.map(
  (r) => html`<tr data-request="${r.id}"><td data-label="Request"><a href="${b}/admin/requests/${r.id}">${r.id}</a></td><td data-label="Address">${r.email}</td><td data-label="State">${v.shownState(r)}</td><td data-label="Asked">${when(r.createdAt)}</td><td data-label="Verified">${r.verifiedAt === null ? '' : when(r.verifiedAt)}</td><td data-label="Decided by">${r.decidedBy ?? ''}</td><td data-label="Reason">${r.reason ?? ''}</td></tr>`,
)}
</tbody></table></div>`}
${v.next ? html`<nav class="pager" aria-label="Pages"><a href="${b}/admin/requests?${v.next}" rel="next">Next page</a></nav>` : ''}`,
  );
}

export interface RequestView {
  viewer: Viewer;
  request: MembershipRequest;
  state: RequestState;
  events: readonly RequestEvent[];
  flash?: Flash;
}

export function requestPage(site: Site, v: RequestView): Html {
  const r = v.request;
  const row = (label: string, value: Fragment) => html`<tr><th scope="row">${label}</th><td>${value}</td></tr>`;
  return consoleLayout(
    site,
    `Request ${r.id}`,
    v.viewer,
    html`<h1>Membership request ${r.id}</h1>
${flash(v.flash)}
<div class="table-wrap"><table id="request">
${row('Address', r.email)}
${row('State', html`<span id="request-state">${v.state}</span>`)}
${row('Asked', when(r.createdAt))}
${row('Verified', r.verifiedAt === null ? '' : when(r.verifiedAt))}
${row('Reason', r.reason ?? '')}
${r.decidedBy !== null ? row('Decided by', html`${r.decidedBy}${r.decidedAt !== null ? html`, ${when(r.decidedAt)}` : ''}`) : ''}
${r.decisionReason !== null ? row('Reason given', r.decisionReason) : ''}
${r.inviteId ? row('Invite', html`<a href="${site.base}/admin/invites/${r.inviteId}">${r.inviteId}</a>`) : ''}
</table></div>
${v.state === 'pending'
  ? html`<h2>Approve or reject</h2>
<form method="post" action="${site.base}/admin/requests/${r.id}/decide">${csrfField(v.viewer.csrf)}
<label for="reason">Reason for a rejection <span class="hint">Sent to the address.</span></label>
<input type="text" id="reason" name="reason" maxlength="1000">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="reject" class="danger">Reject</button>
</form>`
  : ''}
${eventsSection(v.events)}`,
  );
}

export interface TreeView {
  viewer: Viewer;
  forest: readonly TreeNode[];
  /** the JID whose subtree is shown ('' for the whole forest) */
  root: string;
  flash?: Flash;
  /** the action form as it was sent, when shown again */
  actionForm?: { jid: string; reason: string };
}

/** One account and what is below it, as nested lists of the same lines as `xmpp-invites tree`. */
function treeNode(n: TreeNode): Html {
  return html`<li data-jid="${n.jid}"${n.blocked ? trusted(' class="blocked"') : ''}><span class="line">${headLine(n)}</span>
${n.invites.length ? html`<ul class="invites">${n.invites.map((i) => html`<li><span class="line">${inviteLine(i)}</span></li>`)}</ul>` : ''}
${n.children.length ? html`<ul>${n.children.map(treeNode)}</ul>` : ''}</li>`;
}

export function treePage(site: Site, v: TreeView): Html {
  const b = site.base;
  return consoleLayout(
    site,
    'Invitation tree',
    v.viewer,
    html`<h1>Invitation tree</h1>
<p>Who invited whom: each account with who invited it and who approved, then the invites it made and what became of them, and the accounts below it.</p>
<form method="get" action="${b}/admin/tree">
<label for="tree-root">Below one account <span class="hint">Leave empty for everyone.</span></label>
<input type="text" id="tree-root" name="jid" value="${v.root}" maxlength="3071" autocapitalize="none" spellcheck="false">
<button type="submit" class="secondary">Show</button>
</form>
${flash(v.flash)}
${v.forest.length === 0 ? html`<p>Nobody has invited anyone yet.</p>` : html`<ul class="tree" id="tree">${v.forest.map(treeNode)}</ul>`}
<section aria-labelledby="act-heading">
<h2 id="act-heading">Act on one account</h2>
<p>Block a user from inviting (they are told the reason when they try), let them invite again, or revoke every pending or open invite made by them and by the accounts below them.</p>
<form method="post" action="${b}/admin/tree/act">
${csrfField(v.viewer.csrf)}
<label for="act-jid">Account</label>
<input type="text" id="act-jid" name="jid" value="${v.actionForm?.jid ?? v.root}" required maxlength="3071" autocapitalize="none" spellcheck="false">
<label for="act-reason">Reason <span class="hint">Required to block; optional otherwise.</span></label>
<input type="text" id="act-reason" name="reason" value="${v.actionForm?.reason ?? ''}" maxlength="1000">
<button type="submit" name="action" value="block" class="danger">Block from inviting</button>
<button type="submit" name="action" value="unblock" class="secondary">Unblock</button>
<button type="submit" name="action" value="revoke-tree" class="danger">Revoke the subtree's open invites</button>
</form>
</section>`,
  );
}

export interface AllInvitesView {
  viewer: Viewer;
  flash?: Flash;
  /** the account invite form as it was sent, when shown again */
  accountForm?: { username: string; rosterSubscription: boolean };
  usernameRule: string;
  invites: readonly Invite[];
  total: number;
  page: number;
  pages: number;
  now: number;
  filter: { state: string; inviter: string; q: string };
}

export function allInvitesPage(site: Site, v: AllInvitesView): Html {
  const b = site.base;
  const query = new URLSearchParams(Object.entries(v.filter).filter(([, val]) => val !== ''));
  return consoleLayout(
    site,
    'All invites',
    v.viewer,
    html`<h1>All invites</h1>
${flash(v.flash)}
<details${v.accountForm ? trusted(' open') : ''}>
<summary>Create an account invite</summary>
<form method="post" action="${b}/admin/invites/new">
${csrfField(v.viewer.csrf)}
<label for="username">Username <span class="hint">Optional: reserved for the invitee. ${v.usernameRule}.</span></label>
<input type="text" id="username" name="username" value="${v.accountForm?.username ?? ''}" maxlength="64" autocapitalize="none" spellcheck="false">
<label class="check"><input type="checkbox" name="roster-subscription" value="1"${v.accountForm?.rosterSubscription ? trusted(' checked') : ''}> Add the new account to my contacts</label>
<div><button type="submit">Create the account invite</button></div>
</form>
</details>
<form method="get" action="${b}/admin/invites" class="filters" role="search">
<div><label for="state">State</label>
<select id="state" name="state"><option value="">any</option>${SHOWN_STATES.map((s) => html`<option value="${s}"${v.filter.state === s ? trusted(' selected') : ''}>${s}</option>`)}</select></div>
<div><label for="inviter">Inviter</label><input type="text" id="inviter" name="inviter" value="${v.filter.inviter}" placeholder="alice@${site.host}"></div>
<div><label for="q">Search</label><input type="search" id="q" name="q" value="${v.filter.q}" placeholder="id, inviter or invitee"></div>
<div><button type="submit" class="secondary">Show</button></div>
</form>
<p id="count">${v.total} ${v.total === 1 ? 'invite' : 'invites'}${v.pages > 1 ? html`, page ${v.page} of ${v.pages}` : ''}</p>
${v.invites.length ? inviteRows(v.invites, v.now, (i) => `${b}/admin/invites/${i.id}`, true) : ''}
${pager(`${b}/admin/invites`, v.page, v.pages, query)}`,
  );
}

export interface StatsView {
  viewer: Viewer;
  stats: InviteStats;
  activity: { since: number; days: number; series: Record<ActivityKind, number[]> };
  /** membership requests by state and their funnel (when requests are taken, or some were) */
  requests?: RequestStats;
}

/** Membership requests by state, and requested → verified → approved → joined, as tables. */
function requestFigures(r: RequestStats): Html {
  const steps = [
    ['requested', 'Requested'],
    ['verified', 'Verified'],
    ['approved', 'Approved'],
    ['joined', 'Joined'],
  ] as const;
  return html`<h2 id="requests-heading">Membership requests</h2>
<div class="table-wrap"><table id="request-states" aria-labelledby="requests-heading"><caption class="muted">By state (unverified past their 24 hours count as expired)</caption>
<thead><tr>${REQUEST_STATES.map((st) => html`<th scope="col" class="n">${st}</th>`)}</tr></thead>
<tbody><tr>${REQUEST_STATES.map((st) => html`<td class="n" data-state="${st}">${Number(r.states[st] ?? 0)}</td>`)}</tr></tbody></table></div>
<div class="table-wrap"><table id="request-funnel"><caption class="muted">Requested → verified → approved → joined (an account made with the approval's invite)</caption>
<thead><tr>${steps.map(([, label]) => html`<th scope="col" class="n">${label}</th>`)}</tr></thead>
<tbody><tr>${steps.map(([key]) => html`<td class="n" data-series="${key}">${Number(r.funnel[key])}</td>`)}</tr></tbody></table></div>`;
}

const ACTIVITY_LABELS: Record<ActivityKind, string> = {
  created: 'Created',
  approved: 'Approved',
  rejected: 'Rejected',
  joined: 'Joined',
  declined: 'Declined',
  revoked: 'Revoked',
  expired: 'Expired',
};

export function statsPage(site: Site, v: StatsView): Html {
  const { activity, stats } = v;
  const DAY = 86_400_000;
  const days = Array.from({ length: activity.days }, (_, i) => new Date(activity.since + i * DAY).toISOString().slice(0, 10));
  const outcomes: Series[] = (['approved', 'rejected', 'joined', 'declined', 'revoked', 'expired'] as const).map((k, i) => ({
    key: k,
    label: ACTIVITY_LABELS[k],
    colour: PALETTE[i + 1],
    values: activity.series[k],
  }));
  const created: Series = { key: 'created', label: 'Created', colour: PALETTE[0], values: activity.series.created };
  const all = [created, ...outcomes];
  const total = (s: Series) => s.values.reduce((a, n) => a + n, 0);
  const busyDays = days.map((d, i) => ({ d, i })).filter(({ i }) => all.some((s) => s.values[i] > 0));
  const funnelKeys = [
    { key: 'created', label: 'Created' },
    { key: 'approved', label: 'Approved' },
    { key: 'delivered', label: 'Delivered' },
    { key: 'accounts', label: 'Joined' },
  ] as const;
  const funnel = stats.funnel.slice(0, 20);
  const funnelSeries: Series[] = funnelKeys.map((f, i) => ({ key: f.key, label: f.label, colour: PALETTE[i], values: funnel.map((row) => Number(row[f.key])) }));
  const first = longDate(activity.since).replace(/ at .*/, '');
  return consoleLayout(
    site,
    'Statistics',
    v.viewer,
    html`<h1>Statistics</h1>
<h2 id="states-heading">Invites by state</h2>
<div class="table-wrap"><table id="states" aria-labelledby="states-heading"><thead><tr>${SHOWN_STATES.map((s) => html`<th scope="col" class="n">${s}</th>`)}</tr></thead>
<tbody><tr>${SHOWN_STATES.map((s) => html`<td class="n" data-state="${s}">${Number(stats.states[s] ?? 0)}</td>`)}</tr></tbody></table></div>

<h2 id="activity-heading">The last ${activity.days} days</h2>
${legend(all)}
<div class="chart-wrap latest">${stackedBarChart({
  id: 'activity',
  title: `Invites per day, ${days[0]} to ${days[days.length - 1]} (UTC)`,
  description:
    `Bars: what happened to invites each day, stacked by outcome; line: invites created. In all since ${first}: ` +
    all.map((s) => `${total(s)} ${s.label.toLowerCase()}`).join(', ') +
    '. The same figures are in the table below.',
  labels: days,
  shortLabels: days.map((d) => d.slice(5)),
  labelEvery: 14,
  stacked: outcomes,
  line: created,
})}</div>
<details open>
<summary>The figures per day (days with nothing left out)</summary>
<div class="table-wrap"><table id="activity-table">
<caption class="muted">Invites per day (UTC) by what happened to them</caption>
<thead><tr><th scope="col">Day</th>${all.map((s) => html`<th scope="col" class="n">${s.label}</th>`)}</tr></thead>
<tbody>${busyDays.map(({ d, i }) => html`<tr data-day="${d}"><th scope="row">${d}</th>${all.map((s) => html`<td class="n" data-series="${s.key}">${s.values[i]}</td>`)}</tr>`)}</tbody>
<tfoot><tr><th scope="row">In all</th>${all.map((s) => html`<td class="n" data-series="${s.key}">${total(s)}</td>`)}</tr></tfoot>
</table></div>
</details>

<h2 id="funnel-heading">Per inviter: created → approved → delivered → joined</h2>
${funnel.length === 0
  ? html`<p>Nobody has invited anyone yet.</p>`
  : html`${legend(funnelSeries)}
<div class="chart-wrap">${groupedBarChart({
  id: 'funnel',
  title: 'Invites per inviter at each step',
  description: `For the ${funnel.length} inviters with the most invites: ` + funnel.map((r) => `${r.inviter}: ${funnelKeys.map((f) => `${Number(r[f.key])} ${f.label.toLowerCase()}`).join(', ')}`).join('; ') + '.',
  rows: funnel.map((r) => r.inviter),
  series: funnelSeries,
})}</div>
<div class="table-wrap"><table id="funnel-table">
<caption class="muted">Delivered: e-mailed or messaged to the invitee, or used. Joined: accounts made.</caption>
<thead><tr><th scope="col">Inviter</th>${funnelKeys.map((f) => html`<th scope="col" class="n">${f.label}</th>`)}</tr></thead>
<tbody>${funnel.map((r) => html`<tr data-inviter="${r.inviter}"><th scope="row">${r.inviter}</th>${funnelKeys.map((f) => html`<td class="n" data-series="${f.key}">${Number(r[f.key])}</td>`)}</tr>`)}</tbody>
</table></div>`}
${v.requests ? requestFigures(v.requests) : ''}`,
  );
}

// ---- room invitations ---------------------------------------------------------------------------

export interface InvitationsView {
  viewer: Viewer;
  open: readonly { row: RoomInvitation; invite: Invite }[];
  maxNote: number;
  flash?: Flash;
  /** what became of the answers just sent */
  answered?: readonly AnsweredRoom[];
}

export function invitationsPage(site: Site, v: InvitationsView): Html {
  return consoleLayout(
    site,
    'Room invitations',
    v.viewer,
    html`<h1>Room invitations</h1>
${flash(v.flash)}
${v.answered ? html`<section aria-labelledby="answered-heading"><h2 id="answered-heading">Your answers</h2>${answeredRooms(v.answered, true, 'it is still listed below')}</section>` : ''}
${v.open.length === 0
  ? html`<p>No room invitation waits for your answer.</p>`
  : html`<form method="post" action="${site.base}/my/invitations">
${csrfField(v.viewer.csrf)}
${roomChoices(site, v.open)}
<label for="room-note">A note for those whose invitation you answer <span class="hint">Optional, at most ${v.maxNote} characters.</span></label>
<textarea id="room-note" name="note" maxlength="${v.maxNote}"></textarea>
<button type="submit">Send my answers</button>
</form>`}`,
  );
}

export function forbiddenPage(site: Site, viewer: Viewer): Html {
  return consoleLayout(site, 'Admins only', viewer, html`<h1>Admins only</h1><p>This page is for the admins of ${site.name}.</p>`);
}

export function consoleProblemPage(site: Site, viewer: Viewer | null, title: string, message: string): Html {
  return consoleLayout(site, title, viewer, html`<h1>${title}</h1><p>${message}</p>`);
}
