/**
 * Respond (GroupServer's Respond page): one link leads to every open invitation for the same
 * person. Accepting creates one account that spends one use of each accepted invitation (claim →
 * create → settle in Registration, see `RegisterRequest.also`); declining tells each inviter.
 *
 * Only a personal invite (a known invitee and one use) shows the invitee's other invitations or
 * may be declined: whoever holds a shared link must neither read someone's invitations nor end
 * them for others.
 */
import { InviteError } from '../errors';
import type { InviteService } from './invites';
import type { Clock } from './ports';
import type { Registered, Registration } from './registration';
import type { Invite } from './types';

/** Runs `fn` in one write transaction (nested transactions become savepoints). */
export interface Transactor {
  transaction<T>(fn: () => T): T;
}

export type Choice = 'accept' | 'decline' | 'later';

/** How many other invitations a respond page lists at most. */
export const MAX_COMPANIONS = 50;

export interface AcceptRequest {
  /** the token of the page */
  token: string;
  username: string;
  password: string;
  ip?: string;
  /** what the invitee chose for each other invitation the page listed (by invite id) */
  choices: ReadonlyMap<string, Choice>;
  /** the note back to the inviters of declined invitations */
  reason: string | null;
  /** rooms of these invites the new account does not join (unticked boxes); the others it joins */
  declineRooms?: string[];
}

export interface Responded extends Registered {
  declined: Invite[];
}

export interface DeclineRequest {
  token: string;
  reason: string | null;
  /** "never invite me again": also records the hashed opt-out, and declines every other invitation */
  neverAgain: boolean;
  /** ids of other invitations declined with this one */
  also: readonly string[];
}

/** A known invitee and one use: only such an invite may be declined, or show the invitee's other invitations. */
export function isPersonal(invite: Invite): boolean {
  return invite.inviteeKey !== null && invite.maxUses === 1;
}

export interface RespondDeps {
  invites: InviteService;
  registration: Registration;
  /** one write transaction around a decline and its companions */
  tx: Transactor;
  clock?: Clock;
}

export class Respond {
  private readonly invites: InviteService;
  private readonly registration: Registration;
  private readonly tx: Transactor;
  private readonly clock: Clock;

  constructor(deps: RespondDeps) {
    this.invites = deps.invites;
    this.registration = deps.registration;
    this.tx = deps.tx;
    this.clock = deps.clock ?? Date.now;
  }

  /** What the page of an open personal invite lists: the invitee's other open invitations with a use left, oldest first. */
  companions(invite: Invite): Invite[] {
    return invite.state === 'open' ? this.#others(invite) : [];
  }

  #others(invite: Invite): Invite[] {
    if (!isPersonal(invite)) return [];
    const now = this.clock();
    return this.invites
      .list({ invitee: invite.inviteeKey!, state: 'open', oldestFirst: true, limit: MAX_COMPANIONS + 1 })
      // A room invitation makes no account: it is answered room by room, on its own page.
      .filter((i) => i.id !== invite.id && i.kind !== 'room' && i.maxUses - i.uses - i.held > 0 && i.expiresAt > now)
      .slice(0, MAX_COMPANIONS);
  }

  /**
   * Creates the account with the page's invite and every other invitation accepted, then declines
   * those declined. A refused registration changes nothing: the declines come after the account.
   */
  async accept(req: AcceptRequest): Promise<Responded> {
    const invite = this.invites.findByToken(req.token);
    if (!invite) throw new InviteError('invite-not-found', 'This invite is not valid');
    const username = this.registration.checkCredentials(req.username, req.password);
    // The page's own invite must be usable: the same rule as every door, before anything happens.
    this.registration.usableInvite(req.token, { username });
    const companions = this.companions(invite);
    const accept = companions.filter((c) => req.choices.get(c.id) === 'accept');
    const decline = companions.filter((c) => req.choices.get(c.id) === 'decline' && isPersonal(c));
    for (const c of accept) {
      if (c.kind === 'account-locked' && c.username !== username) {
        throw new InviteError(
          'username-mismatch',
          `The invitation from ${c.inviter ?? 'the site'} is for the username ${c.username}: choose that username, or do not accept it now`,
        );
      }
    }
    // A locked invite reserves its username, so it is the one that claims it; the others follow.
    const made = [invite, ...accept];
    const claimer = made.find((i) => i.kind === 'account-locked') ?? invite;
    const token = claimer === invite ? req.token : this.invites.links(claimer).token;
    const registered = await this.registration.register({
      token,
      username,
      password: req.password,
      door: 'web',
      ip: req.ip,
      also: made.filter((i) => i !== claimer).map((i) => i.id),
      declineRooms: req.declineRooms,
    });
    const declined: Invite[] = [];
    for (const c of decline) {
      try {
        declined.push(this.invites.decline(this.invites.links(c).token, req.reason, false));
      } catch (err) {
        // Ended meanwhile (revoked, expired): nothing left to decline.
        if (!(err instanceof InviteError)) throw err;
        registered.skipped.push({ inviteId: c.id, reason: err.message });
      }
    }
    return { ...registered, declined };
  }

  /**
   * Declines the page's invite (telling its inviter) and the other invitations chosen with it; with
   * `neverAgain`, records the opt-out and declines every other invitation to the address. An ended
   * invite can still record the opt-out.
   */
  decline(req: DeclineRequest): Invite[] {
    const invite = this.invites.findByToken(req.token);
    if (!invite) throw new InviteError('invite-not-found', 'This invite is not valid');
    const others = this.#others(invite).filter((c) => isPersonal(c) && (req.neverAgain || req.also.includes(c.id)));
    return this.tx.transaction(() => {
      const declined = [this.invites.decline(req.token, req.reason, req.neverAgain)];
      for (const c of others) {
        try {
          declined.push(this.invites.decline(this.invites.links(c).token, req.reason, false));
        } catch (err) {
          if (!(err instanceof InviteError)) throw err;
        }
      }
      return declined;
    });
  }
}
