/** Builds the domain services from the config, for `serve` and the CLI alike. */
import type { Config } from './config';
import { InviteService, type InvitePolicy } from './domain/invites';
import { openDatabase, type Db, type OpenOptions } from './store/database';
import { TokenCodec } from './domain/tokens';
import { SqliteInviteStore } from './store/invites-repo';
import { SqliteOutbox } from './store/outbox-repo';
import { Limits } from './domain/limits';
import { SqliteLimitStore } from './store/limits-repo';
import { SqliteRoomInvitations } from './store/room-invitations-repo';

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
  return openDatabase(config.database, { ...options, migration: { addressHash: (key) => tokens.addressHash(key) } });
}

export function outboxFor(config: Config, db: Db, opts: { clock?: () => number; instance?: string } = {}): SqliteOutbox {
  return new SqliteOutbox(db, { clock: opts.clock, idDomain: config.component.domain, instance: opts.instance });
}

export function limitsFor(config: Config, db: Db): Limits {
  return new Limits(new SqliteLimitStore(db), config.limits);
}

/**
 * The invite service, writing its notices to the database's outbox (delivered by `serve`): `outbox`
 * when given (one shared with the delivery worker), else a new one on `db`.
 */
export function inviteServiceFor(config: Config, db: Db, opts: { clock?: () => number; outbox?: SqliteOutbox } = {}): InviteService {
  const { clock } = opts;
  return new InviteService({
    store: new SqliteInviteStore(db),
    policy: invitePolicy(config),
    tokenKey: config.tokenKey,
    clock,
    notices: opts.outbox ?? outboxFor(config, db, { clock }),
    limits: limitsFor(config, db),
    rooms: new SqliteRoomInvitations(db),
    perRoomPerDay: config.limits.perRoomPerDay,
  });
}
