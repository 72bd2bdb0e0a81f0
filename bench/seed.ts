/**
 * Seeds a service database with a long history, directly with better-sqlite3: one transaction,
 * prepared statements, the same columns InviteService writes (an invite row and its events), the
 * claim of each registration that used an invite, and the outbox rows the service would have
 * written (notices to the admin, the inviters and the new accounts, invitation e-mails), so that
 * every table a New Invite or a registration touches is as large as after years of use.
 *
 * The mix, per 100 invites: 10 pending (unexpired), 5 open, 50 exhausted, 25 expired (recorded),
 * 5 revoked, 4 rejected, 1 declined. Four in five are users' "New Invite" (contact-account, waited
 * for the admin), one in five the operator's account invites. One in ten names an e-mail invitee.
 * Invites are spread over two years; pending and open ones over the last six days. Deterministic.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { openDatabase } from '../src/store/database';
import { ID_ALPHABET, ID_LENGTH } from '../src/domain/tokens';

const DAY = 86_400_000;
const EXPIRY = 7 * DAY;
const ID_SPACE = BigInt(ID_ALPHABET.length) ** BigInt(ID_LENGTH); // 32^10 = 2^50
const ID_MULT = 0x2545f4914f6cdn; // odd, so i → i·M + C mod 2^50 is a bijection
const ID_ADD = 0x1b873593n;

/** The invite id of the i-th seeded invite: distinct for distinct i, random-looking like real ids. */
export function seededId(i: number): string {
  let n = (BigInt(i) * ID_MULT + ID_ADD) % ID_SPACE;
  let id = '';
  for (let k = 0; k < ID_LENGTH; k++) {
    id += ID_ALPHABET[Number(n & 31n)];
    n >>= 5n;
  }
  return id;
}

export type SeedState = 'pending' | 'open' | 'exhausted' | 'expired' | 'revoked' | 'rejected' | 'declined';

export function seededState(i: number): SeedState {
  const r = i % 100;
  if (r < 10) return 'pending';
  if (r < 15) return 'open';
  if (r < 65) return 'exhausted';
  if (r < 90) return 'expired';
  if (r < 95) return 'revoked';
  if (r < 99) return 'rejected';
  return 'declined';
}

export interface SeedResult {
  invites: number;
  events: number;
  outbox: number;
  claims: number;
  byState: Record<SeedState, number>;
  ms: number;
  /** the fsync of the file afterwards */
  syncMs: number;
  fileMb: number;
}

export interface SeedOptions {
  count: number;
  host: string;
  admin: string;
  /** distinct inviting users */
  users?: number;
  now?: number;
}

