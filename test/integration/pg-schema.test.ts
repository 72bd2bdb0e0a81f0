/**
 * The PostgreSQL schema (schema.pg.sql) on a real PostgreSQL: migrations in order, tracked and
 * idempotent; the same tables, columns, indexes and triggers as schema.sql's; the append-only
 * guarantees and the unique rules enforced by the database itself.
 */
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { TokenCodec } from '../../src/domain/tokens';
import { migrate as migrateSqlite, openDatabase, readMigrations, SCHEMA_FILE, type SqliteDb as Db } from '../../src/store/database';
import { migrate, numberedParameters, readPgMigrations, PG_SCHEMA_FILE } from '../../src/store/pg/migrate';
import { openPool, redactUrl, withTransaction, type Pool } from '../../src/store/pg/pool';
import { takeLeasePg } from '../../src/store/pg/leases';
import { Client } from 'pg';
import { testConfig } from '../support/fixtures';
import { FUNNEL_SQL, STATES_SQL } from '../../src/store/membership-repo';
import { TestPostgres } from '../support/postgres';

let cluster: TestPostgres;
const pools: Pool[] = [];

beforeAll(async () => {
  cluster = await TestPostgres.start();
  // Tests of the schema itself start from a copy of one migrated database.
  const template = openPool(await cluster.createDatabase('migrated_template'));
  await migrate(template);
  await template.end();
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await cluster?.stop();
});

/** A pool on a new empty database. */
async function freshPool(options = ''): Promise<Pool> {
  const pool = openPool(await cluster.createDatabase(undefined, options));
  pools.push(pool);
  return pool;
}

/** A pool on a new database at the latest version. */
function migrated(): Promise<Pool> {
  return freshPool('TEMPLATE migrated_template');
}

const rows = async (pool: Pool, sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows;

const T = Date.UTC(2026, 0, 1);
async function insertInvite(pool: Pool, id: string, extra: Record<string, unknown> = {}): Promise<void> {
  const row = { id, kind: 'account', state: 'open', source: 'cli', created_at: T, expires_at: T + 86_400_000, ...extra };
  const cols = Object.keys(row);
  await pool.query(`INSERT INTO invites (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(row));
}

/** What a schema is made of, written alike for both engines. */
interface Shape {
  tables: string[];
  /** per table: `name type[ NOT NULL]`, in order; SQLite's INTEGER is PostgreSQL's integer or bigint */
  columns: Record<string, string[]>;
  /** made by CREATE INDEX (not behind a primary key or UNIQUE): `name[ unique][ partial]` */
  indexes: string[];
  /**
   * `name: EVENT[ OF columns] ON table`; PostgreSQL's TRUNCATE triggers and its `…_wakes` triggers
   * (NOTIFY, migration 22), which SQLite has no need of, left out
   */
  triggers: string[];
}

function liteShape(lite: InstanceType<typeof Database>): Shape {
  const tables = (lite.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
  const columns = Object.fromEntries(
    tables.map((table) => [
      table,
      // A primary key is NOT NULL on PostgreSQL; the service never leaves one empty on SQLite either.
      (lite.prepare('SELECT name, type, "notnull" AS nn, pk FROM pragma_table_info(?) ORDER BY cid').all(table) as { name: string; type: string; nn: number; pk: number }[]).map(
        (c) => `${c.name} ${c.type.toLowerCase()}${c.nn || c.pk ? ' NOT NULL' : ''}`,
      ),
    ]),
  );
  const indexes = (lite.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`).all() as { name: string; sql: string }[]).map(
    (i) => `${i.name}${/^CREATE UNIQUE/.test(i.sql) ? ' unique' : ''}${/ WHERE /.test(i.sql) ? ' partial' : ''}`,
  );
  const triggers = (lite.prepare(`SELECT sql FROM sqlite_master WHERE type = 'trigger'`).all() as { sql: string }[])
    .map(({ sql }) => {
      const m = /^CREATE TRIGGER (\w+)\s+(?:BEFORE|AFTER)\s+(DELETE|INSERT|UPDATE)(?:\s+OF\s+([\w\s,]+?))?\s+ON\s+(\w+)/.exec(sql);
      if (!m) throw new Error(`unread trigger: ${sql}`);
      const of = m[3] ? ` OF ${m[3].split(',').map((c) => c.trim()).sort().join(', ')}` : '';
      return `${m[1]}: ${m[2]}${of} ON ${m[4]}`;
    })
    .sort();
  return { tables, columns, indexes, triggers };
}

async function pgShape(pool: Pool): Promise<Shape> {
  const tables = (await rows(pool, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY table_name`)).map(
    (r) => r.table_name as string,
  );
  const columns: Record<string, string[]> = {};
  for (const table of tables) {
    columns[table] = (await rows(pool, `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [table])).map(
      (c) => `${c.column_name} ${c.data_type === 'bigint' ? 'integer' : c.data_type}${c.is_nullable === 'NO' ? ' NOT NULL' : ''}`,
    );
  }
  const indexes = (
    await rows(
      pool,
      `SELECT i.relname AS name, x.indisunique AS uniq, x.indpred IS NOT NULL AS partial FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) ORDER BY i.relname COLLATE "C"`,
    )
  ).map((i) => `${i.name}${i.uniq ? ' unique' : ''}${i.partial ? ' partial' : ''}`);
  const triggers = (
    await rows(
      pool,
      `SELECT t.tgname AS name, c.relname AS "table",
              CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' WHEN t.tgtype & 8 <> 0 THEN 'DELETE' WHEN t.tgtype & 16 <> 0 THEN 'UPDATE' ELSE 'TRUNCATE' END AS event,
              ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr)) AS cols
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND NOT t.tgisinternal`,
    )
  )
    .filter((t) => t.event !== 'TRUNCATE' && !String(t.name).endsWith('_wakes'))
    .map((t) => `${t.name}: ${t.event}${(t.cols as string[]).length ? ` OF ${[...(t.cols as string[])].sort().join(', ')}` : ''} ON ${t.table}`)
    .sort();
  return { tables, columns, indexes, triggers };
}

