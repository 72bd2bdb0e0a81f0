/** The web console's sign-ins and sessions (migration 15) behind the domain's ConsoleStore port. */
import type { ConsoleStore, LoginRow, SessionEnd, SessionRow } from '../domain/console-auth';
import { immediateTransaction, type Db } from './database';

interface LoginDbRow {
  id: string;
  jid: string;
  address: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

interface SessionDbRow {
  id_hash: string;
  jid: string;
  login_id: string;
  created_at: number;
  seen_at: number;
  expires_at: number;
  ended_at: number | null;
  ended_why: string | null;
}

export class SqliteConsoleStore implements ConsoleStore {
  readonly #countByJid;
  readonly #countByAddress;
  readonly #insertLogin;
  readonly #getLogin;
  readonly #useLogin;
  readonly #insertSession;
  readonly #getSession;
  readonly #touch;
  readonly #end;
  readonly #endAll;
  readonly #tx: <T>(fn: () => T) => T;

  constructor(db: Db) {
    this.#tx = immediateTransaction(db);
    this.#countByJid = db.prepare('SELECT count(*) AS n FROM console_logins WHERE jid = ? AND created_at > ?');
    this.#countByAddress = db.prepare('SELECT count(*) AS n FROM console_logins WHERE address = ? AND created_at > ?');
    this.#insertLogin = db.prepare(`INSERT INTO console_logins (id, jid, address, created_at, expires_at, used_at)
      VALUES (@id, @jid, @address, @createdAt, @expiresAt, NULL)`);
    this.#getLogin = db.prepare('SELECT * FROM console_logins WHERE id = ?');
    this.#useLogin = db.prepare('UPDATE console_logins SET used_at = @at WHERE id = @id AND used_at IS NULL AND expires_at > @at');
    this.#insertSession = db.prepare(`INSERT INTO console_sessions (id_hash, jid, login_id, created_at, seen_at, expires_at, ended_at, ended_why)
      VALUES (@idHash, @jid, @loginId, @createdAt, @seenAt, @expiresAt, NULL, NULL)`);
    this.#getSession = db.prepare('SELECT * FROM console_sessions WHERE id_hash = ?');
    this.#touch = db.prepare('UPDATE console_sessions SET seen_at = @at WHERE id_hash = @idHash AND ended_at IS NULL AND seen_at < @at');
    this.#end = db.prepare('UPDATE console_sessions SET ended_at = @at, ended_why = @why WHERE id_hash = @idHash AND ended_at IS NULL');
    this.#endAll = db.prepare('UPDATE console_sessions SET ended_at = @at, ended_why = @why WHERE jid = @jid AND ended_at IS NULL');
  }

  transaction<T>(fn: () => T): T {
    return this.#tx(fn);
  }

  countLogins(by: { jid: string } | { address: string }, since: number): number {
    const row = ('jid' in by ? this.#countByJid.get(by.jid, since) : this.#countByAddress.get(by.address, since)) as { n: number | string };
    return Number(row.n);
  }

  insertLogin(row: LoginRow): void {
    this.#insertLogin.run({ id: row.id, jid: row.jid, address: row.address, createdAt: row.createdAt, expiresAt: row.expiresAt });
  }

  getLogin(id: string): LoginRow | undefined {
    const r = this.#getLogin.get(id) as LoginDbRow | undefined;
    return r && { id: r.id, jid: r.jid, address: r.address, createdAt: Number(r.created_at), expiresAt: Number(r.expires_at), usedAt: r.used_at === null ? null : Number(r.used_at) };
  }

  useLogin(id: string, at: number): boolean {
    return this.#useLogin.run({ id, at }).changes === 1;
  }

  insertSession(row: SessionRow): void {
    this.#insertSession.run({ idHash: row.idHash, jid: row.jid, loginId: row.loginId, createdAt: row.createdAt, seenAt: row.seenAt, expiresAt: row.expiresAt });
  }

  getSession(idHash: string): SessionRow | undefined {
    const r = this.#getSession.get(idHash) as SessionDbRow | undefined;
    return (
      r && {
        idHash: r.id_hash,
        jid: r.jid,
        loginId: r.login_id,
        createdAt: Number(r.created_at),
        seenAt: Number(r.seen_at),
        expiresAt: Number(r.expires_at),
        endedAt: r.ended_at === null ? null : Number(r.ended_at),
        endedWhy: r.ended_why,
      }
    );
  }

  touchSession(idHash: string, at: number): void {
    this.#touch.run({ idHash, at });
  }

  endSession(idHash: string, at: number, why: SessionEnd): boolean {
    return this.#end.run({ idHash, at, why }).changes === 1;
  }

  endSessionsOf(jid: string, at: number, why: SessionEnd): number {
    return this.#endAll.run({ jid, at, why }).changes;
  }
}
