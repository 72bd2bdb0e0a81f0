/**
 * Migrations that SQL alone cannot do: data rewritten with rules that live in TypeScript. Each step
 * runs right after the SQL of its version, in the same transaction (database.ts `migrate`).
 */
import { normalizeBareJid } from '../domain/jid';
import type { Db } from './database';

/** What a step may need from the configuration. */
export interface MigrationContext {
  /** The opt-out list's keyed hash (TokenCodec.addressHash): only the configuration holds its key. */
  addressHash?: (key: string) => string;
}

export type MigrationStep = (db: Db, ctx: MigrationContext) => void;

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
export function rekeyJids(db: Db, ctx: MigrationContext): void {
  const page = db.prepare<[string, number], KeyRow>(
    `SELECT id, inviter, invitee_email_key, invitee_jid, invitee_key, active_key FROM invites
      WHERE id > ? AND (inviter IS NOT NULL OR invitee_jid IS NOT NULL) ORDER BY id LIMIT ?`,
  );
  const update = db.prepare(
    'UPDATE invites SET inviter = @inviter, invitee_jid = @inviteeJid, invitee_key = @inviteeKey, active_key = @activeKey WHERE id = @id',
  );
  const pairHolder = db.prepare<[string], { id: string }>('SELECT id FROM invites WHERE active_key = ?');
  const optOuts = db.prepare<[string], { address_hash: string; created_at: number }>('SELECT address_hash, created_at FROM opt_outs WHERE invite_id = ?');
  const addOptOut = db.prepare('INSERT OR IGNORE INTO opt_outs (address_hash, created_at, invite_id) VALUES (?, ?, ?)');
  const rekey = (jid: string | null) => (jid === null ? null : (normalizeBareJid(jid) ?? jid));

  for (let after = '', rows = page.all(after, PAGE); rows.length > 0; rows = page.all(after, PAGE)) {
    for (const row of rows) {
      after = row.id;
      const inviter = rekey(row.inviter);
      const inviteeJid = rekey(row.invitee_jid);
      const inviteeKey = row.invitee_email_key ?? inviteeJid ?? row.invitee_key;
      let activeKey = row.active_key === null || inviter === null || inviteeKey === null ? row.active_key : `${inviter}|${inviteeKey}`;
      if (inviter === row.inviter && inviteeJid === row.invitee_jid && inviteeKey === row.invitee_key && activeKey === row.active_key) continue;
      if (activeKey !== null && activeKey !== row.active_key) {
        const holder = pairHolder.get(activeKey);
        if (holder && holder.id !== row.id) activeKey = null;
      }
      update.run({ id: row.id, inviter, inviteeJid, inviteeKey, activeKey });
      if (row.invitee_key === null || inviteeKey === null || inviteeKey === row.invitee_key) continue;
      const rows = optOuts.all(row.id);
      if (rows.length === 0) continue;
      if (!ctx.addressHash) {
        throw new Error('Migration 10 carries opt-outs over to the new JID keys and needs the token key: open the database with its configuration (serve, or any CLI command)');
      }
      const oldHash = ctx.addressHash(row.invitee_key);
      for (const optOut of rows) {
        if (optOut.address_hash === oldHash) addOptOut.run(ctx.addressHash(inviteeKey), optOut.created_at, row.id);
      }
    }
  }
}

/** Steps by migration version. */
export const MIGRATION_STEPS: Readonly<Record<number, MigrationStep>> = {
  10: rekeyJids,
};
