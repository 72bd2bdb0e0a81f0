/**
 * The store on a real file: the indexes an invite writes, and group commit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { GroupCommit } from '../../src/store/group-commit';
import { openDatabase, type SqliteDb as Db } from '../../src/store/database';
import { inviteServiceFor } from '../../src/services';
import { testConfig } from '../support/fixtures';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-store-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('indexes an invite writes', () => {
  it('keeps invitees in one partial index that the lookups by invitee use', () => {
    const config = testConfig({ database: join(dir, 'x.sqlite'), admins: ['admin@localhost'] });
    const db = openDatabase(config.database);
    try {
      const invites = inviteServiceFor(config, db);
      const admin = { kind: 'user' as const, jid: 'admin@localhost', isAdmin: true };
      for (let i = 0; i < 5; i++) invites.create(admin, { kind: 'account', source: 'command' });
      invites.create(admin, { kind: 'account', source: 'command', email: 'Guest@Example.org' });
      invites.create(admin, { kind: 'contact', source: 'command', jid: 'friend@example.net' });
      const entries = db.prepare('SELECT count(*) AS n FROM invites INDEXED BY invites_invitee_key WHERE invitee_key IS NOT NULL').get() as { n: number };
      expect(entries.n).toBe(2);
      const indexes = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'invites'`).all() as { name: string }[]).map((r) => r.name);
      expect(indexes).not.toContain('invites_email');
      expect(indexes).not.toContain('invites_jid');
      const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('x', 0) as { detail: string }[]).map((r) => r.detail).join('; ');
      expect(plan(`SELECT count(*) FROM invites WHERE invitee_key = ? AND source <> 'cli' AND created_at > ?`)).toMatch(/USING INDEX invites_invitee_key/);
      expect(plan(`SELECT * FROM invites WHERE inviter = ? AND invitee_key = ? ORDER BY created_at DESC LIMIT 1`)).toMatch(/USING INDEX invites_invitee_key/);
      const stats = invites.stats();
      expect(stats.delivery.email).toEqual({ queued: 1 });
      expect(stats.delivery.message).toEqual({ queued: 1 });
    } finally {
      db.close();
    }
  });
});

describe('group commit', () => {
  function table(): Db {
    const db = openDatabase(join(dir, 'g.sqlite'));
    db.exec(`CREATE TABLE parent (id INTEGER PRIMARY KEY);
      CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, parent INTEGER REFERENCES parent (id))`);
    return db;
  }
  const values = (db: Db) => (db.prepare('SELECT v FROM t ORDER BY id').all() as { v: string }[]).map((r) => r.v);

  it('commits the jobs of one turn together; a failing job undoes only its own writes', async () => {
    const db = table();
    const commit = new GroupCommit(db);
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    // A second connection sees only what is committed: each caller is answered after the commit.
    const reader = new Database(join(dir, 'g.sqlite'), { readonly: true });
    const seen: string[][] = [];
    const job = (v: string) =>
      commit.run(() => insert.run(v).lastInsertRowid).then((id) => {
        seen.push((reader.prepare('SELECT v FROM t').all() as { v: string }[]).map((r) => r.v));
        return id;
      });
    const outcomes = await Promise.allSettled([
      job('a'),
      commit.run(() => {
        insert.run('b');
        insert.run('a'); // UNIQUE: this job fails after writing 'b'
      }),
      job('c'),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/UNIQUE/);
    expect(values(db)).toEqual(['a', 'c']);
    expect(seen).toEqual([['a', 'c'], ['a', 'c']]);
    expect(commit.counts).toEqual({ batches: 1, jobs: 3 });
    reader.close();
    db.close();
  });

  it('fails every job of a batch whose commit fails, and keeps none of their writes', async () => {
    const db = table();
    const commit = new GroupCommit(db);
    const outcomes = await Promise.allSettled([
      commit.run(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('x')),
      commit.run(() => {
        // Checked at COMMIT: the whole transaction fails there.
        db.pragma('defer_foreign_keys = ON');
        db.prepare('INSERT INTO t (v, parent) VALUES (?, 42)').run('y');
      }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY/);
    expect(values(db)).toEqual([]);
    expect(db.inTransaction).toBe(false);
    // The next batch starts clean.
    await commit.run(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('z'));
    expect(values(db)).toEqual(['z']);
    db.close();
  });

  it('takes at most maxBatch jobs per transaction, in the order they came', async () => {
    const db = table();
    const commit = new GroupCommit(db, { maxBatch: 2 });
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    await Promise.all(['1', '2', '3', '4', '5'].map((v) => commit.run(() => insert.run(v))));
    expect(values(db)).toEqual(['1', '2', '3', '4', '5']);
    expect(commit.counts).toEqual({ batches: 3, jobs: 5 });
    db.close();
  });

});