/** Seeds an empty (fresh) database file; the service must not be running on it. */
export function seedStore(file: string, opts: SeedOptions): SeedResult {
  const t0 = performance.now();
  const now = opts.now ?? Date.now();
  const users = opts.users ?? 20_000;
  const db = openDatabase(file);
  // Bulk load: one big transaction; a large page cache keeps the index updates in memory.
  db.pragma('cache_size = -524288');
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  // Every row is consistent by construction; checking each event's invite costs a lookup per row.
  db.pragma('foreign_keys = OFF');
  // Secondary indexes are dropped and built again at the end of the transaction (sorting once is
  // much faster than a million random B-tree inserts); the same SQL, so the same indexes.
  const indexes = db
    .prepare<[], { name: string; sql: string }>(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('invites', 'events', 'outbox', 'claims')`)
    .all();
  const insertInvite = db.prepare(`INSERT INTO invites (
      id, kind, state, inviter, source, invitee_email, invitee_email_key, invitee_jid, invitee_name, invitee_key, active_key,
      username, note, roster_subscription, max_uses, uses, held, generation, created_at, expires_at,
      approved_at, approved_by, ended_at, expiry_recorded, email_delivery, message_delivery)
    VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, NULL, NULL, 0, 1, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, 'none')`);
  const insertEvent = db.prepare('INSERT INTO events (invite_id, at, type, actor, reason, data) VALUES (?, ?, ?, ?, ?, ?)');
  const insertClaim = db.prepare(`INSERT INTO claims (id, invite_id, username, door, requester, ip, state, created_at, settled_at, outcome)
    VALUES (?, ?, ?, 'bridge', NULL, '127.0.0.1', 'spent', ?, ?, 'created')`);
  const insertOutbox = db.prepare(`INSERT INTO outbox (channel, kind, recipient, invite_ids, params, state, attempts, not_before, created_at, updated_at, sent_at, message_id)
    VALUES (?, ?, ?, ?, ?, 'sent', 1, ?, ?, ?, ?, ?)`);

  const byState: Record<SeedState, number> = { pending: 0, open: 0, exhausted: 0, expired: 0, revoked: 0, rejected: 0, declined: 0 };
  let events = 0;
  let outbox = 0;
  let claims = 0;
  const event = (id: string, at: number, type: string, actor: string, reason: string | null, data: string | null) => {
    insertEvent.run(id, at, type, actor, reason, data);
    events++;
  };
  const notice = (i: number, channel: string, kind: string, recipient: string, id: string, at: number, params = '{}') => {
    insertOutbox.run(channel, kind, recipient, `["${id}"]`, params, at, at, at, at, `seed${i}-${kind}@invites.localhost`);
    outbox++;
  };

  db.transaction(() => {
    for (const index of indexes) db.exec(`DROP INDEX ${index.name}`);
    for (let i = 0; i < opts.count; i++) {
      const id = seededId(i);
      const state = seededState(i);
      byState[state]++;
      const byUser = i % 5 !== 0;
      const inviter = byUser ? `user${i % users}@${opts.host}` : null;
      const kind = byUser ? 'contact-account' : 'account';
      const source = byUser ? 'command' : 'cli';
      const active = state === 'pending' || state === 'open';
      // Active invites within the last 6 days; the rest over the two years before the last week.
      const createdAt = active ? now - 6 * DAY + ((i * 7919) % (6 * DAY - 60_000)) : now - 730 * DAY + Math.floor((i / opts.count) * 720 * DAY);
      const email = i % 10 === 7 || state === 'declined' ? `guest${i}@example.org` : null;
      const storedState = state === 'expired' ? (i % 2 ? 'pending' : 'open') : state;
      const wasApproved = !byUser || (storedState !== 'pending' && state !== 'rejected');
      const approvedAt = wasApproved ? (byUser ? createdAt + 3_600_000 : createdAt) : null;
      const expiresAt = (approvedAt ?? createdAt) + EXPIRY;
      const endedAt = active ? null : state === 'expired' ? expiresAt : (approvedAt ?? createdAt) + DAY;
      const actor = inviter ?? 'operator';
      insertInvite.run(
        id,
        kind,
        storedState,
        inviter,
        source,
        email,
        email,
        email,
        active && inviter && email ? `${inviter}|${email}` : null,
        state === 'exhausted' ? 1 : 0,
        createdAt,
        expiresAt,
        approvedAt,
        approvedAt === null ? null : byUser ? opts.admin : 'operator',
        endedAt,
        state === 'expired' ? 1 : 0,
        email && wasApproved ? 'sent' : 'none',
      );
      event(id, createdAt, 'created', actor, null, `{"kind":"${kind}","source":"${source}","state":"${byUser ? 'pending' : 'open'}"}`);
      // The admin is told of pending invites; folding makes about one message per three.
      if (byUser && i % 3 === 0) notice(i, 'xmpp', 'pending', opts.admin, id, createdAt);
      if (approvedAt !== null && byUser) {
        event(id, approvedAt, 'approved', opts.admin, null, `{"expires":"${new Date(expiresAt).toISOString()}"}`);
        notice(i, 'xmpp', 'approved', inviter!, id, approvedAt);
      }
      if (email && wasApproved) {
        notice(i, 'email', 'invitation', email, id, approvedAt!);
        event(id, approvedAt!, 'delivered', 'system', null, '{"channel":"email","outcome":"sent"}');
      }
      switch (state) {
        case 'exhausted': {
          const jid = `new${i}@${opts.host}`;
          insertClaim.run(`seed${i}`, id, `new${i}`, endedAt! - 1_000, endedAt!);
          claims++;
          event(id, endedAt!, 'redeemed', jid, null, `{"jid":"${jid}","door":"bridge","claim":"seed${i}"}`);
          if (inviter) notice(i, 'xmpp', 'joined', inviter, id, endedAt!, `{"jid":"${jid}"}`);
          notice(i, 'xmpp', 'welcome', jid, id, endedAt!, `{"jid":"${jid}","contactsLinked":true}`);
          break;
        }
        case 'expired':
          event(id, endedAt!, 'expired', 'system', null, `{"state":"${storedState}"}`);
          if (inviter) notice(i, 'xmpp', 'expired', inviter, id, endedAt!);
          break;
        case 'revoked':
          event(id, endedAt!, 'revoked', actor, null, null);
          break;
        case 'rejected':
          event(id, endedAt!, 'rejected', opts.admin, 'not now', null);
          if (inviter) notice(i, 'xmpp', 'rejected', inviter, id, endedAt!, '{"reason":"not now"}');
          break;
        case 'declined':
          event(id, endedAt!, 'declined', email!, null, null);
          if (inviter) notice(i, 'xmpp', 'declined', inviter, id, endedAt!, '{"reason":null}');
          break;
      }
    }
    for (const index of indexes) db.exec(index.sql);
  })();
  db.pragma('foreign_keys = ON');
  db.pragma('journal_mode = WAL');
  const pages = db.pragma('page_count', { simple: true }) as number;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.close();
  const ms = performance.now() - t0;
  // Written with synchronous = OFF: make it durable now, so that the kernel's write-back of the
  // whole file does not run beside the measurements (it slows every fsync the service makes).
  const fd = openSync(file, 'r+');
  fsyncSync(fd);
  closeSync(fd);
  return { invites: opts.count, events, outbox, claims, byState, ms, syncMs: performance.now() - t0 - ms, fileMb: (pages * pageSize) / 1048576 };
}
