/**
 * The values of a configuration, one parser each: a parser takes the text as written (after
 * `env:NAME`) and returns the normalised value, or throws an Error whose message explains what is
 * expected. Messages quote a value only where it cannot be a secret. The schema (config-schema.ts)
 * says which key uses which parser.
 */
import { isPostgresUrl, redactUrl } from './store/pg/url';
import * as net from 'node:net';
import * as path from 'node:path';
import { nodeprep } from './domain/stringprep';

export interface MailAddress {
  name?: string;
  address: string;
}

export type MailTransport =
  | { kind: 'file'; dir: string }
  | {
      kind: 'smtp';
      host: string;
      port: number;
      /** smtps:// (implicit TLS) */
      secure: boolean;
      /** STARTTLS required: credentials are set and `?tls=none` is absent */
      requireTls: boolean;
      /** `?tls=none`: no TLS at all */
      tlsNone: boolean;
      auth?: { user: string; pass: string };
    };

// ---------------------------------------------------------------------------------------------
// Durations

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** Policy: nothing in this service needs more; it also keeps `Date` arithmetic far from overflow. */
const MAX_DURATION_MS = 100 * 365 * UNIT_MS.d;

/**
 * A duration in milliseconds: a whole number and one unit, `30s`, `30m`, `12h`, `7d` or `4w`.
 * Anything else (no unit, fractions, signs, spaces, upper case, combinations) throws.
 */
export function parseDuration(text: string): number {
  const m = /^(\d{1,12})([smhdw])$/.exec(text);
  if (!m) {
    throw new Error(
      `${JSON.stringify(clip(text))} is not a duration: write a whole number and a unit, as in 30s, 30m, 12h, 7d or 4w`,
    );
  }
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > MAX_DURATION_MS) throw new Error(`${JSON.stringify(text)} is longer than 100 years`);
  return ms;
}

// ---------------------------------------------------------------------------------------------
// Value parsers

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A DNS name of ASCII letters, digits and hyphens, lower-cased (IDNs: write the xn-- form). */
export function parseDomain(text: string, example: string): string {
  const d = text.toLowerCase();
  const hint = `must be a domain such as ${example}`;
  if (d.includes('://')) throw new Error(`${hint}, without a scheme, not ${describe(text)}`);
  if (d.includes('@')) throw new Error(`${hint}, without a user part, not ${describe(text)}`);
  if (d.includes(':') || d.includes('/')) throw new Error(`${hint}, without a port or path, not ${describe(text)}`);
  if (d.length > 253 || !d.split('.').every((l) => LABEL.test(l))) {
    throw new Error(`${hint} (labels of letters, digits and hyphens, separated by dots), not ${describe(text)}`);
  }
  return d;
}

/** A bare JID `local@domain`, its user part as the server compares it (nodeprep). */
export function parseBareJid(text: string): string {
  const hint = 'must be a bare JID such as admin@example.com';
  if (text.includes('/')) throw new Error(`${hint}, without a resource, not ${describe(text)}`);
  const at = text.lastIndexOf('@');
  if (at <= 0) throw new Error(`${hint}, not ${describe(text)}`);
  const local = nodeprep(text.slice(0, at));
  if (!local || Buffer.byteLength(local) > 1023) throw new Error(`${hint}; its user part has a forbidden character: ${describe(text)}`);
  const domain = parseDomain(text.slice(at + 1), 'example.com');
  return `${local}@${domain}`;
}

/** A host as written in a URL authority: a domain, an IPv4 address or a bracketed IPv6 address. */
function validUrlHost(host: string): boolean {
  if (host.startsWith('[') && host.endsWith(']')) return net.isIPv6(host.slice(1, -1));
  try {
    parseDomain(host, 'example.com');
    return true;
  } catch {
    return false;
  }
}

/**
 * `xmpp://host:port` or `tcp://host:port`. Policy: normalised to `xmpp://` because xmpp.js
 * connects only for that scheme; both mean a plain TCP connection (XEP-0114).
 */
