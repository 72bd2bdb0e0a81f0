/**
 * Password reset invites (contract, "Password reset invites"), as Prosody and ejabberd have them:
 * an admin makes a one-use link for one existing account, valid `invites.reset_expiry` (1 day by
 * default); its holder chooses a new password on the landing page; the password is set through the
 * provisioner; the account's owner gets a `password-reset` message; every step is in the log.
 *
 * Spending is claim → set → settle, as for accounts: the use is claimed (open → held) by one
 * conditional update before the server is asked, so two holders at once make one change; a
 * definite success makes it `used`; a definite refusal or an unclear outcome gives it back (open).
 * Policy for the unclear case: unlike an account, a password can be set again without harm, and
 * the server cannot be asked whether it was, so the link's holder may simply try again.
 */
import { InviteError } from '../errors';
import type { Clock } from './ports';
import { NO_NOTICES, type NoticeQueue } from './notices';
import { ID_LENGTH, randomIdChars, TokenCodec } from './tokens';
import { actorName, isPrivileged, type Actor } from './types';
import { checkPassword, normalizeUsername } from './usernames';
import { cleanOptional } from './text';

export type ResetState = 'open' | 'held' | 'used' | 'revoked';
/** What people see: `expired` is derived, for an open link past its expiry. */
export type ShownResetState = ResetState | 'expired';
export type ResetEventType = 'created' | 'claimed' | 'used' | 'failed' | 'revoked';

export interface PasswordReset {
  id: string;
  username: string;
  state: ResetState;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  endedAt: number | null;
}

export interface ResetEvent {
  id: number;
  resetId: string;
  at: number;
  type: ResetEventType;
  actor: string;
  reason: string | null;
  data: Record<string, unknown> | null;
}

export interface ResetStore {
  transaction<T>(fn: () => T): T;
  /** false when the id is taken */
  insert(reset: PasswordReset): boolean;
  get(id: string): PasswordReset | undefined;
  /** moves the state when it is `from` (and, for a claim, unexpired at `now`); whether it did */
  move(id: string, from: ResetState, to: ResetState, at: number, opts?: { unexpiredAt?: number; end?: boolean }): boolean;
  addEvent(e: Omit<ResetEvent, 'id'>): void;
  events(id: string): ResetEvent[];
}

/** What setting a password came to. Unclear outcomes are thrown (ProvisionUnclear). */
export type SetPasswordOutcome = { kind: 'done' } | { kind: 'no-account' } | { kind: 'refused'; reason: string };

/** What the provisioner must offer for resets. */
export interface PasswordSetter {
  setPassword(username: string, password: string): Promise<SetPasswordOutcome>;
  /** throws when the server cannot be asked */
  accountExists(username: string): Promise<boolean>;
}

export interface ResetPolicy {
  host: string;
  publicUrl: string;
  expiry: number;
  minPasswordLength: number;
}

export interface ResetDeps {
  store: ResetStore;
  policy: ResetPolicy;
  tokenKey: string;
  clock?: Clock;
  notices?: NoticeQueue;
}

export interface ResetLinks {
  token: string;
  landingUrl: string;
}

export class ResetService {
  readonly #store: ResetStore;
  readonly #policy: ResetPolicy;
  readonly #codes: TokenCodec;
  readonly #clock: Clock;
  readonly #notices: NoticeQueue;

  constructor(deps: ResetDeps) {
    this.#store = deps.store;
    this.#policy = deps.policy;
    this.#codes = new TokenCodec(deps.tokenKey);
    this.#clock = deps.clock ?? Date.now;
    this.#notices = deps.notices ?? NO_NOTICES;
  }

