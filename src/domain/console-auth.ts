/**
 * Signing in to the web console with an XMPP account, so that no password ever reaches the
 * service: the browser names a JID, the account receives a message with a one-time link and a
 * check phrase (the page shows the same phrase), and following the link and confirming opens a
 * session kept in the store.
 *
 * - The link's code is the sign-in's id and an HMAC of it under `token_key`, like invite tokens:
 *   derived, never stored, so a copy of the database signs nobody in. It works once, for 10 minutes.
 * - The session id is 256 random bits in the browser's cookie; the store keeps its SHA-256 only.
 *   A session ends at logout, at a new sign-in in the same browser, when revoked, after an hour
 *   without a request, and 12 hours after it began, whichever comes first.
 * - Every well-formed JID gets the same answer (no account enumeration): a sign-in is recorded for
 *   any of them, counted by the limits, and a message is queued only for a JID of `host` (the
 *   server drops it when no such account exists). The limits count recorded sign-ins per JID and
 *   per client address in the store, so they hold across instances and restarts.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InviteError } from '../errors';
import { isLocalUser, normalizeBareJid } from './jid';
import type { NoticeQueue } from './notices';
import type { Clock } from './ports';
import { ID_ALPHABET, randomIdChars } from './tokens';

export const LOGIN_TTL_MS = 10 * 60_000;
export const SESSION_TTL_MS = 12 * 3_600_000;
export const SESSION_IDLE_MS = 3_600_000;
/** Policy: `seen_at` is written at most this often (not at every page). */
const SEEN_WRITE_EVERY_MS = 60_000;
/** Policy: sign-ins asked for one JID, and from one client address, within LIMIT_WINDOW_MS. */
export const LOGINS_PER_JID = 3;
export const LOGINS_PER_ADDRESS = 10;
export const LIMIT_WINDOW_MS = 15 * 60_000;

const LOGIN_ID_LENGTH = 16;
const MAC_BYTES = 18;
const CODE_PATTERN = new RegExp(`^([${ID_ALPHABET}]{${LOGIN_ID_LENGTH}})([A-Za-z0-9_-]{24})$`);
const SESSION_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** 64 short words that are easy to tell apart: a check phrase is three of them (18 bits, for the eye, not a secret). */
const WORDS = (
  'amber anchor apple arrow bamboo basil beacon birch bison cactus canoe cedar cherry clover comet copper ' +
  'coral cricket daisy delta dolphin ember falcon fern fig flint garnet ginger glacier harbor hazel heron ' +
  'island ivy jasper juniper kettle koala lagoon lantern lemon lilac maple meadow mint nectar nutmeg olive ' +
  'orchid otter pebble pepper pine plum quartz raven river saffron tulip violet walnut willow yarrow zebra'
).split(' ');

export interface LoginRow {
  id: string;
  jid: string;
  /** keyed hash of the client's address key */
  address: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface SessionRow {
  idHash: string;
  jid: string;
  loginId: string;
  createdAt: number;
  seenAt: number;
  expiresAt: number;
  endedAt: number | null;
  endedWhy: string | null;
}

export type SessionEnd = 'logout' | 'replaced' | 'revoked' | 'idle';

export interface ConsoleStore {
  transaction<T>(fn: () => T): T;
  countLogins(by: { jid: string } | { address: string }, since: number): number;
  insertLogin(row: LoginRow): void;
  getLogin(id: string): LoginRow | undefined;
  /** Marks the sign-in used when it is unused and unexpired at `at`; whether it did. */
  useLogin(id: string, at: number): boolean;
  insertSession(row: SessionRow): void;
  getSession(idHash: string): SessionRow | undefined;
  touchSession(idHash: string, at: number): void;
  /** Ends the session when it is live; whether it did. */
  endSession(idHash: string, at: number, why: SessionEnd): boolean;
  /** Ends every live session of `jid`; how many. */
  endSessionsOf(jid: string, at: number, why: SessionEnd): number;
}

export interface Session {
  jid: string;
  createdAt: number;
  expiresAt: number;
}

export type Confirmed =
  | { ok: true; sessionId: string; session: Session }
  | { ok: false; why: 'unknown' | 'used' | 'expired' };

export interface ConsoleAuthDeps {
  store: ConsoleStore;
  tokenKey: string;
  host: string;
  /** base of links, without a trailing slash (web.public_url) */
  publicUrl: string;
  notices: NoticeQueue;
  clock?: Clock;
}

export class ConsoleAuth {
  readonly #key: Buffer;
  readonly #clock: Clock;