export function parseComponentServer(text: string): string {
  const hint = 'must be xmpp://host:port (or tcp://host:port), as in xmpp://127.0.0.1:5347';
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`${hint}, not ${describe(text)}`);
  }
  if (u.protocol !== 'xmpp:' && u.protocol !== 'tcp:') throw new Error(`${hint}; ${u.protocol}// is not allowed`);
  const host = u.hostname.toLowerCase();
  if (!host || !validUrlHost(host)) throw new Error(`${hint}; the host is not valid in ${describe(text)}`);
  if (!u.port || Number(u.port) < 1) throw new Error(`${hint}; a port is needed in ${describe(text)}`);
  if (u.username || u.password || (u.pathname !== '' && u.pathname !== '/') || u.search || u.hash) {
    throw new Error(`${hint}, with nothing after the port`);
  }
  return `xmpp://${host}:${u.port}`;
}

/** An http(s) URL; the result is normalised and has no trailing slash when `stripSlash`. */
export function parseHttpUrl(text: string, example: string, stripSlash: boolean): string {
  const hint = `must be an http:// or https:// URL such as ${example}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`${hint}, not ${describe(text)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${hint}; ${u.protocol}// is not allowed`);
  if (!u.hostname) throw new Error(`${hint}; it has no host`);
  if (u.hash) throw new Error(`${hint}, without a #fragment`);
  return stripSlash ? u.href.replace(/\/+$/, '') : u.href;
}

/** Base of landing links: http(s), no credentials, query or fragment; no trailing slash. */
export function parsePublicUrl(text: string): string {
  const url = parseHttpUrl(text, 'https://invites.example.com', true);
  const u = new URL(url);
  if (u.username || u.password) throw new Error('must not carry a user or password');
  if (u.search) throw new Error('must not have a ?query: it is the base of landing links');
  return url;
}

/**
 * ejabberd mod_http_api base URL. It may carry `user:password@` for the API's basic auth; that
 * password is a secret, so messages never quote this value.
 */
export function parseProvisionerUrl(text: string): string {
  let url: string;
  try {
    url = parseHttpUrl(text, 'http://127.0.0.1:5280/api', true);
  } catch {
    throw new Error('must be an http:// or https:// URL such as http://127.0.0.1:5280/api');
  }
  if (new URL(url).search) throw new Error('must not have a ?query');
  return url;
}

/** The password of a URL, as written (percent-encoded) and decoded. */
export function urlPasswords(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const p = new URL(url).password;
    if (!p) return [];
    return [...new Set([p, safeDecode(p)])];
  } catch {
    return [];
  }
}

/** Listen address: IPv4, `localhost` or `[IPv6]`, then `:port`. */
export function parseListen(text: string): { host: string; port: number } {
  // Port 0 binds any free port (tests; the bound address is logged at start).
  const hint = 'must be host:port with an IPv4 address, localhost or [IPv6] and a port from 0 to 65535, as in 127.0.0.1:8080';
  const m = /^(\[[^\]]*\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) throw new Error(`${hint}, not ${describe(text)}`);
  let host = m[1];
  const port = Number(m[2]);
  if (host.startsWith('[')) {
    host = host.slice(1, -1).toLowerCase();
    if (!net.isIPv6(host)) throw new Error(`${hint}; ${describe(m[1])} is not an IPv6 address`);
  } else if (host !== 'localhost' && !net.isIPv4(host)) {
    throw new Error(`${hint}; ${describe(host)} is not an IPv4 address or localhost`);
  }
  if (port > 65535) throw new Error(`${hint}; the port is ${port}`);
  return { host, port };
}

/** Policy: single addresses only (no ranges), as the web code compares addresses. */
export function parseIp(text: string): string {
  if (!net.isIP(text)) throw new Error(`must be an IPv4 or IPv6 address (ranges are not supported), not ${describe(text)}`);
  return text.toLowerCase();
}

/** Text shown to people (site and client names): one line, no control characters. */
export function parseOneLine(text: string): string {
  if (/\p{Cc}/u.test(text)) throw new Error('must be one line without control characters');
  return text.trim();
}

/** A SQLite file path (relative to the config's directory) or a PostgreSQL URL; `:memory:` (tests) is kept as is. */
export function resolveDatabase(text: string, baseDir: string): string {
  if (isPostgresUrl(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new Error(`is not a valid PostgreSQL URL (postgres://user:password@host:port/database): ${redactUrl(text)}`);
    }
    if (url.pathname.length <= 1) throw new Error(`must name the database (postgres://…/DATABASE): ${redactUrl(text)}`);
    return text;
  }
  // Another URL would otherwise become a file of that name beside the config.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new Error('must be a SQLite file path or a PostgreSQL URL (postgres://… or postgresql://…)');
  }
  return text === ':memory:' ? text : path.resolve(baseDir, text);
}

