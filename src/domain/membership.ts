/**
 * Membership requests and e-mail verification (contract, "Membership requests and e-mail
 * verification (site modes)"): a person asks to join at /request with an e-mail address and a
 * reason; a link derived from token_key proves the address; then an admin decides (`approval`) or
 * an account invite is made at once (`open`). An approval makes a one-use `account` invite for the
 * verified address, e-mailed to it; a rejection is e-mailed with its reason.
 *
 * Not to be confused with invite requests carried in presence (requests.ts): those are users
 * inviting others; these are strangers asking for themselves.
 *
 * Rules kept here, once:
 * - one live request (unverified or pending) per address: the store's unique index is the guard;
 * - answers never reveal whether an address is known: `request` returns nothing, whatever happened
 *   (new, already pending, a member's, refused for now), and the web shows one page for all;
 * - a rejected address asking again before `limits.request_after_reject` gets that same answer and
 *   an e-mail (at most one a day) saying when it may ask again;
 * - an opt-out ("never invite me again") does not stop an address from asking itself;
 * - the verification code is never stored and works for 24 hours from the request; asking again
 *   while unverified sends the e-mail again, at most once an hour.
 */
import { InviteError } from '../errors';
import type { InviteService } from './invites';
import { emailKey } from './jid';
import { parseEmailAddress } from './email-address';
import type { Clock } from './ports';
import { NO_NOTICES, type NoticeQueue } from './notices';
import { ID_ALPHABET, ID_LENGTH, randomIdChars, TokenCodec } from './tokens';
import { actorName, isPrivileged, OPERATOR, type Actor, type Invite } from './types';
import { cleanOptional, cleanText } from './text';
import { requestHookData, type Webhooks } from './webhooks';

export const REQUEST_STATES = ['unverified', 'pending', 'approved', 'rejected', 'expired'] as const;
export type RequestState = (typeof REQUEST_STATES)[number];

export type RequestEventType = 'requested' | 'verified' | 'approved' | 'rejected' | 'expired' | 'asked-again' | 'told-to-wait' | 'verification-resent';

export interface MembershipRequest {
  id: string;
  email: string;
  emailKey: string;
  reason: string | null;
  state: RequestState;
  ip: string | null;
  createdAt: number;
  verifiedAt: number | null;
  decidedAt: number | null;
  decidedBy: string | null;
  decisionReason: string | null;
  inviteId: string | null;
}

export interface RequestEvent {
  id: number;
  requestId: string;
  at: number;
  type: RequestEventType;
  actor: string;
  reason: string | null;
  data: Record<string, unknown> | null;
}

export type RequestPatch = Partial<Pick<MembershipRequest, 'state' | 'verifiedAt' | 'decidedAt' | 'decidedBy' | 'decisionReason' | 'inviteId'>>;

export interface RequestStats {
  /** per state; unverified requests past their 24 hours count as expired */
  states: Record<RequestState, number>;
  /** requested → verified → approved → joined (an account was made with the approval's invite) */
  funnel: { requested: number; verified: number; approved: number; joined: number };
}

/** A count in a window, and when its oldest item was made. */
export interface RequestWindow {
  count: number;
  oldest: number | null;
}

export interface MembershipStore {
  transaction<T>(fn: () => T): T;
  /** false when the id is taken or the address already has a live request */
  insert(request: MembershipRequest): boolean;
  get(id: string): MembershipRequest | undefined;
  /** the unverified or pending request of the address */
  findLive(emailKey: string): MembershipRequest | undefined;
  /** the newest request of the address */
  latest(emailKey: string): MembershipRequest | undefined;
  /** applies the patch when the request is in one of `from`; leaving unverified/pending frees the address */
  update(id: string, from: readonly RequestState[], patch: RequestPatch): boolean;
  addEvent(event: Omit<RequestEvent, 'id'>): void;
  events(id: string): RequestEvent[];
  /** when the request last had an event of this type */
  lastEventAt(id: string, type: RequestEventType): number | undefined;
  /** oldest first; `after` for keyset paging */
  list(filter: { state?: RequestState; limit?: number; after?: { createdAt: number; id: string } }): MembershipRequest[];
  count(state?: RequestState): number;
  /** requests from one client address since `since` */
  fromAddress(ip: string, since: number): RequestWindow;
  /** requests made since `since`, whole site */
  since(since: number): RequestWindow;
  /** unverified requests made before `before` (their code no longer works) */
  staleUnverified(before: number, limit: number): MembershipRequest[];
  stats(staleBefore: number): RequestStats;
}

