/**
 * The invite_requests and subscriptions tables (schema.sql, migration 5): the requests already
 * processed, behind the domain's RequestStore port, and the component's record of presence
 * subscriptions. Every statement is prepared.
 */
import type { InviteeOutcome, RequestStore } from '../domain/requests';
import { NO_SUBSCRIPTION, type SubscriptionRecord, type SubscriptionState, type SubscriptionStore } from '../domain/subscriptions';
import { immediateTransaction, type Db } from './database';

export class SqliteRequestStore implements RequestStore {
  readonly #seen;
  readonly #insert;
  readonly #result;

  constructor(private readonly db: Db) {
    this.#seen = db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM invite_requests WHERE sender = ? AND request_key = ?');
    // A primary-key conflict inserts nothing: the caller treats it as a replay.
    this.#insert = db.prepare(
      `INSERT INTO invite_requests (sender, request_key, created_at, result) VALUES (@sender, @key, @at, @result)
       ON CONFLICT (sender, request_key) DO NOTHING`,
    );
    this.#result = db.prepare<[string, string], { result: string }>('SELECT result FROM invite_requests WHERE sender = ? AND request_key = ?');
  }

  /** BEGIN IMMEDIATE; better-sqlite3 turns the InviteService's own transactions inside it into savepoints. */
  #tx: (<T>(fn: () => T) => T) | undefined;

  transaction<T>(fn: () => T): T {
    return (this.#tx ??= immediateTransaction(this.db))(fn);
  }

  seen(sender: string, key: string): boolean {
    return this.#seen.get(sender, key)!.n > 0;
  }

  record(sender: string, key: string, at: number, outcomes: InviteeOutcome[]): boolean {
    return this.#insert.run({ sender, key, at, result: JSON.stringify(outcomes) }).changes === 1;
  }

  /** The outcomes sent back for a request (undefined when it was never processed). */
  outcomes(sender: string, key: string): InviteeOutcome[] | undefined {
    const row = this.#result.get(sender, key);
    return row ? (JSON.parse(row.result) as InviteeOutcome[]) : undefined;
  }
}

interface SubscriptionRow {
  subscription: string;
  pending_out: number;
}

export class SqliteSubscriptions implements SubscriptionStore {
  readonly #get;
  readonly #put;

  constructor(db: Db) {
    this.#get = db.prepare<[string], SubscriptionRow>('SELECT subscription, pending_out FROM subscriptions WHERE jid = ?');
    this.#put = db.prepare(
      `INSERT INTO subscriptions (jid, subscription, pending_out, updated_at) VALUES (@jid, @subscription, @pendingOut, @at)
       ON CONFLICT (jid) DO UPDATE SET subscription = excluded.subscription, pending_out = excluded.pending_out, updated_at = excluded.updated_at`,
    );
  }

  /** The record of a bare JID; none when there is none. */
  get(jid: string): SubscriptionRecord {
    const row = this.#get.get(jid);
    return row ? { subscription: row.subscription as SubscriptionState, pendingOut: row.pending_out === 1 } : NO_SUBSCRIPTION;
  }

  put(jid: string, record: SubscriptionRecord, at: number): void {
    this.#put.run({ jid, subscription: record.subscription, pendingOut: record.pendingOut ? 1 : 0, at });
  }
}
