/**
 * The contract's routes: GET /i/{token}, POST /i/{token}/register, /decline, /opt-out, GET /healthz.
 * A thin adapter: parse the form, call the domain (Respond, the one redemption rule), render.
 * Nothing changes state on GET (mail scanners follow links).
 */
import { InviteError, isInviteError } from '../errors';
import type { InviteService } from '../domain/invites';
import { isPersonal, type Choice, type Respond } from '../domain/respond';
import { cleanText } from '../domain/text';
import { canCreateAccount, isContactKind, shownState, type Invite } from '../domain/types';
import { retryAfter, webError } from './errors';
import { declinedPage, gonePage, landingPage, notFoundPage, problemPage, roomAnswersPage, successPage, unsubscribePage, type FormState, type Site } from './pages';
import { formAnswers, type RoomAnswers } from '../domain/room-answers';
import { qrSvg } from './qr';
import type { Reply, RequestContext, WebServer } from './server';
import type { PasswordSetter, PasswordReset, ResetService } from '../domain/resets';
import { resetDonePage, resetGonePage, resetPage } from './reset-pages';
import { registerHealthRoutes, type Health } from './health';

export type { Health } from './health';

/** The longest note back to an inviter, as for messages carried in presence. */
export const MAX_REASON_LENGTH = 1000;

/** Password reset links share /i/{token} with invites (their tokens' MACs have another label). */
export interface ResetsPort {
  service: ResetService;
  /** undefined when the provisioner cannot set passwords */
  setter: PasswordSetter | undefined;
}

export interface LandingDeps {
  site: Site;
  invites: InviteService;
  respond: Respond;
  resets?: ResetsPort;
  /** answers to room invitations (absent: room invitations are off) */
  roomAnswers?: RoomAnswers;
  /** throws when the database cannot be read */
  health(): Health;
  clock?: () => number;
}

const CHOICES: readonly Choice[] = ['accept', 'decline', 'later'];

