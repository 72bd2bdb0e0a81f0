/**
 * Limits, so that nobody is bombarded with invitations. Every count comes from the never-deleted
 * tables (invites, events, claims), so restarts and revocations cannot reset them, and every check
 * runs inside the write transaction of what it guards, so two requests racing for the last slot
 * are serialised and exactly one passes.
 *
 * Who is exempt (decided here, documented in the README):
 * - the operator at the CLI: from every invite limit;
 * - admins: from the per-user limits (`per_user_open`, `per_user_per_day`,
 *   `invite_requests_per_minute`), not from the site's daily cap, the per-recipient cap or the
 *   waits, which protect the invitee and the site;
 * - registration limits apply to every registration, whatever the invite.
 */
import { InviteError } from '../errors';
import type { Actor, Invite } from './types';

export interface LimitSettings {
  perUserOpen?: number;
  perUserPerDay?: number;
  perSitePerDay?: number;
  perRecipientPerDay?: number;
  registrationsPerHour?: number;
  resendAfterNoAnswer?: number;
  reinviteAfterDecline?: number;
  /** new invite requests carried in presence, per sender, in the last minute */
  inviteRequestsPerMinute?: number;
  /** membership requests (`/request`) per client address in the last hour (src/domain/membership.ts) */
  requestsPerHour?: number;
  /** membership requests in the last 24 h, whole site */
  requestsPerDay?: number;
  /** how long a rejected address waits before it may request membership again */
  requestAfterReject?: number;
  /** accounts made through the service cannot invite before they are this old (ms) */
  minAccountAge?: number;
  /** pending or open invites in one invitation subtree (see treeRootOf) */
  perTreeOpen?: number;
  /** invites per admin per day (admins are exempt from the per-user limits, not from this) */
  perAdminPerDay?: number;
  /** room invitations to one room in the last 24 h, all inviters */
  perRoomPerDay?: number;
}

export interface Window {
  count: number;
  /** when the oldest counted item leaves the window (or the next open invite expires) */
  frees: number | null;
}

