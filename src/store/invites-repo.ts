/** The invites and events tables behind the domain's InviteStore port. Every statement is prepared. */
import type { InviteFilter, InvitePatch, InviteStats, InviteStore } from '../domain/ports';
import type { Delivery, Invite, InviteEvent, InviteKind, InviteSource, InviteState, EventType } from '../domain/types';
import { immediateTransaction, type Db } from './database';
import { spendOneUse } from './uses';
import { NO_LIMIT } from './sql';

interface InviteRow {
  id: string;
  kind: string;
  state: string;
  inviter: string | null;
  source: string;
  invitee_email: string | null;
  invitee_email_key: string | null;
  invitee_jid: string | null;
  invitee_name: string | null;
  invitee_key: string | null;
  active_key: string | null;
  reminded_at: number | null;
  username: string | null;
  note: string | null;
  roster_subscription: number;
  max_uses: number;
  uses: number;
  held: number;
  generation: number;
  created_at: number;
  expires_at: number;
  approved_at: number | null;
  approved_by: string | null;
  ended_at: number | null;
  expiry_recorded: number;
  email_delivery: string;
  message_delivery: string;
  email_bounced_at: number | null;
}

interface EventRow {
  id: number;
  invite_id: string;
  at: number;
  type: string;
  actor: string;
  reason: string | null;
  data: string | null;
}

const COLUMNS: Record<keyof InvitePatch, string> = {
  state: 'state',
  expiresAt: 'expires_at',
  approvedAt: 'approved_at',
  approvedBy: 'approved_by',
  endedAt: 'ended_at',
  generation: 'generation',
  uses: 'uses',
  held: 'held',
  expiryRecorded: 'expiry_recorded',
  emailDelivery: 'email_delivery',
  messageDelivery: 'message_delivery',
  remindedAt: 'reminded_at',
  maxUses: 'max_uses',
  emailBouncedAt: 'email_bounced_at',
};

export function rowToInvite(r: InviteRow): Invite {
  return {
    id: r.id,
    kind: r.kind as InviteKind,
    state: r.state as InviteState,
    inviter: r.inviter,
    source: r.source as InviteSource,
    inviteeEmail: r.invitee_email,
    inviteeEmailKey: r.invitee_email_key,
    inviteeJid: r.invitee_jid,
    inviteeName: r.invitee_name,
    inviteeKey: r.invitee_key,
    activeKey: r.active_key,
    remindedAt: r.reminded_at,
    username: r.username,
    note: r.note,
    rosterSubscription: r.roster_subscription === 1,
    maxUses: r.max_uses,
    uses: r.uses,
    held: r.held,
    generation: r.generation,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    approvedAt: r.approved_at,
    approvedBy: r.approved_by,
    endedAt: r.ended_at,
    expiryRecorded: r.expiry_recorded === 1,
    emailDelivery: r.email_delivery as Delivery,
    messageDelivery: r.message_delivery as Delivery,
    emailBouncedAt: r.email_bounced_at === null || r.email_bounced_at === undefined ? null : Number(r.email_bounced_at),
  };
}

/**
 * WHERE clause and parameters of a filter; `expired` is derived from pending/open past expiry.
 * `ordered`: for a list in created_at order rather than a count (see the pending/open case).
 */
