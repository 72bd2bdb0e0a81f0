/**
 * Waiting for another process's write lock without freezing the service.
 *
 * SQLite's busy timeout waits inside the call, on the event loop: with the 10 s the CLI uses, a
 * process holding the write lock (a long CLI command, `sqlite3` at a prompt, a backup) froze every
 * stanza and page for up to 10 s. The service opens the database with a short busy timeout
 * (SERVICE_BUSY_TIMEOUT_MS), and where a write is asynchronous anyway (group commit, the outbox
 * worker, invite requests in presence) it retries a busy write later, with backoff, leaving the
 * event loop free in between. Synchronous writes fail after the short wait with the lock's error,
 * which the adapters answer as "try again in a moment" (XMPP `resource-constraint`, type wait;
 * HTTP 503 with Retry-After).
 */

import { isDatabaseBusy } from '../errors';

/** The service's busy timeout: long enough for the CLI's short transactions, short for the event loop. */
export const SERVICE_BUSY_TIMEOUT_MS = 100;
/** The CLI's busy timeout: it may wait, nothing else runs in its process. */
export const CLI_BUSY_TIMEOUT_MS = 10_000;

export interface RetryOptions {
  /** give up (throwing the lock's error) after this long (default 30 s) */
  deadlineMs?: number;
  /** the first pause (default 10 ms); each next one doubles, up to `maxDelayMs` (default 1 s) */
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/** Another connection holds the lock this write needs (SQLITE_BUSY, SQLITE_LOCKED and their extended codes). */
export const isBusy = isDatabaseBusy;

/** The pause before attempt `n` (0-based retries): exponential with ±20 % jitter. */
export function backoffMs(n: number, opts: RetryOptions = {}): number {
  const base = Math.min((opts.firstDelayMs ?? 10) * 2 ** n, opts.maxDelayMs ?? 1_000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/**
 * Runs the synchronous `fn`; while it fails because the database is locked, runs it again after a
 * pause (the event loop is free meanwhile), until it succeeds or the deadline passes.
 */
export async function retryWhileBusy<T>(fn: () => T, opts: RetryOptions = {}): Promise<T> {
  const deadline = performance.now() + (opts.deadlineMs ?? 30_000);
  for (let n = 0; ; n++) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || performance.now() >= deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, backoffMs(n, opts)));
  }
}
