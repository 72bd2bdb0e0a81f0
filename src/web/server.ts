/**
 * The web server inside `serve` (node:http): the landing page and web registration. This file is
 * the HTTP discipline shared by every route: security headers on every response, per-IP rate
 * limits and body limits on POSTs, CSRF, access logs without tokens. The routes live in landing.ts.
 *
 * Order of the checks on a POST, so that a refusal never reaches the domain: rate limit (429),
 * body size (413), content type (400), CSRF (403); then the route: unknown token (404), spent
 * invite (410), form errors (400).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { isDatabaseBusy } from '../errors';
import { addressKey, clientIp, normalizeIp } from './client-ip';
import { CSRF_FIELD, Csrf } from './csrf';
import { Html } from '../present/html';
import { problemPage, type Site } from './pages';
import { DEFAULT_RATE_LIMIT, RateLimiter, type RateLimitOptions } from './rate-limit';
import { Router, type Params } from './router';
import { CONTENT_SECURITY_POLICY } from './style';

/** Forms are a username, a password, a note of at most 1000 characters and a few choices. */
export const MAX_BODY_BYTES = 16 * 1024;
/** An oversized body is read (and dropped) up to this size so the client sees the 413; beyond, the connection is cut. */
const DRAIN_LIMIT_BYTES = 1024 * 1024;

/** Headers on every response. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), interest-cohort=()',
  // Pages carry invite tokens (the QR code, the forms): never stored by a browser or a proxy.
  'Cache-Control': 'no-store',
};

/**
 * What one server holds at most, and how long a client may take. Node checks the header and
 * request timeouts of open connections only every `connectionsCheckingInterval` (30 s by default,
 * so a 10 s header timeout held a dripping client 30 s): checked every second here.
 */
export interface WebLimits {
  /** open connections in all; past it a new one gets a 503 and is closed */
  maxConnections: number;
  /** open connections from one address (IPv6: one /64), trusted proxies excepted */
  maxConnectionsPerAddress: number;
  /** the request line and headers must have arrived within this time (408 otherwise) */
  headersTimeoutMs: number;
  /** the whole request, body included, must have arrived within this time (408 otherwise) */
  requestTimeoutMs: number;
  /** an idle keep-alive connection is closed after this time */
  keepAliveTimeoutMs: number;
  /** how often the two timeouts above are checked */
  checkIntervalMs: number;
}

export const DEFAULT_WEB_LIMITS: WebLimits = {
  maxConnections: 1_000,
  maxConnectionsPerAddress: 32,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 1_000,
};

/** The answer to a connection over a cap, written before the request is read. */
const BUSY_RESPONSE =
  'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 10\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 22\r\n\r\nToo many connections.\n';

export interface Reply {
  status: number;
  body: Html | string;
  /** default: text/html; charset=utf-8 */
  contentType?: string;
  headers?: Record<string, string>;
  /** Set-Cookie values, sent beside the CSRF cookie when the page sets one */
  cookies?: string[];
}

/** A 303 to a path of this site (after a POST: the browser then GETs the page). */
export function redirect(location: string, cookies?: string[]): Reply {
  return { status: 303, body: '', contentType: 'text/plain; charset=utf-8', headers: { Location: location }, cookies };
}

export interface RequestContext {
  method: string;
  params: Params;
  /** the client's address (X-Forwarded-For only from web.trusted_proxies) */
  ip: string;
  /** the urlencoded form of a POST (empty for GET) */
  form: URLSearchParams;
  /** the query string */
  query: URLSearchParams;
  /** the request's cookies by name (never logged) */
  cookies: ReadonlyMap<string, string>;
  /** the CSRF token for forms on the page being rendered (sets the cookie when the client has none) */
  csrf(): string;
}

export type Handler = (ctx: RequestContext) => Promise<Reply> | Reply;

/**
 * A part of the site with its own discipline (the JSON API: bearer keys rather than cookies and
 * CSRF, JSON errors): it gets the request as it comes, with the path (under web.public_url's
 * prefix) and the client's address, and answers with a Reply; the security headers and the
 * access log stay this file's.
 */
