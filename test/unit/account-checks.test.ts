/**
 * Questions whether an account exists, asked by the command line and answered by the running
 * service through the store (src/domain/account-checks.ts, src/store/account-checks-repo.ts), on
 * the engine under test: answered once however many instances poll, the server's error recorded
 * as the answer, a wait that ends closes the question, and the rows are kept as they were written.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccountChecks } from '../../src/domain/account-checks';
import { ProvisionUnclear } from '../../src/domain/registration';
import { openStore, type Db } from '../../src/store/database';
import { SqliteAccountCheckStore } from '../../src/store/account-checks-repo';
import { testDatabase } from '../support/engine';

const T = Date.UTC(2026, 0, 1);
let dir: string;
const dbs: Db[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-checks-'));
});
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `n` connections to one new store, as `n` processes (the CLI, instances of `serve`) have. */
function connections(n: number): Db[] {
  const where = testDatabase(join(dir, 'store.sqlite'));
  for (let i = 0; i < n; i++) dbs.push(openStore(where));
  return dbs.slice(-n);
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * A clock the test moves, and the AccountChecks of each connection on it. Each write waits a turn
 * of the event loop first, as the service's do when the store is busy: instances that read the
 * same waiting question both get to try to take it.
 */
function setup(n = 2) {
  const clock = { now: T };
  const write = async <T>(fn: () => T): Promise<T> => (await tick(), fn());
  const checks = connections(n).map((db) => new AccountChecks({ store: new SqliteAccountCheckStore(db), clock: () => clock.now, write }));
  const rows = () => dbs[0].prepare('SELECT * FROM account_checks ORDER BY id').all() as Record<string, unknown>[];
  return { clock, checks, rows };
}

/** A server's answer held until released; counts the questions it was asked. */
function server(answer: (username: string) => boolean | Error) {
  const asked: string[] = [];
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  return {
    asked,
    release: () => release(),
    exists: async (username: string) => {
      asked.push(username);
      await gate;
      const a = answer(username);
      if (a instanceof Error) throw a;
      return a;
    },
  };
}

it('answers a question once, however many instances poll one store at once', async () => {
  const { clock, checks, rows } = setup(3);
  const [cli, one, two] = checks;
  const alice = server((u) => u === 'alice');
  let answered: Promise<number[]> | undefined;
  const outcome = cli.ask('operator', 'Alice', {
    waitMs: 15_000,
    // The asker's first look finds no answer: both instances poll the store meanwhile.
    sleep: async (ms) => {
      clock.now += ms;
      if (!answered) {
        answered = Promise.all([one.answerWaiting('instance-1', alice.exists), two.answerWaiting('instance-2', alice.exists)]);
        await tick();
        await tick();
        alice.release();
        await answered;
      }
    },
  });
  await expect(outcome).resolves.toMatchObject({ kind: 'exists' });
  expect((await answered!).sort()).toEqual([0, 1]);
  expect(alice.asked).toEqual(['alice']);
  const [row] = rows();
  expect(row).toMatchObject({ username: 'alice', asked_by: 'operator', asked_at: T, wait_until: T + 15_000, answer: 'exists', reason: null });
  expect(row.taken_by).toBe(row.answered_by);
  expect(['instance-1', 'instance-2']).toContain(row.taken_by);
  // Nothing is left to take.
  expect(await one.answerWaiting('instance-1', alice.exists)).toBe(0);
  expect(alice.asked).toHaveLength(1);
});

it('tells the asker an account is missing', async () => {
  const { clock, checks, rows } = setup();
  const [cli, service] = checks;
  const nobody = server(() => false);
  nobody.release();
  const outcome = await cli.ask('operator', 'ghost', {
    waitMs: 15_000,
    sleep: async (ms) => {
      clock.now += ms;
      await service.answerWaiting('instance-1', nobody.exists);
    },
  });
  expect(outcome).toEqual({ kind: 'missing', id: rows()[0].id, by: 'instance-1' });
  expect(rows()[0]).toMatchObject({ answer: 'missing', answered_by: 'instance-1' });
});

it("records the server's error as the answer, with its reason", async () => {
  const { clock, checks, rows } = setup();
  const [cli, service] = checks;
  const failing = server(() => new ProvisionUnclear('user-stats: remote-server-timeout'));
  failing.release();
  const outcome = await cli.ask('operator', 'alice', {
    waitMs: 15_000,
    sleep: async (ms) => {
      clock.now += ms;
      await service.answerWaiting('instance-1', failing.exists);
    },
  });
  expect(outcome).toMatchObject({ kind: 'unclear', by: 'instance-1', reason: 'user-stats: remote-server-timeout' });
  expect(rows()[0]).toMatchObject({ answer: 'unclear', reason: 'user-stats: remote-server-timeout', answered_by: 'instance-1', answered_at: T + 150 });
});

it('closes a question nobody answered once the wait is over, and no instance takes it after', async () => {
  const { clock, checks, rows } = setup();
  const [cli, service] = checks;
  let looks = 0;
  const outcome = await cli.ask('operator', 'alice', { waitMs: 1_000, sleep: async (ms) => void (looks++, (clock.now += ms)) });
  expect(outcome).toMatchObject({ kind: 'unanswered', takenBy: null });
  expect(looks).toBe(7); // every 150 ms for a second
  expect(rows()[0]).toMatchObject({ answer: 'unanswered', answered_by: 'operator', answered_at: T + 1_000, taken_by: null });
  const late = server(() => true);
  late.release();
  expect(await service.answerWaiting('instance-1', late.exists)).toBe(0);
  expect(late.asked).toEqual([]);
});

it('leaves a question the asker no longer waits for, even unanswered', async () => {
  const { clock, checks, rows } = setup();
  const [cli, service] = checks;
  // The asker died before its wait ended: nothing closed the question.
  const asking = cli.ask('operator', 'alice', { waitMs: 1_000, sleep: () => new Promise(() => {}) });
  void asking;
  await tick();
  expect(rows()).toHaveLength(1);
  clock.now += 1_000;
  const alice = server(() => true);
  alice.release();
  expect(await service.answerWaiting('instance-1', alice.exists)).toBe(0);
  expect(rows()[0]).toMatchObject({ answer: null, taken_by: null });
});

it('says which instance took a question it did not answer in time, and does not write its late answer', async () => {
  const { clock, checks, rows } = setup();
  const [cli, service] = checks;
  const slow = server(() => true);
  let answering: Promise<number> | undefined;
  const outcome = await cli.ask('operator', 'alice', {
    waitMs: 1_000,
    sleep: async (ms) => {
      clock.now += ms;
      answering ??= service.answerWaiting('instance-1', slow.exists);
      await tick();
    },
  });
  expect(outcome).toMatchObject({ kind: 'unanswered', takenBy: 'instance-1' });
  slow.release();
  expect(await answering).toBe(1);
  expect(rows()[0]).toMatchObject({ taken_by: 'instance-1', answer: 'unanswered', answered_by: 'operator' });
});

it('refuses a username the rules refuse, recording nothing', async () => {
  const { checks, rows } = setup(1);
  await expect(checks[0].ask('operator', 'not valid!', { waitMs: 1_000 })).rejects.toMatchObject({ code: 'invalid-input' });
  expect(rows()).toEqual([]);
});

it('keeps every question as written: never deleted, never changed once answered', async () => {
  const { clock, checks, rows } = setup();
  const [cli, service] = checks;
  const alice = server(() => true);
  alice.release();
  await cli.ask('operator', 'alice', {
    waitMs: 15_000,
    sleep: async (ms) => {
      clock.now += ms;
      await service.answerWaiting('instance-1', alice.exists);
    },
  });
  const before = rows();
  const db = dbs[0];
  expect(() => db.prepare('DELETE FROM account_checks').run()).toThrow(/account checks are never deleted/);
  expect(() => db.prepare(`UPDATE account_checks SET answer = 'missing'`).run()).toThrow(/an answered account check never changes/);
  expect(() => db.prepare(`UPDATE account_checks SET username = 'bob'`).run()).toThrow(/never change/);
  expect(rows()).toEqual(before);
  // Unanswered, what was asked is fixed as well.
  const open = db.prepare(`INSERT INTO account_checks (username, asked_by, asked_at, wait_until) VALUES ('carol', 'operator', ?, ?)`);
  open.run(T, T + 1_000);
  for (const change of [`username = 'dave'`, `asked_by = 'someone'`, 'asked_at = asked_at + 1', 'wait_until = wait_until + 1']) {
    expect(() => db.prepare(`UPDATE account_checks SET ${change} WHERE answer IS NULL`).run()).toThrow("an account check's id, account, asker, time and wait never change");
  }
});
