/**
 * `xmpp-invites db copy --from FILE --to URL`, run in-process against a real PostgreSQL: a store
 * holding every kind of row arrives whole; a target that is not empty, a source of another schema
 * version and bad usage are refused, with the target left as it was.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { run } from '../../src/cli';
import { readMigrations } from '../../src/store/database';
import { copySqliteToPostgres } from '../../src/store/pg/copy-from-sqlite';
import { openPool, type Pool } from '../../src/store/pg/pool';
import { buildFullStore } from '../support/full-store';
import { TestPostgres } from '../support/postgres';

const LATEST = readMigrations().length;
/** Every table of the store but the job leases (read from the store built below) */
let TABLES: string[] = [];

let cluster: TestPostgres;
let dir: string;
/** the store every test copies (never written after it is built) */
let storeFile: string;
const pools: Pool[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-copy-'));
  storeFile = join(dir, 'store.sqlite');
  const [pg, store] = await Promise.all([TestPostgres.start(), buildFullStore(storeFile)]);
  cluster = pg;
  TABLES = (store.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> 'job_leases' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
  store.db.close();
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function pool(url: string): Pool {
  const p = openPool(url);
  pools.push(p);
  return p;
}

/** Rows in one order whatever the engine's (not every table's first columns are unique). */
function inOrder(rows: unknown[]): unknown[] {
  return rows.map((r) => [JSON.stringify(r), r] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

/** Every row of every table, from SQLite and from PostgreSQL. */
function sqliteRows(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true });
  try {
    return Object.fromEntries(TABLES.map((t) => [t, inOrder(db.prepare(`SELECT * FROM ${t}`).all())]));
  } finally {
    db.close();
  }
}
function leases(file: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT job, holder FROM job_leases').all();
  } finally {
    db.close();
  }
}
async function pgRows(p: Pool): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of TABLES) out[t] = inOrder((await p.query(`SELECT * FROM ${t}`)).rows);
  return out;
}
async function pgTables(p: Pool): Promise<string[]> {
  return (await p.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)).rows.map((r) => r.table_name);
}

