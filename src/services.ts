/** Builds the domain services from the config, for `serve` and the CLI alike. */
import type { Config } from './config';
import { InviteService, type InvitePolicy } from './domain/invites';
import { openStore, type Db, type OpenOptions } from './store/database';
import { TokenCodec } from './domain/tokens';
import { SqliteInviteStore } from './store/invites-repo';
import { SqliteOutbox } from './store/outbox-repo';
import { Limits } from './domain/limits';
import { SqliteLimitStore } from './store/limits-repo';
import { MembershipService } from './domain/membership';
import { SqliteMembershipStore } from './store/membership-repo';
import { ResetService } from './domain/resets';
import { SqliteResetStore } from './store/resets-repo';
import { SqliteTrustStore } from './store/trust-repo';
import { Trust } from './domain/trust';
import { Bounces } from './domain/bounces';
import { Verp } from './domain/verp';
import { SqliteBounceStore } from './store/bounces-repo';
import { Webhooks } from './domain/webhooks';
import type { NoticeQueue } from './domain/notices';
import { SqliteRoomInvitations } from './store/room-invitations-repo';
import { AccountChecks, type AccountChecksDeps } from './domain/account-checks';
import { SqliteAccountCheckStore } from './store/account-checks-repo';

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
    roomsService: config.rooms.service,
    maxRoomsPerInvite: config.rooms.maxPerInvite,
  };
}

/** The configured database, migrated with what its migrations need from the configuration. */
export function databaseFor(config: Config, options: Omit<OpenOptions, 'migration'> = {}): Db {
  const tokens = new TokenCodec(config.tokenKey);
  return openStore(config.database, { ...options, migration: { addressHash: (key) => tokens.addressHash(key) } });
}

export function outboxFor(config: Config, db: Db, opts: { clock?: () => number; instance?: string } = {}): SqliteOutbox {
  return new SqliteOutbox(db, { clock: opts.clock, idDomain: config.component.domain, instance: opts.instance });
}

export function limitsFor(config: Config, db: Db): Limits {
  return new Limits(new SqliteLimitStore(db, config.host), config.limits, config.admins);
}

/**
 * The invite service, writing its notices to the database's outbox (delivered by `serve`): `outbox`
 * when given (one shared with the delivery worker), else a new one on `db`.
 */
export function inviteServiceFor(config: Config, db: Db, opts: { clock?: () => number; outbox?: SqliteOutbox } = {}): InviteService {
  const { clock } = opts;
  const notices = opts.outbox ?? outboxFor(config, db, { clock });
  return new InviteService({
    store: new SqliteInviteStore(db),
    policy: invitePolicy(config),
    tokenKey: config.tokenKey,
    clock,
    notices,
    limits: limitsFor(config, db),
    blocks: new SqliteTrustStore(db, config.host),
    webhooks: webhooksFor(config, notices, clock),
    rooms: new SqliteRoomInvitations(db),
    perRoomPerDay: config.limits.perRoomPerDay,
  });
}

/** Membership requests (registration.requests), writing their notices to `outbox`. */
export function membershipFor(config: Config, db: Db, invites: InviteService, opts: { clock?: () => number; outbox?: SqliteOutbox } = {}): MembershipService {
  const r = config.registration;
  const notices = opts.outbox ?? outboxFor(config, db, { clock: opts.clock });
  return new MembershipService({
    store: new SqliteMembershipStore(db),
    invites,
    policy: {
      mode: r.requests,
      reason: r.requestReason,
      allowDomains: r.emailDomains.allow,
      blockDomains: r.emailDomains.block,
      perHour: config.limits.requestsPerHour,
      perDay: config.limits.requestsPerDay,
      afterReject: config.limits.requestAfterReject,
      publicUrl: config.web.publicUrl,
      admins: config.admins,
    },
    tokenKey: config.tokenKey,
    clock: opts.clock,
    notices,
    webhooks: webhooksFor(config, notices, opts.clock),
  });
}

/** Password reset invites (kind reset), writing their notices to `outbox`. */
export function resetsFor(config: Config, db: Db, opts: { clock?: () => number; outbox?: SqliteOutbox } = {}): ResetService {
  return new ResetService({
    store: new SqliteResetStore(db),
    policy: { host: config.host, publicUrl: config.web.publicUrl, expiry: config.invites.resetExpiry, minPasswordLength: config.registration.minPasswordLength },
    tokenKey: config.tokenKey,
    clock: opts.clock,
    notices: opts.outbox ?? outboxFor(config, db, { clock: opts.clock }),
  });
}

/**
 * Questions to the running service whether an account exists (the CLI asks, `serve` answers):
 * `write` as in AccountChecksDeps (the service's waits out another process's write lock).
 */
export function accountChecksFor(db: Db, opts: Omit<AccountChecksDeps, 'store'> = {}): AccountChecks {
  return new AccountChecks({ store: new SqliteAccountCheckStore(db), ...opts });
}

/** Bounces to the VERP addresses under `mail.bounce_address` (undefined without one). */
export function bouncesFor(config: Config, db: Db, invites: InviteService, opts: { clock?: () => number } = {}): { bounces: Bounces; verp: Verp } | undefined {
  if (!config.mail.bounceAddress) return undefined;
  const verp = new Verp(config.mail.bounceAddress, invites.tokens);
  return { verp, bounces: new Bounces({ store: new SqliteBounceStore(db), invites, verp, clock: opts.clock }) };
}

/** Who vouched for whom: the invitation tree, blocks and revoking a subtree. */
export function trustFor(config: Config, db: Db, invites: InviteService, opts: { clock?: () => number } = {}): Trust {
  return new Trust({ store: new SqliteTrustStore(db, config.host), invites, clock: opts.clock });
}

/** The configured webhook endpoints, queuing their events in `notices` (the outbox). */
export function webhooksFor(config: Config, notices: NoticeQueue, clock?: () => number): Webhooks {
  return new Webhooks(config.webhooks, notices, clock);
}
