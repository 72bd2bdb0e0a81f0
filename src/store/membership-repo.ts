/**
 * The membership_requests and membership_events tables (schema.sql, migration 15), behind the
 * domain's MembershipStore port (src/domain/membership.ts). Every statement is prepared and written
 * for both engines; one live request per address is the unique index on live_key, which every
 * state change out of unverified/pending clears in the same statement.
 */
import type {
  MembershipRequest,
  MembershipStore,
  RequestEvent,
  RequestEventType,
  RequestPatch,
  RequestState,
  RequestStats,
  RequestWindow,
} from '../domain/membership';
import { REQUEST_STATES } from '../domain/membership';
import { immediateTransaction, type Db } from './database';

interface Row {
  id: string;
  email: string;
  email_key: string;
  reason: string | null;
  state: string;
  ip: string | null;
  created_at: number;
  verified_at: number | null;
  decided_at: number | null;
  decided_by: string | null;
  decision_reason: string | null;
  invite_id: string | null;
}

interface EventRow {
  id: number;
  request_id: string;
  at: number;
  type: string;
  actor: string;
  reason: string | null;
  data: string | null;
}

const num = (v: number | null): number | null => (v === null ? null : Number(v));

function toRequest(r: Row): MembershipRequest {
  return {
    id: r.id,
    email: r.email,
    emailKey: r.email_key,
    reason: r.reason,
    state: r.state as RequestState,
    ip: r.ip,
    createdAt: Number(r.created_at),
    verifiedAt: num(r.verified_at),
    decidedAt: num(r.decided_at),
    decidedBy: r.decided_by,
    decisionReason: r.decision_reason,
    inviteId: r.invite_id,
  };
}

const LIVE: readonly RequestState[] = ['unverified', 'pending'];

/**
 * Requests per shown state (unverified ones made at or before the parameter are expired). One
 * parameter, grouped in an outer query: PostgreSQL groups by an expression only when it is the
 * selected one, and two placeholders are two expressions. (Exported for the PostgreSQL test.)
 */
export const STATES_SQL = `SELECT shown AS state, count(*) AS n FROM (
   SELECT CASE WHEN state = 'unverified' AND created_at <= ? THEN 'expired' ELSE state END AS shown FROM membership_requests
 ) t GROUP BY shown`;

/** requested → verified → approved → joined (the approval's invite was used). */
export const FUNNEL_SQL = `SELECT count(*) AS requested,
   sum(CASE WHEN r.verified_at IS NOT NULL THEN 1 ELSE 0 END) AS verified,
   sum(CASE WHEN r.state = 'approved' THEN 1 ELSE 0 END) AS approved,
   sum(CASE WHEN i.uses > 0 THEN 1 ELSE 0 END) AS joined
 FROM membership_requests r LEFT JOIN invites i ON i.id = r.invite_id`;

export class SqliteMembershipStore implements MembershipStore {
  readonly #insert;
  readonly #get;
  readonly #live;
  readonly #latest;
  readonly #addEvent;
  readonly #events;
  readonly #lastEvent;
  readonly #fromAddress;
  readonly #since;
  readonly #stale;
  readonly #countAll;
  readonly #countState;
  readonly #statesOf;
  readonly #funnel;
  #tx: (<T>(fn: () => T) => T) | undefined;

