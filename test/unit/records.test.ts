/**
 * Rows of record change only as the service changes them: INSERT OR REPLACE and UPDATE OR REPLACE
 * (whose conflict resolution deletes silently) are refused on every table that is never deleted
 * from, and the columns that say what an invite, a claim or an outbox row is never change. The
 * service's own updates go on working (the store, invites, registration and outbox tests).
 */
import type { Actor } from '../../src/domain/types';
import { inviteServiceFor } from '../../src/services';
import { type Db } from '../../src/store/database';
import { openTestStore } from '../support/engine';
import { testConfig } from '../support/fixtures';

const alice: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
const TABLES = ['invites', 'events', 'claims', 'outbox', 'opt_outs', 'invite_requests'];

/** A database with a row in every table of record, made the way the service makes them. */
function populated(): { db: Db; inviteId: string; dump: () => string } {
  const db = openTestStore();
  const invites = inviteServiceFor(testConfig({ invites: { approval: 'none' } }), db);
  const { invite } = invites.create(alice, { kind: 'contact', source: 'presence', jid: 'carol@elsewhere.net', note: 'hi' });
  const declined = invites.create(alice, { kind: 'contact', source: 'presence', jid: 'dave@elsewhere.net' });
  invites.decline(declined.links.token, null, true);
  db.prepare(`INSERT INTO claims (id, invite_id, username, door, state, created_at) VALUES ('c1', ?, 'bob', 'web', 'held', 1)`).run(invite.id);
  db.prepare(`INSERT INTO invite_requests (sender, request_key, created_at, result) VALUES ('alice@localhost', 'r1', 1, '[]')`).run();
  const dump = () => TABLES.map((t) => JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all())).join('\n');
  return { db, inviteId: invite.id, dump };
}

describe('REPLACE never deletes a row of record', () => {
  test.each(TABLES)('REPLACE of an existing %s row is refused and changes nothing', (table) => {
    const { db, dump } = populated();
    const before = dump();
    expect(db.prepare(`SELECT count(*) AS n FROM ${table}`).get()).not.toEqual({ n: 0 });
    expect(() => db.prepare(`INSERT OR REPLACE INTO ${table} SELECT * FROM ${table} LIMIT 1`).run()).toThrow(/never deleted/);
    expect(() => db.prepare(`REPLACE INTO ${table} SELECT * FROM ${table} LIMIT 1`).run()).toThrow(/never deleted/);
    expect(dump()).toBe(before);
  });

  test('REPLACE through another unique key (the duplicate pair, a message id, a held username) is refused', () => {
    const { db, dump } = populated();
    const before = dump();
    const pair = (db.prepare('SELECT active_key FROM invites WHERE active_key IS NOT NULL').get() as { active_key: string }).active_key;
    expect(() =>
      db.prepare(`INSERT OR REPLACE INTO invites (id, kind, state, source, created_at, expires_at, active_key) VALUES ('zzzzzzzzzz', 'contact', 'open', 'cli', 0, 1, ?)`).run(pair),
    ).toThrow(/never deleted/);
    expect(() =>
      db.prepare(`INSERT OR REPLACE INTO outbox (channel, kind, recipient, state, not_before, created_at, updated_at, message_id)
                  SELECT channel, kind, recipient, state, not_before, created_at, updated_at, message_id FROM outbox LIMIT 1`).run(),
    ).toThrow(/never deleted/);
    expect(() => db.prepare(`INSERT OR REPLACE INTO claims (id, username, door, state, created_at) VALUES ('c2', 'bob', 'web', 'held', 2)`).run()).toThrow(
      /never deleted/,
    );
    expect(dump()).toBe(before);
  });

  test('UPDATE OR REPLACE onto another invite\'s duplicate pair is refused', () => {
    const { db, dump, inviteId } = populated();
    const other = db.prepare(`INSERT INTO invites (id, kind, state, source, created_at, expires_at, active_key) VALUES ('zzzzzzzzzz', 'contact', 'open', 'cli', 0, 1, 'x|y')`);
    other.run();
    const before = dump();
    expect(() => db.prepare(`UPDATE OR REPLACE invites SET active_key = 'x|y' WHERE id = ?`).run(inviteId)).toThrow(/never deleted/);
    expect(dump()).toBe(before);
  });

  test('INSERT OR IGNORE still ignores (the store relies on it for ids and opt-outs)', () => {
    const { db, dump } = populated();
    const before = dump();
    expect(db.prepare('INSERT OR IGNORE INTO opt_outs SELECT * FROM opt_outs').run().changes).toBe(0);
    expect(db.prepare('INSERT OR IGNORE INTO invites SELECT * FROM invites').run().changes).toBe(0);
    expect(dump()).toBe(before);
  });
});

describe('what a row says it is never changes', () => {
  test.each([
    ['id', 'yyyyyyyyyy'],
    ['kind', 'account'],
    ['inviter', 'mallory@localhost'],
    ['source', 'web'],
    ['invitee_email', 'x@example.org'],
    ['invitee_email_key', 'x@example.org'],
    ['invitee_jid', 'mallory@elsewhere.net'],
    ['invitee_name', 'Mallory'],
    ['invitee_key', 'mallory@elsewhere.net'],
    ['username', 'mallory'],
    ['note', 'changed'],
    ['roster_subscription', 1],
    ['max_uses', 5],
    ['created_at', 1],
  ])('an invite\'s %s', (column, value) => {
    const { db, dump, inviteId } = populated();
    const before = dump();
    expect(() => db.prepare(`UPDATE invites SET ${column} = ? WHERE id = ?`).run(value, inviteId)).toThrow(/never change/);
    expect(dump()).toBe(before);
  });

  test.each([
    ['claims', 'username', 'mallory'],
    ['claims', 'invite_id', null],
    ['claims', 'created_at', 5],
    ['outbox', 'recipient', 'mallory@localhost'],
    ['outbox', 'message_id', 'other'],
    ['opt_outs', 'address_hash', 'other'],
    ['opt_outs', 'created_at', 5],
    ['invite_requests', 'result', '{}'],
  ])('%s.%s', (table, column, value) => {
    const { db, dump } = populated();
    const before = dump();
    expect(() => db.prepare(`UPDATE ${table} SET ${column} = ?`).run(value)).toThrow(/never/);
    expect(dump()).toBe(before);
  });

  test('the columns the service changes still change, and writing a fixed column\'s own value is no change', () => {
    const { db, inviteId } = populated();
    const update = db.prepare(
      `UPDATE invites SET state = 'revoked', ended_at = 9, generation = generation + 1, expires_at = 10, email_delivery = 'failed',
         message_delivery = 'sent', reminded_at = 8, expiry_recorded = 1, note = note, kind = kind WHERE id = ?`,
    );
    expect(update.run(inviteId).changes).toBe(1);
    expect(db.prepare(`UPDATE claims SET state = 'released', settled_at = 3, outcome = 'refused: x' WHERE id = 'c1'`).run().changes).toBe(1);
    expect(db.prepare(`UPDATE outbox SET state = 'sending', attempts = 1, updated_at = 4`).run().changes).toBeGreaterThan(0);
  });
});
