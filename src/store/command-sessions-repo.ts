/**
 * The sessions of ad-hoc commands in the store (schema.sql migration 13), shared by every instance
 * on the database: a stage may land on any of them. The rules are those of
 * domain/command-sessions.ts, enforced here in one immediate transaction per write, so that a cap is
 * checked and acted on while no other connection writes. The counts behind the caps are kept in
 * one row (command_session_counts) rather than counted: counting 20,000 ended ids took 0.65 ms
 * (measured on a busy 2-core machine), more than a whole New Invite (0.35 ms, docs/performance.md).
 *
 * A session that ends at its first stage (New Invite) is never written here: its id carries its
 * own proof of having ended (src/xmpp/adhoc.ts).
 */
import {
  endedLimits,
  checkState,
  type CommandSession,
  type CommandSessions,
  type SessionLimits,
  type SessionRef,
} from '../domain/command-sessions';
import { immediateTransaction, type Db } from './database';
import { NO_LIMIT } from './sql';

interface Row {
  id: string;
  node: string;
  owner: string;
  bare: string;
  expires_at: number | null;
  state: string | null;
  actions: string | null;
  offered: string | null;
}

/** The counts as a write found them, changed as it goes and written back at its end. */
interface Counts {
  open: number;
  ended: number;
  seq: number;
}

export class SqliteCommandSessions implements CommandSessions {
  readonly #tx: <T>(fn: () => T) => T;
  readonly #limits: SessionLimits;
  readonly #ended: { perJid: number; max: number };
  readonly #find;
  readonly #counts;
  readonly #writeCounts;
  readonly #due;
  readonly #insertOpen;
  readonly #updateOpen;
  readonly #insertEnded;
  readonly #endOpen;
  readonly #delete;
  readonly #openOf;
  readonly #victimBare;
  readonly #endedBeyond;
  readonly #oldestEnded;

