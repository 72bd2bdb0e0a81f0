/**
 * Where the sessions of ad-hoc commands (XEP-0050 §4.4) are kept between their stages, and the
 * rules that bound them. src/xmpp/adhoc.ts speaks the protocol; this port keeps the record, so that
 * a stage may land on another instance of the service than the one before it (store/
 * command-sessions-repo.ts keeps them in the database; `MemorySessions` below in the process).
 *
 * The rules, the same in every implementation:
 * - open sessions are capped per bare JID (all its resources together): the bare JID's own least
 *   recently used session is ended to make room;
 * - open sessions are capped in all: when full, the least recently used session of the bare JID
 *   holding the most is ended (the requester's own first among equals, then the bare JID whose
 *   sessions began last), so that a user who opens many can only ever push out their own;
 * - an ended session (finished, cancelled, timed out, pushed out) is remembered by id, so that it is
 *   answered `session-expired` rather than `bad-sessionid`: the last `10 × perJid` per bare JID and
 *   the last `2 × max` in all.
 *
 * A session that ends at its first stage (New Invite) never comes here: src/xmpp/adhoc.ts gives it
 * an id that proves it ended, to its owner, on every instance sharing the key.
 */

/** What JSON holds: a session's state must be plain data, since it may be read by another process. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined };

export type SessionAction = 'prev' | 'next' | 'complete';

/** An option of a list field as it was offered (XEP-0004), to read the answer against. */
export interface OfferedOption {
  label?: string;
  value: string;
}

/** Which session, of which command, whose. */
export interface SessionRef {
  id: string;
  node: string;
  /** the full JID the session is bound to */
  owner: string;
  /** its bare JID: the unit of the per-user cap */
  bare: string;
}

/** An open session. */
export interface CommandSession extends SessionRef {
  /** what the command carries to its next stage (plain data) */
  state: JsonValue | undefined;
  /** the actions the stage allowed and the one `execute` means; XEP-0050 §3.4 */
  actions: { allowed: SessionAction[]; execute: SessionAction };
  expiresAt: number;
  /** the options of the list fields of the form the stage sent, by field */
  offered: [string, OfferedOption[]][];
}

export interface SessionLimits {
  /** open sessions per bare JID */
  perJid: number;
  /** open sessions in all */
  max: number;
}

type Awaitable<T> = T | Promise<T>;

export interface CommandSessions {
  /** Ends every open session whose time is up, oldest first (each is remembered as ended). */
  sweep(now: number): Awaitable<void>;
  /** The open session `id`, `'ended'` if it ended and is still remembered, or undefined. */
  find(id: string): Awaitable<CommandSession | 'ended' | undefined>;
  /**
   * Opens a session or keeps it open for its next stage (its new state and expiry), first making
   * room under the caps. A session that ended meanwhile (another instance ended it) stays ended.
   */
  save(session: CommandSession): Awaitable<void>;
  /** Ends an open session and remembers its id. */
  end(session: SessionRef): Awaitable<void>;
  /** How many sessions are open. */
  openCount(): Awaitable<number>;
}

/** The per-bare-JID and total numbers of ended ids remembered. */
export function endedLimits(limits: SessionLimits): { perJid: number; max: number } {
  return { perJid: limits.perJid * 10, max: limits.max * 2 };
}

/**
 * The session as JSON text. Its state must be plain data (what JSON carries as it is: null,
 * booleans, finite numbers, strings, arrays and plain objects of them); anything else (a Map, a
 * Date, a function, a class instance) throws here, in every implementation alike, rather than
 * arriving changed at another instance.
 */
export function sessionText(session: CommandSession): string {
  checkState(session);
  return JSON.stringify(session);
}

export function checkState(session: CommandSession): void {
  if (session.state !== undefined && !isPlainData(session.state)) throw new TypeError(`the state of command ${session.node} is not plain data (JSON)`);
}

function isPlainData(value: unknown, depth = 0): boolean {
  if (depth > 32) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isPlainData(v, depth + 1));
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false;
  // An absent optional field (undefined) is left out by JSON, as it would be read back anyway.
  return Object.values(value).every((v) => v === undefined || isPlainData(v, depth + 1));
}

