/**
 * Tools for fuzz tests: a seeded PRNG (so that a failure reproduces with FUZZ_SEED), hostile
 * strings, a bounded-concurrency runner, a snapshot of every table of the database, and raw HTTP
 * requests for what fetch refuses to send (header floods, malformed request lines).
 */
import { openStoreOf, tableNames } from './engine';
import * as net from 'node:net';

/** Tables of working state that any input may change (schema.sql says which tables are not records). */
const WORKING_STATE = new Set(['job_leases', 'command_sessions', 'command_session_counts']);

/** sfc32: small, fast, and good enough to pick test inputs; the same seed gives the same picks. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(readonly seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** The seed from FUZZ_SEED (decimal or 0x hex), else a fresh random one. */
  static fromEnv(): Rng {
    const given = process.env.FUZZ_SEED;
    const seed = given ? Number(given) : Math.floor(Math.random() * 2 ** 32);
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`FUZZ_SEED must be a 32-bit unsigned integer, not ${given}`);
    return new Rng(seed);
  }

  /** [0, 1) */
  next(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t / 2 ** 32;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick of nothing');
    return items[this.int(items.length)];
  }

  /** Picks by weight: [[weight, value], ...]. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    const total = items.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of items) {
      if ((r -= w) < 0) return v;
    }
    return items[items.length - 1][1];
  }

  /** n random characters of [a-z0-9]. */
  word(n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) out += 'abcdefghijklmnopqrstuvwxyz0123456789'[this.int(36)];
    return out;
  }
}

/**
 * Characters a client stream can carry to the component, and that make trouble elsewhere: bidi
 * overrides, DEL and C1 controls, non-characters, zero-width and combining marks, and letters
 * that stringprep maps or folds (ß, final sigma, full-width, Kelvin sign, dotted I). Checked
 * against Prosody 0.12: all of these arrive at the component as sent.
 */
export const STREAM_SAFE_ODDITIES = [
  '\u202E', '\u202D', '\u2066', '\u200F', '\u200B', '\u200D', '\uFEFF', '\u007F', '\u0085', '\u009B', '\u0080',
  '\uFDD0', '\uFDEF', '\u{1FFFE}', '\u{10FFFF}', '\u0301', '\u0345', '\u00DF', '\u03C2', '\u03A3', '\uFF21', '\uFF41',
  '\u212A', '\u0130', '\u00A0', '\u2028', '\u2029', '\t', '\n', '\r\n', '\uD83D\uDE00', '&', '<', '>', '"', "'", ']]>',
  '&amp;', '&#x41;', '%00', '%0a', '\\', '/', '@', '\u3000', '\u2003', '\u180E',
];

/**
 * Characters XML 1.0 forbids (C0 controls but tab/LF/CR, U+FFFE, U+FFFF, lone surrogates): no
 * well-formed stream carries them (Prosody closes a client stream that sends one), but HTTP forms
 * do, freely.
 */
export const XML_FORBIDDEN = [
  '\u0000', '\u0001', '\u0008', '\u000B', '\u000C', '\u001B', '\u001F', '\uFFFE', '\uFFFF', '\uD800', '\uDFFF', '\uDBFF',
];

/** XML 1.0 Char production. */
export function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Whether `s` holds a character XML 1.0 forbids (a lone surrogate counts). */
export function hasXmlForbidden(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    }
    if (!isXmlChar(c) || (c >= 0xd800 && c <= 0xdfff)) return true;
  }
  return false;
}

/** A hostile string: oddities mixed into words, sometimes very long. `forbidden` allows XML-forbidden characters. */
export function hostileString(rng: Rng, opts: { forbidden?: boolean; maxLength?: number } = {}): string {
  const alphabet = opts.forbidden ? [...STREAM_SAFE_ODDITIES, ...XML_FORBIDDEN] : STREAM_SAFE_ODDITIES;
  const shape = rng.int(40);
  if (shape < 3) return '';
  if (shape === 3) {
    // long: one to ten kilobytes (oversize stanzas and bodies are cases of their own)
    const unit = rng.pick(['x', 'ß', '\u202E', '\uD83D\uDE00', 'a@b.c\n', '&<>']);
    const n = Math.min(opts.maxLength ?? 60_000, 1_000 + rng.int(9_000));
    return cut(unit.repeat(Math.ceil(n / unit.length)), n);
  }
  let out = '';
  const parts = 1 + rng.int(8);
  for (let i = 0; i < parts; i++) out += rng.chance(0.5) ? rng.pick(alphabet) : rng.word(1 + rng.int(8));
  return opts.maxLength ? cut(out, opts.maxLength) : out;
}