export function registerLandingRoutes(web: WebServer, deps: LandingDeps): void {
  const clock = deps.clock ?? Date.now;
  const { site, invites, respond } = deps;

  const notFound = (): Reply => ({ status: 404, body: notFoundPage(site) });

  const gone = (ctx: RequestContext, invite: Invite, token: string, message?: string): Reply => {
    // The opt-out stays offered on a personal invite's page after it ended (unless already done).
    const offer = isPersonal(invite) && !invites.isOptedOut(invite.inviteeKey!);
    return { status: 410, body: gonePage(site, { invite, token, now: clock(), csrf: offer ? ctx.csrf() : null, message }) };
  };

  async function landing(ctx: RequestContext, invite: Invite, token: string, status = 200, form?: FormState): Promise<Reply> {
    const { uri } = invites.links(invite);
    const canRegister = invite.state === 'open' && canCreateAccount(invite.kind);
    const openRooms = canRegister ? invites.roomsOf(invite.id).filter((r) => r.state === 'open') : [];
    // A room invitation's page lists every open room invitation of its invitee, from every inviter.
    const roomAnswers = invite.kind === 'room' && invite.state === 'open' && deps.roomAnswers ? deps.roomAnswers.openFor(invite.inviteeKey!) : undefined;
    return {
      status,
      body: landingPage(site, {
        invite,
        token,
        uri,
        qr: await qrSvg(uri, `QR code of the invitation from ${invite.inviter ?? site.name}`),
        csrf: ctx.csrf(),
        now: clock(),
        canRegister,
        declinable: isPersonal(invite),
        companions: canRegister ? respond.companions(invite) : [],
        rooms: openRooms,
        roomAnswers,
        form,
      }),
    };
  }

  /** The invite of a token and whether its page can still be shown (pending or open, unexpired). */
  function lookup(token: string): { invite: Invite; live: boolean } | undefined {
    const invite = invites.findByToken(token);
    if (!invite) return undefined;
    const state = shownState(invite, clock());
    return { invite, live: state === 'pending' || state === 'open' };
  }

  function failure(ctx: RequestContext, err: InviteError, invite: Invite, token: string): Promise<Reply> | Reply {
    const shown = webError(err.code);
    const wait = retryAfter(err, clock());
    const headers = wait !== undefined ? { 'Retry-After': String(wait) } : undefined;
    if (err.code === 'invite-not-found') return gone(ctx, invites.get(invite.id) ?? invite, token, err.message);
    if (err.code === 'invite-pending') return landing(ctx, invites.get(invite.id) ?? invite, token, shown.status);
    return { status: shown.status, headers, body: problemPage(site, shown.title, err.message, `${site.base}/i/${token}`) };
  }

  registerHealthRoutes(web, deps.health);

  /** A password reset link's page: the form while it can be used, else why not (410). */
  function resetReply(ctx: RequestContext, reset: PasswordReset, token: string, status = 200, error?: string): Reply {
    const shown = deps.resets!.service.shownState(reset);
    if (shown !== 'open') return { status: 410, body: resetGonePage(site, reset, shown) };
    return { status, body: resetPage(site, { reset, token, csrf: ctx.csrf(), error }) };
  }

  web.get('/i/:token', async (ctx) => {
    const found = lookup(ctx.params.token);
    const reset = found ? undefined : deps.resets?.service.byToken(ctx.params.token);
    if (reset) return resetReply(ctx, reset, ctx.params.token);
    if (!found) return notFound();
    if (!found.live) return gone(ctx, found.invite, ctx.params.token);
    return landing(ctx, found.invite, ctx.params.token);
  });

  web.post('/i/:token/register', async (ctx) => {
    const { token } = ctx.params;
    const found = lookup(token);
    if (!found) return notFound();
    if (!found.live) return gone(ctx, found.invite, token);
    const { invite } = found;
    const username = ctx.form.get('username') ?? '';
    const choices = new Map<string, Choice>();
    for (const [name, value] of ctx.form) {
      if (name.startsWith('choice-') && (CHOICES as readonly string[]).includes(value)) choices.set(name.slice('choice-'.length), value as Choice);
    }
    const reason = note(ctx.form.get('reason'));
    const ticked = new Set(ctx.form.getAll('room'));
    const form: FormState = { username: cleanText(username), choices, reason: cleanText(ctx.form.get('reason') ?? ''), rooms: ticked };
    // The boxes left unticked: rooms of this invite the new account does not join.
    const declineRooms = invites.roomsOf(invite.id).filter((r) => r.state === 'open' && !ticked.has(r.room)).map((r) => r.room);
    if (reason === undefined) {
      return landing(ctx, invite, token, 400, { ...form, error: `A note is at most ${MAX_REASON_LENGTH} characters long` });
    }
    try {
      const done = await respond.accept({ token, username, password: ctx.form.get('password') ?? '', ip: ctx.ip, choices, reason, declineRooms });
      const addLinks = new Map<string, string>();
      for (const a of done.accepted) {
        const add = invites.links(a.invite).addInviter;
        if (add && !a.contactsLinked && (isContactKind(a.invite.kind) || a.invite.rosterSubscription)) addLinks.set(a.invite.id, add);
      }
      return {
        status: 200,
        body: successPage(site, {
          jid: done.jid,
          accepted: done.accepted,
          addLinks,
          declined: done.declined,
          skipped: done.skipped.map((s) => ({ invite: invites.get(s.inviteId), reason: s.reason })),
        }),
      };
    } catch (err) {
      if (!isInviteError(err)) throw err;
      // A form error shows the form again, with the username as typed (never the password).
      if (webError(err.code).form) return landing(ctx, invites.get(invite.id) ?? invite, token, 400, { ...form, error: err.message });
      return failure(ctx, err, invite, token);
    }
  });

  const decline = (neverAgain: boolean) => async (ctx: RequestContext) => {
    const { token } = ctx.params;
    const found = lookup(token);
    if (!found) return notFound();
    const { invite } = found;
    // After the end of an invite only the opt-out is left to do.
    if (!found.live && !neverAgain) return gone(ctx, invite, token);
    const reason = note(ctx.form.get('reason'));
    if (reason === undefined) {
      return { status: 400, body: problemPage(site, 'Please check the form', `A note is at most ${MAX_REASON_LENGTH} characters long.`, `${site.base}/i/${token}`) };
    }
    try {
      const declined = respond.decline({ token, reason, neverAgain, also: ctx.form.getAll('also') });
      return { status: 200, body: declinedPage(site, declined.filter((d) => d.state === 'declined'), neverAgain) };
    } catch (err) {
      if (!isInviteError(err)) throw err;
      return failure(ctx, err, invite, token);
    }
  };
  web.post('/i/:token/reset', async (ctx) => {
    const { token } = ctx.params;
    const resets = deps.resets;
    const reset = resets?.service.byToken(token);
    if (!resets || !reset) return notFound();
    if (resets.service.shownState(reset) !== 'open') return resetReply(ctx, reset, token);
    const password = ctx.form.get('password') ?? '';
    if (password !== (ctx.form.get('password-again') ?? '')) return resetReply(ctx, reset, token, 400, 'The two passwords differ');
    if (!resets.setter) return { status: 503, body: problemPage(site, 'Not available', 'This server cannot set passwords from here.') };
    try {
      const done = await resets.service.use(token, password, resets.setter, ctx.ip);
      return { status: 200, body: resetDonePage(site, done) };
    } catch (err) {
      if (!isInviteError(err)) throw err;
      if (err.code === 'invalid-input') return resetReply(ctx, reset, token, 400, err.message);
      const now = resets.service.get(reset.id) ?? reset;
      if (err.code === 'invite-not-found') return { status: 410, body: resetGonePage(site, now, resets.service.shownState(now)) };
      const shown = webError(err.code);
      const wait = retryAfter(err, clock());
      return { status: shown.status, headers: wait !== undefined ? { 'Retry-After': String(wait) } : undefined, body: problemPage(site, shown.title, err.message, `${site.base}/i/${token}`) };
    }
  });

  // A room invitation's answers: one choice per open room invitation of the invitee (from every
  // inviter), one note. Only the invitations its page lists (the invitee's own, open) are taken.
  web.post('/i/:token/respond', async (ctx) => {
    const { token } = ctx.params;
    const found = lookup(token);
    if (!found) return notFound();
    if (!found.live) return gone(ctx, found.invite, token);
    const { invite } = found;
    if (invite.kind !== 'room' || !deps.roomAnswers || invite.state !== 'open') {
      return { status: 400, body: problemPage(site, 'Nothing to answer', 'This invitation names no room to answer.', `${site.base}/i/${token}`) };
    }
    const reason = note(ctx.form.get('reason'));
    if (reason === undefined) {
      return { status: 400, body: problemPage(site, 'Please check the form', `A note is at most ${MAX_REASON_LENGTH} characters long.`, `${site.base}/i/${token}`) };
    }
    const offered = new Set(deps.roomAnswers.openFor(invite.inviteeKey!).map(({ row }) => `${row.inviteId}/${row.room}`));
    const read = formAnswers(ctx.form, offered);
    if (!read.ok) {
      const why = read.why === 'none' ? 'Choose an answer for at least one room.' : 'An answer names an invitation this page did not list, or is not one of accept, decline and later.';
      return { status: 400, body: problemPage(site, 'Please check the form', why, `${site.base}/i/${token}`) };
    }
    const answers = read.answers;
    const answered = await deps.roomAnswers.answer({ inviteeKey: invite.inviteeKey!, memberJid: invite.inviteeJid! }, answers, reason);
    return { status: 200, body: roomAnswersPage(site, answered, true) };
  });

  web.post('/i/:token/decline', decline(false));
  web.post('/i/:token/opt-out', decline(true));

  // RFC 8058 one-click unsubscribe (the List-Unsubscribe header of invitations and reminders).
  const unsubscribeNotFound = (): Reply => ({ status: 404, body: problemPage(site, 'Link not valid', 'This unsubscribe link is not valid. Check that you opened the whole link.') });
  web.get('/u/:code', (ctx) => {
    const id = invites.tokens.unsubscribeIdOf(ctx.params.code);
    if (id === undefined || !invites.get(id)?.inviteeKey) return unsubscribeNotFound();
    return { status: 200, body: unsubscribePage(site, ctx.params.code) };
  });
  web.postOneClick('/u/:code', (ctx) => {
    const id = invites.tokens.unsubscribeIdOf(ctx.params.code);
    if (id === undefined || !invites.get(id)?.inviteeKey) return unsubscribeNotFound();
    const { invite, declined } = invites.unsubscribe(id);
    return { status: 200, body: declinedPage(site, declined ? [invite] : [], true) };
  });
}

/** The optional note: cleaned (src/domain/text.ts) and trimmed, null when empty, undefined when too long. */
function note(raw: string | null): string | null | undefined {
  const text = cleanText(raw ?? '').trim();
  if ([...text].length > MAX_REASON_LENGTH) return undefined;
  return text === '' ? null : text;
}
