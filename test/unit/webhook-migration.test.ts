/**
 * The migration that makes webhooks a third channel of the outbox rebuilds the table (SQLite changes
 * a CHECK no other way): rows already there come through unchanged, ids keep counting up, the
 * append-only triggers hold again, and the new channel is accepted.
 */
import Database from 'better-sqlite3';
import { migrate, readMigrations } from '../../src/store/database';

const all = readMigrations();
const index = all.findIndex((m) => m.title === 'webhooks, a third channel of the outbox');

it('keeps every outbox row, the id sequence and the triggers, and accepts the webhook channel', () => {
  expect(index).toBeGreaterThan(0);
  const db = new Database(':memory:');
  migrate(db, all.slice(0, index));
  const insert = db.prepare(`INSERT INTO outbox (channel, kind, recipient, state, not_before, created_at, updated_at, message_id, claimed_by)
    VALUES (?, 'invitation', ?, ?, 1, 1, 1, ?, ?)`);
  insert.run('email', 'a@example.net', 'sent', 'm1@x', null);
  insert.run('xmpp', 'b@example.com', 'sending', 'm2@x', 'instance-1');
  insert.run('email', 'c@example.net', 'queued', 'm3@x', null);
  db.prepare(`UPDATE outbox SET state = 'failed' WHERE id = 3`).run();
  expect(() => insert.run('webhook', 'https://x.example/', 'queued', 'm4@x', null)).toThrow(/CHECK constraint failed/);
  const before = db.prepare('SELECT * FROM outbox ORDER BY id').all();

  migrate(db, all);
  expect(db.prepare('SELECT * FROM outbox ORDER BY id').all()).toEqual(before);
  insert.run('webhook', 'https://x.example/', 'queued', 'm4@x', null);
  expect(db.prepare(`SELECT id FROM outbox WHERE message_id = 'm4@x'`).get()).toEqual({ id: 4 });
  expect(() => insert.run('pigeon', 'x', 'queued', 'm5@x', null)).toThrow(/CHECK constraint failed/);
  expect(() => db.prepare('DELETE FROM outbox WHERE id = 1').run()).toThrow(/outbox rows are never deleted/);
  expect(() => db.prepare(`UPDATE outbox SET recipient = 'z' WHERE id = 1`).run()).toThrow(/never change/);
  const indexes = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
  expect(indexes).toEqual(['outbox_due', 'outbox_recipient']);
  expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'outbox_rebuilt'`).get()).toBeUndefined();
  db.close();
});
