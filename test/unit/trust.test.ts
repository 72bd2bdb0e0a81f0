/**
 * The invitation tree and the trust rules on a real store (claims written as registrations settle
 * them): which subtree per_tree_open counts (rooted below admins, at the highest account made here),
 * the forest's roots, blocks with reasons, and revoking a subtree.
 */
import { Limits } from '../../src/domain/limits';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { inviteServiceFor, trustFor } from '../../src/services';
import { openDatabase } from '../../src/store/database';
import { SqliteLimitStore } from '../../src/store/limits-repo';
import { testConfig } from '../support/fixtures';

const HOST = 'localhost';

function setup() {
  const config = testConfig({ host: HOST, admins: ['admin@localhost'], invites: { approval: 'none' } });
  const db = openDatabase(':memory:');
  const invites = inviteServiceFor(config, db);
  const trust = trustFor(config, db, invites);
  let n = 0;
  const user = (jid: string): Actor => ({ kind: 'user', jid, isAdmin: jid === 'admin@localhost' });
  /** `inviter` invites, and `username` registers with that invite (a settled claim). */
  const join = (inviter: string | null, username: string, at = Date.now()) => {
    const { invite } = inviter ? invites.create(user(inviter), { kind: 'contact-account', source: 'command' }) : invites.create(OPERATOR, { kind: 'account', source: 'cli' });
    db.prepare(`INSERT INTO claims (id, invite_id, username, door, state, created_at, settled_at, outcome) VALUES (?, ?, ?, 'web', 'spent', ?, ?, 'created')`).run(`c${++n}`, invite.id, username, at, at);
    db.prepare('UPDATE invites SET uses = 1, state = ? WHERE id = ?').run('exhausted', invite.id);
    return invite;
  };
  return { db, invites, trust, join, user, limits: new Limits(new SqliteLimitStore(db, HOST), { perTreeOpen: 1 }, ['admin@localhost']) };
}

it('roots the subtree per_tree_open counts at the highest account made here, below admins', () => {
  const { join, limits } = setup();
  join('admin@localhost', 'mallory');
  join('mallory@localhost', 'sock1');
  join('sock1@localhost', 'sock2');
  join(null, 'solo');
  expect(limits.treeRootOf('sock2@localhost')).toBe('mallory@localhost');
  expect(limits.treeRootOf('mallory@localhost')).toBe('mallory@localhost');
  expect(limits.treeRootOf('solo@localhost')).toBe('solo@localhost');
  // Accounts the service did not make, and admins, are in no subtree.
  expect(limits.treeRootOf('alice@localhost')).toBeNull();
  expect(limits.treeRootOf('admin@localhost')).toBeNull();
});

it('makes a forest whose roots are the inviters not made here and the accounts of operator invites', () => {
  const { join, trust, invites, user } = setup();
  join('admin@localhost', 'ann');
  join('ann@localhost', 'bob');
  join(null, 'olga');
  invites.create(user('alice@localhost'), { kind: 'contact-account', source: 'command', email: 'x@example.org' });
  const forest = trust.tree();
  expect(forest.map((n) => [n.jid, n.madeHere])).toEqual([
    ['admin@localhost', false],
    ['alice@localhost', false],
    ['olga@localhost', true],
  ]);
  expect(forest[0].children.map((c) => c.jid)).toEqual(['ann@localhost']);
  expect(forest[0].children[0].children.map((c) => c.jid)).toEqual(['bob@localhost']);
  expect(forest[2]).toMatchObject({ inviter: null, approvedBy: 'operator', children: [] });
});

it('keeps blocks as records: a reason is required, the latest row decides', () => {
  const { trust, invites, user } = setup();
  expect(() => trust.block(OPERATOR, 'alice@localhost', '   ')).toThrow(/needs a reason/);
  expect(() => trust.block(user('bob@localhost'), 'alice@localhost', 'x')).toThrow(/Only admins/);
  trust.block(user('admin@localhost'), 'Alice@LOCALHOST', 'spam');
  expect(trust.blockOf('alice@localhost')).toMatchObject({ reason: 'spam', actor: 'admin@localhost' });
  expect(() => invites.create(user('alice@localhost'), { kind: 'contact', source: 'command' })).toThrow('alice@localhost may not invite: spam');
  expect(trust.unblock(OPERATOR, 'alice@localhost')).toBe(true);
  expect(trust.unblock(OPERATOR, 'alice@localhost')).toBe(false);
  expect(trust.blocked()).toEqual([]);
  expect(invites.create(user('alice@localhost'), { kind: 'contact', source: 'command' }).invite.state).toBe('open');
});

it('revokes the live invites of a subtree only, and only for admins', () => {
  const { join, trust, invites, user } = setup();
  join('admin@localhost', 'ann');
  join('ann@localhost', 'bob');
  const annOpen = invites.create(user('ann@localhost'), { kind: 'contact', source: 'command' }).invite;
  const bobOpen = invites.create(user('bob@localhost'), { kind: 'contact', source: 'command' }).invite;
  const outside = invites.create(user('alice@localhost'), { kind: 'contact', source: 'command' }).invite;
  expect(() => trust.revokeTree(user('ann@localhost'), 'ann@localhost', null)).toThrow(/Only admins/);
  expect(trust.revokeTree(user('admin@localhost'), 'ann@localhost', null).map((i) => i.id).sort()).toEqual([annOpen.id, bobOpen.id].sort());
  expect(invites.get(outside.id)?.state).toBe('open');
  expect(invites.events(bobOpen.id).at(-1)).toMatchObject({ type: 'revoked', reason: 'revoked with the tree of ann@localhost' });
});