const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const DOT_ATOM = new RegExp(`^${ATOM}(?:\\.${ATOM})*$`);

/** `Name <addr>` or `addr`: a single addr-spec (dot-atom local part), one line. */
export function parseMailbox(text: string): MailAddress {
  const hint = 'must be "Name <address>" or "address", with a single address such as invites@example.com';
  if (/[\r\n]/.test(text)) throw new Error(`${hint}, on one line`);
  if (/\p{Cc}/u.test(text)) throw new Error(`${hint}, without control characters`);
  const t = text.trim();
  let name: string | undefined;
  let addr = t;
  const m = /^([^<>]*)<([^<>]*)>$/.exec(t);
  if (m) {
    name = m[1].trim();
    const quoted = /^"(.*)"$/.exec(name);
    if (quoted) name = quoted[1];
    if (name.includes('"')) throw new Error(`${hint}; the name has a stray quote`);
    addr = m[2].trim();
  }
  const at = addr.lastIndexOf('@');
  if (at <= 0 || !DOT_ATOM.test(addr.slice(0, at))) throw new Error(`${hint}, not ${describe(text)}`);
  let domain: string;
  try {
    domain = parseDomain(addr.slice(at + 1), 'example.com');
  } catch {
    throw new Error(`${hint}; the domain of ${describe(addr)} is not valid`);
  }
  const address = `${addr.slice(0, at)}@${domain}`;
  return name ? { name, address } : { address };
}

/**
 * `file:DIR` (DIR resolved against the config's directory) or `smtp[s]://[user:pass@]host[:port]`
 * with an optional `?tls=none`. The value can hold a password: messages never quote it.
 * Policy: default ports follow nodemailer, 587 for smtp:// and 465 for smtps://.
 */
export function parseTransport(text: string, baseDir: string, secret: (s: string) => void): MailTransport {
  if (text.startsWith('file:')) {
    const dir = text.slice('file:'.length);
    if (dir.trim() === '') throw new Error('file: needs a directory, as in file:./outbox');
    return { kind: 'file', dir: path.resolve(baseDir, dir) };
  }
  const hint = 'must be file:DIR or an smtp:// or smtps:// URL, as in smtps://user:password@mail.example.com';
  if (!/^smtps?:\/\//i.test(text)) throw new Error(hint);
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`${hint} (this URL cannot be parsed)`);
  }
  if (u.password) {
    secret(u.password);
    secret(safeDecode(u.password));
  }
  const secure = u.protocol === 'smtps:';
  const host = u.hostname.toLowerCase();
  if (!host || !validUrlHost(host)) throw new Error(`${hint}; the host is not valid`);
  if ((u.pathname !== '' && u.pathname !== '/') || u.hash) throw new Error(`${hint}, with nothing after the host and port but ?tls=none`);
  let tlsNone = false;
  for (const [key, value] of u.searchParams) {
    if (key !== 'tls') throw new Error(`unknown query parameter ${JSON.stringify(clip(key))}: only ?tls=none is allowed`);
    if (value !== 'none') throw new Error('?tls= accepts only none');
    tlsNone = true;
  }
  if (secure && tlsNone) throw new Error('smtps:// always uses TLS; ?tls=none contradicts it (use smtp:// for a plain connection)');
  const user = safeDecode(u.username);
  const pass = safeDecode(u.password);
  if (user && !pass) throw new Error('has a user but no password (write smtp://user:password@host)');
  if (pass && !user) throw new Error('has a password but no user (write smtp://user:password@host)');
  const port = u.port ? Number(u.port) : secure ? 465 : 587;
  if (port < 1) throw new Error(`${hint}; the port must be from 1 to 65535`);
  return {
    kind: 'smtp',
    host: host.startsWith('[') ? host.slice(1, -1) : host,
    port,
    secure,
    // Contract: smtp with credentials requires TLS (STARTTLS) unless ?tls=none says otherwise.
    requireTls: !secure && !!user && !tlsNone,
    tlsNone,
    ...(user ? { auth: { user, pass } } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers for messages

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** The kind of a value, for messages about values that may be secret. */
export function kind(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isPlainObject(v)) return 'a mapping';
  if (typeof v === 'string') return 'text';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return typeof v;
}

/** A value for a message: strings quoted and clipped, others by kind. Never used for secrets. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(clip(v));
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return kind(v);
}

export function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
