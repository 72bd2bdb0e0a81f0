/**
 * What one New Invite costs the store, in this process, without XMPP: InviteService.create as the
 * command calls it (a user's contact-account invite, pending, the admin told through the outbox),
 * one transaction each, on a given database file. Also: the WAL pages one invite writes, the same
 * without the fsyncs of SQLite's automatic checkpoints (synchronous = OFF: what durability costs
 * here, not a proposal), and with eight invites per transaction (what group commit would save).
 */
import { statSync } from 'node:fs';
import { openDatabase } from '../src/store/database';
import { inviteServiceFor } from '../src/services';
import type { Config } from '../src/config';
import type { Actor } from '../src/domain/types';

export interface StoreCosts {
  /** µs per create, one transaction each, as the service runs (synchronous = NORMAL, automatic checkpoints) */
  perCreateUs: number;
  /** WAL pages written per create */
  walPages: number;
  /** µs per create without fsync (synchronous = OFF) */
  noFsyncUs: number;
  /** µs per create with 8 creates per transaction */
  batchedUs: number;
}

export function storeCosts(config: Config, n = 3000): StoreCosts {
  const db = openDatabase(config.database);
  try {
    const invites = inviteServiceFor(config, db);
    const users: Actor[] = Array.from({ length: 8 }, (_, i) => ({ kind: 'user', jid: `bench${i + 1}@${config.host}`, isAdmin: false }));
    const create = (i: number) => invites.create(users[i % users.length], { kind: 'contact-account', source: 'command' });
    const timed = (fn: () => void) => {
      const t = performance.now();
      fn();
      return ((performance.now() - t) / n) * 1000;
    };
    for (let i = 0; i < 500; i++) create(i);

    const perCreateUs = timed(() => {
      for (let i = 0; i < n; i++) create(i);
    });

    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('wal_autocheckpoint = 0');
    for (let i = 0; i < 200; i++) create(i);
    const walPages = statSync(`${config.database}-wal`).size / ((db.pragma('page_size', { simple: true }) as number) + 24) / 200;
    db.pragma('wal_autocheckpoint = 1000');
    db.pragma('wal_checkpoint(TRUNCATE)');

    db.pragma('synchronous = OFF');
    const noFsyncUs = timed(() => {
      for (let i = 0; i < n; i++) create(i);
    });
    db.pragma('synchronous = NORMAL');

    const batchedUs = timed(() => {
      for (let i = 0; i < n; i += 8) db.transaction(() => Array.from({ length: 8 }, (_, j) => create(i + j))).immediate();
    });
    return { perCreateUs, walPages, noFsyncUs, batchedUs };
  } finally {
    db.close();
  }
}