export type MountHandler = (req: http.IncomingMessage, path: string, ip: string) => Promise<Reply>;

export interface WebServerOptions {
  listen: { host: string; port: number };
  trustedProxies: readonly string[];
  /** to derive the CSRF key */
  tokenKey: string;
  /** the Secure attribute of the cookie (web.public_url is https) */
  secureCookies: boolean;
  site: Site;
  logger: Logger;
  rateLimit?: RateLimitOptions;
  /**
   * The web console's signed-in user of a request (from its cookies), when there is one: their
   * POSTs are counted per user against `sessionRateLimit` rather than per address, so that an admin
   * clearing a queue is not taken for a script.
   */
  sessionUser?: (cookies: ReadonlyMap<string, string>) => string | undefined;
  sessionRateLimit?: RateLimitOptions;
  /** connection caps and timeouts (default DEFAULT_WEB_LIMITS) */
  limits?: Partial<WebLimits>;
  clock?: () => number;
}

/** Signed-in users: sixty POSTs at once, then one a second. */
export const DEFAULT_SESSION_RATE_LIMIT: RateLimitOptions = { capacity: 60, refillMs: 1_000, maxKeys: 10_000 };

/** The path as access logs show it: invite tokens, unsubscribe and sign-in codes never appear. */
export function logPath(path: string): string {
  return path
    .replace(/\/(i|u)\/[^/]+/, '/$1/[redacted]')
    .replace(/\/request\/v\/[^/]+/, '/request/v/[redacted]')
    .replace(/\/login\/[^/]+/, '/login/[redacted]');
}