export interface LimitStore {
  /** pending or open, unexpired invites of the inviter; `frees` = the earliest expiry */
  openOf(inviter: string, now: number): Window;
  /** invites created by the inviter since `since`; `frees` = oldest created_at */
  createdBy(inviter: string, since: number): Window;
  /** invites created by users (not the operator) since `since` */
  createdByUsers(since: number): Window;
  /** invites to the invitee (e-mail key or JID) from anyone but the operator since `since` */
  createdFor(inviteeKey: string, since: number): Window;
  /** the most recent invite of the pair inviter → invitee */
  lastOfPair(inviter: string, inviteeKey: string): Invite | undefined;
  /** when the invite was last sent: its last `resent` event, else its approval, else its creation */
  lastSentAt(invite: Invite): number;
  /** invite requests in presence processed for `sender` since `since`; `frees` = the oldest */
  requestsBy(sender: string, since: number): Window;
  /** claims (held or spent) since `since`, of one invite, of one door, or from one IP at those doors */
  registrations(filter: { inviteId?: string; door?: string; ip?: string; doors?: string[] }, since: number): Window;
  /** the account made through the service for `jid`: when it joined and who invited it */
  accountOf(jid: string): { joinedAt: number; inviter: string | null } | undefined;
  /** pending or open, unexpired invites made by `root` and every account below it */
  openInTree(root: string, now: number): Window;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;

function at(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function refuse(name: string, what: string, frees: number | null): never {
  const when = frees === null ? '' : `; it frees at ${at(frees)}`;
  throw new InviteError('limit-reached', `Limit ${name} reached: ${what}${when}`, { limit: name, ...(frees === null ? {} : { frees: at(frees) }) });
}

function duration(ms: number): string {
  const units: [number, string][] = [
    [7 * DAY, 'week'],
    [DAY, 'day'],
    [HOUR, 'hour'],
    [60_000, 'minute'],
    [1_000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms % size === 0 && ms >= size) return `${ms / size} ${name}${ms / size === 1 ? '' : 's'}`;
  }
  return `${ms} ms`;
}

export interface LimitUsage {
  inviter: string;
  perUserOpen?: { used: number; limit: number };
  perUserPerDay?: { used: number; limit: number };
}

export class Limits {
  constructor(
    private readonly store: LimitStore,
    private readonly settings: LimitSettings,
    /** bare JIDs of the admins: an invitation subtree starts below them (treeRootOf) */
    private readonly admins: readonly string[] = [],
  ) {}

  /**
   * The subtree whose open invites `per_tree_open` caps for an invite by `jid`: the one rooted at
   * the highest account, up the chain of inviters, that was made through the service. That is the
   * account one invitation let in, and everything it grew (so one bad invitation cannot become a
   * flood); caps of smaller subtrees inside it would never bind first. The chain stops at an admin
   * (an admin's invitation is the site's own) and at an account the service did not make: such a
   * `jid` is in no subtree, and the per-user limits alone apply to it.
   */
  treeRootOf(jid: string): string | null {
    let root: string | null = null;
    const seen = new Set<string>();
    for (let cur: string | null = jid; cur !== null && !seen.has(cur) && !this.admins.includes(cur); ) {
      seen.add(cur);
      const account = this.store.accountOf(cur);
      if (!account) break;
      root = cur;
      cur = account.inviter;
    }
    return root;
  }

  get configured(): boolean {
    return Object.values(this.settings).some((v) => v !== undefined);
  }

  /** Checks a new invite by `actor` for `inviter` → `inviteeKey`; throws limit-reached. */
  checkInvite(actor: Actor, inviter: string | null, inviteeKey: string | null, now: number): void {
    if (actor.kind === 'operator') return;
    const s = this.settings;
    const exemptPerUser = actor.isAdmin;
    if (actor.isAdmin && inviter && s.perAdminPerDay !== undefined) {
      // GroupServer's per-admin cap: an admin's invites skip approval, so a site may still bound them.
      const w = this.store.createdBy(inviter, now - DAY);
      if (w.count >= s.perAdminPerDay) refuse('per_admin_per_day', `at most ${s.perAdminPerDay} invites a day per admin`, w.frees === null ? null : w.frees + DAY);
    }
    if (!exemptPerUser && inviter) {
      if (s.minAccountAge !== undefined) {
        // Zulip's rule: a newcomer is vouched for, not yet a voucher. Accounts made elsewhere are exempt.
        const account = this.store.accountOf(inviter);
        if (account && now < account.joinedAt + s.minAccountAge) {
          refuse('min_account_age', `your account joined at ${at(account.joinedAt)}; accounts made here may invite ${duration(s.minAccountAge)} after joining`, account.joinedAt + s.minAccountAge);
        }
      }
      if (s.perTreeOpen !== undefined) {
        const root = this.treeRootOf(inviter);
        if (root !== null) {
          const w = this.store.openInTree(root, now);
          if (w.count >= s.perTreeOpen) {
            refuse('per_tree_open', `${root} and the accounts invited below it have ${w.count} open invites (at most ${s.perTreeOpen})`, w.frees);
          }
        }
      }
      if (s.perUserOpen !== undefined) {
        const w = this.store.openOf(inviter, now);
        if (w.count >= s.perUserOpen) refuse('per_user_open', `you have ${w.count} open invites (at most ${s.perUserOpen})`, w.frees);
      }
      if (s.perUserPerDay !== undefined) {
        const w = this.store.createdBy(inviter, now - DAY);
        if (w.count >= s.perUserPerDay) refuse('per_user_per_day', `at most ${s.perUserPerDay} invites a day`, w.frees === null ? null : w.frees + DAY);
      }
    }
    if (s.perSitePerDay !== undefined) {
      const w = this.store.createdByUsers(now - DAY);
      if (w.count >= s.perSitePerDay) refuse('per_site_per_day', `this site sends at most ${s.perSitePerDay} invites a day`, w.frees === null ? null : w.frees + DAY);
    }
    if (inviteeKey === null) return;
    if (s.perRecipientPerDay !== undefined) {
      const w = this.store.createdFor(inviteeKey, now - DAY);
      if (w.count >= s.perRecipientPerDay) {
        refuse('per_recipient_per_day', `${inviteeKey} was invited ${w.count} times today (at most ${s.perRecipientPerDay})`, w.frees === null ? null : w.frees + DAY);
      }
    }
    if (!inviter) return;
    const last = this.store.lastOfPair(inviter, inviteeKey);
    if (!last) return;
    if (last.state === 'declined' && s.reinviteAfterDecline !== undefined && last.endedAt !== null) {
      const frees = last.endedAt + s.reinviteAfterDecline;
      if (now < frees) refuse('reinvite_after_decline', `${inviteeKey} declined your invite; wait ${duration(s.reinviteAfterDecline)} before inviting again`, frees);
    }
    const unanswered = (last.state === 'pending' || last.state === 'open') && last.uses === 0 && now >= last.expiresAt;
    if (unanswered && s.resendAfterNoAnswer !== undefined) {
      const frees = this.store.lastSentAt(last) + s.resendAfterNoAnswer;
      if (now < frees) refuse('resend_after_no_answer', `${inviteeKey} has not answered; wait ${duration(s.resendAfterNoAnswer)} before inviting again`, frees);
    }
  }

  /**
   * Checks a new invite request carried in presence (before any of its invites is made): a script
   * resending presence with new requests is stopped here at once, whatever its invitees.
   */
  checkInviteRequest(actor: Actor, sender: string, now: number): void {
    const limit = this.settings.inviteRequestsPerMinute;
    if (actor.kind === 'operator' || actor.isAdmin || limit === undefined) return;
    const w = this.store.requestsBy(sender, now - MINUTE);
    if (w.count >= limit) refuse('invite_requests_per_minute', `at most ${limit} invite requests a minute`, w.frees === null ? null : w.frees + MINUTE);
  }

  /** Checks a resend (a new token delivered again) of an invite that got no answer. */
  checkResend(actor: Actor, invite: Invite, now: number): void {
    if (actor.kind === 'operator' || this.settings.resendAfterNoAnswer === undefined || !invite.inviteeKey) return;
    const frees = this.store.lastSentAt(invite) + this.settings.resendAfterNoAnswer;
    if (now < frees) refuse('resend_after_no_answer', `wait ${duration(this.settings.resendAfterNoAnswer)} after sending before sending again`, frees);
  }

  /**
   * Checks a registration: per invite (token) and in total at the component; per client IP on the
   * web and through the bridge.
   */
  checkRegistration(req: { inviteId: string | null; door: string; ip?: string | null }, now: number): void {
    const limit = this.settings.registrationsPerHour;
    if (limit === undefined) return;
    const since = now - HOUR;
    const check = (w: Window, what: string) => {
      if (w.count >= limit) refuse('registrations_per_hour', `${what} (at most ${limit} an hour)`, w.frees === null ? null : w.frees + HOUR);
    };
    if (req.inviteId) check(this.store.registrations({ inviteId: req.inviteId }, since), 'too many accounts were made with this invite in the last hour');
    if (req.door === 'component') check(this.store.registrations({ door: 'component' }, since), 'too many accounts were made here in the last hour');
    else if (req.ip) check(this.store.registrations({ ip: req.ip, doors: ['web', 'bridge'] }, since), 'too many accounts were made from your address in the last hour');
  }

  /** How close an inviter is to each per-user limit (for #stats and `stats`). */
  usage(inviter: string, now: number): LimitUsage {
    const u: LimitUsage = { inviter };
    if (this.settings.perUserOpen !== undefined) u.perUserOpen = { used: this.store.openOf(inviter, now).count, limit: this.settings.perUserOpen };
    if (this.settings.perUserPerDay !== undefined) u.perUserPerDay = { used: this.store.createdBy(inviter, now - DAY).count, limit: this.settings.perUserPerDay };
    return u;
  }
}