interface Kept {
  /** the record as JSON, read back on each stage as another process would */
  text: string;
  bare: string;
  /** when it was last saved, in save order: the order of "least recently used" and of expiry */
  seq: number;
  expiresAt: number;
}

/** Sessions kept in this process: for one instance alone, and for tests. */
export class MemorySessions implements CommandSessions {
  /** by id, in the order they were last saved (which is also the order they expire in) */
  readonly #open = new Map<string, Kept>();
  /** open session ids per bare JID, oldest first */
  readonly #byBare = new Map<string, Set<string>>();
  /** ids of ended sessions (bounded), oldest first, with their bare JIDs */
  readonly #ended = new Map<string, string>();
  /** the ended ids kept per bare JID, oldest first: one user's many cannot push out another's */
  readonly #endedByBare = new Map<string, Set<string>>();
  readonly #limits: SessionLimits;
  readonly #endedLimits: { perJid: number; max: number };
  #seq = 0;

  constructor(limits: SessionLimits) {
    this.#limits = limits;
    this.#endedLimits = endedLimits(limits);
  }

  sweep(now: number): void {
    // Oldest first: stop at the first that is still alive.
    for (const [id, s] of this.#open) {
      if (s.expiresAt > now) break;
      this.#end(id, s.bare);
    }
  }

  find(id: string): CommandSession | 'ended' | undefined {
    const kept = this.#open.get(id);
    if (kept) return JSON.parse(kept.text) as CommandSession;
    return this.#ended.has(id) ? 'ended' : undefined;
  }

  save(session: CommandSession): void {
    if (this.#ended.has(session.id)) return;
    const text = sessionText(session);
    this.#drop(session.id);
    const mine = this.#byBare.get(session.bare);
    // Each user's sessions are capped on their own: one user's many resources evict only theirs.
    if (mine && mine.size >= this.#limits.perJid) this.#end(first(mine), session.bare);
    if (this.#open.size >= this.#limits.max) {
      const victim = this.#victim(session.bare);
      this.#end(victim, this.#open.get(victim)!.bare);
    }
    this.#open.set(session.id, { text, bare: session.bare, seq: ++this.#seq, expiresAt: session.expiresAt });
    let set = this.#byBare.get(session.bare);
    if (!set) this.#byBare.set(session.bare, (set = new Set()));
    set.add(session.id);
  }

  end(session: SessionRef): void {
    this.#end(session.id, session.bare);
  }

  openCount(): number {
    return this.#open.size;
  }

  #end(id: string, bare: string): void {
    this.#drop(id);
    if (this.#ended.has(id)) return;
    this.#ended.set(id, bare);
    let mine = this.#endedByBare.get(bare);
    if (!mine) this.#endedByBare.set(bare, (mine = new Set()));
    mine.add(id);
    // Each user remembers their own last ended sessions; the table as a whole stays bounded too.
    if (mine.size > this.#endedLimits.perJid) this.#forget(first(mine));
    if (this.#ended.size > this.#endedLimits.max) this.#forget(first(this.#ended.keys()));
  }

  /**
   * The session to end when the table is full: the oldest of the bare JID that holds the most.
   * Among equals, the requester's own; then the one whose sessions began last (the newcomers of a
   * flood churn among themselves).
   */
  #victim(requester: string): string {
    const since = (set: Set<string>) => this.#open.get(first(set))!.seq;
    const own = this.#byBare.get(requester);
    let most = own;
    for (const set of this.#byBare.values()) {
      if (!most || set.size > most.size || (set.size === most.size && most !== own && since(set) > since(most))) most = set;
    }
    return first(most!);
  }

  #drop(id: string): void {
    const kept = this.#open.get(id);
    if (!kept) return;
    this.#open.delete(id);
    const set = this.#byBare.get(kept.bare);
    set?.delete(id);
    if (set?.size === 0) this.#byBare.delete(kept.bare);
  }

  #forget(id: string): void {
    const bare = this.#ended.get(id);
    this.#ended.delete(id);
    if (bare === undefined) return;
    const set = this.#endedByBare.get(bare);
    set?.delete(id);
    if (set?.size === 0) this.#endedByBare.delete(bare);
  }
}

function first(ids: Iterable<string>): string {
  return ids[Symbol.iterator]().next().value as string;
}
