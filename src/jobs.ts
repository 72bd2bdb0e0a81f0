/**
 * The periodic jobs of `serve`, and the small scheduler that runs them.
 *
 * - `expiry` records expiries in the event log, tells the inviters and frees reserved usernames;
 * - `reminders` queues one reminder per e-mail invite before it expires (`mail.reminder_before`;
 *   present only when that is set);
 * - `reconcile` settles the claims left held by a crash or by a server that did not answer: at
 *   start every one of them, then every minute those older than a minute (a younger one may still
 *   be waiting for the server's answer);
 * - `account-checks` answers the command line's questions whether an account exists (a password
 *   reset link is made only for one that does: domain/account-checks.ts), every ACCOUNT_CHECKS_EVERY_MS,
 *   since someone is waiting at a terminal. It runs on every instance (not leased): taking a
 *   question is exactly-once in the store itself, and an instance whose XMPP link is down takes
 *   none (`ready`), leaving them to one that can ask the server.
 *
 * Each job runs once at start, then every period. One run of a job at a time: a run that comes due
 * (or is asked for) while another is going waits for it, and several asked for meanwhile make one.
 * A failed run is logged with the job's name and the job goes on at the next period. `stop()`
 * clears the timers, refuses new runs and resolves once the runs in progress have ended.
 *
 * Several instances: each periodic job runs once per period across the instances sharing one
 * database. `lease`, when given, is asked before every run at start and on the timer, and the run is
 * skipped when it answers false. `serve` gives the store's job leases (store/leases-repo.ts, its
 * PostgreSQL twin store/pg/leases.ts): one conditional statement takes the job's lease for one
 * period, so exactly one instance gets it; its holder renews it at each run, and when the holder
 * dies the first other instance whose timer comes after the lease's end takes the job over. Without
 * `lease` every run goes ahead. Runs asked for with `run()` (after a reconnection, in tests) are
 * this instance's own and skip the lease: what a job writes must therefore stay exactly-once in the
 * store itself (each expiry recorded once, one reminder per invite, one settlement per claim), the
 * lease only saving the repeated work.
 *
 * Reconciliation and several instances: a held claim may be waiting for the server's answer to its
 * create request. This instance never reconciles its own such claims (Registration keeps them in
 * flight), but it cannot see another instance's; reconciling one of those would ask the server too
 * early, find no account, release the claim (its use and username free again), and then the other
 * instance's create succeeds on a released claim: an account the invite does not record, and a use
 * that can make a second one. So:
 * - claims younger than IN_FLIGHT_MS (no shorter than any provisioner's wait for the server, 30 s,
 *   and the bridge's claim lifetime, 60 s) are reconciled only when no other instance is alive
 *   (`othersLive`: every instance renews a presence row every few seconds, the `presence` job);
 * - the run at start (and those asked for) are this instance's own recovery, never leased: an
 *   instance restarted after a crash must not wait for the lease its dead predecessor still holds.
 *   It waits, at most PRESENCE_TTL_MS, to learn whether the other instances it sees are alive (a
 *   dead one's presence ends, a live one's is renewed): alone, it settles every held claim at once,
 *   as before; beside live instances, only the old ones, the young ones waiting for the periodic
 *   run (leased, once per period), at most a period more.
 */
import type { MembershipService } from './domain/membership';
import type { Logger } from 'pino';
import type { InviteService } from './domain/invites';
import type { Registration } from './domain/registration';

/** Why a job runs: at start, on its timer, or asked for by `run()`. */
export type RunReason = 'start' | 'timer' | 'asked';

export interface Job {
  /** names the job in logs, in `run()`, and to the lease */
  readonly name: string;
  readonly everyMs: number;
  /**
   * Which runs ask the lease: 'always' (at start and on the timer, the default), 'timer' (the run at
   * start is this instance's own), 'never' (each instance runs it: presence)
   */
  readonly leased?: 'always' | 'timer' | 'never';
  /** One run; resolves with how many things it did. */
  run(why: RunReason): number | Promise<number>;
}

/** Whether this instance runs `job` for the period starting now (see the top of this file). */
export type Lease = (job: string, periodMs: number) => boolean | Promise<boolean>;

export interface SchedulerDeps {
  logger: Logger;
  lease?: Lease;
}