  constructor(db: Db, limits: SessionLimits) {
    this.#tx = immediateTransaction(db);
    this.#limits = limits;
    this.#ended = endedLimits(limits);
    this.#find = db.prepare<[string], Row>('SELECT id, node, owner, bare, expires_at, state, actions, offered FROM command_sessions WHERE id = ?');
    this.#counts = db.prepare<[], { open: number; ended: number; seq: number }>(
      'SELECT open_count AS open, ended_count AS ended, last_seq AS seq FROM command_session_counts WHERE id = 1',
    );
    this.#writeCounts = db.prepare<[number, number, number]>(
      `INSERT INTO command_session_counts (id, open_count, ended_count, last_seq) VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET open_count = excluded.open_count, ended_count = excluded.ended_count, last_seq = excluded.last_seq`,
    );
    this.#due = db.prepare<[number], Row>(
      'SELECT id, node, owner, bare FROM command_sessions WHERE expires_at <= ? ORDER BY expires_at, seq',
    );
    this.#insertOpen = db.prepare<[string, string, string, string, number, number, string | null, string, string]>(
      `INSERT INTO command_sessions (id, node, owner, bare, seq, expires_at, state, actions, offered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#updateOpen = db.prepare<[number, number, string | null, string, string, string]>(
      `UPDATE command_sessions SET seq = ?, expires_at = ?, state = ?, actions = ?, offered = ? WHERE id = ? AND expires_at IS NOT NULL`,
    );
    this.#insertEnded = db.prepare<[string, string, string, string, number]>(
      'INSERT INTO command_sessions (id, node, owner, bare, seq) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
    );
    this.#endOpen = db.prepare<[number, string]>(
      'UPDATE command_sessions SET seq = ?, expires_at = NULL, state = NULL, actions = NULL, offered = NULL WHERE id = ? AND expires_at IS NOT NULL',
    );
    this.#delete = db.prepare<[string]>('DELETE FROM command_sessions WHERE id = ?');
    this.#openOf = db.prepare<[string, string], SessionRef>(
      'SELECT id, node, owner, bare FROM command_sessions WHERE bare = ? AND expires_at IS NOT NULL AND id <> ? ORDER BY seq',
    );
    // The bare JID holding the most open sessions; among equals the requester, then the one whose
    // oldest session is the newest (MemorySessions#victim). `id <> ?`: the session being saved.
    this.#victimBare = db.prepare<[string, string], { bare: string }>(
      `SELECT bare FROM command_sessions WHERE expires_at IS NOT NULL AND id <> ?
        GROUP BY bare ORDER BY count(*) DESC, bare = ? DESC, min(seq) DESC LIMIT 1`,
    );
    this.#endedBeyond = db.prepare<[string, number], { id: string }>(
      `SELECT id FROM command_sessions WHERE bare = ? AND expires_at IS NULL ORDER BY seq DESC LIMIT ${NO_LIMIT} OFFSET ?`,
    );
    this.#oldestEnded = db.prepare<[], { id: string }>('SELECT id FROM command_sessions WHERE expires_at IS NULL ORDER BY seq LIMIT 1');
  }

  sweep(now: number): void {
    // Read first, outside a transaction: most stanzas find nothing due and write nothing.
    if (this.#due.get(now) === undefined) return;
    this.#write((c) => {
      for (const row of this.#due.all(now)) this.#endIn(c, row);
    });
  }

  find(id: string): CommandSession | 'ended' | undefined {
    const row = this.#find.get(id);
    if (!row) return undefined;
    if (row.expires_at === null) return 'ended';
    return {
      id: row.id,
      node: row.node,
      owner: row.owner,
      bare: row.bare,
      state: row.state === null ? undefined : JSON.parse(row.state),
      actions: JSON.parse(row.actions!),
      expiresAt: row.expires_at,
      offered: JSON.parse(row.offered!),
    };
  }

  save(session: CommandSession): void {
    checkState(session);
    const stateText = session.state === undefined ? null : JSON.stringify(session.state);
    this.#write((c) => {
      const row = this.#find.get(session.id);
      // Ended meanwhile (cancelled, timed out or pushed out by another instance): it stays ended.
      if (row && row.expires_at === null) return;
      if (row) c.open--;
      // Each user's sessions are capped on their own: one user's many resources evict only theirs.
      const mine = this.#openOf.all(session.bare, session.id);
      if (mine.length >= this.#limits.perJid) this.#endIn(c, mine[0]);
      if (c.open >= this.#limits.max) {
        const bare = this.#victimBare.get(session.id, session.bare)!.bare;
        this.#endIn(c, this.#openOf.get(bare, session.id)!);
      }
      const args = [session.expiresAt, stateText, JSON.stringify(session.actions), JSON.stringify(session.offered)] as const;
      if (row) this.#updateOpen.run(++c.seq, ...args, session.id);
      else this.#insertOpen.run(session.id, session.node, session.owner, session.bare, ++c.seq, ...args);
      c.open++;
    });
  }

  end(ref: SessionRef): void {
    this.#write((c) => this.#endIn(c, ref));
  }

  openCount(): number {
    return this.#counts.get()?.open ?? 0;
  }

  #write(fn: (c: Counts) => void): void {
    this.#tx(() => this.#counted(fn));
  }

  /** Runs `fn` on the counts and writes them back if they changed (inside the caller's transaction). */
  #counted(fn: (c: Counts) => void): void {
    const c: Counts = { ...(this.#counts.get() ?? { open: 0, ended: 0, seq: 0 }) };
    const before = { ...c };
    fn(c);
    if (c.open !== before.open || c.ended !== before.ended || c.seq !== before.seq) this.#writeCounts.run(c.open, c.ended, c.seq);
  }

  /** Ends a session (open, or never saved) and forgets beyond the caps. */
  #endIn(c: Counts, ref: SessionRef): void {
    if (this.#endOpen.run(++c.seq, ref.id).changes === 1) {
      c.open--;
    } else if (this.#insertEnded.run(ref.id, ref.node, ref.owner, ref.bare, c.seq).changes === 0) {
      c.seq--;
      return; // ended already
    }
    c.ended++;
    // Each user remembers their own last ended sessions; the table as a whole stays bounded too.
    for (const { id } of this.#endedBeyond.all(ref.bare, this.#ended.perJid)) {
      this.#delete.run(id);
      c.ended--;
    }
    while (c.ended > this.#ended.max) {
      this.#delete.run(this.#oldestEnded.get()!.id);
      c.ended--;
    }
  }
}
