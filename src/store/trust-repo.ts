/**
 * Who vouched for whom, read from the records: an account made through the service is its spent
 * claim (the claim of its registration; those of invites accepted alongside it say `accepted with
 * …`), and the claim's invite names the inviter and the approver. Nothing is copied, so the tree
 * is exactly what the claims and invites say (migration 15 adds the index by username). Blocks are
 * the user_blocks rows, the latest of a JID deciding.
 */
import type { Window } from '../domain/limits';
import type { Account, Block, TrustStore } from '../domain/trust';
import { immediateTransaction, type Db } from './database';

interface AccountRow {
  username: string;
  invite_id: string | null;
  joined_at: number;
  door: string;
  inviter: string | null;
  approved_by: string | null;
}

/** The spent claims that made accounts (not the extra claims of invites accepted alongside). */
export const MADE = `c.state = 'spent' AND (c.outcome IS NULL OR c.outcome NOT LIKE 'accepted with %')`;

/**
 * The members of a subtree who have invited anyone (the others have neither invites nor accounts
 * below them): its root, and every account made from an invite of a member. Every column is one
 * of the tables' (PostgreSQL wants one collation in a recursive query, and its text columns are
 * "C", a parameter's are not). UNION (not UNION ALL) drops repeats, so even a cycle (a username made
 * again after its account was deleted) ends. `||` reads alike on SQLite and PostgreSQL.
 */
export const SUBTREE = `WITH RECURSIVE tree (jid) AS (
    SELECT inviter FROM invites WHERE inviter = @root
    UNION
    SELECT below.inviter FROM tree t
      JOIN invites i ON i.inviter = t.jid
      JOIN claims c ON c.invite_id = i.id
      JOIN invites below ON below.inviter = c.username || '@' || @host
     WHERE ${MADE}
  )`;

/** An account's claim, its invite's inviter and approver (`?`: the username). */
export const ACCOUNT_OF = `SELECT c.username, c.invite_id, c.settled_at AS joined_at, c.door, i.inviter, i.approved_by
  FROM claims c LEFT JOIN invites i ON i.id = c.invite_id
  WHERE c.username = ? AND ${MADE} ORDER BY c.settled_at DESC, c.id DESC LIMIT 1`;

/** The blocks in force: the latest row of each JID, when it blocks. */
export const BLOCKED = `SELECT b.jid, b.blocked, b.reason, b.actor, b.at FROM user_blocks b
  WHERE b.id = (SELECT max(l.id) FROM user_blocks l WHERE l.jid = b.jid) AND b.blocked = 1 ORDER BY b.jid`;

export class SqliteTrustStore implements TrustStore {
  readonly #account;
  readonly #accounts;
  readonly #subtree;
  readonly #openInTree;
  readonly #openInviteIds;
  readonly #block;
  readonly #addBlock;
  readonly #blocked;
  #tx: (<T>(fn: () => T) => T) | undefined;

  constructor(
    private readonly db: Db,
    private readonly host: string,
  ) {
    const columns = `c.username, c.invite_id, c.settled_at AS joined_at, c.door, i.inviter, i.approved_by
      FROM claims c LEFT JOIN invites i ON i.id = c.invite_id`;
    // The latest registration of the username: an account deleted on the server and made again is
    // the new one.
    this.#account = db.prepare<[string], AccountRow>(ACCOUNT_OF);
    this.#accounts = db.prepare<[], AccountRow>(`SELECT ${columns} WHERE ${MADE} ORDER BY c.settled_at, c.id`);
    this.#subtree = db.prepare<{ root: string; host: string }, { jid: string }>(`${SUBTREE} SELECT jid FROM tree`);
    this.#openInTree = db.prepare<{ root: string; host: string; now: number }, { count: number; frees: number | null }>(
      `${SUBTREE} SELECT count(*) AS count, min(expires_at) AS frees FROM invites
        WHERE inviter IN (SELECT jid FROM tree) AND state IN ('pending', 'open') AND expires_at > @now`,
    );
    this.#openInviteIds = db.prepare<{ root: string; host: string; now: number }, { id: string }>(
      `${SUBTREE} SELECT id FROM invites
        WHERE inviter IN (SELECT jid FROM tree) AND state IN ('pending', 'open') AND expires_at > @now ORDER BY created_at, id`,
    );
    this.#block = db.prepare<[string], { jid: string; blocked: number; reason: string | null; actor: string; at: number }>(
      'SELECT jid, blocked, reason, actor, at FROM user_blocks WHERE jid = ? ORDER BY id DESC LIMIT 1',
    );
    this.#addBlock = db.prepare('INSERT INTO user_blocks (jid, blocked, reason, actor, at) VALUES (@jid, @blocked, @reason, @actor, @at)');
    this.#blocked = db.prepare<[], { jid: string; blocked: number; reason: string | null; actor: string; at: number }>(BLOCKED);
  }

  transaction<T>(fn: () => T): T {
    return (this.#tx ??= immediateTransaction(this.db))(fn);
  }

  #toAccount(r: AccountRow): Account {
    return {
      jid: `${r.username}@${this.host}`,
      inviteId: r.invite_id,
      inviter: r.inviter,
      approvedBy: r.approved_by,
      joinedAt: Number(r.joined_at),
      door: r.door,
    };
  }

  accountOf(jid: string): Account | undefined {
    const suffix = `@${this.host}`;
    if (!jid.endsWith(suffix)) return undefined;
    const row = this.#account.get(jid.slice(0, -suffix.length));
    return row ? this.#toAccount(row) : undefined;
  }

  accounts(): Account[] {
    return this.#accounts.all().map((r) => this.#toAccount(r));
  }

  subtree(root: string): string[] {
    return this.#subtree.all({ root, host: this.host }).map((r) => r.jid);
  }

  openInTree(root: string, now: number): Window {
    const w = this.#openInTree.get({ root, host: this.host, now })!;
    return { count: Number(w.count), frees: w.frees === null ? null : Number(w.frees) };
  }

  openInviteIdsInTree(root: string, now: number): string[] {
    return this.#openInviteIds.all({ root, host: this.host, now }).map((r) => r.id);
  }

  blockOf(jid: string): Block | undefined {
    const row = this.#block.get(jid);
    return row && row.blocked === 1 ? { jid: row.jid, reason: row.reason, actor: row.actor, at: Number(row.at) } : undefined;
  }

  blocked(): Block[] {
    return this.#blocked.all().map((row) => ({ jid: row.jid, reason: row.reason, actor: row.actor, at: Number(row.at) }));
  }

  addBlock(entry: { jid: string; blocked: boolean; reason: string | null; actor: string; at: number }): void {
    this.#addBlock.run({ ...entry, blocked: entry.blocked ? 1 : 0 });
  }
}