export type RequestsMode = 'off' | 'approval' | 'open';

export interface MembershipPolicy {
  mode: RequestsMode;
  reason: 'required' | 'optional' | 'off';
  /** lower-case domains; empty = any */
  allowDomains: readonly string[];
  blockDomains: readonly string[];
  perHour?: number;
  perDay?: number;
  afterReject?: number;
  /** base of links, without a trailing slash */
  publicUrl: string;
  admins: readonly string[];
}

/** The verification link works this long after the request. */
export const VERIFY_LIFETIME_MS = 24 * 3_600_000;
/** A reason is at most this long, as any note. */
export const MAX_REQUEST_REASON = 1000;
/** A rejected address that asks again too early is told when it may at most this often. */
const WAIT_NOTICE_EVERY_MS = 24 * 3_600_000;
/** An unverified address asking again gets the verification e-mail again at most this often. */
const VERIFY_RESEND_EVERY_MS = 3_600_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface NewRequest {
  email: string;
  reason?: string | null;
  ip?: string | null;
}

export interface Verified {
  request: MembershipRequest;
  /** open mode: the account invite made for the address */
  invite?: Invite;
}

export interface MembershipDeps {
  store: MembershipStore;
  invites: InviteService;
  policy: MembershipPolicy;
  tokenKey: string;
  clock?: Clock;
  notices?: NoticeQueue;
  /** `request.verified` is told to them, inside the verify transaction */
  webhooks?: Webhooks;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Whether `domain` is `listed` or a subdomain of it. */
function within(domain: string, listed: string): boolean {
  return domain === listed || domain.endsWith(`.${listed}`);
}

export class MembershipService {
  readonly #store: MembershipStore;
  readonly #invites: InviteService;
  readonly #policy: MembershipPolicy;
  readonly #codes: TokenCodec;
  readonly #clock: Clock;
  readonly #notices: NoticeQueue;
  readonly #webhooks: Webhooks | undefined;

  constructor(deps: MembershipDeps) {
    this.#store = deps.store;
    this.#invites = deps.invites;
    this.#policy = deps.policy;
    this.#codes = new TokenCodec(deps.tokenKey);
    this.#clock = deps.clock ?? Date.now;
    this.#notices = deps.notices ?? NO_NOTICES;
    this.#webhooks = deps.webhooks;
  }

  get mode(): RequestsMode {
    return this.#policy.mode;
  }

  get reasonField(): MembershipPolicy['reason'] {
    return this.#policy.reason;
  }