describe('db copy', () => {
  it('copies every row of every table, equal in count and content, and the ids go on from there', async () => {
    const url = await cluster.createDatabase();
    const result = await cli(['db', 'copy', '--from', storeFile, '--to', url]);
    expect(result).toMatchObject({ code: 0, err: '' });
    const source = sqliteRows(storeFile);
    for (const t of TABLES) {
      expect(source[t].length).toBeGreaterThan(0);
      expect(result.out).toMatch(new RegExp(`^  ${t} +${source[t].length} rows$`, 'm'));
    }
    expect(result.out).toMatch(new RegExp(`^Copied \\d+ rows at schema version ${LATEST} in [\\d.]+ s; the counts of every table match\\.$`, 'm'));
    // The job leases belong to the stopped instances of the old store: left behind.
    expect(leases(storeFile)).toEqual([{ job: 'expiry', holder: 'sqlite-instance' }]);
    expect(result.out).not.toMatch(/job_leases/);
    expect((await pool(url).query('SELECT count(*)::int AS n FROM job_leases')).rows[0].n).toBe(0);
    // The store is at the latest version and its rows carry what the newest migrations added.
    const lite = new Database(storeFile, { readonly: true });
    expect(lite.pragma('user_version', { simple: true })).toBe(LATEST);
    lite.close();
    expect(source.claims.map((c) => (c as { absent_at_claim: number | null }).absent_at_claim)).toContain(1);
    const target = pool(url);
    expect(await pgRows(target)).toEqual(source);
    // What migration 11 fixes is fixed on the copy too.
    await expect(target.query(`UPDATE invites SET note = 'rewritten'`)).rejects.toMatchObject({ code: '23001' });
    await expect(target.query(`UPDATE opt_outs SET created_at = 0`)).rejects.toMatchObject({ message: 'opt-outs are never changed' });
    // Ad-hoc sessions are copied too: working state, but one still open when the service stopped
    // is continued on the new store if it starts within the session's ten minutes.
    expect(source.command_sessions.map((r) => (r as { expires_at: number | null }).expires_at === null)).toEqual([false, true]);
    // They are the one table the service deletes from: no trigger refuses it on the copy either.
    await expect(target.query(`DELETE FROM command_sessions WHERE expires_at IS NULL`)).resolves.toMatchObject({ rowCount: 1 });
    // The identity columns continue after the ids copied, as AUTOINCREMENT would.
    const maxEvent = Math.max(...source.events.map((e) => (e as { id: number }).id));
    const { rows } = await target.query(`INSERT INTO events (invite_id, at, type, actor) SELECT id, 0, 'created', 'operator' FROM invites LIMIT 1 RETURNING id`);
    expect(rows[0].id).toBe(maxEvent + 1);
    const maxOutbox = Math.max(...source.outbox.map((e) => (e as { id: number }).id));
    const next = await target.query(`INSERT INTO outbox (channel, kind, recipient, state, not_before, created_at, updated_at, message_id) VALUES ('xmpp', 'x', 'a@b', 'queued', 0, 0, 0, 'new@x') RETURNING id`);
    expect(next.rows[0].id).toBe(maxOutbox + 1);
    // The unique rule of the live pairs holds on the copy: the pair of a live invite is taken.
    const live = source.invites.find((i) => (i as { active_key: string | null }).active_key) as { id: string; active_key: string };
    await expect(target.query(`INSERT INTO invites (id, kind, state, source, created_at, expires_at, active_key) VALUES ('zzzzzzzzzz', 'account', 'open', 'cli', 0, 1, $1)`, [live.active_key])).rejects.toMatchObject({ code: '23505' });
  });

  it('fills a store that a service already migrated but did not write to', async () => {
    const url = await cluster.createDatabase();
    const target = pool(url);
    const { migrate } = await import('../../src/store/pg/migrate');
    await migrate(target);
    // The service took its job leases: they are no rows of record, and the target is still empty.
    await target.query(`INSERT INTO job_leases (job, holder, held_until) VALUES ('expiry', 'pg-instance', 1)`);
    expect(await cli(['db', 'copy', '--from', storeFile, '--to', url])).toMatchObject({ code: 0 });
    expect(await pgRows(target)).toEqual(sqliteRows(storeFile));
    expect((await target.query('SELECT job, holder FROM job_leases')).rows).toEqual([{ job: 'expiry', holder: 'pg-instance' }]);
  });

  it('refuses a target that holds rows, and leaves it as it was', async () => {
    const url = await cluster.createDatabase();
    expect((await cli(['db', 'copy', '--from', storeFile, '--to', url])).code).toBe(0);
    const target = pool(url);
    const before = await pgRows(target);
    const again = await cli(['db', 'copy', '--from', storeFile, '--to', url]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/^xmpp-invites db copy: the target database is not empty \(.*invites: \d+ rows.*\): db copy only fills an empty database$/);
    expect(await pgRows(target)).toEqual(before);
  });

  it('refuses a target that holds other tables, and creates nothing in it', async () => {
    const url = await cluster.createDatabase();
    const target = pool(url);
    await target.query('CREATE TABLE accounts (id INTEGER)');
    const result = await cli(['db', 'copy', '--from', storeFile, '--to', url]);
    expect(result.code).toBe(1);
    expect(result.err).toBe(`xmpp-invites db copy: the target database is not empty: it holds tables that are not a store's (accounts)`);
    expect(await pgTables(target)).toEqual(['accounts']);
  });

  it('keeps nothing when a row cannot be written, not even the tables', async () => {
    // SQLite's INTEGER holds 64 bits; max_uses is a 32-bit INTEGER on PostgreSQL.
    const file = join(dir, 'too-big.sqlite');
    copyFileSync(storeFile, file);
    const db = new Database(file);
    db.prepare(`INSERT INTO invites (id, kind, state, source, max_uses, created_at, expires_at) VALUES ('bigbigbig1', 'account', 'open', 'cli', 3000000000, 0, 1)`).run();
    db.close();
    const url = await cluster.createDatabase();
    const result = await cli(['db', 'copy', '--from', file, '--to', url]);
    expect(result.code).toBe(1);
    expect(result.err).toBe('xmpp-invites db copy: value "3000000000" is out of range for type integer');
    expect(await pgTables(pool(url))).toEqual([]);
  });

  it('removes U+0000, which PostgreSQL text cannot hold, and says where without showing the text', async () => {
    const file = join(dir, 'nul.sqlite');
    copyFileSync(storeFile, file);
    const db = new Database(file);
    // Text from before the text rule: a note (rows of record are only ever added to) and a reason.
    db.prepare(`INSERT INTO invites (id, kind, state, source, note, created_at, expires_at) VALUES ('nulnulnul1', 'account', 'open', 'cli', ?, 0, 1)`).run(
      'private\u0000note\u0000',
    );
    const noteRow = db.prepare(`SELECT rowid AS r FROM invites WHERE id = 'nulnulnul1'`).get() as { r: number };
    const reasonRow = db.prepare(`INSERT INTO events (invite_id, at, type, actor, reason) VALUES ('nulnulnul1', 0, 'declined', 'web', ?)`).run('hidden\u0000reason').lastInsertRowid;
    db.close();
    const url = await cluster.createDatabase();
    const result = await cli(['db', 'copy', '--from', file, '--to', url]);
    expect(result).toMatchObject({ code: 0, err: '' });
    expect(result.out).toContain(
      // in the order of the copy: a table after those it references
      ['U+0000 removed from 2 text values (PostgreSQL text cannot hold it):', `  invites.note of rowid ${noteRow.r}`, `  events.reason of rowid ${reasonRow}`].join('\n'),
    );
    expect(result.out).not.toMatch(/private|hidden/);
    const source = sqliteRows(file);
    const stripped = JSON.parse(JSON.stringify(source).replaceAll('\\u0000', ''));
    expect(stripped).not.toEqual(source);
    expect(await pgRows(pool(url))).toEqual(stripped);
  });

  it.each([
    [LATEST - 1, `older than this program's (${LATEST}): run any command of this version against it once`],
    [LATEST + 1, `newer than this program knows (${LATEST}): copy it with the xmpp-invites that wrote it`],
    [0, 'is not an xmpp-invites database (it has no schema version)'],
  ])('refuses a source at schema version %i', async (version, message) => {
    const file = join(dir, `v${version}.sqlite`);
    copyFileSync(storeFile, file);
    const db = new Database(file);
    db.pragma(`user_version = ${version}`);
    db.close();
    const url = await cluster.createDatabase();
    const result = await cli(['db', 'copy', '--from', file, '--to', url]);
    expect(result.code).toBe(1);
    expect(result.err).toContain(message);
    expect(await pgTables(pool(url))).toEqual([]);
  });

  it('refuses when schema.pg.sql lacks the twin of a migration of schema.sql', async () => {
    const url = await cluster.createDatabase();
    const source = new Database(storeFile, { readonly: true });
    const sqlite = [...readMigrations(), { version: LATEST + 1, title: 'new', sql: '' }];
    await expect(copySqliteToPostgres(source, storeFile, pool(url), { sqliteMigrations: sqlite })).rejects.toThrow(
      `this program's schemas differ: schema.sql has ${LATEST + 1} migrations, schema.pg.sql ${LATEST} (every migration needs its PostgreSQL twin)`,
    );
    source.close();
  });

  it('reads the URL from the environment with env:NAME, and never prints a password', async () => {
    const url = (await cluster.createDatabase()).replace('postgres@', 'postgres:s3cret-pw@');
    const result = await cli(['db', 'copy', '--from', storeFile, '--to', 'env:TARGET'], { TARGET: url });
    expect(result.code).toBe(0);
    expect(result.out).toContain(`Copying ${storeFile} into postgresql://postgres:***@127.0.0.1:${cluster.port}/`);
    expect(result.out + result.err).not.toContain('s3cret-pw');
    // Unreachable: a runtime failure, still without the password.
    const down = await cli(['db', 'copy', '--from', storeFile, '--to', `postgresql://u:s3cret-pw@127.0.0.1:1/x`]);
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/^xmpp-invites db copy: connect ECONNREFUSED 127\.0\.0\.1:1$/);
    expect(down.out + down.err).not.toContain('s3cret-pw');
  });

  it.each([
    [['--to', 'postgresql://x/y'], '--from FILE is required: the SQLite database to copy'],
    [['--from', 'FILE'], '--to URL is required: an empty PostgreSQL database (postgresql://…)'],
    [['--from', 'FILE', '--to', './other.sqlite'], '--to must be a PostgreSQL URL (postgres://… or postgresql://…), not ./other.sqlite'],
    [['--from', 'FILE', '--to', 'mysql://u:pw@h/db'], '--to must be a PostgreSQL URL (postgres://… or postgresql://…), not mysql://u:***@h/db'],
    [['--from', 'FILE', '--to', 'env:NOT_SET'], '--to env:NOT_SET: environment variable NOT_SET is not set'],
    [['--from', 'no-such.sqlite', '--to', 'postgresql://x/y'], '--from: no such file: no-such.sqlite'],
    [['--from', tmpdir(), '--to', 'postgresql://x/y'], `--from: not a file: ${tmpdir()}`],
    [['--from', 'FILE', '--to', 'postgresql://x/y', 'extra'], 'Unexpected argument: extra'],
    [['--from', 'FILE', '--to', 'postgresql://x/y', '--into', 'z'], `Unknown option '--into'`],
  ])('exits 2 on bad usage: %j', async (args, message) => {
    const result = await cli(['db', 'copy', ...args.map((a) => (a === 'FILE' ? storeFile : a))]);
    expect(result.code).toBe(2);
    expect(result.err.split('\n')[0]).toContain(`xmpp-invites db copy: ${message}`);
  });
});
