/**
 * Registration gated on invites: one redemption rule for every door (the component's XEP-0077,
 * the landing page, the Prosody bridge), and claim → create → settle so that one use never makes
 * two accounts and a failed registration never burns a use.
 *
 * 1. claim: in one transaction, check the invite, hold one of its uses and the username;
 * 2. create: ask the server (through the provisioner) to create the account;
 * 3. settle: a definite success spends the use and records invite → JID; a definite refusal
 *    releases it; an unclear outcome (timeout, lost link, crash) keeps it held until the server
 *    has been asked whether the account exists — at once, and again at start-up.
 *
 * Before claiming, the server is asked whether the account exists: an existing account is
 * `conflict` and nothing is claimed, and the claim records that the account was absent. Only such a
 * claim is ever settled as spent by reconciliation (the account is absent at claim time and exists
 * now), so an account that existed before is never credited to an invite: no `joined`, no
 * `welcome`, no contacts linked.
 */
import { randomBytes } from 'node:crypto';
import { InviteError } from '../errors';
import type { InviteService } from './invites';
import type { Clock } from './ports';
import type { NoticeQueue } from './notices';
import type { Limits } from './limits';
import { canCreateAccount, isContactKind, isExpired, shownState, usesLeft, type Invite } from './types';
import { checkPassword, normalizeUsername } from './usernames';
import type { SetPasswordOutcome } from './resets';

export type Door = 'component' | 'web' | 'bridge';
export type ClaimState = 'held' | 'spent' | 'released';

export interface Claim {
  id: string;
  inviteId: string | null;
  username: string;
  door: Door;
  requester: string | null;
  ip: string | null;
  state: ClaimState;
  createdAt: number;
  settledAt: number | null;
  outcome: string | null;
  /** the server said the account did not exist just before this claim was made */
  absentAtClaim: boolean;
}

/** The outcome of a released claim whose account the server made anyway after its use went elsewhere. */
export const OVERRUN_PREFIX = 'overrun: ';

export interface ClaimStore {
  transaction<T>(fn: () => T): T;
  /** false when another held claim holds the username */
  insertClaim(claim: Claim): boolean;
  getClaim(id: string): Claim | undefined;
  heldClaims(): Claim[];
  /** held → spent/released; false when the claim was no longer held */
  settleClaim(id: string, state: 'spent' | 'released', outcome: string, at: number): boolean;
  /** released → spent (a late `done`); false when the claim was not released */
  respendReleased(id: string, outcome: string, at: number): boolean;
  /** records on a released claim that its account was made after its use went elsewhere (once) */
  markOverrun(id: string, outcome: string): boolean;
  /** held + 1 when the invite is open and uses + held < max uses; false otherwise */
  holdUse(inviteId: string): boolean;
  /** held - 1, uses + 1; a live invite with no use left is exhausted (src/store/uses.ts) */
  spendUse(inviteId: string, at: number): void;
  releaseUse(inviteId: string): void;
  /** the usernames of accounts made from an invite */
  redeemedUsernames(inviteId: string): string[];
}

/** What the server said to "create this account". Unclear outcomes are thrown as ProvisionUnclear. */
export type CreateOutcome = { kind: 'created' } | { kind: 'conflict' } | { kind: 'refused'; reason: string };

export class ProvisionUnclear extends Error {
  override name = 'ProvisionUnclear';
}

/** How accounts are created on `host`: XEP-0133, ejabberd's API, or the Prosody bridge. */
export interface Provisioner {
  readonly name: string;
  createAccount(username: string, password: string): Promise<CreateOutcome>;
  /** throws ProvisionUnclear when the server cannot be asked now */
  accountExists(username: string): Promise<boolean>;
  /** Makes two local users mutual contacts, where the server lets the provisioner do it. */
  linkContacts?(a: string, b: string): Promise<void>;
  /** Sets the password of an existing account (password reset invites); throws ProvisionUnclear. */
  setPassword?(username: string, password: string): Promise<SetPasswordOutcome>;
}