  constructor(private readonly deps: ConsoleAuthDeps) {
    this.#key = createHmac('sha256', deps.tokenKey).update('xmpp-invites/console/v1').digest();
    // Read at each call (not a reference taken now), so that a test may move the process's time.
    this.#clock = deps.clock ?? (() => Date.now());
  }

  /**
   * Records a sign-in for `jidText` from `addressKey` and queues the message to a local account.
   * Returns the check phrase to show; the same answer whatever the JID. Throws `invalid-input` for
   * text that is not a JID, `limit-reached` past a limit.
   */
  request(jidText: string, addressKey: string): { phrase: string; expiresAt: number } {
    const jid = normalizeBareJid(jidText.trim());
    if (!jid || !jid.includes('@')) throw new InviteError('invalid-input', 'Enter your address, as in alice@example.com');
    const address = this.#hash(`address\0${addressKey}`);
    return this.deps.store.transaction(() => {
      const now = this.#clock();
      const since = now - LIMIT_WINDOW_MS;
      // The address first: it is the same for every JID a client tries.
      if (this.deps.store.countLogins({ address }, since) >= LOGINS_PER_ADDRESS) throw this.#limited('sign-ins from this address', now);
      if (this.deps.store.countLogins({ jid }, since) >= LOGINS_PER_JID) throw this.#limited('sign-in links for this address', now);
      let id: string;
      do id = newLoginId();
      while (this.deps.store.getLogin(id));
      const expiresAt = now + LOGIN_TTL_MS;
      this.deps.store.insertLogin({ id, jid, address, createdAt: now, expiresAt, usedAt: null });
      // Only accounts of `host`: elsewhere nothing is sent, and the page says the same.
      if (isLocalUser(jid, this.deps.host)) {
        this.deps.notices.enqueue({ channel: 'xmpp', kind: 'login', recipient: jid, inviteIds: [], params: { login: id } });
      }
      return { phrase: this.phrase(id), expiresAt };
    });
  }

