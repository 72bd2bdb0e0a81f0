/**
 * Small helpers of the benchmarks: statistics, child processes started and stopped by PID,
 * resident memory from /proc, and waiting for a quiet machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';

export const PROJECT_ROOT = resolve(__dirname, '..');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank];
}

/** One closed-loop round: how many operations finished in the window, and their latencies (ms). */
export interface RoundResult {
  ops: number;
  /** every operation that finished, warm-up and tail included (for CPU per operation) */
  allOps: number;
  seconds: number;
  latencies: number[];
  errors: number;
  firstError?: string;
  /** CPU used by each process during the round (ms), and the round's wall-clock time */
  cpuMs?: Record<string, number>;
  wallMs?: number;
}

export function rate(r: RoundResult): number {
  return r.ops / r.seconds;
}

export interface Summary {
  rate: number;
  p50: number;
  p99: number;
  errors: number;
  rounds: number;
  /** per process: CPU ms per operation, and share of one core during the round (0..1) */
  cpuPerOp: Record<string, number>;
  busy: Record<string, number>;
}

/** Median over rounds of the rate, of each round's p50 and p99, and of the CPU figures. */
export function summarize(rounds: readonly RoundResult[]): Summary {
  const names = [...new Set(rounds.flatMap((r) => Object.keys(r.cpuMs ?? {})))];
  return {
    rate: median(rounds.map(rate)),
    p50: median(rounds.map((r) => percentile(r.latencies, 50))),
    p99: median(rounds.map((r) => percentile(r.latencies, 99))),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    rounds: rounds.length,
    cpuPerOp: Object.fromEntries(names.map((k) => [k, median(rounds.map((r) => (r.cpuMs?.[k] ?? NaN) / r.allOps))])),
    busy: Object.fromEntries(names.map((k) => [k, median(rounds.map((r) => (r.cpuMs?.[k] ?? NaN) / (r.wallMs ?? NaN)))])),
  };
}

/**
 * Runs `op` from `workers` concurrent loops: a warm-up (`warmupMs`, long enough to fill every
 * pipeline), then the measured window (`measureMs`). Throughput counts the operations that finish
 * inside the window, whenever they started (in a closed loop the window then holds the steady
 * state); their latencies are the latency figures. The window is stretched until at least one
 * operation per loop has finished in it, for a system whose latency is longer than the window
 * (Prosody holding many invites answers a whole batch of commands at once, seconds apart). No new
 * operation starts after the nominal window; those in flight are awaited, and count only towards
 * that minimum. `op` resolves with an error text, or undefined.
 */
export async function closedLoop(workers: number, warmupMs: number, measureMs: number, op: (worker: number) => Promise<string | undefined>): Promise<RoundResult> {
  const t0 = performance.now();
  const start = t0 + warmupMs;
  const stopStarting = start + measureMs;
  let end = stopStarting;
  const latencies: number[] = [];
  let ops = 0;
  let allOps = 0;
  let errors = 0;
  let firstError: string | undefined;
  const loop = async (w: number) => {
    while (performance.now() < stopStarting) {
      const a = performance.now();
      let err: string | undefined;
      try {
        err = await op(w);
      } catch (e) {
        err = (e as Error).message;
      }
      const b = performance.now();
      if (err === undefined) allOps++;
      if (b < start || b > end) {
        if (b > end && ops + errors < workers) end = b; // stretch the window to this completion
        else continue;
      }
      if (err !== undefined) {
        errors++;
        firstError ??= err;
        continue;
      }
      ops++;
      latencies.push(b - a);
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => loop(w)));
  return { ops, allOps, seconds: (end - start) / 1000, latencies, errors, firstError };
}

/** A child process of ours: started with `node --import tsx`, stopped by its PID. */
export class Child {
  readonly exited: Promise<number | null>;
  #code: number | null | undefined;

  private constructor(readonly proc: ChildProcess, readonly logFile: string | undefined) {
    this.exited = new Promise((r) =>
      proc.once('exit', (code) => {
        this.#code = code;
        r(code);
      }),
    );
  }

  /** `node --import tsx SCRIPT ARGS` (or plain node with tsx: false) with the project as cwd; stdout and stderr to `logFile` (or inherited). */
  static start(script: string, args: string[], opts: { logFile?: string; ipc?: boolean; env?: NodeJS.ProcessEnv; tsx?: boolean; nodeFlags?: string[] } = {}): Child {
    const fd = opts.logFile ? openSync(opts.logFile, 'a') : undefined;
    const out = fd ?? 'inherit';
    // Where setpriv exists, the kernel sends SIGTERM to the child if this process dies first.
    const argv = [process.execPath, ...(opts.nodeFlags ?? []), ...(opts.tsx === false ? [] : ['--import', 'tsx']), script, ...args];
    const [cmd, ...rest] = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'SIGTERM', ...argv] : argv;
    const proc = spawn(cmd, rest, {
      cwd: PROJECT_ROOT,
      env: opts.env ?? process.env,
      stdio: opts.ipc ? ['ignore', out, out, 'ipc'] : ['ignore', out, out],
    });
    if (fd !== undefined) closeSync(fd);
    return new Child(proc, opts.logFile);
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  get running(): boolean {
    return this.#code === undefined;
  }

