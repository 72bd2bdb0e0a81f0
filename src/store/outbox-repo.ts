/**
 * The outbox table: notices become rows inside the transaction that causes them; the worker moves
 * them queued → sending → sent or failed. Rows are never deleted: the table is also the log of what
 * was sent to whom, and when.
 *
 * Several instances share it (migration 14). Taking due rows is one write transaction, so each row
 * goes to `sending` for one instance, whose id it records (`claimed_by`); only that instance records
 * the outcome (sent, retry, failed). A row whose claimer is no longer alive (its presence in
 * job_leases has ended, store/leases-repo.ts) is taken back to `queued` by any other instance and
 * sent again: at least once, as after a crash. An instance that stalls past its presence's lifetime
 * (5 s) may thus see its row sent a second time by another; its own outcome is then not recorded.
 */
import { randomBytes } from 'node:crypto';
import { secureRandomBytes } from '../domain/random';
import type { Channel, Notice, NoticeKind, NoticeParams, NoticeQueue } from '../domain/notices';
import type { Db } from './database';
import { PRESENCE } from './leases-repo';

const CHANNELS: readonly Channel[] = ['xmpp', 'email', 'webhook'];

export type OutboxState = 'queued' | 'sending' | 'sent' | 'failed';

export interface OutboxRow {
  id: number;
  channel: Channel;
  kind: NoticeKind;
  recipient: string;
  inviteIds: string[];
  params: NoticeParams;
  state: OutboxState;
  attempts: number;
  lastError: string | null;
  notBefore: number;
  createdAt: number;
  updatedAt: number;
  sentAt: number | null;
  messageId: string;
  /** the instance that last took it to send it */
  claimedBy: string | null;
}

interface Row {
  id: number;
  channel: string;
  kind: string;
  recipient: string;
  invite_ids: string;
  params: string;
  state: string;
  attempts: number;
  last_error: string | null;
  not_before: number;
  created_at: number;
  updated_at: number;
  sent_at: number | null;
  message_id: string;
  claimed_by: string | null;
}

function toRow(r: Row): OutboxRow {
  return {
    id: r.id,
    channel: r.channel as Channel,
    kind: r.kind as NoticeKind,
    recipient: r.recipient,
    inviteIds: JSON.parse(r.invite_ids) as string[],
    params: JSON.parse(r.params) as NoticeParams,
    state: r.state as OutboxState,
    attempts: r.attempts,
    lastError: r.last_error,
    notBefore: r.not_before,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    sentAt: r.sent_at,
    messageId: r.message_id,
    claimedBy: r.claimed_by,
  };
}

export interface OutboxOptions {
  clock?: () => number;
  /** `pending` notices to one admin within this window are folded into one (default 30 s) */
  foldWindowMs?: number;
  /** the domain part of Message-IDs */
  idDomain?: string;
  /**
   * the instance taking rows to send them (its presence is `instance:<id>` in job_leases); default
   * a random id of this object's own, which no presence names
   */
  instance?: string;
}

/** Most invites one folded `pending` message names (about 20 KB of stanza); it counts the rest. */
export const MAX_FOLDED = 100;

export class SqliteOutbox implements NoticeQueue {
  /** Called after every notice is recorded (the running service wakes its worker with it). */
  onEnqueue: (() => void) | undefined;
  readonly #clock: () => number;
  readonly #fold: number;
  readonly #idDomain: string;
  /** this instance's id, recorded in the rows it takes */
  readonly instance: string;
  readonly #insert;
  readonly #lastPending;
  readonly #appendIds;
  readonly #appendParams;
  readonly #due;
  readonly #markSending;
  readonly #markSent;
  readonly #markRetry;
  readonly #markFailed;
  readonly #anyDue;
  readonly #orphaned;
  readonly #requeue;
  readonly #get;
  readonly #retry;
  readonly #list;
  readonly #depth;

