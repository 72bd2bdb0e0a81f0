/** What handlers get: the domain services and the settings they read. */
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { InviteService } from '../domain/invites';
import type { Limits } from '../domain/limits';
import type { MembershipService } from '../domain/membership';
import type { PasswordSetter, ResetService } from '../domain/resets';
import type { Trust } from '../domain/trust';
import type { Actor } from '../domain/types';
import type { GroupCommit } from '../store/group-commit';
import type { Requester } from '../xmpp/requester';

export interface Services {
  config: Config;
  invites: InviteService;
  logger: Logger;
  limits: Limits;
  /** the invitation tree (shown by #stats) */
  trust?: Trust;
  /** the shared transaction of the stanzas of one event-loop turn (New Invite uses it) */
  commit: GroupCommit;
  /** membership requests (they wait in #pending beside invites) */
  membership?: MembershipService;
  /** password reset invites, and what sets a password on the server */
  resets?: { service: ResetService; setter: PasswordSetter | undefined };
}

export function actorOf(req: Requester): Actor & { kind: 'user' } {
  return { kind: 'user', jid: req.bare, isAdmin: req.isAdmin };
}
