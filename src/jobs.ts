/**
 * The periodic jobs of `serve`, and the small scheduler that runs them.
 *
 * - `expiry` records expiries in the event log, tells the inviters and frees reserved usernames;
 * - `reminders` queues one reminder per e-mail invite before it expires (`mail.reminder_before`;
 *   present only when that is set);
 * - `reconcile` settles the claims left held by a crash or by a server that did not answer: at
 *   start every one of them, then every minute those older than a minute (a younger one may still
 *   be waiting for the server's answer).
 *
 * Each job runs once at start, then every period. One run of a job at a time: a run that comes due
 * (or is asked for) while another is going waits for it, and several asked for meanwhile make one.
 * A failed run is logged with the job's name and the job goes on at the next period. `stop()`
 * clears the timers, refuses new runs and resolves once the runs in progress have ended.
 *
 * Several instances: each periodic job must run once per period across the instances sharing one
 * database. The seam for that is `lease`: when given, it is asked before every run at start and on
 * the timer, and the run is skipped when it answers false. An implementation takes the job's lease
 * for one period in the shared database (on PostgreSQL, e.g., one conditional
 * `UPDATE job_leases SET holder = $me, until = now() + period WHERE job = $name AND until <= now()
 * RETURNING job`) so that exactly one instance gets it. Without `lease` (one instance, the
 * embedded SQLite store) every run goes ahead. Runs asked for with `run()` (after a reconnection,
 * in tests) are this instance's own and skip the lease: what a job writes must therefore stay
 * exactly-once in the store itself (each expiry recorded once, one reminder per invite, one
 * settlement per claim), the lease only saving the repeated work.
 */
import type { Logger } from 'pino';
import type { InviteService } from './domain/invites';
import type { Registration } from './domain/registration';

/** Why a job runs: at start, on its timer, or asked for by `run()`. */
export type RunReason = 'start' | 'timer' | 'asked';

export interface Job {
  /** names the job in logs, in `run()`, and to the lease */
  readonly name: string;
  readonly everyMs: number;
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
      if (why !== 'asked' && this.#lease && !(await this.#lease(job.name, job.everyMs))) return undefined;
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
}

/** How often each job of `serve` runs. */
export const JOB_PERIOD_MS = 60_000;

/** The jobs of `serve`. */
export function periodicJobs(deps: JobDeps): Job[] {
  const { invites, registration, reminderBefore, logger } = deps;
  const jobs: Job[] = [
    {
      name: 'expiry',
      everyMs: JOB_PERIOD_MS,
      run: () => {
        const total = drain(() => invites.recordExpiries().length);
        if (total) logger.info('%d invite(s) expired', total);
        return total;
      },
    },
  ];
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
  jobs.push({
    name: 'reconcile',
    everyMs: JOB_PERIOD_MS,
    run: async (why) => {
      const n = await registration.reconcileAll(why === 'timer' ? JOB_PERIOD_MS : 0);
      if (n && why === 'start') logger.info('%d held claims checked with the server', n);
      return n;
    },
  });
  return jobs;
}

/** Repeats a batched step (500 rows at a time) until it finds nothing more; the total. */
function drain(step: () => number): number {
  let total = 0;
  for (let n = step(); n > 0; n = step()) total += n;
  return total;
}
