/**
 * The password_resets and password_reset_events tables (schema.sql, migration 16), behind the
 * domain's ResetStore port (src/domain/resets.ts). A claim is one conditional UPDATE.
 */
import type { PasswordReset, ResetEvent, ResetEventType, ResetState, ResetStore } from '../domain/resets';
import { immediateTransaction, type Db } from './database';

interface Row {
  id: string;
  username: string;
  state: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
}

interface EventRow {
  id: number;
  reset_id: string;
  at: number;
  type: string;
  actor: string;
  reason: string | null;
  data: string | null;
}

function toReset(r: Row): PasswordReset {
  return {
    id: r.id,
    username: r.username,
    state: r.state as ResetState,
    createdBy: r.created_by,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
  };
}

export class SqliteResetStore implements ResetStore {
  readonly #insert;
  readonly #get;
  readonly #move;
  readonly #addEvent;
  readonly #events;
  #tx: (<T>(fn: () => T) => T) | undefined;

  constructor(private readonly db: Db) {
    this.#insert = db.prepare(
      `INSERT INTO password_resets (id, username, state, created_by, created_at, expires_at)
       VALUES (@id, @username, @state, @createdBy, @createdAt, @expiresAt) ON CONFLICT DO NOTHING`,
    );
    this.#get = db.prepare<[string], Row>('SELECT * FROM password_resets WHERE id = ?');
    this.#move = db.prepare(
      `UPDATE password_resets SET state = @to, ended_at = CASE WHEN @end = 1 THEN @at ELSE ended_at END
       WHERE id = @id AND state = @from AND (CAST(@unexpiredAt AS BIGINT) IS NULL OR expires_at > @unexpiredAt)`,
    );
    this.#addEvent = db.prepare(
      'INSERT INTO password_reset_events (reset_id, at, type, actor, reason, data) VALUES (@resetId, @at, @type, @actor, @reason, @data)',
    );
    this.#events = db.prepare<[string], EventRow>('SELECT * FROM password_reset_events WHERE reset_id = ? ORDER BY id');
  }

  transaction<T>(fn: () => T): T {
    return (this.#tx ??= immediateTransaction(this.db))(fn);
  }

  insert(r: PasswordReset): boolean {
    return this.#insert.run({ id: r.id, username: r.username, state: r.state, createdBy: r.createdBy, createdAt: r.createdAt, expiresAt: r.expiresAt }).changes === 1;
  }

  get(id: string): PasswordReset | undefined {
    const r = this.#get.get(id);
    return r ? toReset(r) : undefined;
  }

  move(id: string, from: ResetState, to: ResetState, at: number, opts: { unexpiredAt?: number; end?: boolean } = {}): boolean {
    return this.#move.run({ id, from, to, at, end: opts.end ? 1 : 0, unexpiredAt: opts.unexpiredAt ?? null }).changes === 1;
  }

  addEvent(e: Omit<ResetEvent, 'id'>): void {
    this.#addEvent.run({ resetId: e.resetId, at: e.at, type: e.type, actor: e.actor, reason: e.reason, data: e.data === null ? null : JSON.stringify(e.data) });
  }

  events(id: string): ResetEvent[] {
    return this.#events.all(id).map((r) => ({
      id: Number(r.id),
      resetId: r.reset_id,
      at: Number(r.at),
      type: r.type as ResetEventType,
      actor: r.actor,
      reason: r.reason,
      data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>),
    }));
  }
}
