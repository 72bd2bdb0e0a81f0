/**
 * The store engine a test runs on. The jest projects whose names end in `-postgresql` run the
 * suite again with XMPP_INVITES_TEST_ENGINE=postgresql, on a throwaway cluster their global setup
 * starts (pg-global.ts): there every store a test asks for is a new database, copied from a template
 * migrated once per process, so tests never see each other's rows, as with `:memory:` or a file of
 * their own on SQLite.
 */
import { randomBytes } from 'node:crypto';
import { isPostgres, openDatabase, openStore, type Db, type OpenOptions } from '../../src/store/database';
import { isPostgresUrl } from '../../src/store/pg/url';
import { PgSyncDb } from '../../src/store/pg/sync-db';

export type TestEngine = 'sqlite' | 'postgresql';

export const TEST_ENGINE: TestEngine = process.env.XMPP_INVITES_TEST_ENGINE === 'postgresql' ? 'postgresql' : 'sqlite';

/** The cluster's `postgres` database, set by pg-global.ts. */
export const PG_ADMIN_URL_ENV = 'XMPP_INVITES_TEST_PG';

let admin: PgSyncDb | undefined;
let template: string | undefined;
/** the databases this test file made, dropped after it (pg-engine.ts) */
const created: string[] = [];

function adminUrl(): string {
  const url = process.env[PG_ADMIN_URL_ENV];
  if (!url) throw new Error(`${PG_ADMIN_URL_ENV} is not set: run the *-postgresql jest projects (their global setup starts PostgreSQL)`);
  return url;
}

function databaseUrl(name: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/** A new, migrated, empty PostgreSQL database; its URL. */
export function newPgDatabase(): string {
  admin ??= new PgSyncDb(adminUrl());
  if (!template) {
    const name = `tpl_${process.pid}_${randomBytes(3).toString('hex')}`;
    admin.exec(`CREATE DATABASE ${name}`);
    PgSyncDb.open(databaseUrl(name)).close();
    template = name;
  }
  const name = `t_${randomBytes(6).toString('hex')}`;
  admin.exec(`CREATE DATABASE ${name} TEMPLATE ${template} STRATEGY FILE_COPY`);
  created.push(name);
  return databaseUrl(name);
}

/**
 * Ends the connections to the databases this test file made (after its tests), so that the next
 * files find connections free. The databases stay until the cluster goes: DROP DATABASE waits for
 * a checkpoint, which under load took up to a minute.
 */
export function dropTestDatabases(): void {
  if (!admin) return;
  const names = created.splice(0);
  if (template) names.push(template);
  if (names.length > 0) {
    admin
      .prepare<[string], unknown>(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY(string_to_array(?, ','))`)
      .all(names.join(','));
  }
  template = undefined;
  admin.close();
  admin = undefined;
}

/**
 * What a test puts in `database:`: on SQLite `sqlite` (`:memory:` unless a file is given), on
 * PostgreSQL a new database's URL.
 */
export function testDatabase(sqlite = ':memory:'): string {
  return TEST_ENGINE === 'postgresql' ? newPgDatabase() : sqlite;
}

/** A new store on the engine under test (SQLite: `:memory:` unless a file is given). */
export function openTestStore(sqlite = ':memory:', options: OpenOptions = {}): Db {
  return openStore(testDatabase(sqlite), options);
}

/** The store's tables, by name (not the engines' own: SQLite's sqlite_*, PostgreSQL's schema_migrations). */
export function tableNames(db: Db): string[] {
  const sql = isPostgres(db)
    ? `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY tablename`
    : `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`;
  return db.prepare<[], { name: string }>(sql).all().map((t) => t.name);
}

/** Every row of every table of a store, as one JSON text (to check what a store never holds). */
export function everyRow(database: string): string {
  const db = openStoreOf(database);
  try {
    return tableNames(db).map((t) => JSON.stringify(db.prepare(`SELECT * FROM "${t}"`).all())).join('');
  } finally {
    db.close();
  }
}

/**
 * Another connection to a test's store, to look at (or, with `write`, change) it beside the
 * service: SQLite read-only unless `write`; PostgreSQL as it is, never migrated.
 */
export function openStoreOf(database: string, options: { write?: boolean } = {}): Db {
  if (isPostgresUrl(database)) return PgSyncDb.open(database, { skipMigrations: true });
  return openDatabase(database, { readonly: !options.write });
}