  log(): string {
    try {
      return this.logFile ? readFileSync(this.logFile, 'utf8') : '';
    } catch {
      return '';
    }
  }

  /** Resolves when the log contains `pattern`; rejects when the process exits first or after `timeoutMs`. */
  async waitForLog(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.log())) {
      if (!this.running) throw new Error(`child ${this.pid} exited before ${pattern}:\n${this.log().slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`child ${this.pid}: no ${pattern} within ${timeoutMs} ms:\n${this.log().slice(-3000)}`);
      await sleep(50);
    }
  }

  /** One request over IPC: sends `msg` and resolves with the next message back. */
  ask<T>(msg: unknown, timeoutMs = 120_000): Promise<T> {
    const answer = this.nextMessage<T>(timeoutMs);
    this.proc.send!(msg as object);
    return answer;
  }

  /** The next message the child sends over IPC. */
  nextMessage<T>(timeoutMs = 120_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child ${this.pid}: no answer within ${timeoutMs} ms`)), timeoutMs);
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`child ${this.pid} exited`));
      };
      this.proc.once('exit', onExit);
      this.proc.once('message', (m) => {
        clearTimeout(timer);
        this.proc.off('exit', onExit);
        resolve(m as T);
      });
    });
  }

  /** SIGTERM by PID, SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (!this.running || !this.pid) return this.#code ?? null;
    process.kill(this.pid, 'SIGTERM');
    const timer = sleep(graceMs).then(() => 'timeout' as const);
    if ((await Promise.race([this.exited, timer])) === 'timeout' && this.running) process.kill(this.pid, 'SIGKILL');
    return this.exited;
  }
}

/** Resident memory of a process in MB: now (VmRSS) and its peak (VmHWM). */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** CPU time (user + system) a process has used so far, in ms (clock ticks of 10 ms). */
export function cpuMsOf(pid: number): number {
  // Fields after the command name (which may hold spaces, hence the last ')'): utime is the 14th
  // field of the line, stime the 15th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * CPU time of a whole process tree so far, in ms: every process under `root` (by parent PID) and
 * what each has collected from children that ended (cutime, cstime), so that a backend or helper
 * that exits during a round still counts. For servers that work in processes of their own
 * (PostgreSQL's backends, ejabberd's beam.smp under ejabberdctl).
 */
export function treeCpuMsOf(root: number): number {
  const parents = new Map<number, number>();
  const times = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(entry);
    parents.set(pid, Number(fields[1]));
    times.set(pid, (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10);
  }
  let total = 0;
  for (const pid of times.keys()) {
    for (let p: number | undefined = pid; p !== undefined && p > 0; p = parents.get(p)) {
      if (p === root) {
        total += times.get(pid)!;
        break;
      }
    }
  }
  return total;
}

/** What withCpu measures under one name: a PID, several (summed), or a whole process tree. */
export type CpuSource = number | { pids: number[] } | { tree: number };

function cpuMsOfSource(source: CpuSource): number {
  if (typeof source === 'number') return cpuMsOf(source);
  if ('tree' in source) return treeCpuMsOf(source.tree);
  return source.pids.reduce((sum, pid) => sum + cpuMsOf(pid), 0);
}

/** CPU used by each named process (this process included) while `work` runs, in ms. */
export async function withCpu<T>(pids: Record<string, CpuSource>, work: () => Promise<T>): Promise<{ result: T; cpuMs: Record<string, number>; wallMs: number }> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMsOfSource(pid)]));
  const self = process.cpuUsage();
  const t0 = performance.now();
  const result = await work();
  const wallMs = performance.now() - t0;
  const cpuMs: Record<string, number> = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMsOfSource(pid) - before[k]]));
  const used = process.cpuUsage(self);
  cpuMs.bench = (used.user + used.system) / 1000;
  return { result, cpuMs, wallMs };
}

export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/**
 * Waits until the 1-minute load average has stayed below `threshold` for `quietMs` (checked every
 * 5 s), at most `maxWaitMs`. Returns what was seen, for the report.
 */
export async function waitForQuiet(threshold: number, quietMs: number, maxWaitMs: number, say: (s: string) => void): Promise<{ quiet: boolean; waitedMs: number; load: number }> {
  const t0 = Date.now();
  let quietSince: number | undefined;
  let announced = 0;
  for (;;) {
    const load = loadAverage();
    const now = Date.now();
    if (load < threshold) quietSince ??= now;
    else quietSince = undefined;
    if (quietSince !== undefined && now - quietSince >= quietMs) return { quiet: true, waitedMs: now - t0, load };
    if (now - t0 >= maxWaitMs) return { quiet: false, waitedMs: now - t0, load };
    if (now - announced > 30_000) {
      say(`waiting for a quiet machine: load average ${load.toFixed(2)} (need < ${threshold} for ${quietMs / 1000} s)`);
      announced = now;
    }
    await sleep(5_000);
  }
}
