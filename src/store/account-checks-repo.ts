/**
 * The account_checks table (schema.sql, migration 21), behind the domain's AccountCheckStore port
 * (src/domain/account-checks.ts), in SQL both engines run. Taking a question, answering it and
 * closing it are each one conditional UPDATE, exactly-once on its own: SQLite runs one writer at a
 * time; PostgreSQL locks the row and evaluates the WHERE again on its latest version, so of two
 * instances racing for one question one updates it and the other changes nothing.
 */
import type { AccountAnswer, AccountCheck, AccountCheckStore } from '../domain/account-checks';
import type { Db } from './database';

interface Row {
  id: number;
  username: string;
  asked_by: string;
  asked_at: number;
  wait_until: number;
  taken_by: string | null;
  taken_at: number | null;
  answer: string | null;
  reason: string | null;
  answered_by: string | null;
  answered_at: number | null;
}

const num = (v: number | null) => (v === null ? null : Number(v));

export class SqliteAccountCheckStore implements AccountCheckStore {
  readonly #insert;
  readonly #get;
  readonly #waiting;
  readonly #take;
  readonly #answer;
  readonly #close;

  constructor(db: Db) {
    this.#insert = db.prepare<{ username: string; askedBy: string; askedAt: number; waitUntil: number }, { id: number }>(
      `INSERT INTO account_checks (username, asked_by, asked_at, wait_until) VALUES (@username, @askedBy, @askedAt, @waitUntil) RETURNING id`,
    );
    this.#get = db.prepare<[number], Row>('SELECT * FROM account_checks WHERE id = ?');
    this.#waiting = db.prepare<[number, number], { id: number }>(
      'SELECT id FROM account_checks WHERE answer IS NULL AND taken_by IS NULL AND wait_until > ? ORDER BY id LIMIT ?',
    );
    this.#take = db.prepare<{ id: number; by: string; now: number }>(
      'UPDATE account_checks SET taken_by = @by, taken_at = @now WHERE id = @id AND taken_by IS NULL AND answer IS NULL AND wait_until > @now',
    );
    this.#answer = db.prepare<{ id: number; answer: string; reason: string | null; by: string; at: number }>(
      `UPDATE account_checks SET answer = @answer, reason = @reason, answered_by = @by, answered_at = @at
        WHERE id = @id AND answer IS NULL AND taken_by = @by`,
    );
    this.#close = db.prepare<{ id: number; by: string; at: number }>(
      `UPDATE account_checks SET answer = 'unanswered', answered_by = @by, answered_at = @at WHERE id = @id AND answer IS NULL`,
    );
  }

  insert(q: { username: string; askedBy: string; askedAt: number; waitUntil: number }): number {
    return Number(this.#insert.get(q)!.id);
  }

  get(id: number): AccountCheck | undefined {
    const r = this.#get.get(id);
    if (!r) return undefined;
    return {
      id: Number(r.id),
      username: r.username,
      askedBy: r.asked_by,
      askedAt: Number(r.asked_at),
      waitUntil: Number(r.wait_until),
      takenBy: r.taken_by,
      takenAt: num(r.taken_at),
      answer: r.answer as AccountAnswer | null,
      reason: r.reason,
      answeredBy: r.answered_by,
      answeredAt: num(r.answered_at),
    };
  }

  waiting(now: number, limit: number): number[] {
    return this.#waiting.all(now, limit).map((r) => Number(r.id));
  }

  take(id: number, by: string, now: number): boolean {
    return this.#take.run({ id, by, now }).changes === 1;
  }

  answer(id: number, answer: 'exists' | 'missing' | 'unclear', reason: string | null, by: string, at: number): boolean {
    return this.#answer.run({ id, answer, reason, by, at }).changes === 1;
  }

  close(id: number, by: string, at: number): boolean {
    return this.#close.run({ id, by, at }).changes === 1;
  }
}
