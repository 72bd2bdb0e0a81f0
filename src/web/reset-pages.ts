/** The pages of a password reset link: choose a new password, done, and no longer usable. */
import type { PasswordReset, ShownResetState } from '../domain/resets';
import { html, type Html } from '../present/html';
import { longDate } from '../present/invite';
import { layout, type Site } from './pages';

export interface ResetView {
  reset: PasswordReset;
  token: string;
  csrf: string;
  error?: string;
}

export function resetPage(site: Site, v: ResetView): Html {
  const jid = `${v.reset.username}@${site.host}`;
  return layout(
    site,
    'Choose a new password',
    html`<h1>Choose a new password</h1>
<p>This link sets a new password for <strong id="jid">${jid}</strong>, once. It works until ${longDate(v.reset.expiresAt)}.</p>
${v.error ? html`<p class="error" role="alert" id="form-error">${v.error}</p>` : ''}
<form method="post" action="${site.base}/i/${v.token}/reset">
<input type="hidden" name="csrf" value="${v.csrf}">
<input type="text" name="username" value="${jid}" autocomplete="username" readonly hidden>
<label for="password">New password <span class="hint">At least ${site.minPasswordLength} characters.</span></label>
<input type="password" id="password" name="password" required minlength="${site.minPasswordLength}" autocomplete="new-password">
<label for="password-again">The new password again</label>
<input type="password" id="password-again" name="password-again" required minlength="${site.minPasswordLength}" autocomplete="new-password">
<button type="submit">Set my new password</button>
</form>`,
  );
}

export function resetDonePage(site: Site, reset: PasswordReset): Html {
  const jid = `${reset.username}@${site.host}`;
  return layout(
    site,
    'Your new password is set',
    html`<h1>Your new password is set</h1>
<p class="ok" role="status">Log in as <strong id="jid">${jid}</strong> with your new password. Your apps that kept the old one will ask for it.</p>`,
  );
}

export function resetGonePage(site: Site, reset: PasswordReset, state: ShownResetState): Html {
  const why =
    state === 'used' ? 'It has been used: a new password was set with it.' : state === 'expired' ? 'It has expired.' : state === 'held' ? 'It is being used right now.' : 'It was revoked.';
  return layout(site, 'Link no longer valid', html`<h1>This link can no longer be used</h1><p>${why} Ask an admin of ${site.name} for a new one if you need it.</p>`);
}