describe('migrations', () => {
  it('numbers and titles every migration as schema.sql does', () => {
    const sqlite = readMigrations(readFileSync(SCHEMA_FILE, 'utf8'));
    const pg = readPgMigrations(readFileSync(PG_SCHEMA_FILE, 'utf8'));
    expect(pg.map((m) => `${m.version}: ${m.title}`)).toEqual(sqlite.map((m) => `${m.version}: ${m.title}`));
  });

  it('applies every migration in order, each recorded with its title', async () => {
    const pool = await freshPool();
    await expect(migrate(pool)).resolves.toBe(readPgMigrations().length);
    const recorded = await rows(pool, 'SELECT version, title FROM schema_migrations ORDER BY version');
    expect(recorded).toEqual(readPgMigrations().map((m) => ({ version: m.version, title: m.title })));
  });

  it('changes nothing when run again, or by two instances at once', async () => {
    const pool = await freshPool();
    await Promise.all([migrate(pool), migrate(pool), migrate(pool)]);
    const first = await rows(pool, 'SELECT * FROM schema_migrations ORDER BY version');
    expect(first).toHaveLength(readPgMigrations().length);
    await migrate(pool);
    expect(await rows(pool, 'SELECT * FROM schema_migrations ORDER BY version')).toEqual(first);
  });

  it('brings an older database up to date, one migration at a time', async () => {
    const pool = await freshPool();
    const all = readPgMigrations();
    await migrate(pool, all.slice(0, 4));
    await insertInvite(pool, 'aaaaaaaaaa', { inviter: 'a@localhost', invitee_email_key: 'b@example.org', state: 'pending' });
    await migrate(pool, all);
    // Migration 5 filled the new columns of the rows it found.
    expect(await rows(pool, 'SELECT invitee_key, active_key FROM invites')).toEqual([{ invitee_key: 'b@example.org', active_key: 'a@localhost|b@example.org' }]);
  });

  it('refuses a database newer than the program, and leaves it as it is', async () => {
    const pool = await migrated();
    await pool.query(`INSERT INTO schema_migrations VALUES (99, 'from the future', 0)`);
    await expect(migrate(pool)).rejects.toThrow(`The database is at schema version 99, newer than this program knows (${readPgMigrations().length}): upgrade xmpp-invites`);
    expect((await rows(pool, 'SELECT count(*)::int AS n FROM schema_migrations'))[0].n).toBe(readPgMigrations().length + 1);
  });

  it('keeps nothing of a migration that fails, and stops there', async () => {
    const pool = await freshPool();
    const latest = readPgMigrations().length;
    const broken = [
      ...readPgMigrations(),
      { version: latest + 1, title: 'broken', sql: 'CREATE TABLE half (x INTEGER); INSERT INTO half VALUES (1); SELECT no_such_function();' },
      { version: latest + 2, title: 'never reached', sql: 'CREATE TABLE later (x INTEGER);' },
    ];
    await expect(migrate(pool, broken)).rejects.toThrow(`migration ${latest + 1} (broken) failed: function no_such_function() does not exist`);
    expect((await rows(pool, 'SELECT max(version) AS v FROM schema_migrations'))[0].v).toBe(latest);
    expect(await rows(pool, `SELECT to_regclass('half') AS half, to_regclass('later') AS later`)).toEqual([{ half: null, later: null }]);
  });
});