  /**
   * A reset link for an existing account (admins and the operator). `exists` is the server's
   * answer, asked by the caller (the command through its provisioner; the CLI through the running
   * service, `opts.check` naming that question in account_checks, which the `created` event
   * records); a link for an account that does not exist is refused. Returns the reset and its links.
   */
  create(actor: Actor, username: string, exists: boolean, opts: { expiresIn?: number; check?: number } = {}): { reset: PasswordReset; links: ResetLinks } {
    if (!isPrivileged(actor)) throw new InviteError('forbidden', 'Only admins may make password reset links');
    const user = normalizeUsername(username);
    if (exists === false) throw new InviteError('invalid-input', `There is no account ${user}@${this.#policy.host}`);
    const expiresIn = opts.expiresIn ?? this.#policy.expiry;
    if (!(expiresIn > 0)) throw new InviteError('invalid-input', 'The lifetime must be positive');
    return this.#store.transaction(() => {
      const now = this.#clock();
      let reset: PasswordReset | undefined;
      for (let tries = 0; tries < 5 && !reset; tries++) {
        const candidate: PasswordReset = { id: newResetId(), username: user, state: 'open', createdBy: actorName(actor), createdAt: now, expiresAt: now + expiresIn, endedAt: null };
        if (this.#store.insert(candidate)) reset = candidate;
      }
      if (!reset) throw new InviteError('internal', 'Could not record the reset link');
      this.#event(reset.id, 'created', actorName(actor), null, { username: user, expires: new Date(reset.expiresAt).toISOString(), ...(opts.check !== undefined ? { check: opts.check } : {}) });
      return { reset, links: this.links(reset) };
    });
  }

  links(reset: Pick<PasswordReset, 'id'>): ResetLinks {
    const token = this.#codes.resetToken(reset.id);
    return { token, landingUrl: `${this.#policy.publicUrl}/i/${token}` };
  }

  /** The reset a token belongs to, whatever its state; undefined for unknown or forged tokens. */
  byToken(token: string): PasswordReset | undefined {
    const id = this.#codes.idOf(token);
    if (id === undefined) return undefined;
    const reset = this.#store.get(id);
    return reset && this.#codes.verifyResetToken(token, id) ? reset : undefined;
  }

  get(id: string): PasswordReset | undefined {
    return this.#store.get(id);
  }

  events(id: string): ResetEvent[] {
    return this.#store.events(id);
  }

  shownState(reset: PasswordReset): ShownResetState {
    return reset.state === 'open' && this.#clock() >= reset.expiresAt ? 'expired' : reset.state;
  }

  /**
   * Sets the new password with the link: claim (one conditional update), ask the server, settle.
   * Throws `invite-not-found` for a link that can no longer be used, `invalid-input` for a password
   * the rules refuse (nothing claimed), `unavailable` when the server did not say.
   */
  async use(token: string, password: string, setter: PasswordSetter, ip: string | null): Promise<PasswordReset> {
    const reset = this.byToken(token);
    if (!reset) throw new InviteError('invite-not-found', 'This link is not valid');
    checkPassword(password, this.#policy.minPasswordLength);
    const claimed = this.#store.transaction(() => {
      const now = this.#clock();
      if (!this.#store.move(reset.id, 'open', 'held', now, { unexpiredAt: now })) return false;
      this.#event(reset.id, 'claimed', 'web', null, ip ? { ip } : null);
      return true;
    });
    if (!claimed) {
      const now = this.get(reset.id)!;
      const shown = this.shownState(now);
      throw new InviteError('invite-not-found', shown === 'held' ? 'This link is being used right now' : `This link has been ${shown}`);
    }
    let outcome: SetPasswordOutcome;
    try {
      outcome = await setter.setPassword(reset.username, password);
    } catch (err) {
      this.#settle(reset.id, 'open', 'failed', `unclear: ${(err as Error).message}`);
      throw new InviteError('unavailable', 'The server did not answer in time; the password may not have changed: please try again in a minute');
    }
    if (outcome.kind !== 'done') {
      const reason = outcome.kind === 'no-account' ? 'the account does not exist' : outcome.reason;
      this.#settle(reset.id, 'open', 'failed', reason);
      throw new InviteError('unavailable', `The server refused to set the password: ${reason}`);
    }
    const jid = `${reset.username}@${this.#policy.host}`;
    this.#store.transaction(() => {
      const now = this.#clock();
      this.#store.move(reset.id, 'held', 'used', now, { end: true });
      this.#event(reset.id, 'used', 'web', null, { jid, ...(ip ? { ip } : {}) });
      // The owner hears of it, in case it was not them.
      this.#notices.enqueue({ channel: 'xmpp', kind: 'password-reset', recipient: jid, inviteIds: [], params: { reset: reset.id, jid } });
    });
    return this.get(reset.id)!;
  }

  /** Revokes an open, unexpired link (admins, the operator); false when it was not open. */
  revoke(actor: Actor, id: string, reason: string | null = null): boolean {
    if (!isPrivileged(actor)) throw new InviteError('forbidden', 'Only admins may do this');
    return this.#store.transaction(() => {
      const now = this.#clock();
      if (!this.#store.move(id, 'open', 'revoked', now, { end: true, unexpiredAt: now })) return false;
      this.#event(id, 'revoked', actorName(actor), cleanOptional(reason), null);
      return true;
    });
  }

  #settle(id: string, to: 'open', type: ResetEventType, reason: string): void {
    this.#store.transaction(() => {
      this.#store.move(id, 'held', to, this.#clock());
      this.#event(id, type, 'system', reason, null);
    });
  }

  #event(resetId: string, type: ResetEventType, actor: string, reason: string | null, data: Record<string, unknown> | null): void {
    this.#store.addEvent({ resetId, at: this.#clock(), type, actor, reason, data });
  }
}

export function newResetId(): string {
  return randomIdChars(ID_LENGTH);
}