/** The first `n` code units of `s`, never splitting a surrogate pair. */
function cut(s: string, n: number): string {
  if (s.length <= n) return s;
  const c = s.charCodeAt(n - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
}

/** JIDs a user can type: ß, full-width, empty local part, resource only, too long, bidi, escapes. */
export function oddJid(rng: Rng): string {
  return rng.pick([
    'straße@elsewhere.net',
    'STRASSE@Elsewhere.NET',
    'ｆｕｌｌ＠ｗｉｄｔｈ．ｎｅｔ',
    'ＡＬＩＣＥ@localhost',
    '@localhost',
    '/resource-only',
    'localhost/',
    'a@b@c',
    'alice@localhost/res',
    'σς@elsewhere.net',
    'ΣΑΣ@elsewhere.net',
    '\u212Aate@elsewhere.net',
    'x'.repeat(1100) + '@elsewhere.net',
    'bob@' + 'd'.repeat(1100) + '.net',
    '\u202Eten.erehwesle@bob',
    'bob\u200B@elsewhere.net',
    'bob@elsewhere.net.',
    'bob@[::1]',
    'bob@127.0.0.1',
    'b"o\'b<&>@elsewhere.net',
    'bob @elsewhere.net',
    '',
    ' ',
    'invites.localhost',
    'localhost',
    'admin@localhost',
    rng.word(6) + '@' + rng.word(5) + '.example',
  ]);
}

/** Runs `fn` over `items` with at most `limit` in flight, until all are done or `stop()` says so. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !stop()) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Every table of the database as text, rows sorted, leaving out what the delivery
 * worker moves on its own (outbox progress, the invites' delivery columns).
 */
export function snapshotAll(file: string): Record<string, string> {
  const db = openStoreOf(file);
  try {
    const tables = tableNames(db).map((name) => ({ name }));
    const out: Record<string, string> = {};
    const moving: Record<string, string[]> = {
      outbox: ['state', 'attempts', 'last_error', 'not_before', 'updated_at', 'sent_at', 'claimed_by'],
      invites: ['email_delivery', 'message_delivery'],
    };
    for (const { name } of tables) {
      // Working state, not records (schema.sql, migrations 12 and 13): the instances' job leases are
      // renewed by the periodic jobs on their own, and every ad-hoc command opens or ends a session.
      if (WORKING_STATE.has(name)) continue;
      const rows = db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[];
      for (const row of rows) for (const col of moving[name] ?? []) delete row[col];
      // sorted: the engines return rows without an ORDER BY in no fixed order
      out[name] = rows
        .map((r) => JSON.stringify(r))
        .sort()
        .join('\n');
    }
    return out;
  } finally {
    db.close();
  }
}

/** The tables whose text differs between two snapshots, with the first differing line of each. */
export function snapshotDiff(before: Record<string, string>, after: Record<string, string>): string[] {
  const out: string[] = [];
  for (const table of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = (before[table] ?? '').split('\n');
    const b = (after[table] ?? '').split('\n');
    if (a.join('\n') === b.join('\n')) continue;
    const i = a.findIndex((line, k) => line !== b[k]);
    const at = i < 0 ? a.length : i;
    out.push(`${table}: ${a.length} → ${b.length} rows; first difference at row ${at}: ${JSON.stringify(a[at] ?? null)} → ${JSON.stringify(b[at] ?? null)}`);
  }
  return out;
}

export interface RawHttpResult {
  /** the status of the first response line, or undefined when the server closed without one */
  status: number | undefined;
  /** the server closed or reset the connection before answering */
  closed: boolean;
  /** no answer within the timeout */
  timedOut: boolean;
}

/** Writes `request` bytes to host:port and reads the first status line (closing right after). */
export function rawHttp(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<RawHttpResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    let done = false;
    const finish = (r: RawHttpResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ status: undefined, closed: false, timedOut: true }), timeoutMs);
    socket.on('connect', () => {
      socket.write(request, () => undefined);
    });
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (m) finish({ status: Number(m[1]), closed: false, timedOut: false });
    });
    socket.on('error', () => finish({ status: undefined, closed: true, timedOut: false }));
    socket.on('close', () => finish({ status: undefined, closed: true, timedOut: false }));
  });
}