  /**
   * Checks a request's fields as a form would: the address, its domain, the reason. Throws
   * `invalid-input` with the sentence to show beside the form. Returns the clean values.
   */
  checkForm(req: NewRequest): { email: string; key: string; reason: string | null } {
    const email = parseEmailAddress(req.email ?? '');
    if (!email) throw new InviteError('invalid-input', 'Please give one e-mail address, such as name@example.org', { field: 'email' });
    const key = emailKey(email);
    const domain = key.slice(key.lastIndexOf('@') + 1);
    const { allowDomains, blockDomains } = this.#policy;
    // Policy: a domain rule is about the domain, not the person, so saying it reveals nothing.
    if (blockDomains.some((d) => within(domain, d)) || (allowDomains.length > 0 && !allowDomains.some((d) => within(domain, d)))) {
      throw new InviteError('invalid-input', `Requests from addresses at ${domain} are not accepted here`, { field: 'email' });
    }
    let reason: string | null = null;
    if (this.#policy.reason !== 'off') {
      reason = cleanText(req.reason ?? '').trim() || null;
      if (reason !== null && [...reason].length > MAX_REQUEST_REASON) {
        throw new InviteError('invalid-input', `The reason is at most ${MAX_REQUEST_REASON} characters long`, { field: 'reason' });
      }
      if (reason === null && this.#policy.reason === 'required') throw new InviteError('invalid-input', 'Please say why you would like to join', { field: 'reason' });
    }
    return { email, key, reason };
  }

  /**
   * A request from the web door. Returns nothing whatever became of it, so that no answer tells a
   * new address from a known one; form errors and limits throw (they are about the request, not
   * the address).
   */
  request(req: NewRequest): void {
    if (this.#policy.mode === 'off') throw new InviteError('forbidden', 'Membership requests are not accepted here');
    const { email, key, reason } = this.checkForm(req);
    const ip = req.ip ?? null;
    this.#store.transaction(() => {
      const now = this.#clock();
      this.#checkLimits(ip, now);
      let live = this.#store.findLive(key);
      if (live && live.state === 'unverified' && now - live.createdAt >= VERIFY_LIFETIME_MS) {
        this.#expire(live, now);
        live = undefined;
      }
      if (live) {
        this.#event(live.id, 'asked-again', 'web', null, null);
        // Whoever lost the e-mail may have it again, but not so often that the door floods an inbox.
        if (live.state === 'unverified') {
          const last = Math.max(live.createdAt, this.#store.lastEventAt(live.id, 'verification-resent') ?? 0);
          if (now - last >= VERIFY_RESEND_EVERY_MS) {
            this.#event(live.id, 'verification-resent', 'web', null, null);
            this.#notices.enqueue({ channel: 'email', kind: 'request-verify', recipient: live.email, inviteIds: [], params: { request: live.id } });
          }
        }
        return;
      }
      const last = this.#store.latest(key);
      if (last && this.#waitsAfterRejection(last, now)) return;
      if (last && last.state === 'approved' && this.#stillServed(last, now)) {
        this.#event(last.id, 'asked-again', 'web', null, null);
        return;
      }
      const base: Omit<MembershipRequest, 'id'> = {
        email,
        emailKey: key,
        reason,
        state: 'unverified',
        ip,
        createdAt: now,
        verifiedAt: null,
        decidedAt: null,
        decidedBy: null,
        decisionReason: null,
        inviteId: null,
      };
      let made: MembershipRequest | undefined;
      for (let tries = 0; tries < 5 && !made; tries++) {
        const candidate = { ...base, id: newRequestId() };
        if (this.#store.insert(candidate)) made = candidate;
        // The address's live request won a race: the same answer as above.
        else if (this.#store.findLive(key)) return;
      }
      if (!made) throw new InviteError('internal', 'Could not record the request');
      this.#event(made.id, 'requested', 'web', null, ip ? { ip } : null);
      this.#notices.enqueue({ channel: 'email', kind: 'request-verify', recipient: email, inviteIds: [], params: { request: made.id } });
    });
  }

  /** The verification link of a request (rendered when the e-mail is sent; never stored). */
  verifyUrl(request: Pick<MembershipRequest, 'id'>): string {
    return `${this.#policy.publicUrl}/request/v/${this.#codes.requestCode(request.id)}`;
  }

  /** When the verification link of a request stops working. */
  verifyUntil(request: Pick<MembershipRequest, 'createdAt'>): number {
    return request.createdAt + VERIFY_LIFETIME_MS;
  }

  /** The request a verification code belongs to, while the code works (24 h); else undefined. */
  byCode(code: string): MembershipRequest | undefined {
    const id = this.#codes.idOf(code);
    if (id === undefined) return undefined;
    const request = this.#store.get(id);
    if (!request || !this.#codes.verifyRequestCode(code, id)) return undefined;
    if (this.#clock() >= this.verifyUntil(request)) return undefined;
    return request;
  }

  /**
   * The address is proven: `approval` → pending, and the admins are told; `open` → approved, with
   * an account invite for the address. Verifying again changes nothing and answers the same.
   */
  verify(code: string): Verified {
    return this.#store.transaction(() => {
      const request = this.byCode(code);
      if (!request) throw new InviteError('invite-not-found', 'This link is not valid');
      if (request.state !== 'unverified') {
        const invite = request.inviteId ? this.#invites.get(request.inviteId) : undefined;
        return { request, ...(invite ? { invite } : {}) };
      }
      const now = this.#clock();
      if (this.#policy.mode === 'open') {
        const patch = { state: 'pending' as const, verifiedAt: now };
        if (!this.#store.update(request.id, ['unverified'], patch)) throw new InviteError('wrong-state', 'This request changed meanwhile');
        this.#event(request.id, 'verified', 'web', null, null);
        // Open sign-up: the system approves every verified address.
        const approved = this.#approve({ ...request, ...patch }, 'system', OPERATOR);
        this.#hookVerified(approved);
        return approved;
      }
      const patch = { state: 'pending' as const, verifiedAt: now };
      if (!this.#store.update(request.id, ['unverified'], patch)) throw new InviteError('wrong-state', 'This request changed meanwhile');
      this.#event(request.id, 'verified', 'web', null, null);
      for (const admin of this.#policy.admins) {
        this.#notices.enqueue({ channel: 'xmpp', kind: 'request', recipient: admin, inviteIds: [], params: { requests: request.id } });
      }
      const verified = { request: { ...request, ...patch } };
      this.#hookVerified(verified);
      return verified;
    });
  }

  /** An admin (or the operator) approves a pending request; approving an approved one changes nothing. */
  approve(actor: Actor, id: string): { request: MembershipRequest; invite?: Invite; changed: boolean } {
    this.#requirePrivileged(actor);
    return this.#store.transaction(() => {
      const request = this.#mustGet(id);
      if (request.state === 'approved') {
        const invite = request.inviteId ? this.#invites.get(request.inviteId) : undefined;
        return { request, ...(invite ? { invite } : {}), changed: false };
      }
      if (request.state !== 'pending') throw new InviteError('wrong-state', `Request ${id} is ${request.state} and cannot be approved`);
      return { ...this.#approve(request, actorName(actor), actor), changed: true };
    });
  }

  /** An admin (or the operator) rejects a pending request; the address is told, with the reason. */
  reject(actor: Actor, id: string, reason: string | null): { request: MembershipRequest; changed: boolean } {
    this.#requirePrivileged(actor);
    reason = cleanOptional(reason)?.trim() || null;
    return this.#store.transaction(() => {
      const request = this.#mustGet(id);
      if (request.state === 'rejected') return { request, changed: false };
      if (request.state !== 'pending') throw new InviteError('wrong-state', `Request ${id} is ${request.state} and cannot be rejected`);
      const now = this.#clock();
      const patch = { state: 'rejected' as const, decidedAt: now, decidedBy: actorName(actor), decisionReason: reason };
      if (!this.#store.update(id, ['pending'], patch)) throw new InviteError('wrong-state', `Request ${id} changed meanwhile`);
      this.#event(id, 'rejected', actorName(actor), reason, actor.kind === 'user' && actor.via ? viaOf(actor) : null);
      this.#notices.enqueue({ channel: 'email', kind: 'request-rejected', recipient: request.email, inviteIds: [], params: { request: id, reason } });
      return { request: { ...request, ...patch }, changed: true };
    });
  }

  get(id: string): MembershipRequest | undefined {
    return this.#store.get(id);
  }

  /** The state as people see it: an unverified request past its 24 hours is expired. */
  shownState(request: MembershipRequest): RequestState {
    return request.state === 'unverified' && this.#clock() >= this.verifyUntil(request) ? 'expired' : request.state;
  }

  list(filter: { state?: RequestState; limit?: number; after?: { createdAt: number; id: string } } = {}): MembershipRequest[] {
    return this.#store.list(filter);
  }

  count(state?: RequestState): number {
    return this.#store.count(state);
  }

  events(id: string): RequestEvent[] {
    return this.#store.events(id);
  }

  stats(): RequestStats {
    return this.#store.stats(this.#clock() - VERIFY_LIFETIME_MS);
  }

  /** Records the end of every unverified request whose link no longer works (the periodic job). */
  expireStale(limit = 500): number {
    return this.#store.transaction(() => {
      const now = this.#clock();
      const stale = this.#store.staleUnverified(now - VERIFY_LIFETIME_MS, limit);
      for (const r of stale) this.#expire(r, now);
      return stale.length;
    });
  }

  #approve(request: MembershipRequest, decidedBy: string, actor: Actor): Verified {
    const now = this.#clock();
    // The invite is the site's (no inviter): made as by the operator, approved by whoever decided.
    const { invite } = this.#invites.create(OPERATOR, {
      kind: 'account',
      source: 'request',
      email: request.email,
      maxUses: 1,
      approvedBy: decidedBy,
      selfRequested: true,
    });
    const patch = { state: 'approved' as const, decidedAt: now, decidedBy, inviteId: invite.id };
    if (!this.#store.update(request.id, ['pending'], patch)) throw new InviteError('wrong-state', `Request ${request.id} changed meanwhile`);
    this.#event(request.id, 'approved', actor.kind === 'user' ? actor.jid : decidedBy, null, { invite: invite.id, ...viaOf(actor) });
    return { request: { ...request, ...patch }, invite };
  }

