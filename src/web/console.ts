/**
 * The web console's routes (contract, "The web console"): sign in with an XMPP account, the user's
 * invites, and the admins' approvals, invites and statistics. A thin adapter like landing.ts: it
 * reads the session and the form, calls the same domain services as the ad-hoc commands
 * (InviteService, inviteEmails, expiryChoices), and renders. Every change is a POST with its CSRF
 * token (checked by server.ts before any route runs) and is recorded with the user's JID and
 * `via: web`. Admin rights are read from `admins` at every request.
 *
 * Room invitations are answered at `/my/invitations` through RoomAnswers (as #respond does),
 * membership requests wait in `/admin` beside invites (and are all listed at `/admin/requests`),
 * decided through MembershipService (as #pending does), and `/admin/tree` shows Trust.tree() (as
 * `xmpp-invites tree` does) and blocks, unblocks and revokes subtrees through Trust (as the CLI).
 */
import type { ConsoleAuth, Session } from '../domain/console-auth';
import type { InviteService } from '../domain/invites';
import { REQUEST_STATES, type MembershipService, type RequestState } from '../domain/membership';
import { formAnswers, type RoomAnswers } from '../domain/room-answers';
import type { Trust } from '../domain/trust';
import { attempt } from '../domain/attempt';
import { addressLines, emailRefusal, expiryChoices, inviteEmails, MAX_ADDRESSES } from '../domain/invite-by-email';
import { InviteError, isInviteError } from '../errors';
import { isPrivileged, shownState, SHOWN_STATES, type Actor, type Invite, type ShownState } from '../domain/types';
import { normalizeBareJid } from '../domain/jid';
import { cleanText } from '../domain/text';
import { USERNAME_RULE } from '../domain/usernames';
import { addressKey } from './client-ip';
import {
  allInvitesPage,
  consoleProblemPage,
  emailResultPage,
  forbiddenPage,
  invitationsPage,
  invitePage,
  loginConfirmPage,
  loginEndedPage,
  loginPage,
  loginSentPage,
  myInvitesPage,
  queuePage,
  REQUEST_PREFIX,
  requestPage,
  requestsPage,
  statsPage,
  treePage,
  type Flash,
  type Viewer,
} from './console-pages';
import { retryAfter, webError } from './errors';
import type { Site } from './pages';
import { qrSvg } from './qr';
import { redirect, type Reply, type RequestContext, type WebServer } from './server';

export const SESSION_COOKIE = 'xi_session';
/** Lists are shown 50 at a time. */
export const PAGE_SIZE = 50;
/**
 * Policy: the statistics are read at most every 30 s per instance (and again after any change made
 * in the console). They are counted over every invite and the event log on the event loop: about
 * 1.3 s with 200,000 invites (measured on a 2-core test machine), which would hold up the
 * component's stanzas at every reload of the page.
 */
export const STATS_TTL_MS = 30_000;
/** The longest reason for a rejection, as for notes on the landing page. */
const MAX_REASON = 1000;

export interface ConsoleDeps {
  site: Site;
  invites: InviteService;
  auth: ConsoleAuth;
  admins: readonly string[];
  /** invites.expiry, invites.max_uses, invites.allow_user_invites, presence.max_message_length */
  policy: { expiry: number; maxUses: number; allowUserInvites: boolean; maxMessage: number };
  /** the Secure attribute of the session cookie (web.public_url is https) */
  secureCookies: boolean;
  /** the invitation tree (`/admin/tree`) */
  trust: Trust;
  /** membership requests, decided in the admin queue beside invites and listed at `/admin/requests` */
  membership?: MembershipService;
  /** registration.requests is not off: `/admin/requests` is linked in the navigation */
  requestsOn?: boolean;
  /** answers to room invitations (absent: rooms.service is not set, and `/my/invitations` is not offered) */
  roomAnswers?: RoomAnswers;
}