  constructor(private readonly db: Db) {
    this.#insert = db.prepare(
      `INSERT INTO membership_requests (id, email, email_key, reason, state, live_key, ip, created_at)
       VALUES (@id, @email, @emailKey, @reason, @state, @emailKey, @ip, @createdAt) ON CONFLICT DO NOTHING`,
    );
    this.#get = db.prepare<[string], Row>('SELECT * FROM membership_requests WHERE id = ?');
    this.#live = db.prepare<[string], Row>('SELECT * FROM membership_requests WHERE live_key = ?');
    this.#latest = db.prepare<[string], Row>('SELECT * FROM membership_requests WHERE email_key = ? ORDER BY created_at DESC, id DESC LIMIT 1');
    this.#addEvent = db.prepare(
      'INSERT INTO membership_events (request_id, at, type, actor, reason, data) VALUES (@requestId, @at, @type, @actor, @reason, @data)',
    );
    this.#events = db.prepare<[string], EventRow>('SELECT * FROM membership_events WHERE request_id = ? ORDER BY id');
    this.#lastEvent = db.prepare<[string, string], { at: number }>(
      'SELECT at FROM membership_events WHERE request_id = ? AND type = ? ORDER BY id DESC LIMIT 1',
    );
    this.#fromAddress = db.prepare<[string, number], { n: number; oldest: number | null }>(
      'SELECT count(*) AS n, min(created_at) AS oldest FROM membership_requests WHERE ip = ? AND created_at > ?',
    );
    this.#since = db.prepare<[number], { n: number; oldest: number | null }>(
      'SELECT count(*) AS n, min(created_at) AS oldest FROM membership_requests WHERE created_at > ?',
    );
    this.#stale = db.prepare<[number, number], Row>(
      `SELECT * FROM membership_requests WHERE state = 'unverified' AND created_at <= ? ORDER BY created_at, id LIMIT ?`,
    );
    this.#countAll = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM membership_requests');
    this.#countState = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM membership_requests WHERE state = ?');
    this.#statesOf = db.prepare<[number], { state: string; n: number }>(STATES_SQL);
    this.#funnel = db.prepare<[], { requested: number; verified: number | null; approved: number | null; joined: number | null }>(FUNNEL_SQL);
  }

  transaction<T>(fn: () => T): T {
    return (this.#tx ??= immediateTransaction(this.db))(fn);
  }

  insert(r: MembershipRequest): boolean {
    return (
      this.#insert.run({ id: r.id, email: r.email, emailKey: r.emailKey, reason: r.reason, state: r.state, ip: r.ip, createdAt: r.createdAt }).changes === 1
    );
  }

  get(id: string): MembershipRequest | undefined {
    const r = this.#get.get(id);
    return r ? toRequest(r) : undefined;
  }

  findLive(emailKey: string): MembershipRequest | undefined {
    const r = this.#live.get(emailKey);
    return r ? toRequest(r) : undefined;
  }

  latest(emailKey: string): MembershipRequest | undefined {
    const r = this.#latest.get(emailKey);
    return r ? toRequest(r) : undefined;
  }

  update(id: string, from: readonly RequestState[], patch: RequestPatch): boolean {
    const columns: Record<keyof RequestPatch, string> = {
      state: 'state',
      verifiedAt: 'verified_at',
      decidedAt: 'decided_at',
      decidedBy: 'decided_by',
      decisionReason: 'decision_reason',
      inviteId: 'invite_id',
    };
    const sets: string[] = [];
    const params: Record<string, unknown> = { id };
    for (const [key, column] of Object.entries(columns) as [keyof RequestPatch, string][]) {
      if (!(key in patch)) continue;
      sets.push(`${column} = @${key}`);
      params[key] = patch[key] ?? null;
    }
    // Out of unverified/pending, the address is free for a new request.
    if (patch.state !== undefined && !LIVE.includes(patch.state)) sets.push('live_key = NULL');
    if (sets.length === 0) return false;
    const states = from.map((_, i) => `@from${i}`);
    from.forEach((s, i) => (params[`from${i}`] = s));
    // Column names come from the fixed table above, values are parameters.
    const sql = `UPDATE membership_requests SET ${sets.join(', ')} WHERE id = @id AND state IN (${states.join(', ')})`;
    return this.db.prepare(sql).run(params).changes === 1;
  }

  addEvent(e: Omit<RequestEvent, 'id'>): void {
    this.#addEvent.run({ requestId: e.requestId, at: e.at, type: e.type, actor: e.actor, reason: e.reason, data: e.data === null ? null : JSON.stringify(e.data) });
  }

  events(id: string): RequestEvent[] {
    return this.#events.all(id).map((r) => ({
      id: Number(r.id),
      requestId: r.request_id,
      at: Number(r.at),
      type: r.type as RequestEventType,
      actor: r.actor,
      reason: r.reason,
      data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>),
    }));
  }

  lastEventAt(id: string, type: RequestEventType): number | undefined {
    const r = this.#lastEvent.get(id, type);
    return r ? Number(r.at) : undefined;
  }

  list(filter: { state?: RequestState; limit?: number; after?: { createdAt: number; id: string } } = {}): MembershipRequest[] {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit ?? 100 };
    if (filter.state) {
      where.push('state = @state');
      params.state = filter.state;
    }
    if (filter.after) {
      where.push('(created_at > @afterAt OR (created_at = @afterAt AND id > @afterId))');
      params.afterAt = filter.after.createdAt;
      params.afterId = filter.after.id;
    }
    const sql = `SELECT * FROM membership_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id LIMIT @limit`;
    return (this.db.prepare(sql).all(params) as Row[]).map(toRequest);
  }

  count(state?: RequestState): number {
    return Number((state ? this.#countState.get(state) : this.#countAll.get())!.n);
  }

  fromAddress(ip: string, since: number): RequestWindow {
    const r = this.#fromAddress.get(ip, since)!;
    return { count: Number(r.n), oldest: num(r.oldest) };
  }

  since(since: number): RequestWindow {
    const r = this.#since.get(since)!;
    return { count: Number(r.n), oldest: num(r.oldest) };
  }

  staleUnverified(before: number, limit: number): MembershipRequest[] {
    return this.#stale.all(before, limit).map(toRequest);
  }

  stats(staleBefore: number): RequestStats {
    const states = Object.fromEntries(REQUEST_STATES.map((s) => [s, 0])) as Record<RequestState, number>;
    for (const r of this.#statesOf.all(staleBefore)) states[r.state as RequestState] = Number(r.n);
    const f = this.#funnel.get()!;
    return {
      states,
      funnel: { requested: Number(f.requested), verified: Number(f.verified ?? 0), approved: Number(f.approved ?? 0), joined: Number(f.joined ?? 0) },
    };
  }
}
