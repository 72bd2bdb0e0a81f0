/**
 * Migrations that SQL alone cannot do: data rewritten with rules that live in TypeScript. Each step
 * runs right after the SQL of its version, in the same transaction, on either engine: SQLite
 * (database.ts `migrate`) and PostgreSQL (pg/migrate.ts).
 *
 * One definition serves both engines. better-sqlite3 is synchronous and its transactions cannot
 * wait for a promise, while node-postgres only answers with promises, so a step is neither a sync
 * nor an async function: it is a generator that yields each statement it wants run and receives the
 * statement's rows back. SQLite's driver (`runStepSync`) answers at once, inside the migration's
 * transaction; PostgreSQL's (`runStep`) awaits each answer. The statements are SQL that both
 * engines read alike, with `?` for each parameter (PostgreSQL's driver numbers them).
 */
import { normalizeBareJid } from '../domain/jid';

/** What a step may need from the configuration. */
export interface MigrationContext {
  /** The opt-out list's keyed hash (TokenCodec.addressHash): only the configuration holds its key. */
  addressHash?: (key: string) => string;
}

export type StepValue = string | number | null;
export type StepRow = Record<string, unknown>;

/** One statement a step asks its engine to run: SQL the same on both, `?` per parameter. */
export interface StepStatement {
  sql: string;
  params: readonly StepValue[];
}

/** A step's conversation with its engine: statements out, their rows (none for a write) back. */
export type StepIo<T = void> = Generator<StepStatement, T, StepRow[]>;

export type MigrationStep = (ctx: MigrationContext) => StepIo;

/** The rows of a query (`const rows = yield* all<R>(sql, …)`). */
export function* all<R>(sql: string, ...params: StepValue[]): StepIo<R[]> {
  return (yield { sql, params }) as R[];
}

/** A write. */
export function* run(sql: string, ...params: StepValue[]): StepIo {
  yield { sql, params };
}

interface KeyRow {
  id: string;
  inviter: string | null;
  invitee_email_key: string | null;
  invitee_jid: string | null;
  invitee_key: string | null;
  active_key: string | null;
}

const PAGE = 500;

/**
 * Migration 10: every key built from a JID, rebuilt with nodeprep and nameprep (domain/jid.ts) in
 * place of NFKC and lower-casing, so that `straße@…` finds the opt-out, the open invite and the
 * day's count of `strasse@…`:
 * - `inviter` (the CLI's `--inviter` was normalised the old way; the server's JIDs are unchanged)
 *   and `invitee_jid`; a value the profiles refuse is kept as it was (it never matches anything);
 * - `invitee_key` (the e-mail key where there is one, as migration 5 made it) and `active_key`;
 *   where two live invites of one inviter now name one invitee, the older keeps the pair;
 * - the opt-out of a JID invitee whose key changed gets the hash of the new key beside the old one
 *   (nothing is deleted). That hash needs the token key: without it, a database holding such an
 *   opt-out is not migrated (open it with the configuration: `serve` or any CLI command).
 */
export function* rekeyJids(ctx: MigrationContext): StepIo {
  const rekey = (jid: string | null) => (jid === null ? null : (normalizeBareJid(jid) ?? jid));
  // Ids compare byte by byte on both engines (BINARY, COLLATE "C"): the pages are the same.
  const page = (after: string) =>
    all<KeyRow>(
      `SELECT id, inviter, invitee_email_key, invitee_jid, invitee_key, active_key FROM invites
        WHERE id > ? AND (inviter IS NOT NULL OR invitee_jid IS NOT NULL) ORDER BY id LIMIT ?`,
      after,
      PAGE,
    );

  for (let after = '', rows = yield* page(after); rows.length > 0; rows = yield* page(after)) {
    for (const row of rows) {
      after = row.id;
      const inviter = rekey(row.inviter);
      const inviteeJid = rekey(row.invitee_jid);
      const inviteeKey = row.invitee_email_key ?? inviteeJid ?? row.invitee_key;
      let activeKey = row.active_key === null || inviter === null || inviteeKey === null ? row.active_key : `${inviter}|${inviteeKey}`;
      if (inviter === row.inviter && inviteeJid === row.invitee_jid && inviteeKey === row.invitee_key && activeKey === row.active_key) continue;
      if (activeKey !== null && activeKey !== row.active_key) {
        const [holder] = yield* all<{ id: string }>('SELECT id FROM invites WHERE active_key = ?', activeKey);
        if (holder && holder.id !== row.id) activeKey = null;
      }
      yield* run('UPDATE invites SET inviter = ?, invitee_jid = ?, invitee_key = ?, active_key = ? WHERE id = ?', inviter, inviteeJid, inviteeKey, activeKey, row.id);
      if (row.invitee_key === null || inviteeKey === null || inviteeKey === row.invitee_key) continue;
      const optOuts = yield* all<{ address_hash: string; created_at: number }>('SELECT address_hash, created_at FROM opt_outs WHERE invite_id = ?', row.id);
      if (optOuts.length === 0) continue;
      if (!ctx.addressHash) {
        throw new Error('Migration 10 carries opt-outs over to the new JID keys and needs the token key: open the database with its configuration (serve, or any CLI command)');
      }
      const oldHash = ctx.addressHash(row.invitee_key);
      for (const optOut of optOuts) {
        if (optOut.address_hash === oldHash) {
          yield* run(
            'INSERT INTO opt_outs (address_hash, created_at, invite_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
            ctx.addressHash(inviteeKey),
            optOut.created_at,
            row.id,
          );
        }
      }
    }
  }
}

/** Steps by migration version (the same on both engines). */
export const MIGRATION_STEPS: Readonly<Record<number, MigrationStep>> = {
  10: rekeyJids,
};