/** The cookies of a Cookie header, by name (the first of a name wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

export class WebServer {
  readonly #server: http.Server;
  readonly #router = new Router<Handler>();
  /** POST handlers that take no form: RFC 8058 one-click requests, made by mail clients without cookies */
  readonly #oneClick = new WeakSet<Handler>();
  readonly #csrf: Csrf;
  readonly #limiter: RateLimiter;
  readonly #sessionLimiter: RateLimiter;
  readonly #clock: () => number;
  readonly #limits: WebLimits;
  /** open connections per address key (IPv4 address, IPv6 /64) */
  readonly #perAddress = new Map<string, number>();
  /** connections answered 503 at once: their requests, if any arrive, are not handled */
  readonly #refused = new WeakSet<Socket>();
  #open = 0;
  /** refusals since the last log line, and when that was */
  #refusals = 0;
  #lastRefusalLog = -Infinity;
  #url: string | undefined;
  readonly #mounts: { prefix: string; handler: MountHandler }[] = [];

  constructor(private readonly opts: WebServerOptions) {
    this.#csrf = new Csrf(opts.tokenKey, opts.secureCookies);
    this.#clock = opts.clock ?? Date.now;
    this.#limiter = new RateLimiter(opts.rateLimit ?? DEFAULT_RATE_LIMIT, this.#clock);
    this.#sessionLimiter = new RateLimiter(opts.sessionRateLimit ?? DEFAULT_SESSION_RATE_LIMIT, this.#clock);
    const limits = (this.#limits = { ...DEFAULT_WEB_LIMITS, ...opts.limits });
    this.#server = http.createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        connectionsCheckingInterval: limits.checkIntervalMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
      },
      (req, res) => void this.#handle(req, res),
    );
    this.#server.on('connection', (socket: Socket) => this.#admit(socket));
  }

  /** Open connections now (for tests and health). */
  get connections(): number {
    return this.#open;
  }

  /** Counts a new connection; over a cap it gets a 503 and is closed before anything is read. */
  #admit(socket: Socket): void {
    const peer = normalizeIp(socket.remoteAddress ?? '');
    // Behind a proxy every client arrives from the proxy's address: only the total cap applies.
    const key = this.opts.trustedProxies.includes(peer) ? undefined : addressKey(peer);
    const fromKey = key === undefined ? 0 : (this.#perAddress.get(key) ?? 0);
    if (this.#open >= this.#limits.maxConnections || fromKey >= this.#limits.maxConnectionsPerAddress) {
      this.#refused.add(socket);
      // One line per 10 s at most: a flood of connections must not become a flood of logs.
      this.#refusals++;
      const now = this.#clock();
      if (now - this.#lastRefusalLog >= 10_000) {
        this.opts.logger.warn({ ip: peer, open: this.#open, fromAddress: fromKey, refused: this.#refusals }, 'connections refused: too many open connections');
        this.#lastRefusalLog = now;
        this.#refusals = 0;
      }
      socket.end(BUSY_RESPONSE);
      // A client that never reads is cut after a moment.
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    this.#open++;
    if (key !== undefined) this.#perAddress.set(key, fromKey + 1);
    socket.once('close', () => {
      this.#open--;
      if (key === undefined) return;
      const n = (this.#perAddress.get(key) ?? 1) - 1;
      if (n <= 0) this.#perAddress.delete(key);
      else this.#perAddress.set(key, n);
    });
  }

  /** Every request for `prefix` or below goes to `handler` (see MountHandler). */
  mount(prefix: string, handler: MountHandler): this {
    this.#mounts.push({ prefix, handler });
    return this;
  }

  get(pattern: string, handler: Handler): this {
    this.#router.add('GET', pattern, handler);
    return this;
  }

  post(pattern: string, handler: Handler): this {
    this.#router.add('POST', pattern, handler);
    return this;
  }

  /**
   * A POST whose URL is its own credential (an unguessable code), answered whatever its body:
   * RFC 8058 §3.2 one-click unsubscribe comes from a mail client, with neither our cookie nor our
   * form (so no CSRF token), and its body is `List-Unsubscribe=One-Click` in either form encoding.
   * The rate and size limits still apply.
   */
  postOneClick(pattern: string, handler: Handler): this {
    this.#oneClick.add(handler);
    return this.post(pattern, handler);
  }

  /** `http://host:port` once listening (the bound port when web.listen asked for port 0). */
  get url(): string {
    if (!this.#url) throw new Error('The web server is not listening');
    return this.#url;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(this.opts.listen.port, this.opts.listen.host, () => {
        this.#server.off('error', onError);
        const { address, port } = this.#server.address() as AddressInfo;
        this.#url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
        this.opts.logger.info('web server listening on %s', this.#url);
        resolve();
      });
    });
  }

  stop(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      // Requests in hand get a moment to finish; then whatever is left is cut.
      setTimeout(() => this.#server.closeAllConnections(), 2_000).unref();
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.#refused.has(req.socket)) {
      req.socket.destroy();
      return;
    }
    const started = this.#clock();
    const method = req.method ?? 'GET';
    const ip = clientIp(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.opts.trustedProxies);
    let path = '/';
    let query = new URLSearchParams();
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      path = url.pathname;
      query = url.searchParams;
    } catch {
      /* stays / */
    }
    res.on('finish', () => {
      this.opts.logger.info({ method, path: logPath(path), status: res.statusCode, ms: this.#clock() - started, ip }, 'http');
    });
    try {
      const local = this.#stripBase(path);
      const mount = this.#mounts.find((m) => local === m.prefix || local.startsWith(`${m.prefix}/`));
      const reply = mount ? await mount.handler(req, local, ip) : await this.#dispatch(req, res, method, local, ip, query);
      if (reply.headers?.Connection === 'close') res.setHeader('Connection', 'close');
      this.#send(res, reply);
    } catch (err) {
      if (res.headersSent) {
        this.opts.logger.error({ err, path: logPath(path) }, 'web request failed');
        res.destroy();
      } else if (isDatabaseBusy(err)) {
        // Another process held the write lock too long (store/busy.ts): nothing was done.
        this.opts.logger.warn({ path: logPath(path) }, 'the database is locked by another process: answered 503');
        this.#send(res, { ...this.#problem(503, 'Busy for a moment', 'Nothing was changed. Please try again in a few seconds.'), headers: { 'Retry-After': '2' } });
      } else {
        this.opts.logger.error({ err, path: logPath(path) }, 'web request failed');
        this.#send(res, this.#problem(500, 'Something went wrong', 'Please try again in a moment.'));
      }
    }
  }

  /** Behind a proxy that keeps web.public_url's path prefix, the routes are found under it too. */
  #stripBase(path: string): string {
    const base = this.opts.site.base;
    return base && path.startsWith(`${base}/`) ? path.slice(base.length) : path;
  }

  async #dispatch(req: http.IncomingMessage, res: http.ServerResponse, method: string, path: string, ip: string, query: URLSearchParams): Promise<Reply> {
    const match = this.#router.match(method, path);
    if (match.kind === 'none') {
      req.resume();
      return this.#problem(404, 'Page not found', 'There is nothing at this address.');
    }
    if (match.kind === 'method') {
      req.resume();
      return { ...this.#problem(405, 'Method not allowed', 'This address does not accept that request.'), headers: { Allow: match.allowed.join(', ') } };
    }
    let cookie = this.#csrf.fromCookies(req.headers.cookie);
    const cookies = parseCookies(req.headers.cookie);
    let form = new URLSearchParams();
    if (method === 'POST') {
      const user = this.opts.sessionUser?.(cookies);
      const limited = user !== undefined ? this.#sessionLimiter.take(user) : this.#limiter.take(addressKey(ip));
      if (!limited.ok) {
        req.resume();
        return {
          ...this.#problem(429, 'Too many requests', `Please wait ${limited.retryAfterS} seconds and try again.`),
          headers: { 'Retry-After': String(limited.retryAfterS) },
        };
      }
      const body = await readBody(req, MAX_BODY_BYTES);
      if (body === 'too-large') {
        res.setHeader('Connection', 'close');
        return this.#problem(413, 'Too much data', 'The form sent more data than this page accepts.');
      }
      if (this.#oneClick.has(match.handler)) return match.handler({ method, params: match.params, ip, form, query, cookies, csrf: () => '' });
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/x-www-form-urlencoded') {
        return this.#problem(400, 'The request was not understood', 'Please use the form on the invitation page.');
      }
      form = new URLSearchParams(body.toString('utf8'));
      // A CSRF token bound to the SameSite cookie: forms from any other site are refused.
      if (!this.#csrf.verify(cookie, form.get(CSRF_FIELD) ?? undefined)) {
        return this.#problem(
          403,
          'This form has expired',
          'For your safety, forms only work from the invitation page itself, with cookies allowed. Open the invitation link again and resend the form.',
        );
      }
    }
    const setCookie = () => {
      if (!cookie) {
        cookie = this.#csrf.newValue();
        res.setHeader('Set-Cookie', this.#csrf.setCookie(cookie));
      }
      return this.#csrf.formToken(cookie);
    };
    return match.handler({ method, params: match.params, ip, form, query, cookies, csrf: setCookie });
  }

  #problem(status: number, title: string, message: string): Reply {
    return { status, body: problemPage(this.opts.site, title, message) };
  }

  #send(res: http.ServerResponse, reply: Reply): void {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
    if (reply.cookies?.length) {
      const set = res.getHeader('Set-Cookie');
      const before = set === undefined ? [] : Array.isArray(set) ? set : [String(set)];
      res.setHeader('Set-Cookie', [...before, ...reply.cookies]);
    }
    const body = Buffer.from(reply.body instanceof Html ? reply.body.value : reply.body, 'utf8');
    res.writeHead(reply.status, {
      'Content-Type': reply.contentType ?? 'text/html; charset=utf-8',
      'Content-Length': String(body.length),
    });
    res.end(body);
  }
}

/** The body, or 'too-large' once it passes `limit` (read on, and dropped, up to DRAIN_LIMIT_BYTES). */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const declared = Number(req.headers['content-length']);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number.isFinite(declared) && declared > limit;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
      else if (size > DRAIN_LIMIT_BYTES) {
        req.removeAllListeners('data');
        req.pause();
        resolve('too-large');
      }
    });
    req.on('end', () => resolve(tooLarge ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