export interface RegistrationEvents {
  /** an account was created from an invite (or without one in open mode) */
  joined(e: { jid: string; invite: Invite | null; door: Door; contactsLinked: boolean }): void;
  /** a held claim could not be reconciled this time (it stays held; a later attempt tries again) */
  reconcileFailed?(e: { claimId: string; claim?: Claim; err: unknown }): void;
}

export interface RegistrationDeps {
  claims: ClaimStore;
  invites: InviteService;
  /** creates accounts on `host` and answers whether one exists */
  provisioner: Provisioner;
  policy: RegistrationPolicy;
  events: RegistrationEvents;
  clock?: Clock;
  // Optional capabilities beside the provisioner:
  /** makes two local users mutual contacts (the bridge's link-contacts, or the provisioner's own) */
  linkContacts?: (a: string, b: string) => Promise<void>;
  /** how to ask whether an account exists for claims of a door (default: the provisioner) */
  existence?: Partial<Record<Door, (username: string) => Promise<boolean>>>;
  /** durable notices: `joined` to the inviter, `welcome` to the new account */
  notices?: NoticeQueue;
  /** registrations_per_hour */
  limits?: Limits;
}

export interface RegistrationPolicy {
  host: string;
  mode: 'invite-only' | 'open';
  minPasswordLength: number;
}

export interface RegisterRequest {
  token?: string;
  username: string;
  password: string;
  door: Door;
  requester?: string;
  ip?: string;
  /** XEP-0445: the token passed a preauth earlier in this session, so expiry is not checked again */
  preauthed?: boolean;
  /**
   * The landing page's respond: ids of further invites to the same invitee that the new account
   * accepts too (one use each, recorded once the account exists; see settleDone).
   */
  also?: string[];
  /**
   * Rooms of the invites (`also` included) the new account does not accept: the boxes left
   * unticked on the registration form. Every other open room of them is accepted once the account
   * exists (membership made after the settling transaction: RoomAnswers).
   */
  declineRooms?: string[];
}

/** One invite the new account was made with, and whether its inviter is now a contact. */
export interface Accepted {
  invite: Invite;
  contactsLinked: boolean;
}

export interface Registered {
  jid: string;
  /** the invite that claimed (null in open mode without a token) */
  invite: Invite | null;
  /** every invite the account was made with: the claiming one first, then those of `also` */
  accepted: Accepted[];
  /** invites of `also` that could not be accepted any more, with why */
  skipped: { inviteId: string; reason: string }[];
}

/** A bridge claim not settled within this time is unclear and resolved with account-exists. */
export const BRIDGE_CLAIM_LIFETIME_MS = 60_000;

export const INVITE_ONLY = 'Registration on this server is through invitation only';
export const PENDING = 'This invite waits for an admin’s approval';

export class Registration {
  #reconciling = new Map<string, Promise<void>>();
  /** claims whose create request is still waiting for the server: never reconciled meanwhile */
  #inFlight = new Set<string>();

  private readonly claims: ClaimStore;
  private readonly invites: InviteService;
  private readonly provisioner: Provisioner;
  private readonly policy: RegistrationPolicy;
  private readonly events: RegistrationEvents;
  private readonly clock: Clock;
  /** the optional capabilities: linkContacts, existence, notices, limits */
  private readonly extras: RegistrationDeps;

  constructor(deps: RegistrationDeps) {
    this.claims = deps.claims;
    this.invites = deps.invites;
    this.provisioner = deps.provisioner;
    this.policy = deps.policy;
    this.events = deps.events;
    this.clock = deps.clock ?? Date.now;
    this.extras = deps;
  }

