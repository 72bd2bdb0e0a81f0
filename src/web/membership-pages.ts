/**
 * The pages of the membership door (/request): the form, "check your e-mail" (one page whatever
 * became of the request), the verification button, and the waiting page. Every value goes through
 * the `html` tag.
 */
import type { MembershipRequest } from '../domain/membership';
import { html, type Html } from '../present/html';
import { longDate } from '../present/invite';
import { layout, type Site } from './pages';

export const HONEYPOT_FIELD = 'website';

export interface RequestFormView {
  csrf: string;
  reason: 'required' | 'optional' | 'off';
  email?: string;
  reasonText?: string;
  error?: string;
}

export function requestFormPage(site: Site, v: RequestFormView): Html {
  const body = html`<h1>Ask to join ${site.name}</h1>
<p>${site.name} is a chat service for ${site.host} that works with any XMPP app. Leave your e-mail address: we send you a link to confirm it${v.reason === 'off' ? '' : ', and an admin reads why you would like to join'}.</p>
${v.error ? html`<p class="error" role="alert" id="form-error">${v.error}</p>` : ''}
<form method="post" action="${site.base}/request">
<input type="hidden" name="csrf" value="${v.csrf}">
<label for="email">E-mail address</label>
<input type="email" id="email" name="email" value="${v.email ?? ''}" required maxlength="254" autocomplete="email"${v.error ? html` aria-describedby="form-error"` : ''}>
${v.reason === 'off'
  ? ''
  : html`<label for="reason">Why would you like to join? <span class="hint">${v.reason === 'required' ? 'Required.' : '(optional)'}</span></label>
<textarea id="reason" name="reason" maxlength="1000"${v.reason === 'required' ? html` required` : ''}>${v.reasonText ?? ''}</textarea>`}
<div class="hp" aria-hidden="true"><label for="${HONEYPOT_FIELD}">Leave this field empty</label>
<input type="text" id="${HONEYPOT_FIELD}" name="${HONEYPOT_FIELD}" value="" tabindex="-1" autocomplete="off"></div>
<button type="submit">Send my request</button>
</form>`;
  return layout(site, `Ask to join ${site.name}`, body);
}

/** The one answer to every accepted form: it never says whether the address was known. */
export function requestSentPage(site: Site): Html {
  return layout(
    site,
    'Check your e-mail',
    html`<h1>Check your e-mail</h1>
<p class="ok" role="status">Thank you. If this address can ask to join ${site.name}, an e-mail is on its way to it with a link to confirm it.</p>
<p>The link works for 24 hours. Nothing else happens until you open it.</p>`,
  );
}

export function verifyPage(site: Site, code: string, csrf: string, request: MembershipRequest, until: number): Html {
  return layout(
    site,
    'Confirm your e-mail address',
    html`<h1>Confirm your e-mail address</h1>
<p>Press the button to confirm that <strong>${request.email}</strong> is yours and that you asked to join ${site.name}.</p>
<form method="post" action="${site.base}/request/v/${code}">
<input type="hidden" name="csrf" value="${csrf}">
<button type="submit">Confirm my address</button>
</form>
<p class="muted">This link works until ${longDate(until)}.</p>`,
  );
}

export function waitingPage(site: Site, request: MembershipRequest): Html {
  return layout(
    site,
    'Your request waits for an admin',
    html`<h1>Your request waits for an admin</h1>
<p class="ok" role="status">Your address <strong>${request.email}</strong> is confirmed.</p>
<p>An admin of ${site.name} will look at your request. You will get an e-mail either way: with an invitation to create your account, or with the answer.</p>`,
  );
}

export function decidedPage(site: Site, request: MembershipRequest): Html {
  const approved = request.state === 'approved';
  return layout(
    site,
    approved ? 'Your request was approved' : 'Your request was answered',
    approved
      ? html`<h1>Your request was approved</h1><p>An invitation to create your account was sent to <strong>${request.email}</strong>.</p>`
      : html`<h1>Your request was answered</h1><p>An e-mail with the answer was sent to <strong>${request.email}</strong>.</p>`,
  );
}

export function verifyNotFoundPage(site: Site): Html {
  return layout(
    site,
    'Link not valid',
    html`<h1>This link is not valid</h1>
<p>Check that you opened the whole link from the e-mail. Links work for 24 hours; after that, ask again at <a href="${site.base}/request">the request page</a>.</p>`,
  );
}
