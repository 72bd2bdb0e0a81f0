/**
 * The job leases (store/leases-repo.ts) on one SQLite file shared by two connections, as two
 * `serve` processes share it: each periodic job runs once per period across both schedulers, an
 * instance that dies loses its leases when they end and the other takes the jobs over, and one that
 * stops cleanly hands them over at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openDatabase, type Db } from '../../src/store/database';
import { SqliteJobLeases } from '../../src/store/leases-repo';
import { IN_FLIGHT_MS, periodicJobs, PRESENCE_TTL_MS, Scheduler, type Job } from '../../src/jobs';
import type { InviteService } from '../../src/domain/invites';
import type { Registration } from '../../src/domain/registration';

const PERIOD = 1_000;
const NAMES = ['expiry', 'reminders', 'reconcile'];

let dir: string;
const dbs: Db[] = [];
beforeEach(() => {
  jest.useFakeTimers();
  dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-leases-'));
});
afterEach(() => {
  jest.useRealTimers();
  for (const db of dbs.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A connection of its own to the shared file, as each process opens it. */
function connect(): Db {
  const db = openDatabase(join(dir, 'store.sqlite'));
  dbs.push(db);
  return db;
}

interface Run {
  job: string;
  by: string;
  at: number;
}

/** One instance: its own connection, leases and scheduler, with the three jobs recording their runs. */
function instance(id: string, runs: Run[]) {
  const leases = new SqliteJobLeases(connect(), id);
  const scheduler = new Scheduler({ logger: pino({ level: 'silent' }), lease: (job, periodMs) => leases.take(job, periodMs) });
  for (const name of NAMES) {
    const job: Job = { name, everyMs: PERIOD, run: () => (runs.push({ job: name, by: id, at: Date.now() }), 1) };
    scheduler.add(job);
  }
  return { leases, scheduler };
}

/** For each job, who ran it in each period since `t0` (periods with no run are holes: undefined). */
function byPeriod(runs: Run[], t0: number, periods: number): Record<string, (string | undefined)[]> {
  const out: Record<string, (string | undefined)[]> = {};
  for (const name of NAMES) {
    const row: (string | undefined)[] = new Array(periods).fill(undefined);
    for (const r of runs.filter((r) => r.job === name)) {
      const p = Math.floor((r.at - t0) / PERIOD);
      if (p >= periods) continue;
      // A second run in one period is recorded as both runners.
      row[p] = row[p] === undefined ? r.by : `${row[p]}+${r.by}`;
    }
    out[name] = row;
  }
  return out;
}

describe('the lease statement', () => {
  it('gives an unheld lease to the first instance, renews it for its holder, refuses it to others until it ends', () => {
    let now = Date.UTC(2026, 0, 1);
    const a = new SqliteJobLeases(connect(), 'a', () => now);
    const b = new SqliteJobLeases(connect(), 'b', () => now);
    expect(a.take('expiry', PERIOD)).toBe(true);
    expect(b.take('expiry', PERIOD)).toBe(false);
    now += PERIOD - 1;
    expect(b.take('expiry', PERIOD)).toBe(false);
    // The holder renews before the end: held a period from now.
    expect(a.take('expiry', PERIOD)).toBe(true);
    now += PERIOD - 1;
    expect(b.take('expiry', PERIOD)).toBe(false);
    // Not renewed: at its end another instance takes it over, and the old holder is refused.
    now += 1;
    expect(b.take('expiry', PERIOD)).toBe(true);
    expect(a.take('expiry', PERIOD)).toBe(false);
    // Each job has its own lease.
    expect(a.take('reminders', PERIOD)).toBe(true);
    expect(dbs[0].prepare('SELECT job, holder, held_until FROM job_leases ORDER BY job').all()).toEqual([
      { job: 'expiry', holder: 'b', held_until: now + PERIOD },
      { job: 'reminders', holder: 'a', held_until: now + PERIOD },
    ]);
  });

  it('ends only the leases of the instance that releases them, and its presence', () => {
    const now = Date.UTC(2026, 0, 1);
    const a = new SqliteJobLeases(connect(), 'a', () => now);
    const b = new SqliteJobLeases(connect(), 'b', () => now);
    a.beat(5_000);
    expect([a.take('expiry', PERIOD), a.take('reconcile', PERIOD), b.take('reminders', PERIOD)]).toEqual([true, true, true]);
    expect(a.release()).toBe(2);
    expect(dbs[0].prepare(`SELECT count(*) AS n FROM job_leases WHERE job = 'instance:a'`).get()).toEqual({ n: 0 });
    expect([b.take('expiry', PERIOD), b.take('reconcile', PERIOD), a.take('reminders', PERIOD)]).toEqual([true, true, false]);
  });
});