  constructor(
    private readonly db: Db,
    opts: OutboxOptions = {},
  ) {
    this.#clock = opts.clock ?? Date.now;
    this.#fold = opts.foldWindowMs ?? 30_000;
    this.#idDomain = opts.idDomain ?? 'xmpp-invites.invalid';
    this.instance = opts.instance ?? randomBytes(8).toString('hex');
    this.#insert = db.prepare(`INSERT INTO outbox (channel, kind, recipient, invite_ids, params, state, not_before, created_at, updated_at, message_id)
      VALUES (@channel, @kind, @recipient, @inviteIds, @params, 'queued', @notBefore, @now, @now, @messageId)`);
    // Newest first in the order of the outbox_recipient index (recipient, kind, created_at, then the
    // rowid): one index step, however many notices the admin has had. `ORDER BY id` alone made
    // SQLite read and sort every pending notice the admin ever got, at each new invite.
    this.#lastPending = db.prepare<[string, string, string], Row>(
      `SELECT * FROM outbox WHERE recipient = ? AND channel = ? AND kind = ? ORDER BY created_at DESC, id DESC LIMIT 1`,
    );
    this.#appendParams = db.prepare(`UPDATE outbox SET params = @params, updated_at = @now WHERE id = @id AND state = 'queued'`);
    this.#appendIds = db.prepare(`UPDATE outbox SET invite_ids = @inviteIds, updated_at = @now WHERE id = @id AND state = 'queued'`);
    this.#due = db.prepare<[number, number], Row>(`SELECT * FROM outbox WHERE state = 'queued' AND not_before <= ? ORDER BY not_before, id LIMIT ?`);
    this.#anyDue = db.prepare<[number], { one: number }>(`SELECT 1 AS one FROM outbox WHERE state = 'queued' AND not_before <= ? LIMIT 1`);
    this.#markSending = db.prepare(`UPDATE outbox SET state = 'sending', claimed_by = @me, updated_at = @now WHERE id = @id AND state = 'queued'`);
    // The outcome is recorded only by the instance that took the row, and only while it holds it.
    const mine = `id = @id AND state = 'sending' AND claimed_by = @me`;
    this.#markSent = db.prepare(`UPDATE outbox SET state = 'sent', sent_at = @now, updated_at = @now, attempts = attempts + 1, last_error = NULL WHERE ${mine}`);
    this.#markRetry = db.prepare(`UPDATE outbox SET state = 'queued', attempts = attempts + @counted, last_error = @error, not_before = @notBefore, updated_at = @now WHERE ${mine}`);
    this.#markFailed = db.prepare(`UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = @error, updated_at = @now WHERE ${mine}`);
    // Rows `sending` for no live instance: no claimer (before migration 14), or one whose presence
    // has ended; with @own, this instance's own too (at start: none of them is being sent). The few
    // `sending` rows are found through outbox_due, each claimer's presence through its key.
    const orphaned = `state = 'sending' AND (claimed_by IS NULL OR (@own = 1 AND claimed_by = @me) OR (claimed_by <> @me
        AND NOT EXISTS (SELECT 1 FROM job_leases WHERE job = @presence || outbox.claimed_by AND held_until > @now)))`;
    this.#orphaned = db.prepare<[{ me: string; own: number; presence: string; now: number }], { one: number }>(`SELECT 1 AS one FROM outbox WHERE ${orphaned} LIMIT 1`);
    this.#requeue = db.prepare<[{ me: string; own: number; presence: string; now: number }]>(`UPDATE outbox SET state = 'queued', updated_at = @now WHERE ${orphaned}`);
    this.#get = db.prepare<[number], Row>('SELECT * FROM outbox WHERE id = ?');
    this.#retry = db.prepare(`UPDATE outbox SET state = 'queued', not_before = @now, attempts = 0, updated_at = @now WHERE id = @id AND state = 'failed'`);
    // The rows still to send are few and found through outbox_due (state first).
    this.#depth = db.prepare<[], { channel: string; n: number; oldest: number | null }>(
      `SELECT channel, count(*) AS n, min(created_at) AS oldest FROM outbox WHERE state IN ('queued', 'sending') GROUP BY channel`,
    );
    this.#list = db.prepare<[{ state: string | null; channel: string | null; limit: number }], Row>(
      `SELECT * FROM outbox WHERE (CAST(@state AS TEXT) IS NULL OR state = @state) AND (CAST(@channel AS TEXT) IS NULL OR channel = @channel) ORDER BY id DESC LIMIT @limit`,
    );
  }

  enqueue(notice: Notice): void {
    const now = this.#clock();
    let notBefore = now;
    if (notice.kind === 'pending') {
      // The first pending notice goes at once; later ones within the window are folded into one
      // message sent when the window ends, so admins are not flooded. It names at most MAX_FOLDED
      // invites (appending rewrites the row: an unbounded list would make each invite of a burst
      // cost more than the one before, and the message too large for the server to accept); past
      // that, it says how many wait in all, counted when it leaves (outbox/render.ts).
      const last = this.#lastPending.get(notice.recipient, notice.channel, 'pending');
      const folded = last && last.state === 'queued' && last.not_before > now ? (JSON.parse(last.invite_ids) as string[]) : undefined;
      if (last && folded) {
        // Nothing to wake the worker for: the row is not due before the window ends.
        if (folded.length < MAX_FOLDED) {
          const ids = [...new Set([...folded, ...notice.inviteIds])].slice(0, MAX_FOLDED);
          this.#appendIds.run({ id: last.id, inviteIds: JSON.stringify(ids), now });
        }
        return;
      }
      if (last && now < last.not_before + this.#fold) notBefore = last.not_before + this.#fold;
    } else if (notice.kind === 'request') {
      // Membership requests are folded as pending invites are; their ids are in params.requests.
      const last = this.#lastPending.get(notice.recipient, notice.channel, 'request');
      if (last && last.state === 'queued' && last.not_before > now) {
        const params = JSON.parse(last.params) as NoticeParams;
        const ids = typeof params.requests === 'string' ? params.requests.split(' ').filter(Boolean) : [];
        if (ids.length < MAX_FOLDED) {
          const added = typeof notice.params?.requests === 'string' ? notice.params.requests.split(' ') : [];
          params.requests = [...new Set([...ids, ...added])].slice(0, MAX_FOLDED).join(' ');
          this.#appendParams.run({ id: last.id, params: JSON.stringify(params), now });
        }
        return;
      }
      if (last && now < last.not_before + this.#fold) notBefore = last.not_before + this.#fold;
    }
    this.#insert.run({
      channel: notice.channel,
      kind: notice.kind,
      recipient: notice.recipient,
      inviteIds: JSON.stringify(notice.inviteIds),
      params: JSON.stringify(notice.params ?? {}),
      notBefore,
      now,
      messageId: `${secureRandomBytes(12).toString('hex')}@${this.#idDomain}`,
    });
    this.onEnqueue?.();
  }

  /** Takes up to `limit` due rows, moving them to `sending` in one transaction. */
  claimDue(limit: number): OutboxRow[] {
    return this.db
      .transaction(() => {
        const now = this.#clock();
        const rows = this.#due.all(now, limit);
        return rows
          .filter((r) => this.#markSending.run({ id: r.id, me: this.instance, now }).changes === 1)
          .map((r) => toRow({ ...r, state: 'sending', claimed_by: this.instance }));
      })
      .immediate();
  }

  /** Whether a row is due now (a read: no write lock is asked for when nothing is). */
  anyDue(): boolean {
    return this.#anyDue.get(this.#clock()) !== undefined;
  }

  /** Each mark* is recorded only while this instance holds the row; false when it no longer does. */
  markSent(id: number): boolean {
    return this.#markSent.run({ id, me: this.instance, now: this.#clock() }).changes === 1;
  }

  /** Back to the queue; `counted` false when the failure was not the message's (not connected). */
  markRetry(id: number, error: string, notBefore: number, counted = true): boolean {
    return this.#markRetry.run({ id, me: this.instance, error, notBefore, counted: counted ? 1 : 0, now: this.#clock() }).changes === 1;
  }

  markFailed(id: number, error: string): boolean {
    return this.#markFailed.run({ id, me: this.instance, error, now: this.#clock() }).changes === 1;
  }

  /**
   * Takes back to `queued` the rows left `sending` by instances no longer alive (or by none), to be
   * sent again (at least once); with `own`, this instance's too (at start, when it sends nothing
   * yet). A read first, so that the usual answer, none, takes no write lock. Returns how many.
   */
  requeueOrphaned(own = false): number {
    const params = { me: this.instance, own: own ? 1 : 0, presence: PRESENCE, now: this.#clock() };
    if (this.#orphaned.get(params) === undefined) return 0;
    return this.#requeue.run(params).changes;
  }

  get(id: number): OutboxRow | undefined {
    const r = this.#get.get(id);
    return r ? toRow(r) : undefined;
  }

  /** A failed row goes back to the queue with its attempts reset. */
  retry(id: number): boolean {
    return this.#retry.run({ id, now: this.#clock() }).changes === 1;
  }

  /** Rows queued or being sent, per channel (every channel, 0 when none), and when the oldest was queued. */
  depth(): { channel: Channel; count: number; oldestAt: number | null }[] {
    const rows = new Map(this.#depth.all().map((r) => [r.channel, r]));
    return CHANNELS.map((channel) => {
      const r = rows.get(channel);
      return { channel, count: Number(r?.n ?? 0), oldestAt: r?.oldest == null ? null : Number(r.oldest) };
    });
  }

  list(opts: { state?: OutboxState; channel?: Channel; limit?: number } = {}): OutboxRow[] {
    return this.#list.all({ state: opts.state ?? null, channel: opts.channel ?? null, limit: opts.limit ?? 100 }).map(toRow);
  }
}