interface Slot {
  job: Job;
  timer?: NodeJS.Timeout;
  /** the run in progress */
  running?: Promise<number | undefined>;
  /** the one run waiting for it */
  waiting?: Promise<number | undefined>;
}

export class Scheduler {
  readonly #slots = new Map<string, Slot>();
  readonly #logger: Logger;
  readonly #lease: Lease | undefined;
  #started = false;
  #stopped = false;

  constructor(deps: SchedulerDeps) {
    this.#logger = deps.logger;
    this.#lease = deps.lease;
  }

  add(job: Job): this {
    if (this.#slots.has(job.name)) throw new Error(`There is already a job named ${job.name}`);
    this.#slots.set(job.name, { job });
    return this;
  }

  /** Runs every job now, then each every period (timers unref'd: they never keep the process up). */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    for (const slot of this.#slots.values()) void this.#tick(slot, 'start');
  }

  /**
   * Runs `name` now, or as soon as its run in progress ends; resolves with what it did, or
   * undefined when it failed (logged) or the scheduler is stopped. Never rejects.
   */
  run(name: string): Promise<number | undefined> {
    const slot = this.#slots.get(name);
    if (!slot) throw new Error(`No job named ${name}`);
    return this.#request(slot, 'asked');
  }

  /** Clears the timers and refuses new runs; resolves once the runs in progress have ended. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const slot of this.#slots.values()) clearTimeout(slot.timer);
    await Promise.all([...this.#slots.values()].map((s) => s.waiting ?? s.running));
  }

  async #tick(slot: Slot, why: 'start' | 'timer'): Promise<void> {
    const started = performance.now();
    await this.#request(slot, why);
    if (this.#stopped) return;
    // The period is kept from start to start, as setInterval would, but runs never overlap.
    const delay = Math.max(0, slot.job.everyMs - (performance.now() - started));
    slot.timer = setTimeout(() => void this.#tick(slot, 'timer'), delay);
    slot.timer.unref();
  }

  #request(slot: Slot, why: RunReason): Promise<number | undefined> {
    if (this.#stopped) return Promise.resolve(undefined);
    if (slot.waiting) return slot.waiting;
    if (!slot.running) return this.#begin(slot, why);
    const waiting = slot.running.then(() => {
      slot.waiting = undefined;
      return this.#begin(slot, why);
    });
    slot.waiting = waiting;
    return waiting;
  }

  #begin(slot: Slot, why: RunReason): Promise<number | undefined> {
    if (this.#stopped) return Promise.resolve(undefined);
    const run: Promise<number | undefined> = this.#once(slot.job, why).finally(() => {
      if (slot.running === run) slot.running = undefined;
    });
    slot.running = run;
    return run;
  }

  async #once(job: Job, why: RunReason): Promise<number | undefined> {
    try {
      const leased = job.leased ?? 'always';
      const asks = why === 'timer' ? leased !== 'never' : why === 'start' && leased === 'always';
      if (asks && this.#lease && !(await this.#lease(job.name, job.everyMs))) return undefined;
      return await job.run(why);
    } catch (err) {
      this.#logger.error({ err, job: job.name }, 'the periodic job %s failed', job.name);
      return undefined;
    }
  }
}

export interface JobDeps {
  invites: InviteService;
  registration: Registration;
  /** `mail.reminder_before` in ms; null: no reminders */
  reminderBefore: number | null;
  logger: Logger;
  /**
   * Whether another instance sharing the store may be creating accounts right now (see the top of
   * this file); absent: this instance is alone.
   */
  othersLive?: () => boolean | Promise<boolean>;
  /** Renews this instance's presence (the `presence` job, every PRESENCE_EVERY_MS); absent: no such job. */
  presence?: () => void | Promise<void>;
  /** membership requests (registration.requests not off): unverified ones past 24 h are recorded as expired */
  membership?: Pick<MembershipService, 'expireStale'>;
  /**
   * Makes the members of room invitations accepted at least `olderThanMs` ago whose membership is
   * not made yet (the `rooms` job; absent: no such job)
   */
  roomMembers?: (olderThanMs: number) => Promise<number>;
  /**
   * Answers the questions whether an account exists that are waiting (the `account-checks` job;
   * absent: no such job); how many it took
   */
  accountChecks?: () => Promise<number>;
  /** how often `account-checks` runs (default ACCOUNT_CHECKS_EVERY_MS) */
  accountChecksEveryMs?: number;
}

/** An accepted room invitation younger than this may still be in hand where it was answered. */
export const ROOM_IN_FLIGHT_MS = 30_000;

/** How often each job of `serve` runs. */
export const JOB_PERIOD_MS = 60_000;

/** How often each instance looks for questions whether an account exists (someone waits for the answer). */
export const ACCOUNT_CHECKS_EVERY_MS = 250;
/** The same on PostgreSQL, where a NOTIFY wakes the job as a question is asked: the poll is only a fallback. */
export const ACCOUNT_CHECKS_NOTIFIED_EVERY_MS = 1_000;

/** The age under which a held claim may still be waiting for the server's answer on some instance. */
export const IN_FLIGHT_MS = 60_000;

/** How often each instance renews its presence, and how long a presence lasts unrenewed. */
export const PRESENCE_EVERY_MS = 2_000;
export const PRESENCE_TTL_MS = 5_000;

/** The jobs of `serve`. */
export function periodicJobs(deps: JobDeps): Job[] {
  const { invites, registration, reminderBefore, logger, othersLive, presence, membership, roomMembers, accountChecks } = deps;
  const jobs: Job[] = [];
  // First: an instance is present before its other runs at start.
  if (presence) jobs.push({ name: 'presence', everyMs: PRESENCE_EVERY_MS, leased: 'never', run: async () => (await presence(), 0) });
  jobs.push({
    name: 'expiry',
    everyMs: JOB_PERIOD_MS,
    run: () => {
      const total = drain(() => invites.recordExpiries().length);
      if (total) logger.info('%d invite(s) expired', total);
      return total;
    },
  });
  if (reminderBefore !== null) {
    jobs.push({
      name: 'reminders',
      everyMs: JOB_PERIOD_MS,
      run: () => {
        const total = drain(() => invites.queueReminders(reminderBefore).length);
        if (total) logger.info('%d reminder(s) queued', total);
        return total;
      },
    });
  }
  if (membership) {
    jobs.push({
      name: 'request-expiry',
      everyMs: JOB_PERIOD_MS,
      run: () => {
        const total = drain(() => membership.expireStale());
        if (total) logger.info('%d unverified membership request(s) expired', total);
        return total;
      },
    });
  }
  jobs.push({
    name: 'reconcile',
    everyMs: JOB_PERIOD_MS,
    leased: 'timer',
    run: async (why) => {
      // Every held claim at start and when asked (after a reconnection), unless another instance
      // may have young claims in flight; on the timer only those older than that.
      const young = why !== 'timer' && !(await othersLive?.());
      const n = await registration.reconcileAll(young ? 0 : IN_FLIGHT_MS);
      if (n && why === 'start') logger.info('%d held claims checked with the server', n);
      return n;
    },
  });
  if (roomMembers) {
    jobs.push({
      name: 'rooms',
      everyMs: JOB_PERIOD_MS,
      run: async () => {
        const n = await roomMembers(ROOM_IN_FLIGHT_MS);
        if (n) logger.info('%d room membership(s) settled', n);
        return n;
      },
    });
  }
  if (accountChecks) {
    let quietUntil = 0;
    jobs.push({
      name: 'account-checks',
      everyMs: deps.accountChecksEveryMs ?? ACCOUNT_CHECKS_EVERY_MS,
      leased: 'never',
      run: async () => {
        try {
          const n = await accountChecks();
          quietUntil = 0;
          if (n) logger.info('%d question(s) whether an account exists answered', n);
          return n;
        } catch (err) {
          // Four runs a second: a store that keeps failing is logged once a period, not at every run.
          if (performance.now() < quietUntil) return 0;
          quietUntil = performance.now() + JOB_PERIOD_MS;
          throw err;
        }
      },
    });
  }
  return jobs;
}

/** Repeats a batched step (500 rows at a time) until it finds nothing more; the total. */
function drain(step: () => number): number {
  let total = 0;
  for (let n = step(); n > 0; n = step()) total += n;
  return total;
}