describe('presence', () => {
  const TTL = 5_000;

  it('finds no other instance alive, at once, when none has a presence', async () => {
    const a = new SqliteJobLeases(connect(), 'a');
    a.beat(TTL);
    const t = Date.now();
    await expect(a.othersLive()).resolves.toBe(false);
    expect(Date.now()).toBe(t);
  });

  it('tells an instance that renews its presence (alive) from one that died, waiting at most one lifetime', async () => {
    const a = new SqliteJobLeases(connect(), 'a');
    const b = new SqliteJobLeases(connect(), 'b');
    a.beat(TTL);
    // b renews every 2 s, as the presence job does.
    const beating = setInterval(() => b.beat(TTL), 2_000);
    b.beat(TTL);
    try {
      const asked = a.othersLive();
      await jest.advanceTimersByTimeAsync(TTL + 1);
      await expect(asked).resolves.toBe(true);
    } finally {
      clearInterval(beating);
    }
    // b dies (it beat last 1 s ago): a waits for its presence to end, 4 s, then knows it is alone.
    const t = Date.now();
    const asked = a.othersLive();
    let answer: boolean | undefined;
    void asked.then((v) => (answer = v));
    await jest.advanceTimersByTimeAsync(TTL - 2_000 - 1);
    expect(answer).toBeUndefined();
    await jest.advanceTimersByTimeAsync(2_000);
    expect(answer).toBe(false);
    expect(Date.now() - t).toBeLessThanOrEqual(TTL);
    // A's next beat forgets b's ended presence.
    a.beat(TTL);
    expect(dbs[0].prepare('SELECT job FROM job_leases ORDER BY job').all()).toEqual([{ job: 'instance:a' }]);
  });
});

