/**
 * The ids of one-stage sessions (New Invite ends its session at its first stage) in the store:
 * written a moment later, in the service's group commit, with the next stanzas' writes
 * (store/command-sessions-repo.ts). Until then the instance answers for them; afterwards the store
 * does, within the caps of domain/command-sessions.ts.
 */
import { SqliteCommandSessions } from '../../src/store/command-sessions-repo';
import type { Db } from '../../src/store/database';
import { GroupCommit } from '../../src/store/group-commit';
import { openTestStore } from '../support/engine';

const dbs: Db[] = [];
afterEach(() => {
  while (dbs.length) dbs.pop()!.close();
});

const ref = (id: string, bare = 'alice@localhost') => ({ id, node: 'urn:xmpp:invite#invite', owner: `${bare}/gajim`, bare });

type Rides = Pick<GroupCommit, 'runWithNext' | 'flushNow'>;

/** A store whose one-stage ids ride in a group commit (the service's), or in what `rides` makes of it. */
function setup(opts: { perJid?: number; max?: number; rides?: (commit: GroupCommit) => Rides } = {}) {
  const db = openTestStore();
  dbs.push(db);
  // Never on its own before flush(): the tests see exactly which batch the ids ride in.
  const commit = new GroupCommit(db, { rideWaitMs: 60_000 });
  const errors: unknown[] = [];
  const store = new SqliteCommandSessions(
    db,
    { perJid: opts.perJid ?? 10, max: opts.max ?? 100 },
    { commit: opts.rides?.(commit) ?? commit, onError: (err) => errors.push(err) },
  );
  const rows = () => db.prepare<[], { id: string; bare: string; expires_at: number | null }>('SELECT id, bare, expires_at FROM command_sessions ORDER BY seq').all();
  const counts = () => db.prepare<[], { open: number; ended: number }>('SELECT open_count AS open, ended_count AS ended FROM command_session_counts').get();
  return { db, commit, store, errors, rows, counts };
}

describe('the ids of one-stage sessions', () => {
  it('are written in the next group commit, one job beside the other writes of the turn', async () => {
    const { db, commit, store, errors, rows, counts } = setup();
    db.prepare('CREATE TABLE other_writes (n INTEGER)').run();
    const other = commit.run(() => db.prepare('INSERT INTO other_writes (n) VALUES (1)').run());
    for (const id of ['s1', 's2', 's3']) store.endUnopened(ref(id));
    // Answered at once by this instance, before the store has them.
    expect(['s1', 's2', 's3'].map((id) => store.find(id))).toEqual(['ended', 'ended', 'ended']);
    expect(rows()).toEqual([]);
    await store.flush();
    await other;
    expect(commit.counts).toEqual({ batches: 1, jobs: 2 });
    expect(rows()).toEqual(['s1', 's2', 's3'].map((id) => ({ id, bare: 'alice@localhost', expires_at: null })));
    expect(counts()).toEqual({ open: 0, ended: 3 });
    expect(store.find('s2')).toBe('ended');
    expect(errors).toEqual([]);
  });

  it('ended after the shared transaction ran, before its callers are answered, go in the next one', async () => {
    const { commit, store, errors, rows } = setup();
    // A stanza's write first in the batch; its handler ends its session once that has committed.
    const first = commit.run(() => undefined).then(() => store.endUnopened(ref('late')));
    store.endUnopened(ref('early'));
    await first;
    await store.flush();
    expect(rows().map((r) => r.id)).toEqual(['early', 'late']);
    expect(commit.counts).toEqual({ batches: 2, jobs: 3 });
    expect(errors).toEqual([]);
  });

  it('keep within the caps: the last ten times perJid per user and twice max in all', async () => {
    const { store, rows, counts } = setup({ perJid: 1, max: 8 });
    for (let i = 0; i < 15; i++) store.endUnopened(ref(`a${i}`));
    for (let i = 0; i < 8; i++) store.endUnopened(ref(`b${i}`, 'bob@localhost'));
    await store.flush();
    const ids = rows().map((r) => r.id);
    // alice's last 10 and bob's 8 are 18, over 16 in all: the two oldest of them go.
    expect(ids).toEqual([...Array.from({ length: 8 }, (_, i) => `a${i + 7}`), ...Array.from({ length: 8 }, (_, i) => `b${i}`)]);
    expect(counts()).toEqual({ open: 0, ended: 16 });
  });

  it('that could not be written are told to onError, left unknown, and the next ones are written', async () => {
    let fail = true;
    const { store, errors, rows, counts } = setup({
      // The first shared transaction never ran (e.g. the write lock never came).
      rides: (commit) => ({
        runWithNext: <T>(fn: () => T) => (fail ? ((fail = false), Promise.reject(new Error('database is locked'))) : commit.runWithNext(fn)),
        flushNow: () => commit.flushNow(),
      }),
    });
    store.endUnopened(ref('lost1'));
    store.endUnopened(ref('lost2'));
    await store.flush();
    expect(errors).toEqual([new Error('database is locked')]);
    expect([store.find('lost1'), store.find('lost2')]).toEqual([undefined, undefined]);
    store.endUnopened(ref('next'));
    await store.flush();
    expect(rows().map((r) => r.id)).toEqual(['next']);
    expect(counts()).toEqual({ open: 0, ended: 1 });
  });

  it('whose job failed in the shared transaction leave nothing of it behind, and the rest of the batch commits', async () => {
    const { db, commit, store, errors, rows, counts } = setup({
      rides: (c) => ({
        runWithNext: (fn) =>
          c.runWithNext(() => {
            fn();
            throw new Error('disk I/O error');
          }),
        flushNow: () => c.flushNow(),
      }),
    });
    db.prepare('CREATE TABLE other_writes (n INTEGER)').run();
    const other = commit.run(() => db.prepare('INSERT INTO other_writes (n) VALUES (1)').run());
    store.endUnopened(ref('s1'));
    await store.flush();
    await other;
    expect(errors).toEqual([new Error('disk I/O error')]);
    expect(rows()).toEqual([]);
    expect(counts()).toBeUndefined();
    expect(store.find('s1')).toBeUndefined();
    expect(db.prepare('SELECT count(*) AS n FROM other_writes').get()).toEqual({ n: 1 });
  });
});