describe('the schema', () => {
  it('has the tables, columns, indexes and triggers of schema.sql after every migration', async () => {
    const pool = await freshPool();
    const lite = new Database(':memory:');
    const [liteAll, pgAll] = [readMigrations(), readPgMigrations()];
    for (let version = 1; version <= liteAll.length; version++) {
      migrateSqlite(lite, liteAll.slice(0, version));
      await migrate(pool, pgAll.slice(0, version));
      const [want, got] = [liteShape(lite), await pgShape(pool)];
      expect({ version, ...got }).toEqual({ version, ...want });
    }
    lite.close();
  });

  it('orders text byte by byte, as SQLite does, in a database whose locale sorts otherwise', async () => {
    const pool = await freshPool(`TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
    await migrate(pool);
    expect((await rows(pool, `SELECT 'B' < 'a' AS c`))[0].c).toBe(false); // the database's own collation
    for (const id of ['aaaaaaaaaa', 'Bbbbbbbbbb', 'éeeeeeeeee']) await insertInvite(pool, id, { note: id.toUpperCase() });
    expect((await rows(pool, 'SELECT id FROM invites ORDER BY id')).map((r) => r.id)).toEqual(['Bbbbbbbbbb', 'aaaaaaaaaa', 'éeeeeeeeee']);
    // lower() folds ASCII only, as SQLite's does.
    const lite = new Database(':memory:');
    const liteLower = (lite.prepare(`SELECT lower('ÉEEEEEEEEE') AS l`).get() as { l: string }).l;
    lite.close();
    expect(liteLower).toBe('Éeeeeeeeee');
    expect((await rows(pool, `SELECT lower(note) AS l FROM invites WHERE id = 'éeeeeeeeee'`))[0].l).toBe(liteLower);
  });
});

describe('what the database refuses', () => {
  const refusals: [string, string, string][] = [
    ['invites', `DELETE FROM invites`, 'invites are never deleted'],
    ['invites', `TRUNCATE invites CASCADE`, 'invites are never deleted'],
    ['events', `DELETE FROM events`, 'events are never deleted'],
    ['events', `TRUNCATE events`, 'events are never deleted'],
    ['events', `UPDATE events SET reason = 'rewritten'`, 'events are never changed'],
    ['claims', `DELETE FROM claims`, 'claims are never deleted'],
    ['claims', `TRUNCATE claims`, 'claims are never deleted'],
    ['outbox', `DELETE FROM outbox`, 'outbox rows are never deleted'],
    // CASCADE: bounces refer to the outbox (PostgreSQL refuses a plain TRUNCATE of a referenced table)
    ['outbox', `TRUNCATE outbox CASCADE`, 'outbox rows are never deleted'],
    ['opt_outs', `DELETE FROM opt_outs`, 'opt-outs are never deleted'],
    ['opt_outs', `TRUNCATE opt_outs`, 'opt-outs are never deleted'],
    ['invite_requests', `DELETE FROM invite_requests`, 'invite requests are never deleted'],
    ['invite_requests', `TRUNCATE invite_requests`, 'invite requests are never deleted'],
    ['user_blocks', `DELETE FROM user_blocks`, 'blocks are never deleted'],
    ['user_blocks', `TRUNCATE user_blocks`, 'blocks are never deleted'],
    ['user_blocks', `UPDATE user_blocks SET reason = 'rewritten'`, 'blocks are never changed'],
    ['bounces', `DELETE FROM bounces`, 'bounces are never deleted'],
    ['bounces', `TRUNCATE bounces CASCADE`, 'bounces are never deleted'],
    ['bounces', `UPDATE bounces SET status = '2.0.0'`, 'bounces are never changed'],
    ['suppressions', `DELETE FROM suppressions`, 'suppressions are never deleted'],
    ['suppressions', `TRUNCATE suppressions`, 'suppressions are never deleted'],
    ['suppressions', `UPDATE suppressions SET suppressed = 0`, 'suppressions are never changed'],
    ['account_checks', `DELETE FROM account_checks`, 'account checks are never deleted'],
    ['account_checks', `TRUNCATE account_checks`, 'account checks are never deleted'],
    ['account_checks', `UPDATE account_checks SET answer = 'missing'`, 'an answered account check never changes'],
  ];
  let pool: Pool;
  const snapshot = async () => {
    const out: Record<string, unknown[]> = {};
    for (const t of ['invites', 'events', 'claims', 'outbox', 'opt_outs', 'invite_requests', 'user_blocks', 'bounces', 'suppressions', 'account_checks']) out[t] = await rows(pool, `SELECT * FROM ${t} ORDER BY 1`);
    return out;
  };

  beforeAll(async () => {
    pool = await migrated();
    await insertInvite(pool, 'aaaaaaaaaa');
    await pool.query(`INSERT INTO events (invite_id, at, type, actor) VALUES ('aaaaaaaaaa', $1, 'created', 'operator')`, [T]);
    await pool.query(`INSERT INTO claims (id, invite_id, username, door, state, created_at) VALUES ('c1', 'aaaaaaaaaa', 'bob', 'web', 'spent', $1)`, [T]);
    await pool.query(`INSERT INTO outbox (channel, kind, recipient, state, not_before, created_at, updated_at, message_id) VALUES ('xmpp', 'joined', 'a@localhost', 'sent', $1, $1, $1, 'm1@x')`, [T]);
    await pool.query(`INSERT INTO opt_outs (address_hash, created_at, invite_id) VALUES ('h1', $1, 'aaaaaaaaaa')`, [T]);
    await pool.query(`INSERT INTO invite_requests VALUES ('a@localhost', 'id:1', $1, '[]')`, [T]);
    await pool.query(`INSERT INTO user_blocks (jid, blocked, reason, actor, at) VALUES ('a@localhost', 1, 'spam', 'operator', $1)`, [T]);
    const [outbox] = await rows(pool, 'SELECT id FROM outbox');
    await pool.query(`INSERT INTO bounces (outbox_id, permanent, status, diagnostic, via, at) VALUES ($1, 1, '5.1.1', 'no such user', 'pipe', $2)`, [outbox.id, T]);
    await pool.query(`INSERT INTO suppressions (address_hash, suppressed, bounce_id, actor, at) VALUES ('h2', 1, (SELECT max(id) FROM bounces), 'system', $1)`, [T]);
    await pool.query(
      `INSERT INTO account_checks (username, asked_by, asked_at, wait_until, taken_by, taken_at, answer, answered_by, answered_at) VALUES ('alice', 'operator', $1, $2, 'i1', $1, 'exists', 'i1', $1)`,
      [T, T + 15_000],
    );
  });

  it.each(refusals)('%s: %s', async (_table, sql, message) => {
    const before = await snapshot();
    await expect(pool.query(sql)).rejects.toMatchObject({ message, code: '23001' });
    expect(await snapshot()).toEqual(before);
  });

  it('lets invites change, and events be added', async () => {
    await pool.query(`UPDATE invites SET uses = 1 WHERE id = 'aaaaaaaaaa'`);
    await pool.query(`INSERT INTO events (invite_id, at, type, actor) VALUES ('aaaaaaaaaa', $1, 'redeemed', 'web')`, [T]);
    expect((await rows(pool, `SELECT count(*)::int AS n FROM events`))[0].n).toBe(2);
  });
});

describe('migration 10 on PostgreSQL: the step SQLite runs', () => {
  const tokens = new TokenCodec(testConfig().tokenKey);
  const context = { addressHash: (key: string) => tokens.addressHash(key) };
  const KEYS = 'SELECT id, inviter, invitee_jid, invitee_key, active_key FROM invites ORDER BY id';
  const OPT_OUTS = 'SELECT address_hash, created_at, invite_id FROM opt_outs ORDER BY address_hash';

  /** The same rows, keyed the old way (NFKC and lower-case only), in a SQLite and a PostgreSQL store at version 9. */
  async function oldTwins(): Promise<{ lite: Db; pool: Pool }> {
    const lite = new Database(':memory:');
    lite.pragma('foreign_keys = ON');
    migrateSqlite(lite, readMigrations().slice(0, 9));
    const pool = await freshPool();
    await migrate(pool, readPgMigrations().slice(0, 9));
    const invite = `INSERT INTO invites (id, kind, state, inviter, source, invitee_jid, invitee_key, active_key, created_at, expires_at)
                    VALUES (?, 'contact', ?, ?, ?, ?, ?, ?, ?, ?)`;
    const later = T + 86_400_000;
    const statements: [string, (string | number | null)[]][] = [
      // declined with "never again": the opt-out holds the hash of the old key
      [invite, ['2222222222', 'declined', 'alice@localhost', 'presence', 'straße@elsewhere.net', 'straße@elsewhere.net', null, T, later]],
      ['INSERT INTO opt_outs (address_hash, created_at, invite_id) VALUES (?, ?, ?)', [tokens.addressHash('straße@elsewhere.net'), T, '2222222222']],
      // two live invites from one inviter that name one person once keys are rebuilt
      [invite, ['3333333333', 'open', 'alice@localhost', 'presence', 'σοφος@elsewhere.net', 'σοφος@elsewhere.net', 'alice@localhost|σοφος@elsewhere.net', T, later]],
      [invite, ['4444444444', 'open', 'alice@localhost', 'command', 'σοφοσ@elsewhere.net', 'σοφοσ@elsewhere.net', 'alice@localhost|σοφοσ@elsewhere.net', T + 1, later]],
      // made by the CLI with --inviter, normalised the old way
      [invite, ['6666666666', 'open', 'maß@localhost', 'cli', 'dora@elsewhere.net', 'dora@elsewhere.net', 'maß@localhost|dora@elsewhere.net', T, later]],
    ];
    for (const [sql, params] of statements) {
      lite.prepare(sql).run(...params);
      await pool.query(numberedParameters(sql), params);
    }
    return { lite, pool };
  }

  it('rebuilds the same keys and carries the same opt-outs over, in the migration\'s transaction', async () => {
    const { lite, pool } = await oldTwins();
    migrateSqlite(lite, readMigrations().slice(0, 10), context);
    await migrate(pool, readPgMigrations().slice(0, 10), context);
    const liteKeys = lite.prepare(KEYS).all();
    expect(liteKeys).toContainEqual({ id: '6666666666', inviter: 'mass@localhost', invitee_jid: 'dora@elsewhere.net', invitee_key: 'dora@elsewhere.net', active_key: 'mass@localhost|dora@elsewhere.net' });
    expect(await rows(pool, KEYS)).toEqual(liteKeys);
    const liteOptOuts = lite.prepare(OPT_OUTS).all();
    expect(liteOptOuts).toHaveLength(2);
    expect(await rows(pool, OPT_OUTS)).toEqual(liteOptOuts);
    expect((await rows(pool, 'SELECT max(version) AS v FROM schema_migrations'))[0].v).toBe(10);
    lite.close();
  });

  it('without the token key refuses where an opt-out must be carried over, and keeps nothing of it', async () => {
    const { lite, pool } = await oldTwins();
    lite.close();
    const before = { keys: await rows(pool, KEYS), optOuts: await rows(pool, OPT_OUTS) };
    await expect(migrate(pool, readPgMigrations().slice(0, 10))).rejects.toThrow(/^Migration 10 carries opt-outs over to the new JID keys and needs the token key/);
    expect((await rows(pool, 'SELECT max(version) AS v FROM schema_migrations'))[0].v).toBe(9);
    expect({ keys: await rows(pool, KEYS), optOuts: await rows(pool, OPT_OUTS) }).toEqual(before);
  });

  it('numbers the step\'s parameters as PostgreSQL writes them, leaving quoted text alone', () => {
    expect(numberedParameters(`SELECT id FROM invites WHERE id > ? AND note <> 'why?' AND source = 'it''s ?' LIMIT ?`)).toBe(
      `SELECT id FROM invites WHERE id > $1 AND note <> 'why?' AND source = 'it''s ?' LIMIT $2`,
    );
  });
});

describe('migration 11 on both engines: rows of record change only where the service changes them', () => {
  const TABLES = ['invites', 'events', 'claims', 'outbox', 'opt_outs', 'invite_requests'];
  const FILL = [
    `INSERT INTO invites (id, kind, state, inviter, source, invitee_jid, invitee_key, active_key, note, created_at, expires_at)
     VALUES ('aaaaaaaaaa', 'contact', 'open', 'alice@localhost', 'presence', 'carol@elsewhere.net', 'carol@elsewhere.net',
             'alice@localhost|carol@elsewhere.net', 'hi', ${T}, ${T + 86_400_000})`,
    `INSERT INTO events (invite_id, at, type, actor) VALUES ('aaaaaaaaaa', ${T}, 'created', 'alice@localhost')`,
    `INSERT INTO claims (id, invite_id, username, door, ip, state, created_at, absent_at_claim) VALUES ('c1', 'aaaaaaaaaa', 'bob', 'web', '192.0.2.1', 'held', ${T}, 1)`,
    `INSERT INTO outbox (channel, kind, recipient, state, not_before, created_at, updated_at, message_id) VALUES ('xmpp', 'joined', 'alice@localhost', 'queued', ${T}, ${T}, ${T}, 'm1@x')`,
    `INSERT INTO opt_outs (address_hash, created_at, invite_id) VALUES ('h1', ${T}, 'aaaaaaaaaa')`,
    `INSERT INTO invite_requests (sender, request_key, created_at, result) VALUES ('alice@localhost', 'id:1', ${T}, '[]')`,
  ];

  /** A SQLite store (opened as the service opens it) and a PostgreSQL one, holding the same rows. */
  async function twins(): Promise<{ lite: Db; pool: Pool; dump: () => Promise<{ lite: unknown; pg: unknown }> }> {
    const lite = openDatabase(':memory:');
    const pool = await migrated();
    for (const sql of FILL) {
      lite.exec(sql);
      await pool.query(sql);
    }
    const dump = async () => {
      const out = { lite: {} as Record<string, unknown>, pg: {} as Record<string, unknown> };
      for (const t of TABLES) {
        out.lite[t] = lite.prepare(`SELECT * FROM ${t} ORDER BY 1`).all();
        out.pg[t] = await rows(pool, `SELECT * FROM ${t} ORDER BY 1`);
      }
      return out;
    };
    return { lite, pool, dump };
  }

  let both: Awaited<ReturnType<typeof twins>>;
  beforeAll(async () => {
    both = await twins();
  });
  afterAll(() => both.lite.close());

  const refused: string[] = [
    ...Object.entries({
      id: `'bbbbbbbbbb'`,
      kind: `'account'`,
      inviter: `'mallory@localhost'`,
      source: `'web'`,
      invitee_email: `'x@example.org'`,
      invitee_email_key: `'x@example.org'`,
      invitee_jid: `'mallory@elsewhere.net'`,
      invitee_name: `'Mallory'`,
      invitee_key: `'mallory@elsewhere.net'`,
      username: `'mallory'`,
      note: 'NULL',
      roster_subscription: '1',
      created_at: '1',
    }).map(([column, value]) => `UPDATE invites SET ${column} = ${value}`),
    ...Object.entries({ id: `'c2'`, invite_id: 'NULL', username: `'mallory'`, door: `'bridge'`, requester: `'mallory@localhost'`, ip: `'198.51.100.1'`, created_at: '5' }).map(
      ([column, value]) => `UPDATE claims SET ${column} = ${value}`,
    ),
    ...Object.entries({ id: '99', channel: `'email'`, kind: `'welcome'`, recipient: `'mallory@localhost'`, message_id: `'m2@x'`, created_at: '5' }).map(
      ([column, value]) => `UPDATE outbox SET ${column} = ${value}`,
    ),
    // never changed, not even to the value they hold
    `UPDATE opt_outs SET created_at = created_at`,
    `UPDATE opt_outs SET invite_id = NULL`,
    `UPDATE invite_requests SET result = '{}'`,
    `UPDATE invite_requests SET created_at = created_at`,
    // INSERT … ON CONFLICT DO UPDATE is an UPDATE (PostgreSQL's nearest to REPLACE), through each unique key
    `INSERT INTO invites (id, kind, state, source, created_at, expires_at) VALUES ('aaaaaaaaaa', 'account', 'open', 'web', 5, 6)
       ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, source = excluded.source, created_at = excluded.created_at`,
    `INSERT INTO invites (id, kind, state, source, created_at, expires_at, active_key) VALUES ('zzzzzzzzzz', 'contact', 'open', 'cli', 5, 6, 'alice@localhost|carol@elsewhere.net')
       ON CONFLICT (active_key) WHERE active_key IS NOT NULL DO UPDATE SET note = excluded.note`,
    `INSERT INTO claims (id, username, door, state, created_at) VALUES ('c1', 'mallory', 'web', 'held', 5) ON CONFLICT (id) DO UPDATE SET username = excluded.username`,
    `INSERT INTO outbox (channel, kind, recipient, state, not_before, created_at, updated_at, message_id) VALUES ('email', 'x', 'mallory@example.org', 'queued', 5, 5, 5, 'm1@x')
       ON CONFLICT (message_id) DO UPDATE SET recipient = excluded.recipient`,
    `INSERT INTO opt_outs (address_hash, created_at) VALUES ('h1', 5) ON CONFLICT (address_hash) DO UPDATE SET created_at = excluded.created_at`,
    `INSERT INTO invite_requests (sender, request_key, created_at, result) VALUES ('alice@localhost', 'id:1', 5, '{}')
       ON CONFLICT (sender, request_key) DO UPDATE SET result = excluded.result`,
    `INSERT INTO events (id, invite_id, at, type, actor) VALUES (1, 'aaaaaaaaaa', 5, 'x', 'y') ON CONFLICT (id) DO UPDATE SET reason = 'rewritten'`,
  ].map((sql) => sql.replace(/\s+/g, ' '));

  it.each(refused)('refused alike, nothing changed: %s', async (sql) => {
    const before = await both.dump();
    expect(before.pg).toEqual(before.lite);
    let liteError: Error | undefined;
    try {
      both.lite.prepare(sql).run();
    } catch (err) {
      liteError = err as Error;
    }
    expect(liteError?.message).toMatch(/never change/);
    await expect(both.pool.query(sql)).rejects.toMatchObject({ code: '23001', message: liteError!.message });
    expect(await both.dump()).toEqual(before);
  });

  it('lets the service\'s own changes through alike, a fixed column written with its own value included', async () => {
    const { lite, pool, dump } = await twins();
    const before = await dump();
    const allowed = [
      // migration 15: uses allowed may grow
      `UPDATE invites SET max_uses = max_uses + 2 WHERE id = 'aaaaaaaaaa'`,
      `UPDATE invites SET state = 'revoked', ended_at = 9, generation = generation + 1, expires_at = 10, email_delivery = 'failed',
         message_delivery = 'sent', reminded_at = 8, expiry_recorded = 1, note = note, kind = kind, inviter = inviter WHERE id = 'aaaaaaaaaa'`,
      `UPDATE claims SET state = 'released', settled_at = 3, outcome = 'refused: x', username = username, requester = requester`,
      `UPDATE outbox SET state = 'sending', attempts = 1, updated_at = 4, recipient = recipient`,
      `INSERT INTO outbox (channel, kind, recipient, state, not_before, created_at, updated_at, message_id) VALUES ('xmpp', 'joined', 'alice@localhost', 'queued', 5, 5, 5, 'm1@x')
         ON CONFLICT (message_id) DO UPDATE SET attempts = outbox.attempts + 1`,
      `INSERT INTO claims (id, username, door, state, created_at) VALUES ('c1', 'bob', 'web', 'held', 5) ON CONFLICT (id) DO UPDATE SET outcome = 'again'`,
      // ignoring a conflict changes nothing, so it is no change
      `INSERT INTO opt_outs (address_hash, created_at) VALUES ('h1', 5) ON CONFLICT DO NOTHING`,
    ];
    for (const sql of allowed) {
      lite.exec(sql);
      await pool.query(sql);
    }
    const after = await dump();
    expect(after.pg).toEqual(after.lite);
    expect(after.lite).not.toEqual(before.lite);
    // The pair is released on both (SQLite's AFTER trigger, PostgreSQL's BEFORE one).
    expect(await rows(pool, `SELECT active_key, invites.state, generation, attempts FROM invites, outbox`)).toEqual([{ active_key: null, state: 'revoked', generation: 1, attempts: 2 }]);
    lite.close();
  });
});

describe('migration 15 on both engines: uses allowed grow, never shrink', () => {
  it('refuses a lower max_uses alike, changing nothing', async () => {
    const lite = openDatabase(':memory:');
    const pool = await migrated();
    const fill = `INSERT INTO invites (id, kind, state, source, max_uses, created_at, expires_at) VALUES ('aaaaaaaaaa', 'account', 'open', 'cli', 3, ${T}, ${T + 1})`;
    lite.exec(fill);
    await pool.query(fill);
    const sql = `UPDATE invites SET max_uses = 2`;
    expect(() => lite.prepare(sql).run()).toThrow(/may grow, never shrink/);
    await expect(pool.query(sql)).rejects.toMatchObject({ code: '23001', message: expect.stringMatching(/may grow, never shrink/) });
    expect(lite.prepare('SELECT max_uses FROM invites').get()).toEqual({ max_uses: 3 });
    expect(await rows(pool, 'SELECT max_uses FROM invites')).toEqual([{ max_uses: 3 }]);
    lite.close();
  });
});

describe('unique rules', () => {
  it('holds one live invite per inviter and invitee, released when it ends or its expiry is recorded', async () => {
    const pool = await migrated();
    const pair = { inviter: 'a@localhost', invitee_key: 'b@example.org', active_key: 'a@localhost|b@example.org' };
    await insertInvite(pool, 'aaaaaaaaa1', pair);
    await expect(insertInvite(pool, 'aaaaaaaaa2', pair)).rejects.toMatchObject({ code: '23505', constraint: 'invites_active_pair' });
    // Changing anything but the state or the expiry keeps the hold.
    await pool.query(`UPDATE invites SET uses = 1, state = 'open' WHERE id = 'aaaaaaaaa1'`);
    expect((await rows(pool, `SELECT active_key FROM invites WHERE id = 'aaaaaaaaa1'`))[0].active_key).toBe(pair.active_key);
    await pool.query(`UPDATE invites SET held = 0 WHERE id = 'aaaaaaaaa1'`);
    expect((await rows(pool, `SELECT active_key FROM invites WHERE id = 'aaaaaaaaa1'`))[0].active_key).toBe(pair.active_key);
    await pool.query(`UPDATE invites SET state = 'revoked' WHERE id = 'aaaaaaaaa1'`);
    expect((await rows(pool, `SELECT active_key FROM invites WHERE id = 'aaaaaaaaa1'`))[0].active_key).toBeNull();
    await insertInvite(pool, 'aaaaaaaaa2', pair);
    await pool.query(`UPDATE invites SET expiry_recorded = 1 WHERE id = 'aaaaaaaaa2'`);
    expect((await rows(pool, `SELECT active_key, state FROM invites WHERE id = 'aaaaaaaaa2'`))[0]).toEqual({ active_key: null, state: 'open' });
    await insertInvite(pool, 'aaaaaaaaa3', pair);
  });

  it('holds a username for one registration at a time', async () => {
    const pool = await migrated();
    const claim = (id: string, state: string) =>
      pool.query(`INSERT INTO claims (id, username, door, state, created_at) VALUES ($1, 'bob', 'web', $2, $3)`, [id, state, T]);
    await claim('c1', 'held');
    await expect(claim('c2', 'held')).rejects.toMatchObject({ code: '23505', constraint: 'claims_username_held' });
    await pool.query(`UPDATE claims SET state = 'released' WHERE id = 'c1'`);
    await claim('c2', 'held');
    await claim('c3', 'spent');
  });

  it('keeps uses and held within max uses, and a locked invite with its username', async () => {
    const pool = await migrated();
    await insertInvite(pool, 'aaaaaaaaaa', { max_uses: 2, uses: 1 });
    await expect(pool.query(`UPDATE invites SET held = held + 1 WHERE id = 'aaaaaaaaaa'`)).resolves.toMatchObject({ rowCount: 1 });
    await expect(pool.query(`UPDATE invites SET held = held + 1 WHERE id = 'aaaaaaaaaa'`)).rejects.toMatchObject({ code: '23514' });
    await expect(insertInvite(pool, 'bbbbbbbbbb', { kind: 'account-locked' })).rejects.toMatchObject({ code: '23514' });
    await expect(insertInvite(pool, 'short')).rejects.toMatchObject({ code: '23514' });
  });
});

describe('membership requests and password resets (migrations 15 and 16)', () => {
  const request = (pool: Pool, id: string, extra: Record<string, unknown> = {}) => {
    const row = { id, email: `${id}@example.org`, email_key: `${id}@example.org`, state: 'unverified', live_key: `${id}@example.org`, created_at: T, ...extra };
    const cols = Object.keys(row);
    return pool.query(`INSERT INTO membership_requests (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(row));
  };

  it('holds one live request per address, and never deletes a request or changes its address', async () => {
    const pool = await migrated();
    await request(pool, 'rrrrrrrrr1', { live_key: 'x@example.org' });
    await expect(request(pool, 'rrrrrrrrr2', { live_key: 'x@example.org' })).rejects.toMatchObject({ code: '23505', constraint: 'membership_requests_live' });
    await pool.query(`UPDATE membership_requests SET state = 'rejected', live_key = NULL WHERE id = 'rrrrrrrrr1'`);
    await request(pool, 'rrrrrrrrr2', { live_key: 'x@example.org' });
    await expect(pool.query(`DELETE FROM membership_requests WHERE id = 'rrrrrrrrr1'`)).rejects.toThrow(/never deleted/);
    await expect(pool.query(`UPDATE membership_requests SET email = 'y@example.org' WHERE id = 'rrrrrrrrr1'`)).rejects.toThrow(/never change/);
    await expect(pool.query(`TRUNCATE password_resets CASCADE`)).rejects.toThrow(/never deleted/);
  });

  it('counts requests by shown state and the funnel with the repository\'s own statements', async () => {
    const pool = await migrated();
    await insertInvite(pool, 'iiiiiiiii1', { uses: 1, state: 'exhausted' });
    await request(pool, 'rrrrrrrrr1', { state: 'approved', live_key: null, verified_at: T, invite_id: 'iiiiiiiii1' });
    await request(pool, 'rrrrrrrrr2', { state: 'pending', verified_at: T });
    await request(pool, 'rrrrrrrrr3', { created_at: T - 1 });
    await request(pool, 'rrrrrrrrr4', { created_at: T + 10 });
    const states = await rows(pool, numberedParameters(STATES_SQL), [T]);
    expect(Object.fromEntries(states.map((r) => [r.state, Number(r.n)]))).toEqual({ approved: 1, pending: 1, expired: 1, unverified: 1 });
    const [funnel] = await rows(pool, FUNNEL_SQL);
    expect(Object.fromEntries(Object.entries(funnel).map(([k, v]) => [k, Number(v)]))).toEqual({ requested: 4, verified: 2, approved: 1, joined: 1 });
  });
});

describe('the pool', () => {
  it('reads BIGINT as a number, and refuses one a number cannot hold exactly', async () => {
    const pool = await freshPool();
    expect((await rows(pool, `SELECT 1767225600000::bigint AS t, count(*) AS n FROM pg_class WHERE false`))[0]).toEqual({ t: 1767225600000, n: 0 });
    await expect(pool.query(`SELECT 9007199254740993::bigint AS t`)).rejects.toThrow('9007199254740993 does not fit in a JavaScript number');
  });

  it('commits a transaction whose work succeeds, and rolls back one that throws', async () => {
    const pool = await freshPool();
    await pool.query('CREATE TABLE t (v TEXT UNIQUE)');
    await withTransaction(pool, async (c) => {
      await c.query(`INSERT INTO t VALUES ('a')`);
      await c.query(`INSERT INTO t VALUES ('b')`);
    });
    await expect(
      withTransaction(pool, async (c) => {
        await c.query(`INSERT INTO t VALUES ('c')`);
        await c.query(`INSERT INTO t VALUES ('a')`);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect((await rows(pool, 'SELECT v FROM t ORDER BY v')).map((r) => r.v)).toEqual(['a', 'b']);
  });

  it('refuses a URL that is not PostgreSQL\'s, without showing its password', () => {
    expect(() => openPool('mysql://u:pw@h/db')).toThrow('not a PostgreSQL URL (postgres://… or postgresql://…): mysql://u:***@h/db');
    expect(redactUrl('postgres://u:p%40ss@h:5432/db?sslmode=require')).toBe('postgres://u:***@h:5432/db?sslmode=require');
    expect(redactUrl('postgresql://h/db')).toBe('postgresql://h/db');
  });
});

describe('job leases (migration 12)', () => {
  it('gives the lease of a period to exactly one of 20 connections racing for it, period after period', async () => {
    const url = await cluster.createDatabase(undefined, 'TEMPLATE migrated_template');
    const pool = openPool(url);
    pools.push(pool);
    // Twenty instances, each on a connection of its own, all connected before the race.
    const clients = Array.from({ length: 20 }, () => new Client({ connectionString: url }));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const PERIOD = 300;
      const winners: number[][] = [];
      for (let round = 0; round < 5; round++) {
        // The lease of the last round has ended (the database's clock): all race for it at once.
        if (round > 0) await new Promise((r) => setTimeout(r, PERIOD + 20));
        const got = await Promise.all(clients.map((c, i) => takeLeasePg(c, 'expiry', `instance-${i}`, PERIOD)));
        winners.push(got.flatMap((won, i) => (won ? [i] : [])));
        // Within its period, nobody else gets it, whoever asks.
        expect((await Promise.all(clients.map((c, i) => takeLeasePg(c, 'expiry', `other-${i}`, PERIOD)))).filter(Boolean)).toEqual([]);
        const [row] = await rows(pool, 'SELECT holder FROM job_leases WHERE job = $1', ['expiry']);
        expect(row.holder).toBe(`instance-${winners[round][0]}`);
      }
      expect(winners.map((w) => w.length)).toEqual([1, 1, 1, 1, 1]);
      expect((await rows(pool, 'SELECT count(*)::int AS n FROM job_leases'))[0].n).toBe(1);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('renews the lease for its holder before it ends, and lets another take it only once it has ended', async () => {
    const pool = await migrated();
    expect(await takeLeasePg(pool, 'reminders', 'a', 60_000)).toBe(true);
    const [first] = await rows(pool, 'SELECT held_until FROM job_leases');
    expect(await takeLeasePg(pool, 'reminders', 'b', 60_000)).toBe(false);
    expect(await takeLeasePg(pool, 'reminders', 'a', 60_000)).toBe(true);
    const [renewed] = await rows(pool, 'SELECT holder, held_until FROM job_leases');
    expect(renewed.holder).toBe('a');
    expect(renewed.held_until).toBeGreaterThanOrEqual(first.held_until);
    // a dies: its lease ends (moved into the past here), and b takes the job over.
    await pool.query('UPDATE job_leases SET held_until = held_until - 60001');
    expect(await takeLeasePg(pool, 'reminders', 'b', 60_000)).toBe(true);
    expect(await takeLeasePg(pool, 'reminders', 'a', 60_000)).toBe(false);
    // Each job has its own lease.
    expect(await takeLeasePg(pool, 'expiry', 'a', 60_000)).toBe(true);
    expect(await rows(pool, 'SELECT job, holder FROM job_leases ORDER BY job')).toEqual([
      { job: 'expiry', holder: 'a' },
      { job: 'reminders', holder: 'b' },
    ]);
  });
});

describe('the invitation tree (migration 15) on PostgreSQL', () => {
  it('reads a subtree with the recursive query SQLite runs', async () => {
    const { SUBTREE, MADE } = await import('../../src/store/trust-repo');
    const pool = await migrated();
    await insertInvite(pool, 'inv0000001');
    await insertInvite(pool, 'inv0000002', { inviter: 'gen1@localhost' });
    await insertInvite(pool, 'inv0000003', { inviter: 'gen2@localhost' });
    await insertInvite(pool, 'inv0000004', { inviter: 'other@localhost' });
    const claim = (id: string, invite: string, username: string, outcome = 'created') =>
      pool.query(`INSERT INTO claims (id, invite_id, username, door, state, created_at, settled_at, outcome) VALUES ($1, $2, $3, 'web', 'spent', $4, $4, $5)`, [id, invite, username, T, outcome]);
    await claim('c1', 'inv0000001', 'gen1');
    await claim('c2', 'inv0000002', 'gen2');
    await claim('c3', 'inv0000003', 'gen3');
    await claim('c4', 'inv0000004', 'stranger');
    await claim('c5', 'inv0000003', 'gen2', 'accepted with c2');
    const named = (sql: string) => sql.replaceAll('@root', '$1').replaceAll('@host', '$2').replaceAll('@now', '$3');
    const members = await rows(pool, named(`${SUBTREE} SELECT jid FROM tree ORDER BY jid`), ['gen1@localhost', 'localhost']);
    expect(members.map((r) => r.jid)).toEqual(['gen1@localhost', 'gen2@localhost']); // gen3 invited nobody
    const [open] = await rows(pool, named(`${SUBTREE} SELECT count(*) AS n FROM invites WHERE inviter IN (SELECT jid FROM tree) AND state IN ('pending', 'open') AND expires_at > $3`), ['gen1@localhost', 'localhost', T]);
    expect(Number(open.n)).toBe(2);
    expect(MADE).toContain('accepted with');
    // The latest registration of a username, without the claims of invites accepted alongside it.
    const { ACCOUNT_OF, BLOCKED } = await import('../../src/store/trust-repo');
    expect(await rows(pool, numberedParameters(ACCOUNT_OF), ['gen2'])).toEqual([
      { username: 'gen2', invite_id: 'inv0000002', joined_at: T, door: 'web', inviter: 'gen1@localhost', approved_by: null },
    ]);
    for (const [jid, blocked] of [['a@localhost', 1], ['a@localhost', 0], ['b@localhost', 1]] as const) {
      await pool.query(`INSERT INTO user_blocks (jid, blocked, reason, actor, at) VALUES ($1, $2, 'r', 'operator', $3)`, [jid, blocked, T]);
    }
    expect((await rows(pool, BLOCKED)).map((r) => r.jid)).toEqual(['b@localhost']);
  });
});
