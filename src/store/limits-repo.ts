/** The counts behind the limits, from the never-deleted invites, events and claims tables. */
import type { LimitStore, Window } from '../domain/limits';
import type { Invite } from '../domain/types';
import type { Db } from './database';
import { rowToInvite } from './invites-repo';
import { SqliteTrustStore } from './trust-repo';

type Raw = { count: number; frees: number | null };

export class SqliteLimitStore implements LimitStore {
  readonly #open;
  readonly #createdBy;
  readonly #createdByUsers;
  readonly #createdFor;
  readonly #lastOfPair;
  readonly #lastResent;
  readonly #byInvite;
  readonly #byDoor;
  readonly #byIp;
  readonly #requestsBy;
  readonly #trust;

  /** `host`: the domain of the accounts the service makes (the invitation tree) */
  constructor(db: Db, host: string) {
    this.#trust = new SqliteTrustStore(db, host);
    this.#open = db.prepare<[string, number], Raw>(
      `SELECT count(*) AS count, min(expires_at) AS frees FROM invites WHERE inviter = ? AND state IN ('pending', 'open') AND expires_at > ?`,
    );
    this.#createdBy = db.prepare<[string, number], Raw>(
      `SELECT count(*) AS count, min(created_at) AS frees FROM invites WHERE inviter = ? AND created_at > ?`,
    );
    this.#createdByUsers = db.prepare<[number], Raw>(
      `SELECT count(*) AS count, min(created_at) AS frees FROM invites WHERE source <> 'cli' AND created_at > ?`,
    );
    this.#createdFor = db.prepare<[string, number], Raw>(
      `SELECT count(*) AS count, min(created_at) AS frees FROM invites WHERE invitee_key = ? AND source <> 'cli' AND created_at > ?`,
    );
    this.#lastOfPair = db.prepare(`SELECT * FROM invites WHERE inviter = ? AND invitee_key = ? ORDER BY created_at DESC, id DESC LIMIT 1`);
    this.#lastResent = db.prepare<[string], { at: number | null }>(`SELECT max(at) AS at FROM events WHERE invite_id = ? AND type = 'resent'`);
    this.#byInvite = db.prepare<[string, number], Raw>(
      `SELECT count(*) AS count, min(created_at) AS frees FROM claims WHERE invite_id = ? AND state <> 'released' AND created_at > ?`,
    );
    this.#byDoor = db.prepare<[string, number], Raw>(
      `SELECT count(*) AS count, min(created_at) AS frees FROM claims WHERE door = ? AND state <> 'released' AND created_at > ?`,
    );
    this.#requestsBy = db.prepare<[string, number], Raw>(
      `SELECT count(*) AS count, min(created_at) AS frees FROM invite_requests WHERE sender = ? AND created_at > ?`,
    );
    this.#byIp = db.prepare<[string, number], Raw>(
      `SELECT count(*) AS count, min(created_at) AS frees FROM claims WHERE ip = ? AND door IN ('web', 'bridge') AND state <> 'released' AND created_at > ?`,
    );
  }

  openOf(inviter: string, now: number): Window {
    return this.#open.get(inviter, now)!;
  }

  createdBy(inviter: string, since: number): Window {
    return this.#createdBy.get(inviter, since)!;
  }

  createdByUsers(since: number): Window {
    return this.#createdByUsers.get(since)!;
  }

  createdFor(inviteeKey: string, since: number): Window {
    return this.#createdFor.get(inviteeKey, since)!;
  }

  lastOfPair(inviter: string, inviteeKey: string): Invite | undefined {
    const row = this.#lastOfPair.get(inviter, inviteeKey) as Parameters<typeof rowToInvite>[0] | undefined;
    return row ? rowToInvite(row) : undefined;
  }

  lastSentAt(invite: Invite): number {
    const resent = this.#lastResent.get(invite.id)?.at ?? null;
    return Math.max(resent ?? 0, invite.approvedAt ?? invite.createdAt);
  }

  requestsBy(sender: string, since: number): Window {
    return this.#requestsBy.get(sender, since)!;
  }

  accountOf(jid: string): { joinedAt: number; inviter: string | null } | undefined {
    return this.#trust.accountOf(jid);
  }

  openInTree(root: string, now: number): Window {
    return this.#trust.openInTree(root, now);
  }

  registrations(filter: { inviteId?: string; door?: string; ip?: string }, since: number): Window {
    if (filter.inviteId) return this.#byInvite.get(filter.inviteId, since)!;
    if (filter.door) return this.#byDoor.get(filter.door, since)!;
    if (filter.ip) return this.#byIp.get(filter.ip, since)!;
    return { count: 0, frees: null };
  }
}
