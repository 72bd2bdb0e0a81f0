/**
 * The membership door (contract, "Membership requests and e-mail verification"): GET/POST /request,
 * GET/POST /request/v/{code}. A thin adapter over src/domain/membership.ts. With
 * `registration.requests: off` none of these routes exists (404).
 *
 * What the answers may not reveal: whether an address is known. An accepted form always gets the
 * same page (new, already pending, a member's, refused for now); a filled honeypot gets it too and
 * makes nothing. Form errors (the address, its domain, the reason) are about what was typed.
 */
import type { Logger } from 'pino';
import { isInviteError } from '../errors';
import type { InviteService } from '../domain/invites';
import type { MembershipRequest, MembershipService } from '../domain/membership';
import { retryAfter, webError } from './errors';
import { decidedPage, HONEYPOT_FIELD, requestFormPage, requestSentPage, verifyNotFoundPage, verifyPage, waitingPage } from './membership-pages';
import { problemPage, type Site } from './pages';
import type { Reply, WebServer } from './server';

export interface MembershipRoutesDeps {
  site: Site;
  membership: MembershipService;
  invites: InviteService;
  logger: Logger;
  clock?: () => number;
}

export function registerMembershipRoutes(web: WebServer, deps: MembershipRoutesDeps): void {
  const { site, membership, invites, logger } = deps;
  const clock = deps.clock ?? Date.now;
  if (membership.mode === 'off') return;
  const reasonField = membership.reasonField;

  web.get('/request', (ctx) => ({ status: 200, body: requestFormPage(site, { csrf: ctx.csrf(), reason: reasonField }) }));

  web.post('/request', (ctx) => {
    const email = ctx.form.get('email') ?? '';
    const reason = ctx.form.get('reason');
    // A field people never see: whoever fills it is a script. Same page, nothing made.
    if ((ctx.form.get(HONEYPOT_FIELD) ?? '') !== '') {
      logger.info({ ip: ctx.ip }, 'membership request with the honeypot filled: ignored');
      return { status: 200, body: requestSentPage(site) };
    }
    try {
      membership.request({ email, reason, ip: ctx.ip });
      return { status: 200, body: requestSentPage(site) };
    } catch (err) {
      if (!isInviteError(err)) throw err;
      if (err.code === 'invalid-input') {
        return {
          status: 400,
          body: requestFormPage(site, { csrf: ctx.csrf(), reason: reasonField, email: email.slice(0, 254), reasonText: (reason ?? '').slice(0, 1000), error: err.message }),
        };
      }
      const shown = webError(err.code);
      const wait = retryAfter(err, clock());
      return { status: shown.status, headers: wait !== undefined ? { 'Retry-After': String(wait) } : undefined, body: problemPage(site, shown.title, err.message) };
    }
  });

  const notFound = (): Reply => ({ status: 404, body: verifyNotFoundPage(site) });

  web.get('/request/v/:code', (ctx) => {
    const request = membership.byCode(ctx.params.code);
    if (!request) return notFound();
    // Nothing changes on GET (mail scanners follow links): a button does it.
    if (request.state === 'unverified') {
      return { status: 200, body: verifyPage(site, ctx.params.code, ctx.csrf(), request, membership.verifyUntil(request)) };
    }
    return shownAfter(request);
  });

  web.post('/request/v/:code', (ctx) => {
    const request = membership.byCode(ctx.params.code);
    if (!request) return notFound();
    try {
      const done = membership.verify(ctx.params.code);
      return shownAfter(done.request);
    } catch (err) {
      if (!isInviteError(err)) throw err;
      if (err.code === 'invite-not-found') return notFound();
      const shown = webError(err.code);
      return { status: shown.status, body: problemPage(site, shown.title, err.message) };
    }
  });

  /** After verification: the waiting page, or (open mode, and approvals) the account form at once. */
  function shownAfter(request: MembershipRequest): Reply {
    if (request.state === 'pending') return { status: 200, body: waitingPage(site, request) };
    const invite = request.inviteId ? invites.get(request.inviteId) : undefined;
    if (request.state === 'approved' && invite && invite.state === 'open' && clock() < invite.expiresAt) {
      // Straight to the account form of the invite made for this address.
      return { status: 303, body: '', headers: { Location: `${site.base}/i/${invites.links(invite).token}` } };
    }
    return { status: 200, body: decidedPage(site, request) };
  }
}
