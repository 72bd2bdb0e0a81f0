/**
 * The scheduler of the periodic jobs (src/jobs.ts), on fake timers: each job at start then every
 * period, one run of a job at a time, failures logged with the job's name, a clean stop, and the
 * lease asked before every run at start and on the timer.
 */
import pino from 'pino';
import type { InviteService } from '../../src/domain/invites';
import type { Registration } from '../../src/domain/registration';
import { periodicJobs, Scheduler, type Job, type Lease, type RunReason } from '../../src/jobs';

interface Line {
  level: number;
  msg: string;
  job?: string;
  err?: { message: string };
}

function capture() {
  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { lines, logger };
}

/** A job whose runs are recorded, and which can be made to fail or to hang until released. */
function recorded(name: string, everyMs: number) {
  const runs: RunReason[] = [];
  let active = 0;
  let most = 0;
  let hold: Promise<void> | undefined;
  let release = () => {};
  let fail: string | undefined;
  const job: Job = {
    name,
    everyMs,
    run: async (why) => {
      runs.push(why);
      most = Math.max(most, ++active);
      try {
        if (hold) await hold;
        if (fail) throw new Error(fail);
        return runs.length;
      } finally {
        active--;
      }
    },
  };
  return {
    job,
    runs,
    most: () => most,
    hang() {
      hold = new Promise((r) => (release = () => ((hold = undefined), r())));
    },
    release: () => release(),
    failWith: (message: string | undefined) => (fail = message),
  };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe('the scheduler', () => {
  it('runs each job at start, then once every period', async () => {
    const { logger } = capture();
    const a = recorded('a', 1_000);
    const b = recorded('b', 5_000);
    const jobs = new Scheduler({ logger }).add(a.job).add(b.job);
    jobs.start();
    await jest.advanceTimersByTimeAsync(0);
    expect([a.runs, b.runs]).toEqual([['start'], ['start']]);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(a.runs).toHaveLength(11);
    expect(b.runs).toEqual(['start', 'timer', 'timer']);
    await jobs.stop();
  });

  it('never runs one job twice at once: a run longer than the period delays the next', async () => {
    const { logger } = capture();
    const a = recorded('a', 1_000);
    a.hang();
    const jobs = new Scheduler({ logger }).add(a.job);
    jobs.start();
    await jest.advanceTimersByTimeAsync(5_500);
    expect(a.runs).toEqual(['start']);
    a.release();
    await jest.advanceTimersByTimeAsync(0);
    // The overdue period runs at once, then the job keeps its period.
    expect(a.runs).toEqual(['start', 'timer']);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(a.runs).toEqual(['start', 'timer', 'timer']);
    expect(a.most()).toBe(1);
    await jobs.stop();
  });

  it('makes the runs asked for while one is going wait for it, and several of them one', async () => {
    const { logger } = capture();
    const a = recorded('a', 60_000);
    a.hang();
    const jobs = new Scheduler({ logger }).add(a.job);
    jobs.start();
    const asked = [jobs.run('a'), jobs.run('a'), jobs.run('a')];
    await jest.advanceTimersByTimeAsync(0);
    expect(a.runs).toEqual(['start']);
    a.release();
    // run() resolves with what the run did: the second run of the job.
    expect(await Promise.all(asked)).toEqual([2, 2, 2]);
    expect(a.runs).toEqual(['start', 'asked']);
    expect(a.most()).toBe(1);
    await jobs.stop();
  });

  it('logs a failed run with the name of its job, and runs the job again next period', async () => {
    const { logger, lines } = capture();
    const a = recorded('expiry', 1_000);
    a.failWith('database is locked');
    const jobs = new Scheduler({ logger }).add(a.job);
    jobs.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(lines).toEqual([expect.objectContaining({ level: 50, job: 'expiry', msg: 'the periodic job expiry failed', err: expect.objectContaining({ message: 'database is locked' }) })]);
    expect(await jobs.run('expiry')).toBeUndefined();
    a.failWith(undefined);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(a.runs).toEqual(['start', 'asked', 'timer']);
    expect(lines).toHaveLength(2);
    await jobs.stop();
  });

  it('stops cleanly: timers cleared, the run in progress awaited, no run after', async () => {
    const { logger } = capture();
    const a = recorded('a', 1_000);
    // b waits on its timer when the scheduler stops, a is in the middle of a run
    const b = recorded('b', 1_500);
    const jobs = new Scheduler({ logger }).add(a.job).add(b.job);
    jobs.start();
    await jest.advanceTimersByTimeAsync(2_000);
    expect(a.runs).toHaveLength(3);
    a.hang();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(a.runs).toHaveLength(4);
    let stopped = false;
    const stopping = jobs.stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    a.release();
    await stopping;
    expect(jest.getTimerCount()).toBe(0);
    expect(await jobs.run('a')).toBeUndefined();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(a.runs).toHaveLength(4);
    expect(b.runs).toEqual(['start', 'timer', 'timer']);
  });

  it('asks the lease before each run at start and on the timer, and skips the run it refuses', async () => {
    const { logger } = capture();
    const a = recorded('reminders', 1_000);
    const asked: [string, number][] = [];
    let granted = [true, false, true];
    const lease: Lease = async (job, periodMs) => {
      asked.push([job, periodMs]);
      return granted.shift() ?? false;
    };
    const jobs = new Scheduler({ logger, lease }).add(a.job);
    jobs.start();
    await jest.advanceTimersByTimeAsync(2_000);
    expect(asked).toEqual([['reminders', 1_000], ['reminders', 1_000], ['reminders', 1_000]]);
    expect(a.runs).toEqual(['start', 'timer']);
    // A run asked for on this instance is its own: no lease.
    granted = [];
    await jobs.run('reminders');
    expect(asked).toHaveLength(3);
    expect(a.runs).toEqual(['start', 'timer', 'asked']);
    await jobs.stop();
  });

  it('asks the lease of a job leased on the timer only on its timer, and never for a job never leased', async () => {
    const { logger } = capture();
    const own = recorded('reconcile', 1_000);
    const each = recorded('presence', 1_000);
    const asked: string[] = [];
    const lease: Lease = (job) => (asked.push(job), false);
    const jobs = new Scheduler({ logger, lease })
      .add({ ...own.job, leased: 'timer' })
      .add({ ...each.job, leased: 'never' });
    jobs.start();
    await jest.advanceTimersByTimeAsync(2_000);
    // At start both run without asking; on the timer the lease refuses reconcile, presence runs on.
    expect(asked).toEqual(['reconcile', 'reconcile']);
    expect(own.runs).toEqual(['start']);
    expect(each.runs).toEqual(['start', 'timer', 'timer']);
    await jobs.stop();
  });

  it('refuses two jobs of one name and runs of an unknown one', () => {
    const { logger } = capture();
    const jobs = new Scheduler({ logger }).add(recorded('a', 1).job);
    expect(() => jobs.add(recorded('a', 1).job)).toThrow('There is already a job named a');
    expect(() => jobs.run('b')).toThrow('No job named b');
  });
});

describe('the jobs of serve', () => {
  function fakes() {
    const ages: number[] = [];
    const batches = { expiries: [500, 500, 3], reminders: [2] };
    const invites = {
      recordExpiries: () => new Array(batches.expiries.shift() ?? 0),
      queueReminders: () => new Array(batches.reminders.shift() ?? 0),
    } as unknown as InviteService;
    const registration = {
      reconcileAll: async (olderThanMs: number) => (ages.push(olderThanMs), 1),
    } as unknown as Registration;
    return { invites, registration, ages };
  }

  it('expire in batches until none is left, remind only when reminder_before is set, and reconcile the young claims only at start or when asked', async () => {
    const { logger, lines } = capture();
    const { invites, registration, ages } = fakes();
    expect(periodicJobs({ invites, registration, reminderBefore: null, logger }).map((j) => j.name)).toEqual(['expiry', 'reconcile']);
    const all = periodicJobs({ invites, registration, reminderBefore: 86_400_000, logger });
    expect(all.map((j) => [j.name, j.everyMs])).toEqual([['expiry', 60_000], ['reminders', 60_000], ['reconcile', 60_000]]);
    const jobs = new Scheduler({ logger });
    for (const job of all) jobs.add(job);
    jobs.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(lines.map((l) => l.msg)).toEqual(['1003 invite(s) expired', '2 reminder(s) queued', '1 held claims checked with the server']);
    await jest.advanceTimersByTimeAsync(60_000);
    await jobs.run('reconcile');
    expect(ages).toEqual([0, 60_000, 0]);
    await jobs.stop();
  });

  it('leave claims younger than a minute to the periodic run while another instance is alive: they may be in flight there', async () => {
    const { logger } = capture();
    const { invites, registration, ages } = fakes();
    let others = true;
    let beats = 0;
    const jobs = new Scheduler({ logger, lease: async () => true });
    const all = periodicJobs({ invites, registration, reminderBefore: null, logger, othersLive: async () => others, presence: () => void beats++ });
    expect(all.map((j) => [j.name, j.everyMs, j.leased ?? 'always'])).toEqual([
      ['presence', 2_000, 'never'],
      ['expiry', 60_000, 'always'],
      ['reconcile', 60_000, 'timer'],
    ]);
    for (const job of all) jobs.add(job);
    jobs.start();
    await jest.advanceTimersByTimeAsync(60_000);
    await jobs.run('reconcile');
    // Alone again (the other instance stopped and released its leases): every held claim, at once.
    others = false;
    await jobs.run('reconcile');
    expect(ages).toEqual([60_000, 60_000, 60_000, 0]);
    expect(beats).toBe(31);
    await jobs.stop();
  });

  it("look for the command line's account questions four times a second on every instance, even when another holds the leases", async () => {
    const { logger, lines } = capture();
    const { invites, registration } = fakes();
    let looks = 0;
    const jobs = new Scheduler({ logger, lease: async () => false });
    const all = periodicJobs({ invites, registration, reminderBefore: null, logger, accountChecks: async () => (looks++ === 2 ? 1 : 0) });
    expect(all.map((j) => [j.name, j.everyMs, j.leased ?? 'always'])).toEqual([
      ['expiry', 60_000, 'always'],
      ['reconcile', 60_000, 'timer'],
      ['account-checks', 250, 'never'],
    ]);
    for (const job of all) jobs.add(job);
    jobs.start();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(looks).toBe(5);
    expect(lines.map((l) => l.msg)).toContain('1 question(s) whether an account exists answered');
    await jobs.stop();
  });

  it('log a store that keeps failing the account questions once a minute, not four times a second', async () => {
    const { logger, lines } = capture();
    const { invites, registration } = fakes();
    let failing = true;
    const jobs = new Scheduler({ logger });
    const all = periodicJobs({ invites, registration, reminderBefore: null, logger, accountChecks: async () => {
      if (failing) throw new Error('database is locked');
      return 0;
    } });
    jobs.add(all.find((j) => j.name === 'account-checks')!);
    jobs.start();
    const failures = () => lines.filter((l) => l.msg === 'the periodic job account-checks failed').length;
    await jest.advanceTimersByTimeAsync(59_000);
    expect(failures()).toBe(1);
    await jest.advanceTimersByTimeAsync(2_000);
    expect(failures()).toBe(2);
    // Once it works again, the next failure is logged at once.
    failing = false;
    await jest.advanceTimersByTimeAsync(250);
    failing = true;
    await jest.advanceTimersByTimeAsync(250);
    expect(failures()).toBe(3);
    await jobs.stop();
  });
});