  /**
   * The one redemption rule: the invite a token opens for registration, or the error every door
   * reports. Usable = open, not expired (unless preauthed), uses left, and for a locked invite the
   * same username.
   */
  usableInvite(token: string, opts: { username?: string; preauthed?: boolean } = {}): Invite {
    const invite = this.invites.findByToken(token);
    if (!invite) throw new InviteError('invite-not-found', 'This invite is not valid');
    if (invite.state === 'pending') {
      if (!opts.preauthed && isExpired(invite, this.clock())) throw new InviteError('invite-not-found', 'This invite has expired');
      throw new InviteError('invite-pending', PENDING);
    }
    if (invite.state !== 'open') throw new InviteError('invite-not-found', `This invite has been ${wording(invite.state)}`);
    if (!opts.preauthed && isExpired(invite, this.clock())) throw new InviteError('invite-not-found', 'This invite has expired');
    if (!canCreateAccount(invite.kind)) {
      throw new InviteError('invite-not-found', invite.kind === 'room' ? 'This invite is to rooms, for an existing account; it cannot create an account' : 'This invite adds a contact; it cannot create an account');
    }
    if (usesLeft(invite) <= 0) {
      throw new InviteError('invite-not-found', invite.held > 0 ? 'This invite is being used right now' : 'This invite has been used');
    }
    if (invite.kind === 'account-locked' && opts.username !== undefined && opts.username !== invite.username) {
      throw new InviteError('username-mismatch', `This invite is for the username ${invite.username}`);
    }
    return invite;
  }

  /** Checks username and password against the rules; returns the normalised username. */
  checkCredentials(username: string, password: string): string {
    const normalized = normalizeUsername(username);
    checkPassword(password, this.policy.minPasswordLength);
    return normalized;
  }

  /**
   * Before a claim: is the username free at the server? An existing account is `conflict`; a server
   * that cannot be asked now is `unavailable` (fail closed). Nothing is claimed either way.
   */
  async checkAbsent(username: string, door: Door): Promise<void> {
    let exists: boolean;
    try {
      exists = await this.#existence(door)(username);
    } catch {
      throw new InviteError('unavailable', 'The server cannot say now whether this username is free; try again in a minute');
    }
    if (exists) throw new InviteError('conflict', `The username ${username} is taken`);
  }

  /**
   * Steps 0 and 1, as every door runs them: the rule's cheap checks, then the server is asked
   * whether the account exists (checkAbsent), then the claim, which records that it was absent.
   */
  async claimNew(req: Omit<RegisterRequest, 'password'> & { password?: string }): Promise<Claim> {
    const username = normalizeUsername(req.username);
    if (req.password !== undefined) checkPassword(req.password, this.policy.minPasswordLength);
    if (!req.token && this.policy.mode !== 'open') throw new InviteError('invite-required', INVITE_ONLY);
    // A bad token or username never costs a question to the server; claim() checks all again.
    const invite = req.token ? this.usableInvite(req.token, { username, preauthed: req.preauthed }) : undefined;
    const reservation = this.invites.reservationOf(username);
    if (reservation && reservation.id !== invite?.id) {
      throw new InviteError('conflict', `The username ${username} is reserved`);
    }
    await this.checkAbsent(username, req.door);
    return this.claim(req, { absentAtClaim: true });
  }

  /**
   * Step 1: hold one use of the invite and the username, in one transaction. Throws the error the
   * door reports when the rule refuses. `absentAtClaim`: checkAbsent said the account did not
   * exist (only then may reconciliation credit the account to this claim).
   */
  claim(req: Omit<RegisterRequest, 'password'> & { password?: string }, opts: { absentAtClaim?: boolean } = {}): Claim {
    const username = normalizeUsername(req.username);
    if (req.password !== undefined) checkPassword(req.password, this.policy.minPasswordLength);
    if (!req.token && this.policy.mode !== 'open') throw new InviteError('invite-required', INVITE_ONLY);
    return this.claims.transaction(() => {
      let invite: Invite | null = null;
      if (req.token) {
        invite = this.usableInvite(req.token, { username, preauthed: req.preauthed });
      }
      this.extras.limits?.checkRegistration({ inviteId: invite?.id ?? null, door: req.door, ip: req.ip }, this.clock());
      const reservation = this.invites.reservationOf(username);
      if (reservation && reservation.id !== invite?.id) {
        throw new InviteError('conflict', `The username ${username} is reserved`);
      }
      // The conditional update is the guard against races: uses + held < max_uses.
      if (invite && !this.claims.holdUse(invite.id)) {
        throw new InviteError('invite-not-found', 'This invite has been used');
      }
      const claim: Claim = {
        id: randomBytes(12).toString('base64url'),
        inviteId: invite?.id ?? null,
        username,
        door: req.door,
        requester: req.requester ?? null,
        ip: req.ip ?? null,
        state: 'held',
        createdAt: this.clock(),
        settledAt: null,
        outcome: null,
        absentAtClaim: opts.absentAtClaim ?? false,
      };
      if (!this.claims.insertClaim(claim)) {
        throw new InviteError('conflict', `Someone is registering the username ${username} right now`);
      }
      return claim;
    });
  }

