/**
 * Whether an account exists, asked of the running service through the store (contract, "Password
 * reset invites": a reset link for an account that does not exist is refused when made).
 *
 * Only the service talks XMPP, so only it can ask the server (XEP-0133 user-stats, the Prosody
 * bridge); the command line acts on the database only. The store is what every instance and the
 * CLI share (one SQLite file, or one PostgreSQL database), so the question goes through it:
 *
 * 1. The asker (the CLI) records a question: the username and until when it waits (`ask`).
 * 2. A running instance takes it (`answerWaiting`, its `account-checks` job, src/jobs.ts): one
 *    conditional UPDATE (nobody took it, unanswered, still awaited), so of several instances
 *    polling one store exactly one asks the server. It asks through its provisioner, then writes
 *    the answer with a second conditional UPDATE (unanswered, taken by itself): `exists`,
 *    `missing`, or `unclear` with the server's reason.
 * 3. The asker reads the row every `pollMs` until it holds an answer. When its wait is over it
 *    closes the question as `unanswered` with the same conditional UPDATE: whichever of the answer
 *    and the close comes first is the row's only answer, and the asker acts on exactly what the row
 *    says (an answer that lost that race is not written).
 *
 * Policy: a question taken by an instance that then dies is not taken again: the asker's wait
 * (seconds) is shorter than any sensible takeover, so it ends as `unanswered`, saying which
 * instance took it, and the operator asks again. Answering is read-only on the server, so nothing
 * needs undoing whatever the outcome. The rows are kept, as every record here is: who asked about
 * which account, when, and what the server said.
 */
import type { Clock } from './ports';
import { normalizeUsername } from './usernames';

/** What a question came to: the server's word, or none (`unanswered`: the asker stopped waiting). */
export type AccountAnswer = 'exists' | 'missing' | 'unclear' | 'unanswered';

export interface AccountCheck {
  id: number;
  username: string;
  askedBy: string;
  askedAt: number;
  waitUntil: number;
  takenBy: string | null;
  takenAt: number | null;
  answer: AccountAnswer | null;
  /** the server's reason, for `unclear` */
  reason: string | null;
  answeredBy: string | null;
  answeredAt: number | null;
}

export interface AccountCheckStore {
  /** records a question; its id */
  insert(q: { username: string; askedBy: string; askedAt: number; waitUntil: number }): number;
  get(id: number): AccountCheck | undefined;
  /** the questions nobody took, unanswered and still awaited at `now`: oldest first, at most `limit` */
  waiting(now: number, limit: number): number[];
  /** takes the question for `by` when nobody has, it is unanswered and still awaited at `now`; whether it did */
  take(id: number, by: string, now: number): boolean;
  /** the answer of the instance that took it (unanswered, taken by `by`); whether it was written */
  answer(id: number, answer: 'exists' | 'missing' | 'unclear', reason: string | null, by: string, at: number): boolean;
  /** closes an unanswered question as `unanswered` (the asker, its wait over); whether it did */
  close(id: number, by: string, at: number): boolean;
}

/** What the asker learns. */
export type CheckOutcome =
  | { kind: 'exists'; id: number; by: string }
  | { kind: 'missing'; id: number; by: string }
  | { kind: 'unclear'; id: number; by: string; reason: string }
  /** no answer in time; `takenBy`: the instance that took the question and did not answer, if one did */
  | { kind: 'unanswered'; id: number; takenBy: string | null };

export interface AccountChecksDeps {
  store: AccountCheckStore;
  clock?: Clock;
  /**
   * How a write runs (default: at once). The service passes one that waits while another process
   * holds the store's write lock (store/busy.ts): the domain knows nothing of locks.
   */
  write?: <T>(fn: () => T) => Promise<T>;
}

/** How long the CLI waits for an answer by default, and how often it looks. */
export const DEFAULT_CHECK_WAIT_MS = 15_000;
export const CHECK_POLL_MS = 150;
/** The longest reason kept from a server's error. */
const MAX_REASON = 500;

export class AccountChecks {
  readonly #store: AccountCheckStore;
  readonly #clock: Clock;
  readonly #write: <T>(fn: () => T) => Promise<T>;

  constructor(deps: AccountChecksDeps) {
    this.#store = deps.store;
    this.#clock = deps.clock ?? Date.now;
    this.#write = deps.write ?? (async (fn) => fn());
  }

  /**
   * Asks the running service whether `username` exists and waits up to `waitMs` for its answer.
   * Throws `invalid-input` for a username the rules refuse (nothing recorded).
   */
  async ask(asker: string, username: string, opts: { waitMs: number; pollMs?: number; sleep?: (ms: number) => Promise<void> }): Promise<CheckOutcome> {
    const user = normalizeUsername(username);
    const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const pollMs = opts.pollMs ?? CHECK_POLL_MS;
    const askedAt = this.#clock();
    const waitUntil = askedAt + Math.max(0, opts.waitMs);
    const id = await this.#write(() => this.#store.insert({ username: user, askedBy: asker, askedAt, waitUntil }));
    for (;;) {
      const q = this.#store.get(id)!;
      if (q.answer !== null) return outcomeOf(q);
      const left = waitUntil - this.#clock();
      if (left <= 0) break;
      await sleep(Math.min(pollMs, left));
    }
    // The wait is over: closed as unanswered, unless an answer came in just now (then that holds).
    await this.#write(() => this.#store.close(id, asker, this.#clock()));
    return outcomeOf(this.#store.get(id)!);
  }

  /**
   * The service's side: takes the questions waiting (at most `limit`), asks the server about each
   * through `exists` (which throws when the server cannot say), and writes the answers. Returns how
   * many it took.
   */
  async answerWaiting(instance: string, exists: (username: string) => Promise<boolean>, limit = 20): Promise<number> {
    const waiting = this.#store.waiting(this.#clock(), limit);
    if (waiting.length === 0) return 0;
    const taken = await this.#write(() => waiting.filter((id) => this.#store.take(id, instance, this.#clock())));
    await Promise.all(
      taken.map(async (id) => {
        const { username } = this.#store.get(id)!;
        let answer: 'exists' | 'missing' | 'unclear';
        let reason: string | null = null;
        try {
          answer = (await exists(username)) ? 'exists' : 'missing';
        } catch (err) {
          answer = 'unclear';
          reason = ((err as Error).message || String(err)).slice(0, MAX_REASON);
        }
        // Not written when the asker has stopped waiting meanwhile: the question is closed.
        await this.#write(() => this.#store.answer(id, answer, reason, instance, this.#clock()));
      }),
    );
    return taken.length;
  }

  get(id: number): AccountCheck | undefined {
    return this.#store.get(id);
  }
}

function outcomeOf(q: AccountCheck): CheckOutcome {
  switch (q.answer) {
    case 'exists':
    case 'missing':
      return { kind: q.answer, id: q.id, by: q.answeredBy! };
    case 'unclear':
      return { kind: 'unclear', id: q.id, by: q.answeredBy!, reason: q.reason ?? '' };
    default:
      return { kind: 'unanswered', id: q.id, takenBy: q.takenBy };
  }
}