function where(filter: InviteFilter, now: number, ordered = false): { sql: string; params: Record<string, unknown> } {
  const parts: string[] = [];
  const params: Record<string, unknown> = { now };
  if (filter.state === 'expired') parts.push(`state IN ('pending', 'open') AND expires_at <= @now`);
  else if (filter.state === 'pending' || filter.state === 'open') {
    // An invite whose expiry is recorded keeps its state for ever and is expired for good, so
    // `expiry_recorded = 0` changes no result; it lets a list walk the partial index invites_live
    // (migration 7) in created_at order past the years of expired invites, and the unary + stops
    // SQLite from preferring to sort every unexpired invite it finds through invites_state. A
    // count is cheapest on invites_state, which covers it.
    parts.push(ordered ? `state = @state AND +expires_at > @now AND expiry_recorded = 0` : `state = @state AND expires_at > @now`);
  } else if (filter.state) parts.push('state = @state');
  if (filter.state && filter.state !== 'expired') params.state = filter.state;
  if (filter.expiryUnrecorded) parts.push('expiry_recorded = 0');
  if (filter.after) {
    parts.push('(created_at > @afterAt OR (created_at = @afterAt AND id > @afterId))');
    params.afterAt = filter.after.createdAt;
    params.afterId = filter.after.id;
  }
  if (filter.inviter) {
    parts.push('inviter = @inviter');
    params.inviter = filter.inviter;
  }
  if (filter.invitee) {
    parts.push('invitee_key = @invitee');
    params.invitee = filter.invitee;
  }
  if (filter.search) {
    // Every column searched is stored lower-case (ids, normalised JIDs, e-mail keys).
    parts.push(`(id LIKE @search ESCAPE '\\' OR inviter LIKE @search ESCAPE '\\' OR invitee_key LIKE @search ESCAPE '\\')`);
    params.search = `%${filter.search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  }
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', params };
}

export class SqliteInviteStore implements InviteStore {
  readonly #insert;
  readonly #get;
  readonly #events;
  readonly #addEvent;
  readonly #reservation;
  readonly #spendDirect;
  readonly #activePair;
  readonly #optedOut;
  readonly #addOptOut;
  readonly #suppressed;
  readonly #addSuppression;
  readonly #cache = new Map<string, ReturnType<Db['prepare']>>();

  constructor(private readonly db: Db) {
    this.#insert = db.prepare(`INSERT INTO invites (
        id, kind, state, inviter, source, invitee_email, invitee_email_key, invitee_jid, invitee_name, invitee_key, active_key,
        username, note, roster_subscription, max_uses, uses, held, generation, created_at, expires_at,
        approved_at, approved_by, ended_at, expiry_recorded, email_delivery, message_delivery)
      VALUES (@id, @kind, @state, @inviter, @source, @inviteeEmail, @inviteeEmailKey, @inviteeJid, @inviteeName, @inviteeKey, @activeKey,
        @username, @note, @rosterSubscription, @maxUses, @uses, @held, @generation, @createdAt, @expiresAt,
        @approvedAt, @approvedBy, @endedAt, @expiryRecorded, @emailDelivery, @messageDelivery)
      ON CONFLICT (id) DO NOTHING`);
    this.#get = db.prepare<[string], InviteRow>('SELECT * FROM invites WHERE id = ?');
    this.#events = db.prepare<[string], EventRow>('SELECT * FROM events WHERE invite_id = ? ORDER BY id');
    this.#addEvent = db.prepare(
      'INSERT INTO events (invite_id, at, type, actor, reason, data) VALUES (@inviteId, @at, @type, @actor, @reason, @data)',
    );
    this.#spendDirect = db.prepare(`UPDATE invites SET ${spendOneUse('@at')}
      WHERE id = @id AND state IN ('pending', 'open') AND uses + held < max_uses`);
    this.#activePair = db.prepare<[string], InviteRow>('SELECT * FROM invites WHERE active_key = ?');
    this.#optedOut = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM opt_outs WHERE address_hash = ?');
    this.#addOptOut = db.prepare('INSERT INTO opt_outs (address_hash, created_at, invite_id) VALUES (?, ?, ?) ON CONFLICT (address_hash) DO NOTHING');
    // The latest row of the address decides (suppressions_hash: address_hash, id).
    this.#suppressed = db.prepare<[string], { suppressed: number }>('SELECT suppressed FROM suppressions WHERE address_hash = ? ORDER BY id DESC LIMIT 1');
    this.#addSuppression = db.prepare(
      'INSERT INTO suppressions (address_hash, suppressed, bounce_id, actor, at) VALUES (@addressHash, @suppressed, @bounceId, @actor, @at)',
    );
    // Through invites_username (the few invites naming this username). Without the expressions
    // (`state || ''`, unary + on a number: no index applies to them), SQLite prefers invites_state
    // and reads every unexpired pending or open invite, at every registration (100 ms with 150,000).
    this.#reservation = db.prepare<[string, number], InviteRow>(
      `SELECT * FROM invites WHERE username = ? AND kind = 'account-locked'
         AND (state || '') IN ('pending', 'open') AND +expires_at > ? LIMIT 1`,
    );
  }

  #tx: (<T>(fn: () => T) => T) | undefined;

  transaction<T>(fn: () => T): T {
    return (this.#tx ??= immediateTransaction(this.db))(fn);
  }

  insertInvite(invite: Invite): boolean {
    const info = this.#insert.run({
      ...invite,
      rosterSubscription: invite.rosterSubscription ? 1 : 0,
      expiryRecorded: invite.expiryRecorded ? 1 : 0,
    });
    return info.changes === 1;
  }

  getInvite(id: string): Invite | undefined {
    const row = this.#get.get(id);
    return row ? rowToInvite(row) : undefined;
  }

  updateInvite(id: string, fromStates: readonly InviteState[], patch: InvitePatch): boolean {
    const keys = (Object.keys(patch) as (keyof InvitePatch)[]).sort();
    if (keys.length === 0) return false;
    const sql = `UPDATE invites SET ${keys.map((k) => `${COLUMNS[k]} = @${k}`).join(', ')}
      WHERE id = @id AND state IN (${fromStates.map((_, i) => `@s${i}`).join(', ')})`;
    const params: Record<string, unknown> = { id };
    fromStates.forEach((s, i) => (params[`s${i}`] = s));
    for (const k of keys) {
      const v = patch[k];
      params[k] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
    }
    return this.#prepared(sql).run(params).changes === 1;
  }

  addEvent(event: Omit<InviteEvent, 'id'>): void {
    this.#addEvent.run({ ...event, data: event.data ? JSON.stringify(event.data) : null });
  }

  listInvites(filter: InviteFilter, now: number): Invite[] {
    const w = where(filter, now, true);
    const order = filter.oldestFirst ? 'created_at ASC, id' : 'created_at DESC, id';
    // No limit: SQLite's LIMIT -1, which PostgreSQL refuses, is left out (and OFFSET needs a LIMIT on SQLite).
    const page = filter.limit === undefined ? (filter.offset ? `LIMIT ${NO_LIMIT} OFFSET @offset` : '') : 'LIMIT @limit OFFSET @offset';
    const sql = `SELECT * FROM invites ${w.sql} ORDER BY ${order} ${page}`;
    const rows = this.#prepared(sql).all({ ...w.params, ...(page ? { offset: filter.offset ?? 0 } : {}), ...(filter.limit === undefined ? {} : { limit: filter.limit }) }) as InviteRow[];
    return rows.map(rowToInvite);
  }

  countInvites(filter: InviteFilter, now: number): number {
    const w = where(filter, now);
    return (this.#prepared(`SELECT count(*) AS n FROM invites ${w.sql}`).get(w.params) as { n: number }).n;
  }

  listEvents(inviteId: string): InviteEvent[] {
    return this.#events.all(inviteId).map((r) => ({
      id: r.id,
      inviteId: r.invite_id,
      at: r.at,
      type: r.type as EventType,
      actor: r.actor,
      reason: r.reason,
      data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : null,
    }));
  }

  findActivePair(activeKey: string): Invite | undefined {
    const row = this.#activePair.get(activeKey);
    return row ? rowToInvite(row) : undefined;
  }

  isOptedOut(addressHash: string): boolean {
    return this.#optedOut.get(addressHash)!.n > 0;
  }

  addOptOut(addressHash: string, inviteId: string | null, at: number): boolean {
    return this.#addOptOut.run(addressHash, at, inviteId).changes === 1;
  }

  isSuppressed(addressHash: string): boolean {
    return this.#suppressed.get(addressHash)?.suppressed === 1;
  }

  addSuppression(entry: { addressHash: string; suppressed: boolean; bounceId: number | null; actor: string; at: number }): void {
    this.#addSuppression.run({ ...entry, suppressed: entry.suppressed ? 1 : 0 });
  }

  spendDirectUse(id: string, at: number): boolean {
    return this.#spendDirect.run({ id, at }).changes === 1;
  }

  /** The figures of `stats`; the keys of each count in one order on both engines (`--json`). */
  stats(now: number, funnelLimit: number): InviteStats {
    const states: Record<string, number> = {};
    for (const r of this.#prepared(`SELECT CASE WHEN state IN ('pending', 'open') AND expires_at <= @now THEN 'expired' ELSE state END AS s,
        count(*) AS n FROM invites GROUP BY s ORDER BY s`).all({ now }) as { s: string; n: number }[]) states[r.s] = r.n;
    const delivery = { email: {} as Record<string, number>, message: {} as Record<string, number> };
    // An invitee (e-mail or JID) implies invitee_key: the partial index invites_invitee_key lists
    // exactly the invites with one, so these two read those rows rather than the whole table.
    for (const r of this.#prepared(`SELECT CASE WHEN email_bounced_at IS NOT NULL THEN 'bounced' ELSE email_delivery END AS d, count(*) AS n FROM invites WHERE invitee_key IS NOT NULL AND invitee_email IS NOT NULL GROUP BY d ORDER BY d`).all({}) as { d: string; n: number }[]) delivery.email[r.d] = r.n;
    for (const r of this.#prepared(`SELECT message_delivery AS d, count(*) AS n FROM invites WHERE invitee_key IS NOT NULL AND invitee_jid IS NOT NULL GROUP BY d ORDER BY d`).all({}) as { d: string; n: number }[]) delivery.message[r.d] = r.n;
    const funnel = this.#prepared(`SELECT inviter, count(*) AS created, count(approved_at) AS approved,
        sum(CASE WHEN email_delivery = 'sent' OR message_delivery = 'sent' OR uses > 0 THEN 1 ELSE 0 END) AS delivered,
        sum(CASE WHEN uses > 0 THEN 1 ELSE 0 END) AS used,
        sum(CASE WHEN kind <> 'contact' THEN uses ELSE 0 END) AS accounts,
        sum(CASE WHEN email_bounced_at IS NOT NULL THEN 1 ELSE 0 END) AS bounced
      FROM invites WHERE inviter IS NOT NULL GROUP BY inviter ORDER BY created DESC, inviter LIMIT @limit`).all({ limit: funnelLimit }) as InviteStats['funnel'];
    const overruns = (this.#prepared(`SELECT count(*) AS n FROM claims WHERE state = 'released' AND outcome LIKE 'overrun:%'`).get({}) as { n: number }).n;
    // The claims_state index (state, created_at) answers this from the few held rows. The alias is
    // quoted: PostgreSQL folds an unquoted one to lower case (oldestat), which left the age of the
    // oldest claim undefined there and #stats failing whenever a registration was in progress.
    const held = this.#prepared(`SELECT count(*) AS count, min(created_at) AS "oldestAt" FROM claims WHERE state = 'held'`).get({}) as InviteStats['heldClaims'];
    const bounces = { permanent: 0, transient: 0 };
    for (const r of this.#prepared(`SELECT permanent, count(*) AS n FROM bounces GROUP BY permanent`).all({}) as { permanent: number; n: number }[]) {
      bounces[Number(r.permanent) === 1 ? 'permanent' : 'transient'] = Number(r.n);
    }
    return { states, delivery, funnel, overruns, heldClaims: held, bounces };
  }

  dailyEvents(types: readonly string[], since: number): { day: number; type: string; n: number }[] {
    // The day number counted from `since`, truncated on both engines (better-sqlite3 binds a number
    // as a REAL, which makes SQLite's division exact; PostgreSQL's is integral already). events_type_at.
    const day = 'CAST((at - @since) / 86400000 AS INTEGER)';
    const sql = `SELECT ${day} AS day, type, count(*) AS n FROM events
      WHERE type IN (${types.map((_, i) => `@t${i}`).join(', ')}) AND at >= @since GROUP BY ${day}, type`;
    const params: Record<string, unknown> = { since };
    types.forEach((t, i) => (params[`t${i}`] = t));
    return (this.#prepared(sql).all(params) as { day: number | string; type: string; n: number | string }[]).map((r) => ({
      day: Number(r.day),
      type: r.type,
      n: Number(r.n),
    }));
  }

  findReservation(username: string, now: number): Invite | undefined {
    const row = this.#reservation.get(username, now);
    return row ? rowToInvite(row) : undefined;
  }

  listRemindersDue(now: number, before: number, limit: number): Invite[] {
    // Uses the invites_state index (state, expires_at); the other conditions filter a narrow window.
    const rows = this.#prepared(`SELECT * FROM invites
      WHERE state = 'open' AND expires_at > @now AND expires_at <= CAST(@now AS BIGINT) + @before
        AND reminded_at IS NULL AND invitee_email IS NOT NULL AND email_delivery = 'sent' AND email_bounced_at IS NULL
        AND uses = 0 AND held = 0 AND expiry_recorded = 0
        AND approved_at IS NOT NULL AND approved_at < expires_at - @before
      ORDER BY expires_at, id LIMIT @limit`).all({ now, before, limit }) as InviteRow[];
    return rows.map(rowToInvite);
  }

  /** Statements whose text depends on the filter or patch: prepared once per distinct text. */
  #prepared(sql: string) {
    let stmt = this.#cache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.#cache.set(sql, stmt);
    }
    return stmt;
  }
}
