/**
 * The ordered migrations of schema.pg.sql (the twin of schema.sql: migration N is the same step on
 * both engines), applied each in one transaction and recorded in `schema_migrations`.
 *
 * A version whose rewrite needs TypeScript runs the same step as on SQLite (migration-steps.ts),
 * right after its SQL, in the same transaction.
 *
 * Several instances may start at once on one database: an advisory lock makes one of them migrate
 * while the others wait, then find nothing left to do.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMigrations, type Migration } from '../database';
import { MIGRATION_STEPS, type MigrationContext, type MigrationStep, type StepStatement } from '../migration-steps';
import type { Pool, PoolClient } from './pool';

export const PG_SCHEMA_FILE = join(__dirname, '..', '..', '..', 'schema.pg.sql');

/** The key of the advisory lock held while migrating (any constant no other program uses). */
export const MIGRATION_LOCK = 0x78696e76; // 'xinv'

export function readPgMigrations(text = readFileSync(PG_SCHEMA_FILE, 'utf8')): Migration[] {
  return readMigrations(text, 'schema.pg.sql');
}

const CREATE_TRACKING = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  title      TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

/** The version of the schema: the newest migration recorded, 0 for a database without any. */
export async function schemaVersion(client: PoolClient): Promise<number> {
  const { rows } = await client.query<{ present: boolean }>(`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`);
  if (!rows[0].present) return 0;
  const v = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
  return v.rows[0].version ?? 0;
}

function newerThanKnown(current: number, latest: number): Error {
  return new Error(`The database is at schema version ${current}, newer than this program knows (${latest}): upgrade xmpp-invites`);
}

/** A step's statement as PostgreSQL writes it: each `?` (outside quotes) becomes $1, $2, … */
export function numberedParameters(sql: string): string {
  let n = 0;
  return sql.replace(/'(?:[^']|'')*'|\?/g, (m) => (m === '?' ? `$${++n}` : m));
}

/** Runs a migration step (migration-steps.ts) on PostgreSQL, awaiting each statement's rows. */
export async function runStep(client: PoolClient, step: MigrationStep, context: MigrationContext): Promise<void> {
  const io = step(context);
  for (let next = io.next(); !next.done; ) {
    const { sql, params }: StepStatement = next.value;
    const { rows } = await client.query<Record<string, unknown>>(numberedParameters(sql), params as unknown[]);
    next = io.next(rows);
  }
}

interface Apply {
  context: MigrationContext;
  steps: Readonly<Record<number, MigrationStep>>;
}

async function apply(client: PoolClient, m: Migration, { context, steps }: Apply): Promise<void> {
  try {
    await client.query(m.sql);
  } catch (err) {
    throw new Error(`schema.pg.sql: migration ${m.version} (${m.title}) failed: ${(err as Error).message}`, { cause: err });
  }
  const step = steps[m.version];
  if (step) await runStep(client, step, context);
  await client.query('INSERT INTO schema_migrations (version, title, applied_at) VALUES ($1, $2, $3)', [m.version, m.title, Date.now()]);
}

/**
 * Within the caller's transaction: waits for the migration lock (held until that transaction
 * ends), then applies every migration newer than the database. Returns the version it found.
 */
export async function migrateWithin(
  client: PoolClient,
  migrations = readPgMigrations(),
  context: MigrationContext = {},
  steps: Readonly<Record<number, MigrationStep>> = MIGRATION_STEPS,
): Promise<number> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
  await client.query(CREATE_TRACKING);
  const current = await schemaVersion(client);
  if (current > migrations.length) throw newerThanKnown(current, migrations.length);
  for (const m of migrations.filter((m) => m.version > current)) await apply(client, m, { context, steps });
  return current;
}

/**
 * Applies every migration newer than the database, each in one transaction (its SQL, its step if
 * it has one, its record). `context` is what steps need from the configuration, as on SQLite.
 * Returns the version reached.
 */
export async function migrate(
  pool: Pool,
  migrations = readPgMigrations(),
  context: MigrationContext = {},
  steps: Readonly<Record<number, MigrationStep>> = MIGRATION_STEPS,
): Promise<number> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query(CREATE_TRACKING);
      const current = await schemaVersion(client);
      if (current > migrations.length) throw newerThanKnown(current, migrations.length);
      for (const m of migrations.filter((m) => m.version > current)) {
        await client.query('BEGIN');
        try {
          await apply(client, m, { context, steps });
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch((e: Error) => (broken = e));
          throw err;
        }
      }
      return migrations.length;
    } finally {
      if (!broken) await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch((e: Error) => (broken = e));
    }
  } finally {
    // A broken connection is closed, which also ends its session's advisory lock.
    client.release(broken);
  }
}