  /**
   * A rejected address asking before its wait is over: nothing is made, and it is told by e-mail
   * when it may ask again (at most once a day, so that the door cannot be used to flood it).
   */
  #waitsAfterRejection(last: MembershipRequest, now: number): boolean {
    const wait = this.#policy.afterReject;
    if (last.state !== 'rejected' || wait === undefined || last.decidedAt === null) return false;
    const until = last.decidedAt + wait;
    if (now >= until) return false;
    const told = this.#store.lastEventAt(last.id, 'told-to-wait');
    if (told === undefined || now - told >= WAIT_NOTICE_EVERY_MS) {
      this.#event(last.id, 'told-to-wait', 'web', null, { until: iso(until) });
      this.#notices.enqueue({ channel: 'email', kind: 'request-wait', recipient: last.email, inviteIds: [], params: { request: last.id, until: iso(until) } });
    }
    return true;
  }

  /** An approved request whose invite still serves: still open and unexpired, or used (a member). */
  #stillServed(last: MembershipRequest, now: number): boolean {
    const invite = last.inviteId ? this.#invites.get(last.inviteId) : undefined;
    if (!invite) return false;
    if (invite.uses > 0) return true;
    return invite.state === 'open' && now < invite.expiresAt;
  }

  #checkLimits(ip: string | null, now: number): void {
    const { perHour, perDay } = this.#policy;
    if (ip !== null && perHour !== undefined) {
      const w = this.#store.fromAddress(ip, now - HOUR);
      if (w.count >= perHour) refuse('requests_per_hour', `at most ${perHour} requests an hour from one address`, w.oldest === null ? null : w.oldest + HOUR);
    }
    if (perDay !== undefined) {
      const w = this.#store.since(now - DAY);
      if (w.count >= perDay) refuse('requests_per_day', `this site takes at most ${perDay} requests a day`, w.oldest === null ? null : w.oldest + DAY);
    }
  }

  #expire(request: MembershipRequest, now: number): void {
    if (this.#store.update(request.id, ['unverified'], { state: 'expired', decidedAt: now, decidedBy: 'system' })) {
      this.#event(request.id, 'expired', 'system', null, null);
    }
  }

  #mustGet(id: string): MembershipRequest {
    const request = this.#store.get(id);
    if (!request) throw new InviteError('invite-not-found', `No request ${id}`);
    return request;
  }

  #requirePrivileged(actor: Actor): void {
    if (!isPrivileged(actor)) throw new InviteError('forbidden', 'Only admins may do this');
  }

  /**
   * `request.verified`, in the verify transaction: sent if and only if the verification is stored.
   * The request as it is at the end of it (open mode: approved, with its invite).
   */
  #hookVerified(verified: Verified): void {
    if (!this.#webhooks?.wants('request.verified')) return;
    this.#webhooks.emit('request.verified', { request: requestHookData(verified.request), mode: this.#policy.mode }, verified.invite ? [verified.invite.id] : []);
  }

  #event(requestId: string, type: RequestEventType, actor: string, reason: string | null, data: Record<string, unknown> | null): void {
    this.#store.addEvent({ requestId, at: this.#clock(), type, actor, reason, data });
  }
}

/** The door of a user's decision, when it is not XMPP (the web console), as invites' events record it. */
function viaOf(actor: Actor): { via?: 'web' } {
  return actor.kind === 'user' && actor.via ? { via: actor.via } : {};
}

function refuse(name: string, what: string, frees: number | null): never {
  throw new InviteError('limit-reached', `Limit ${name} reached: ${what}${frees === null ? '' : `; it frees at ${iso(frees)}`}`, {
    limit: name,
    ...(frees === null ? {} : { frees: iso(frees) }),
  });
}

/** A request id: 10 characters of the invite id alphabet (the code's MAC is what is secret). */
export function newRequestId(): string {
  return randomIdChars(ID_LENGTH);
}

export function isRequestId(text: string): boolean {
  return new RegExp(`^[${ID_ALPHABET}]{${ID_LENGTH}}$`).test(text);
}
