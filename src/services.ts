/** Builds the domain services from the config, for `serve` and the CLI alike. */
import type { Config } from './config';
import { InviteService, type InvitePolicy } from './domain/invites';
import type { Db } from './store/database';
import { SqliteInviteStore } from './store/invites-repo';

export function invitePolicy(config: Config): InvitePolicy {
  return {
    host: config.host,
    publicUrl: config.web.publicUrl,
    serverBridge: config.registration.serverBridge,
    expiry: config.invites.expiry,
    approval: config.invites.approval,
    allowUserInvites: config.invites.allowUserInvites,
    maxUses: config.invites.maxUses,
    admins: config.admins,
  };
}

export function inviteServiceFor(config: Config, db: Db, clock?: () => number): InviteService {
  return new InviteService(new SqliteInviteStore(db), invitePolicy(config), config.tokenKey, clock);
}