describe('two schedulers on one SQLite file', () => {
  it('run each job once per period, over several periods, whichever instance started first', async () => {
    const runs: Run[] = [];
    const t0 = Date.now();
    const a = instance('a', runs);
    const b = instance('b', runs);
    a.scheduler.start();
    await jest.advanceTimersByTimeAsync(300);
    b.scheduler.start();
    await jest.advanceTimersByTimeAsync(6 * PERIOD - 300 - 1);
    const all = Array(6).fill('a');
    expect(byPeriod(runs, t0, 6)).toEqual({ expiry: all, reminders: all, reconcile: all });
    expect(runs).toHaveLength(18);
    await Promise.all([a.scheduler.stop(), b.scheduler.stop()]);
  });

  it('lets the other instance take the jobs over once the leases of one that died have ended', async () => {
    const runs: Run[] = [];
    const t0 = Date.now();
    const a = instance('a', runs);
    const b = instance('b', runs);
    a.scheduler.start();
    await jest.advanceTimersByTimeAsync(300);
    b.scheduler.start();
    await jest.advanceTimersByTimeAsync(3 * PERIOD - 300 - 1);
    // a dies after its runs of period 2 (at t0 + 2000): its timers stop, its leases stay until t0 + 3000.
    await a.scheduler.stop();
    await jest.advanceTimersByTimeAsync(5 * PERIOD);
    // b's timer fires at t0 + 2300 (refused: a's lease), then t0 + 3300: one run in every period.
    const want = ['a', 'a', 'a', 'b', 'b', 'b', 'b', 'b'];
    expect(byPeriod(runs, t0, 8)).toEqual({ expiry: want, reminders: want, reconcile: want });
    expect(runs.filter((r) => r.by === 'b').map((r) => r.at - t0)).toEqual([3300, 3300, 3300, 4300, 4300, 4300, 5300, 5300, 5300, 6300, 6300, 6300, 7300, 7300, 7300]);
    await b.scheduler.stop();
  });

  it('hands the jobs over at once when an instance stops cleanly and releases its leases', async () => {
    const runs: Run[] = [];
    const t0 = Date.now();
    const a = instance('a', runs);
    a.scheduler.start();
    await jest.advanceTimersByTimeAsync(500);
    await a.scheduler.stop();
    expect(a.leases.release()).toBe(3);
    const b = instance('b', runs);
    b.scheduler.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(runs.map((r) => [r.job, r.by, r.at - t0])).toEqual([
      ['expiry', 'a', 0],
      ['reminders', 'a', 0],
      ['reconcile', 'a', 0],
      ['expiry', 'b', 500],
      ['reminders', 'b', 500],
      ['reconcile', 'b', 500],
    ]);
    await b.scheduler.stop();
  });
});

describe('reconciliation at start beside another instance', () => {
  /** An instance as serve wires it: leases, presence, and reconcileAll recording the ages it is given. */
  function serveLike(id: string, ages: number[]) {
    const leases = new SqliteJobLeases(connect(), id);
    const invites = { recordExpiries: () => [] } as unknown as InviteService;
    const registration = { reconcileAll: async (olderThanMs: number) => (ages.push(olderThanMs), 0) } as unknown as Registration;
    const scheduler = new Scheduler({ logger: pino({ level: 'silent' }), lease: (job, periodMs) => leases.take(job, periodMs) });
    const logger = pino({ level: 'silent' });
    for (const job of periodicJobs({ invites, registration, reminderBefore: null, logger, othersLive: () => leases.othersLive(), presence: () => leases.beat(PRESENCE_TTL_MS) })) {
      scheduler.add(job);
    }
    return { leases, scheduler };
  }

  it('leaves the young claims alone beside a live instance, and settles them all once the other has died', async () => {
    const agesA: number[] = [];
    const a = serveLike('a', agesA);
    a.scheduler.start();
    await jest.advanceTimersByTimeAsync(0);
    // Alone: every held claim at start.
    expect(agesA).toEqual([0]);

    const agesB: number[] = [];
    const b = serveLike('b', agesB);
    b.scheduler.start();
    await jest.advanceTimersByTimeAsync(PRESENCE_TTL_MS + 1);
    // a renewed its presence meanwhile: only claims that cannot be in flight there any more.
    expect(agesB).toEqual([IN_FLIGHT_MS]);

    // a holds the lease of the periodic reconciliation (as after a run on its timer), then dies
    // (no clean stop: its presence and leases stay until they end); c starts 1 s later.
    expect(a.leases.take('reconcile', 60_000)).toBe(true);
    await a.scheduler.stop();
    await b.scheduler.stop();
    b.leases.release();
    await jest.advanceTimersByTimeAsync(1_000);
    const agesC: number[] = [];
    const c = serveLike('c', agesC);
    c.scheduler.start();
    await jest.advanceTimersByTimeAsync(PRESENCE_TTL_MS);
    // It waited for a's presence to end unrenewed, then settled every held claim, a's included,
    // though a's lease of the periodic run still holds.
    expect(agesC).toEqual([0]);
    expect(c.leases.take('reconcile', 60_000)).toBe(false);
    await c.scheduler.stop();
  });
});