/** Done messages the pages show after a redirect: fixed words chosen by key, never text from the URL. */
const DONE: Record<string, string> = {
  created: 'The invitation link is ready.',
  revoked: 'The invite was revoked: its link no longer works.',
  resent: 'The invite has a new link; the old one no longer works.',
  extended: 'The invite was extended.',
  unchanged: 'Nothing changed: the invite already had that lifetime and those uses.',
  approved: 'The invite was approved.',
  rejected: 'The invite was rejected.',
  'request-approved': 'The request was approved: its account invite is e-mailed to the address.',
  'request-rejected': 'The request was rejected: the address is told, with the reason.',
  'request-unchanged': 'Nothing changed: the request had already been decided so.',
};

/** What the tree page says after an action: fixed words chosen by key. */
const TREE_DONE: Record<string, string> = {
  blocked: 'The user is blocked from inviting; they are told the reason when they try.',
  unblocked: 'The user may invite again.',
  'not-blocked': 'Nothing changed: the user was not blocked.',
  revoked: 'Every pending or open invite of the subtree was revoked.',
  'revoked-none': 'Nothing changed: the subtree had no pending or open invite.',
};

export function registerConsoleRoutes(web: WebServer, deps: ConsoleDeps): void {
  const { site, invites, auth, membership } = deps;
  const b = site.base;
  const choices = expiryChoices(deps.policy.expiry);
  const isAdmin = (jid: string) => deps.admins.includes(jid);
  let statsCache:
    | { at: number; stats: ReturnType<InviteService['stats']>; activity: ReturnType<InviteService['activity']>; requests?: ReturnType<MembershipService['stats']> }
    | undefined;
  const figures = () => {
    const now = Date.now();
    if (!statsCache || now - statsCache.at >= STATS_TTL_MS) {
      const requests = deps.membership && (deps.requestsOn || deps.membership.count() > 0) ? deps.membership.stats() : undefined;
      statsCache = { at: now, stats: invites.stats(), activity: invites.activity(90), requests };
    }
    return statsCache;
  };

  const cookie = (value: string, maxAgeS: number) =>
    `${SESSION_COOKIE}=${value}; Path=${b || '/'}; HttpOnly; SameSite=Lax; Max-Age=${maxAgeS}${deps.secureCookies ? '; Secure' : ''}`;

  const sessionOf = (ctx: RequestContext): Session | undefined => auth.session(ctx.cookies.get(SESSION_COOKIE));
  const viewerOf = (ctx: RequestContext, s: Session): Viewer => ({ jid: s.jid, isAdmin: isAdmin(s.jid), csrf: ctx.csrf(), rooms: deps.roomAnswers !== undefined, requests: deps.membership !== undefined && deps.requestsOn === true });
  const actorOf = (s: Session): Actor & { kind: 'user' } => ({ kind: 'user', jid: s.jid, isAdmin: isAdmin(s.jid), via: 'web' });

  type Guarded = (ctx: RequestContext, s: Session, viewer: Viewer) => Promise<Reply> | Reply;

  /** Signed-in users only: a GET without a session goes to /login, a POST is refused (401). */
  const user =
    (handler: Guarded) =>
    (ctx: RequestContext): Promise<Reply> | Reply => {
      const s = sessionOf(ctx);
      if (!s) {
        if (ctx.method === 'POST') return { status: 401, body: consoleProblemPage(site, null, 'Please sign in again', 'Your session has ended; nothing was changed.') };
        return redirect(`${b}/login`);
      }
      return handler(ctx, s, viewerOf(ctx, s));
    };

  /** Admins only, checked against `admins` at every request: anyone else signed in gets 403. */
  const admin = (handler: Guarded) =>
    user((ctx, s, viewer) => (viewer.isAdmin ? handler(ctx, s, viewer) : { status: 403, body: forbiddenPage(site, viewer) }));

  const problem = (viewer: Viewer | null, err: InviteError): Reply => {
    const shown = webError(err.code);
    const wait = retryAfter(err, invites.now());
    return {
      status: shown.status,
      headers: wait !== undefined ? { 'Retry-After': String(wait) } : undefined,
      body: consoleProblemPage(site, viewer, shown.title, err.message),
    };
  };

  const page = (ctx: RequestContext, total: number): { page: number; pages: number; offset: number } => {
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const asked = Number(ctx.query.get('page') ?? '1');
    const p = Number.isInteger(asked) && asked >= 1 ? Math.min(asked, pages) : 1;
    return { page: p, pages, offset: (p - 1) * PAGE_SIZE };
  };

  // ---- signing in ----

  web.get('/login', (ctx) => {
    if (sessionOf(ctx)) return redirect(`${b}/my/invites`);
    return { status: 200, body: loginPage(site, { csrf: ctx.csrf(), ended: ctx.query.get('out') === '1' }) };
  });

  web.post('/login', (ctx) => {
    const jid = cleanText(ctx.form.get('jid') ?? '').trim();
    try {
      const { phrase, expiresAt } = auth.request(jid, addressKey(ctx.ip));
      // The same page for every JID: whether it is an account is not told.
      return { status: 200, body: loginSentPage(site, { jid, phrase, expiresAt }) };
    } catch (err) {
      if (!isInviteError(err)) throw err;
      if (err.code === 'invalid-input') return { status: 400, body: loginPage(site, { csrf: ctx.csrf(), jid, error: err.message }) };
      return problem(null, err);
    }
  });

  web.get('/login/:code', (ctx) => {
    const found = auth.inspect(ctx.params.code);
    if (!found.ok) return { status: found.why === 'unknown' ? 404 : 410, body: loginEndedPage(site, found.why) };
    return { status: 200, body: loginConfirmPage(site, { csrf: ctx.csrf(), code: ctx.params.code, jid: found.jid, phrase: found.phrase }) };
  });

  web.post('/login/:code', (ctx) => {
    const done = auth.confirm(ctx.params.code, ctx.cookies.get(SESSION_COOKIE));
    if (!done.ok) return { status: done.why === 'unknown' ? 404 : 410, body: loginEndedPage(site, done.why) };
    const maxAge = Math.floor((done.session.expiresAt - done.session.createdAt) / 1000);
    return redirect(isAdmin(done.session.jid) ? `${b}/admin` : `${b}/my/invites`, [cookie(done.sessionId, maxAge)]);
  });

  web.post('/logout', (ctx) => {
    auth.logout(ctx.cookies.get(SESSION_COOKIE));
    return redirect(`${b}/login?out=1`, [cookie('', 0)]);
  });

  // ---- the user's invites ----

  const canEmail = (viewer: Viewer) => viewer.isAdmin || deps.policy.allowUserInvites;

  const myInvites = (ctx: RequestContext, s: Session, viewer: Viewer, status = 200, flash?: Flash, emailForm?: { emails: string; message: string; expire: string }): Reply => {
    const total = invites.count({ inviter: s.jid });
    const p = page(ctx, total);
    const actor = actorOf(s);
    return {
      status,
      body: myInvitesPage(site, {
        viewer,
        invites: invites.list({ inviter: s.jid, limit: PAGE_SIZE, offset: p.offset }),
        total,
        page: p.page,
        pages: p.pages,
        now: invites.now(),
        canEmail: canEmail(viewer),
        waits: invites.needsApproval(actor, invites.newInviteKind(actor)),
        choices,
        maxAddresses: MAX_ADDRESSES,
        maxMessage: deps.policy.maxMessage,
        flash,
        emailForm,
      }),
    };
  };

  web.get('/my/invites', user((ctx, s, viewer) => myInvites(ctx, s, viewer)));

  web.post(
    '/my/invites/new',
    user((ctx, s, viewer) => {
      const actor = actorOf(s);
      try {
        const { invite } = invites.create(actor, { kind: invites.newInviteKind(actor), source: 'web' });
        statsCache = undefined;
        return redirect(`${b}/my/invites/${invite.id}?done=created`);
      } catch (err) {
        if (!isInviteError(err)) throw err;
        return problem(viewer, err);
      }
    }),
  );

  web.post(
    '/my/invites/email',
    user((ctx, s, viewer) => {
      if (!canEmail(viewer)) return problem(viewer, new InviteError('forbidden', 'Only admins may invite by e-mail on this server'));
      const lines = addressLines([ctx.form.get('emails') ?? '']);
      const message = cleanText(ctx.form.get('message') ?? '').trim();
      const expire = ctx.form.get('expire') ?? choices[choices.length - 1].value;
      const form = { emails: lines.join('\n'), message, expire };
      const again = (error: string) => myInvites(ctx, s, viewer, 400, { error: `Nobody was invited: ${error}` }, form);
      const choice = choices.find((c) => c.value === expire);
      if (!choice) return again(`choose a lifetime on offer (${choices.map((c) => c.label).join(', ')}).`);
      if (lines.length === 0) return again('give at least one e-mail address.');
      if (lines.length > MAX_ADDRESSES) return again(`the list has ${lines.length} addresses; at most ${MAX_ADDRESSES} are taken at a time.`);
      if ([...message].length > deps.policy.maxMessage) return again(`the message is longer than ${deps.policy.maxMessage} characters.`);
      const made = inviteEmails(invites, actorOf(s), lines, { message, expiresIn: choice.ms, source: 'web' });
      statsCache = undefined;
      const refused = made.refused.map((r) => ({ line: r.line, why: emailRefusal(r.error) }));
      // Nothing came of it: the form again, with every refusal, so that the list can be fixed.
      if (made.done.length === 0) return myInvites(ctx, s, viewer, 400, { error: 'Nobody was invited.', refused: refused.map((r) => `${r.line}: ${r.why}`) }, form);
      return { status: 200, body: emailResultPage(site, { viewer, invited: made.done, refused }) };
    }),
  );

  /** The invite of the URL when the viewer may see it here: their own under /my, any under /admin. */
  const inviteFor = (s: Session, id: string, scope: 'my' | 'admin'): Invite | undefined => {
    const invite = invites.get(id);
    if (!invite) return undefined;
    if (scope === 'my' && invite.inviter !== s.jid) return undefined;
    return invite;
  };

  const showInvite = async (ctx: RequestContext, s: Session, viewer: Viewer, scope: 'my' | 'admin', status = 200, flash?: Flash): Promise<Reply> => {
    const invite = inviteFor(s, ctx.params.id, scope);
    if (!invite) return { status: 404, body: consoleProblemPage(site, viewer, 'No such invite', `There is no invite ${ctx.params.id} here.`) };
    const now = invites.now();
    const state = shownState(invite, now);
    let links;
    if (state === 'pending' || state === 'open') {
      const l = invites.links(invite);
      links = { uri: l.uri, landingUrl: l.landingUrl, qr: await qrSvg(l.uri, `QR code of invite ${invite.id}`) };
    }
    const done = ctx.query.get('done');
    const actor = actorOf(s);
    return {
      status,
      body: invitePage(site, {
        viewer,
        invite,
        now,
        links,
        events: invites.events(invite.id),
        choices,
        maxUses: isPrivileged(actor) ? undefined : Math.max(deps.policy.maxUses, invite.maxUses),
        action: `${b}/${scope === 'my' ? 'my' : 'admin'}/invites/${invite.id}`,
        decide: scope === 'admin',
        flash: flash ?? (done && DONE[done] ? { done: DONE[done] } : undefined),
      }),
    };
  };

  /** A change to one invite: done → back to its page with the outcome; refused → its page with why. */
  const change =
    (scope: 'my' | 'admin', act: (actor: Actor, invite: Invite, form: URLSearchParams) => string) =>
    (ctx: RequestContext, s: Session, viewer: Viewer) => {
      const invite = inviteFor(s, ctx.params.id, scope);
      if (!invite) return { status: 404, body: consoleProblemPage(site, viewer, 'No such invite', `There is no invite ${ctx.params.id} here.`) };
      try {
        const done = act(actorOf(s), invite, ctx.form);
        statsCache = undefined;
        return redirect(`${b}/${scope}/invites/${invite.id}?done=${done}`);
      } catch (err) {
        if (!isInviteError(err)) throw err;
        const shown = webError(err.code);
        return showInvite(ctx, s, viewer, scope, shown.status, { error: err.message });
      }
    };

  const revoke = (actor: Actor, invite: Invite) => (invites.revoke(actor, invite.id).changed ? 'revoked' : 'unchanged');
  const resend = (actor: Actor, invite: Invite) => (invites.resend(actor, invite.id), 'resent');
  const extend = (actor: Actor, invite: Invite, form: URLSearchParams) => {
    const expire = form.get('expire') ?? '';
    const usesText = (form.get('uses') ?? '').trim();
    const choice = expire === '' ? undefined : choices.find((c) => c.value === expire);
    if (expire !== '' && !choice) throw invalid(`Choose a lifetime on offer (${choices.map((c) => c.label).join(', ')})`);
    const uses = usesText === '' ? undefined : /^\d{1,9}$/.test(usesText) ? Number(usesText) : NaN;
    if (Number.isNaN(uses)) throw invalid('Uses must be a whole number');
    const change = { expiresIn: choice?.ms, maxUses: uses === invite.maxUses ? undefined : uses };
    if (change.expiresIn === undefined && change.maxUses === undefined) return 'unchanged';
    return invites.extend(actor, invite.id, change).changed ? 'extended' : 'unchanged';
  };

  web.get('/my/invites/:id', user((ctx, s, viewer) => showInvite(ctx, s, viewer, 'my')));
  web.post('/my/invites/:id/revoke', user(change('my', revoke)));
  web.post('/my/invites/:id/resend', user(change('my', resend)));
  web.post('/my/invites/:id/extend', user(change('my', extend)));

  // ---- admins ----

  const queue = (ctx: RequestContext, viewer: Viewer, status = 200, flash?: Flash): Reply => {
    const total = invites.count({ state: 'pending' });
    const p = page(ctx, total);
    // Membership requests come first, as in #pending: the oldest 50, on every page of invites.
    const requestTotal = membership?.count('pending') ?? 0;
    return {
      status,
      body: queuePage(site, {
        viewer,
        pending: invites.list({ state: 'pending', oldestFirst: true, limit: PAGE_SIZE, offset: p.offset }),
        total,
        requests: requestTotal > 0 ? membership!.list({ state: 'pending', limit: PAGE_SIZE }) : [],
        requestTotal,
        page: p.page,
        pages: p.pages,
        all: ctx.query.get('select') === 'all',
        flash,
      }),
    };
  };

  web.get('/admin', admin((ctx, _s, viewer) => queue(ctx, viewer)));

  web.post(
    '/admin/decide',
    admin((ctx, s, viewer) => {
      const ids = [...new Set(ctx.form.getAll('id'))];
      const decision = ctx.form.get('decision');
      const reason = cleanText(ctx.form.get('reason') ?? '').trim();
      if (decision !== 'approve' && decision !== 'reject') return queue(ctx, viewer, 400, { error: 'Choose to approve or to reject.' });
      if (ids.length === 0) return queue(ctx, viewer, 400, { error: 'Nothing was done: no invite or request was selected.' });
      if ([...reason].length > MAX_REASON) return queue(ctx, viewer, 400, { error: `A reason is at most ${MAX_REASON} characters long.` });
      const actor = actorOf(s);
      statsCache = undefined;
      // A box is an invite id, or `request/ID` for a membership request (as in #pending).
      const decide = (value: string): { changed: boolean } => {
        if (value.startsWith(REQUEST_PREFIX)) {
          const id = value.slice(REQUEST_PREFIX.length);
          if (!membership) throw new InviteError('invite-not-found', `No request ${id}`);
          return decision === 'approve' ? membership.approve(actor, id) : membership.reject(actor, id, reason === '' ? null : reason);
        }
        return decision === 'approve' ? invites.approve(actor, value) : invites.reject(actor, value, reason === '' ? null : reason);
      };
      const outcome = attempt(ids, decide);
      const changed = outcome.done.filter((d) => d.result.changed).length;
      const verb = decision === 'approve' ? 'approved' : 'rejected';
      const refused = outcome.refused.map((r) => `${r.item}: ${r.error.message}`);
      const already = outcome.done.length - changed;
      const requests = ids.filter((id) => id.startsWith(REQUEST_PREFIX)).length;
      const noun = requests === 0 ? ['invite', 'invites'] : requests === ids.length ? ['request', 'requests'] : ['invite or request', 'invites and requests'];
      const done = `${changed} of ${ids.length} ${ids.length === 1 ? noun[0] : noun[1]} ${verb}.${already ? ` ${already} had already been ${verb}.` : ''}`;
      return queue(ctx, viewer, outcome.done.length === 0 ? 409 : 200, { done, refused });
    }),
  );

  const allInvites = (ctx: RequestContext, viewer: Viewer, status = 200, flash?: Flash, accountForm?: { username: string; rosterSubscription: boolean }): Reply => {
    const state = ctx.query.get('state') ?? '';
    const inviterText = (ctx.query.get('inviter') ?? '').trim();
    const q = (ctx.query.get('q') ?? '').trim().slice(0, 200);
    const filter = {
      ...((SHOWN_STATES as readonly string[]).includes(state) ? { state: state as ShownState } : {}),
      ...(inviterText ? { inviter: normalizeBareJid(inviterText) ?? inviterText.toLowerCase() } : {}),
      ...(q ? { search: q } : {}),
    };
    const total = invites.count(filter);
    const p = page(ctx, total);
    return {
      status,
      body: allInvitesPage(site, {
        viewer,
        flash,
        accountForm,
        usernameRule: USERNAME_RULE,
        invites: invites.list({ ...filter, limit: PAGE_SIZE, offset: p.offset }),
        total,
        page: p.page,
        pages: p.pages,
        now: invites.now(),
        filter: { state: filter.state ?? '', inviter: inviterText, q },
      }),
    };
  };

  web.get('/admin/invites', admin((ctx, _s, viewer) => allInvites(ctx, viewer)));

  // "Create account invite" (the command urn:xmpp:invite#create-account): an optional reserved
  // username and roster-subscription; approval as for the command (`approval: all`).
  web.post(
    '/admin/invites/new',
    admin((ctx, s, viewer) => {
      const username = cleanText(ctx.form.get('username') ?? '').trim();
      const rosterSubscription = ctx.form.get('roster-subscription') === '1';
      try {
        const { invite } = invites.create(actorOf(s), {
          kind: username ? 'account-locked' : 'account',
          username: username || undefined,
          rosterSubscription,
          source: 'web',
        });
        statsCache = undefined;
        return redirect(`${b}/admin/invites/${invite.id}?done=created`);
      } catch (err) {
        if (!isInviteError(err)) throw err;
        const shown = webError(err.code);
        return allInvites(ctx, viewer, shown.status, { error: `No invite was created: ${err.message}` }, { username, rosterSubscription });
      }
    }),
  );

  web.get('/admin/invites/:id', admin((ctx, s, viewer) => showInvite(ctx, s, viewer, 'admin')));
  web.post('/admin/invites/:id/revoke', admin(change('admin', revoke)));
  web.post('/admin/invites/:id/resend', admin(change('admin', resend)));
  web.post('/admin/invites/:id/extend', admin(change('admin', extend)));
  web.post(
    '/admin/invites/:id/decide',
    admin(
      change('admin', (actor, invite, form) => {
        const decision = form.get('decision');
        const reason = cleanText(form.get('reason') ?? '').trim();
        if (decision === 'approve') return invites.approve(actor, invite.id).changed ? 'approved' : 'unchanged';
        if (decision !== 'reject') throw invalid('Choose to approve or to reject');
        if ([...reason].length > MAX_REASON) throw invalid(`A reason is at most ${MAX_REASON} characters long`);
        return invites.reject(actor, invite.id, reason === '' ? null : reason).changed ? 'rejected' : 'unchanged';
      }),
    ),
  );

  const tree = (ctx: RequestContext, viewer: Viewer, status = 200, flash?: Flash, actionForm?: { jid: string; reason: string }): Reply => {
    const root = cleanText(ctx.query.get('jid') ?? '').trim();
    try {
      return { status, body: treePage(site, { viewer, forest: deps.trust.tree(root === '' ? undefined : root), root, flash, actionForm }) };
    } catch (err) {
      if (!isInviteError(err)) throw err;
      return { status: webError(err.code).status, body: treePage(site, { viewer, forest: [], root, flash: { error: err.message }, actionForm }) };
    }
  };

  web.get(
    '/admin/tree',
    admin((ctx, _s, viewer) => {
      const done = ctx.query.get('done');
      return tree(ctx, viewer, 200, done && TREE_DONE[done] ? { done: TREE_DONE[done] } : undefined);
    }),
  );

  // Blocking, unblocking and revoking a subtree: Trust's rules, as `user block|unblock` and
  // `invite revoke --tree` (the revocations are recorded with the admin and via: web).
  web.post(
    '/admin/tree/act',
    admin((ctx, s, viewer) => {
      const jid = cleanText(ctx.form.get('jid') ?? '').trim();
      const reason = cleanText(ctx.form.get('reason') ?? '').trim();
      const action = ctx.form.get('action');
      const form = { jid, reason };
      const again = (status: number, error: string) => tree(ctx, viewer, status, { error }, form);
      if (action !== 'block' && action !== 'unblock' && action !== 'revoke-tree') return again(400, 'Choose to block, to unblock or to revoke the subtree.');
      if ([...reason].length > MAX_REASON) return again(400, `A reason is at most ${MAX_REASON} characters long.`);
      const actor = actorOf(s);
      try {
        let done: string;
        if (action === 'block') done = (deps.trust.block(actor, jid, reason), 'blocked');
        else if (action === 'unblock') done = deps.trust.unblock(actor, jid, reason || null) ? 'unblocked' : 'not-blocked';
        else {
          const revoked = deps.trust.revokeTree(actor, jid, reason || null);
          statsCache = undefined;
          done = revoked.length === 0 ? 'revoked-none' : 'revoked';
        }
        const root = normalizeBareJid(jid) ?? jid;
        return redirect(`${b}/admin/tree?${new URLSearchParams({ jid: root, done }).toString()}`);
      } catch (err) {
        if (!isInviteError(err)) throw err;
        return again(webError(err.code).status, err.message);
      }
    }),
  );

  web.get(
    '/admin/stats',
    admin((_ctx, _s, viewer) => {
      const { stats, activity, requests } = figures();
      return { status: 200, body: statsPage(site, { viewer, stats, activity, requests }) };
    }),
  );

  if (membership) {
    const noRequest = (viewer: Viewer, id: string): Reply => ({ status: 404, body: consoleProblemPage(site, viewer, 'No such request', `There is no membership request ${id}.`) });
    const showRequest = (ctx: RequestContext, viewer: Viewer, status = 200, flash?: Flash): Reply => {
      const request = membership.get(ctx.params.id);
      if (!request) return noRequest(viewer, ctx.params.id);
      const done = ctx.query.get('done');
      return {
        status,
        body: requestPage(site, {
          viewer,
          request,
          state: membership.shownState(request),
          events: membership.events(request.id),
          flash: flash ?? (done && DONE[`request-${done}`] ? { done: DONE[`request-${done}`] } : undefined),
        }),
      };
    };

    web.get(
      '/admin/requests',
      admin((ctx, _s, viewer) => {
        const asked = ctx.query.get('state') ?? '';
        const state = (REQUEST_STATES as readonly string[]).includes(asked) ? (asked as RequestState) : undefined;
        // Keyset pages, oldest first: `after` is the last shown request's creation time and id.
        const after = /^(\d{1,15})\.([a-z0-9]{1,20})$/.exec(ctx.query.get('after') ?? '');
        const list = membership.list({ state, limit: PAGE_SIZE + 1, after: after ? { createdAt: Number(after[1]), id: after[2] } : undefined });
        const shown = list.slice(0, PAGE_SIZE);
        const last = shown[shown.length - 1];
        const next = list.length > PAGE_SIZE ? new URLSearchParams({ ...(state ? { state } : {}), after: `${last.createdAt}.${last.id}` }).toString() : undefined;
        return {
          status: 200,
          body: requestsPage(site, { viewer, requests: shown, shownState: (r) => membership.shownState(r), total: membership.count(state), state: state ?? '', next }),
        };
      }),
    );

    web.get('/admin/requests/:id', admin((ctx, _s, viewer) => showRequest(ctx, viewer)));

    web.post(
      '/admin/requests/:id/decide',
      admin((ctx, s, viewer) => {
        const { id } = ctx.params;
        if (!membership.get(id)) return noRequest(viewer, id);
        const decision = ctx.form.get('decision');
        const reason = cleanText(ctx.form.get('reason') ?? '').trim();
        if (decision !== 'approve' && decision !== 'reject') return showRequest(ctx, viewer, 400, { error: 'Choose to approve or to reject.' });
        if ([...reason].length > MAX_REASON) return showRequest(ctx, viewer, 400, { error: `A reason is at most ${MAX_REASON} characters long.` });
        try {
          const actor = actorOf(s);
          const result = decision === 'approve' ? membership.approve(actor, id) : membership.reject(actor, id, reason === '' ? null : reason);
          statsCache = undefined;
          return redirect(`${b}/admin/requests/${id}?done=${result.changed ? (decision === 'approve' ? 'approved' : 'rejected') : 'unchanged'}`);
        } catch (err) {
          if (!isInviteError(err)) throw err;
          return showRequest(ctx, viewer, webError(err.code).status, { error: err.message });
        }
      }),
    );
  }

  if (deps.roomAnswers) invitationRoutes(deps.roomAnswers);

  /**
   * Answering room invitations: every open one addressed to the signed-in JID, from every inviter,
   * with accept, decline or later each and one note to those answered (the #respond command's rules,
   * through the same RoomAnswers). Only the invitations the page lists are taken.
   */
  function invitationRoutes(answers: RoomAnswers): void {
    const maxNote = deps.policy.maxMessage;
    const show = (s: Session, viewer: Viewer, status = 200, flash?: Flash, answered?: Parameters<typeof invitationsPage>[1]['answered']): Reply => ({
      status,
      body: invitationsPage(site, { viewer, open: answers.openFor(s.jid), maxNote, flash, answered }),
    });

    web.get('/my/invitations', user((_ctx, s, viewer) => show(s, viewer)));

    web.post(
      '/my/invitations',
      user(async (ctx, s, viewer) => {
        const note = cleanText(ctx.form.get('note') ?? '').trim();
        if ([...note].length > maxNote) return show(s, viewer, 400, { error: `Nothing was answered: the note has ${[...note].length} characters; at most ${maxNote} are allowed.` });
        const read = formAnswers(ctx.form, new Set(answers.openFor(s.jid).map(({ row }) => `${row.inviteId}/${row.room}`)));
        if (!read.ok) {
          // Someone else's invitation, one answered already, or none: refused, nothing recorded.
          const why =
            read.why === 'not-offered'
              ? `${read.key} is not an invitation waiting for your answer.`
              : read.why === 'bad-choice'
                ? `“${read.value}” is not an answer; choose accept, decline or later.`
                : 'choose an answer for at least one room.';
          return show(s, viewer, 400, { error: `Nothing was answered: ${why}` });
        }
        const chosen = read.answers;
        const answered = await answers.answer({ inviteeKey: s.jid, memberJid: s.jid, via: 'web' }, chosen, note === '' ? null : note);
        const bad = answered.some((a) => a.outcome.kind === 'failed' || a.outcome.kind === 'refused');
        return show(s, viewer, 200, bad ? { error: 'Not every answer went through: see below.' } : undefined, answered);
      }),
    );
  }
}

/** A form value the console refuses before the domain is asked, shown as the domain's own refusals are. */
function invalid(message: string): InviteError {
  return new InviteError('invalid-input', message);
}