  /** The whole registration: claim, create through the provisioner, settle. Returns the new JID. */
  async register(req: RegisterRequest): Promise<Registered> {
    const claim = await this.claimNew(req);
    let outcome: CreateOutcome;
    this.#inFlight.add(claim.id);
    try {
      outcome = await this.provisioner.createAccount(claim.username, req.password);
    } catch {
      // Unclear: the account may or may not exist. Keep the claim held and ask the server.
      this.#inFlight.delete(claim.id);
      void this.reconcile(claim.id);
      throw new InviteError('unavailable', 'The server did not answer in time; the account may have been created: try to log in in a minute, or register again');
    }
    this.#inFlight.delete(claim.id);
    switch (outcome.kind) {
      case 'created':
        return this.settleDone(claim.id, 'created', req.also, req.declineRooms);
      case 'conflict':
        this.release(claim.id, 'conflict');
        throw new InviteError('conflict', `The username ${claim.username} is taken`);
      case 'refused':
        this.release(claim.id, `refused: ${outcome.reason}`);
        throw new InviteError('unavailable', `The server refused to create the account: ${outcome.reason}`);
    }
  }

  /**
   * Step 3, success: spend the held use, record invite → JID, tell whom it concerns. `also` (the
   * landing page's respond) spends one use of each further invite to the same invitee in the same
   * transaction, each as a claim of its own recorded as spent; one that is no longer usable is
   * skipped, never blocking the account that already exists.
   */
  async settleDone(claimId: string, outcome: string, also: readonly string[] = [], declineRooms: readonly string[] = []): Promise<Registered> {
    const now = this.clock();
    const claim = this.claims.getClaim(claimId);
    if (!claim) throw new InviteError('invite-not-found', 'No such claim');
    const jid = `${claim.username}@${this.policy.host}`;
    const alongside: string[] = [];
    const skipped: Registered['skipped'] = [];
    const settled = this.claims.transaction(() => {
      if (!this.claims.settleClaim(claimId, 'spent', outcome, now)) return false;
      if (claim.inviteId) {
        this.#recordSpent(claim, jid, now);
        this.invites.acceptRoomsOnRegistration(claim.inviteId, jid, declineRooms);
        for (const id of new Set(also)) {
          const refused = this.#spendAlongside(id, claim, jid, now);
          if (refused) skipped.push({ inviteId: id, reason: refused });
          else {
            alongside.push(id);
            this.invites.acceptRoomsOnRegistration(id, jid, declineRooms);
          }
        }
      }
      return true;
    });
    const invite = claim.inviteId ? (this.invites.get(claim.inviteId) ?? null) : null;
    const accepted = settled ? await this.#announce(claim, jid, alongside) : [];
    return { jid, invite, accepted, skipped };
  }