  /** The link and phrase of a sign-in, for its message; undefined once it cannot be used. */
  renderLogin(id: string): { link: string; phrase: string; expiresAt: number } | undefined {
    const row = this.deps.store.getLogin(id);
    if (!row || row.usedAt !== null || this.#clock() >= row.expiresAt) return undefined;
    return { link: `${this.deps.publicUrl}/login/${this.code(id)}`, phrase: this.phrase(id), expiresAt: row.expiresAt };
  }

  /** What the confirmation page shows for a code (nothing changes). */
  inspect(code: string): { ok: true; jid: string; phrase: string } | { ok: false; why: 'unknown' | 'used' | 'expired' } {
    const row = this.#loginOf(code);
    if (!row) return { ok: false, why: 'unknown' };
    if (row.usedAt !== null) return { ok: false, why: 'used' };
    if (this.#clock() >= row.expiresAt) return { ok: false, why: 'expired' };
    return { ok: true, jid: row.jid, phrase: this.phrase(row.id) };
  }

  /**
   * Spends the code and opens a session with a new id (the browser's previous session, if any,
   * ends: no session id survives a sign-in). One conditional UPDATE spends the code: two
   * confirmations at once make one session.
   */
  confirm(code: string, previousSessionId?: string): Confirmed {
    const row = this.#loginOf(code);
    if (!row || !isLocalUser(row.jid, this.deps.host)) return { ok: false, why: 'unknown' };
    return this.deps.store.transaction((): Confirmed => {
      const now = this.#clock();
      if (!this.deps.store.useLogin(row.id, now)) {
        const fresh = this.deps.store.getLogin(row.id)!;
        return { ok: false, why: fresh.usedAt !== null ? 'used' : 'expired' };
      }
      if (previousSessionId && SESSION_PATTERN.test(previousSessionId)) this.deps.store.endSession(hashSession(previousSessionId), now, 'replaced');
      const sessionId = randomBytes(32).toString('base64url');
      const session: SessionRow = {
        idHash: hashSession(sessionId),
        jid: row.jid,
        loginId: row.id,
        createdAt: now,
        seenAt: now,
        expiresAt: now + SESSION_TTL_MS,
        endedAt: null,
        endedWhy: null,
      };
      this.deps.store.insertSession(session);
      return { ok: true, sessionId, session: { jid: row.jid, createdAt: now, expiresAt: session.expiresAt } };
    });
  }

  /** The live session of a cookie's id, refreshing its idle time; undefined when none. */
  session(sessionId: string | undefined): Session | undefined {
    if (!sessionId || !SESSION_PATTERN.test(sessionId)) return undefined;
    const idHash = hashSession(sessionId);
    const row = this.deps.store.getSession(idHash);
    const now = this.#clock();
    if (!row || row.endedAt !== null || now >= row.expiresAt) return undefined;
    if (now - row.seenAt >= SESSION_IDLE_MS) {
      this.deps.store.endSession(idHash, now, 'idle');
      return undefined;
    }
    if (now - row.seenAt >= SEEN_WRITE_EVERY_MS) this.deps.store.touchSession(idHash, now);
    return { jid: row.jid, createdAt: row.createdAt, expiresAt: row.expiresAt };
  }

  /** Ends the session of a cookie's id (logout); whether one was live. */
  logout(sessionId: string | undefined): boolean {
    if (!sessionId || !SESSION_PATTERN.test(sessionId)) return false;
    return this.deps.store.endSession(hashSession(sessionId), this.#clock(), 'logout');
  }

  /** Ends every session of a user (an admin's revocation). */
  revokeAll(jid: string): number {
    return this.deps.store.endSessionsOf(jid, this.#clock(), 'revoked');
  }

  /** The code of a sign-in's link: its id and a MAC of it. */
  code(id: string): string {
    return id + this.#mac(id).toString('base64url');
  }

  /** Three words derived from the sign-in, shown on the page and in the message. */
  phrase(id: string): string {
    const bytes = createHmac('sha256', this.#key).update(`phrase\0${id}`).digest();
    return [0, 1, 2].map((i) => WORDS[bytes[i] & 63]).join(' ');
  }

  #loginOf(code: string): LoginRow | undefined {
    const m = CODE_PATTERN.exec(code);
    if (!m) return undefined;
    const given = Buffer.from(m[2], 'base64url');
    const expected = this.#mac(m[1]);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return this.deps.store.getLogin(m[1]);
  }

  #mac(id: string): Buffer {
    return createHmac('sha256', this.#key).update(`login\0${id}`).digest().subarray(0, MAC_BYTES);
  }

  #hash(text: string): string {
    return createHmac('sha256', this.#key).update(text).digest('base64url');
  }

  #limited(what: string, now: number): InviteError {
    const frees = new Date(now + LIMIT_WINDOW_MS).toISOString();
    return new InviteError('limit-reached', `Too many ${what}: try again in ${LIMIT_WINDOW_MS / 60_000} minutes`, { frees });
  }
}

/** What the store keeps of a session id. */
export function hashSession(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('base64url');
}

function newLoginId(): string {
  return randomIdChars(LOGIN_ID_LENGTH);
}