  /** Inside a transaction, for a claim that just became spent: the use, invite → JID, `joined`. */
  #recordSpent(claim: Claim, jid: string, now: number): void {
    if (!claim.inviteId) return;
    this.claims.spendUse(claim.inviteId, now);
    this.invites.recordRedeemed(claim.inviteId, jid, claim.door, claim.id);
    const inviter = this.invites.get(claim.inviteId)?.inviter;
    if (inviter) {
      this.extras.notices?.enqueue({ channel: 'xmpp', kind: 'joined', recipient: inviter, inviteIds: [claim.inviteId], params: { jid } });
    }
  }

  /**
   * After a claim provably made the account `jid` (and only then): link contacts where the invite
   * says so, `welcome` to the new account, the `joined` event.
   */
  async #announce(claim: Claim, jid: string, alongside: readonly string[]): Promise<Accepted[]> {
    const invite = claim.inviteId ? (this.invites.get(claim.inviteId) ?? null) : null;
    const accepted: Accepted[] = [];
    const link = this.extras.linkContacts ?? this.provisioner.linkContacts?.bind(this.provisioner);
    for (const made of [invite, ...alongside.map((id) => this.invites.get(id))]) {
      if (!made) continue;
      let contactsLinked = false;
      const linkWith = made.inviter && (isContactKind(made.kind) || made.rosterSubscription) ? made.inviter : null;
      if (linkWith && link) {
        try {
          await link(linkWith, jid);
          contactsLinked = true;
        } catch {
          contactsLinked = false;
        }
      }
      accepted.push({ invite: made, contactsLinked });
    }
    const contactsLinked = accepted[0]?.contactsLinked ?? false;
    this.claims.transaction(() =>
      this.extras.notices?.enqueue({
        channel: 'xmpp',
        kind: 'welcome',
        recipient: jid,
        inviteIds: accepted.map((a) => a.invite.id),
        params: {
          jid,
          contactsLinked,
          // with several invites, which inviters are contacts already (ids, space-separated)
          ...(accepted.length > 1 ? { linked: accepted.filter((a) => a.contactsLinked).map((a) => a.invite.id).join(' ') } : {}),
        },
      }),
    );
    this.events.joined({ jid, invite, door: claim.door, contactsLinked });
    return accepted;
  }

  /**
   * Spends one use of another invite to the same invitee for the account `jid` just made by
   * `primary` (inside settleDone's transaction, after the primary claim left `held`, so the
   * username is free for one more claim). Returns why it cannot, or undefined when spent.
   */
  #spendAlongside(id: string, primary: Claim, jid: string, now: number): string | undefined {
    const first = primary.inviteId ? this.invites.get(primary.inviteId) : undefined;
    const invite = this.invites.get(id);
    if (!invite || !first || invite.id === first.id) return 'This invite is not valid';
    // The same person only: a respond page never spends someone else's invitation.
    if (!first.inviteeKey || invite.inviteeKey !== first.inviteeKey) return 'This invite is for someone else';
    if (invite.state !== 'open' || isExpired(invite, now)) return `This invite has been ${wording(shownState(invite, now))}`;
    if (invite.kind === 'account-locked' && invite.username !== primary.username) {
      return `This invite is for the username ${invite.username}`;
    }
    if (!this.claims.holdUse(invite.id)) return 'This invite has been used';
    const claim: Claim = { ...primary, id: randomBytes(12).toString('base64url'), inviteId: invite.id, state: 'held', createdAt: now, settledAt: null, outcome: null };
    if (!this.claims.insertClaim(claim)) {
      this.claims.releaseUse(invite.id);
      return `Someone is registering the username ${primary.username} right now`;
    }
    this.claims.settleClaim(claim.id, 'spent', `accepted with ${primary.id}`, now);
    this.claims.spendUse(invite.id, now);
    this.invites.recordRedeemed(invite.id, jid, primary.door, claim.id);
    if (invite.inviter) {
      this.extras.notices?.enqueue({ channel: 'xmpp', kind: 'joined', recipient: invite.inviter, inviteIds: [invite.id], params: { jid } });
    }
    return undefined;
  }

  /** Step 3, refusal: give the use and the username back. */
  release(claimId: string, outcome: string): void {
    const claim = this.claims.getClaim(claimId);
    if (!claim) return;
    this.claims.transaction(() => {
      if (this.claims.settleClaim(claimId, 'released', outcome, this.clock()) && claim.inviteId) {
        this.claims.releaseUse(claim.inviteId);
      }
    });
  }

  /**
   * Settles a held claim by asking the server whether the account exists. Leaves it held when the
   * server cannot be asked; a later call (the periodic job, the next start) tries again.
   */
  reconcile(claimId: string): Promise<void> {
    let running = this.#reconciling.get(claimId);
    if (!running) {
      running = (async () => {
        let claim: Claim | undefined;
        try {
          claim = this.claims.getClaim(claimId);
          if (!claim || claim.state !== 'held' || this.#inFlight.has(claimId)) return;
          const exists = await this.#existence(claim.door)(claim.username);
          // Spent only when the claim provably made the account: absent when claimed, there now.
          // An account that existed before the claim is never credited to the invite.
          if (exists && claim.absentAtClaim) await this.settleDone(claimId, 'reconciled: the account exists');
          else if (exists) this.release(claimId, 'reconciled: the account existed before the claim, not credited');
          else this.release(claimId, 'reconciled: no account');
        } catch (err) {
          // Every failure is told (the claim stays held and keeps its use and username meanwhile).
          this.events.reconcileFailed?.({ claimId, claim, err });
        }
      })().finally(() => this.#reconciling.delete(claimId));
      this.#reconciling.set(claimId, running);
    }
    return running;
  }

  /**
   * Every claim still held (after a crash, or a server that did not answer) and older than
   * `olderThanMs`. Bridge claims are in flight at the server for up to BRIDGE_CLAIM_LIFETIME_MS
   * (until its settle arrives), so they are only reconciled once older than that.
   */
  async reconcileAll(olderThanMs = 0): Promise<number> {
    const now = this.clock();
    const held = this.claims
      .heldClaims()
      .filter((c) => c.createdAt <= now - Math.max(olderThanMs, c.door === 'bridge' ? BRIDGE_CLAIM_LIFETIME_MS : 0));
    for (const claim of held) await this.reconcile(claim.id);
    return held.length;
  }

  #existence(door: Door): (username: string) => Promise<boolean> {
    return this.extras.existence?.[door] ?? ((u: string) => this.provisioner.accountExists(u));
  }

  /**
   * The server says it made the account of a claim (the bridge's `done`). On a held claim this is
   * settleDone. On a claim already released (its settle came after the claim lifetime, and
   * reconciliation found no account then) the use is taken again and spent, so one use never makes
   * two accounts; when no use is left (it went to someone else meanwhile), the claim is marked as
   * an overrun (counted in the statistics) and the caller logs an error.
   */
  async settleDoneLate(claimId: string, outcome: string): Promise<'spent' | 'overrun' | 'unchanged'> {
    const claim = this.claims.getClaim(claimId);
    if (!claim) throw new InviteError('invite-not-found', 'No such claim');
    if (claim.state === 'held') {
      await this.settleDone(claimId, outcome);
      return 'spent';
    }
    if (claim.state !== 'released') return 'unchanged';
    const now = this.clock();
    const jid = `${claim.username}@${this.policy.host}`;
    const result = this.claims.transaction((): 'spent' | 'overrun' | 'unchanged' => {
      if (claim.inviteId && !this.claims.holdUse(claim.inviteId)) {
        return this.claims.markOverrun(claimId, `${outcome} after the claim was released, and no use was left`) ? 'overrun' : 'unchanged';
      }
      if (!this.claims.respendReleased(claimId, `${outcome} after the claim was released`, now)) {
        if (claim.inviteId) this.claims.releaseUse(claim.inviteId);
        return 'unchanged';
      }
      if (claim.inviteId) this.#recordSpent(claim, jid, now);
      return 'spent';
    });
    if (result === 'spent') await this.#announce(claim, jid, []);
    return result;
  }

  getClaim(id: string): Claim | undefined {
    return this.claims.getClaim(id);
  }

  redeemedUsernames(inviteId: string): string[] {
    return this.claims.redeemedUsernames(inviteId);
  }

  heldClaims(): Claim[] {
    return this.claims.heldClaims();
  }
}

function wording(state: Invite['state'] | 'expired'): string {
  switch (state) {
    case 'exhausted':
      return 'used';
    default:
      return state;
  }
}
