/**
 * A real SMTP server on 127.0.0.1 for tests (the `smtp-server` package), recording every message it
 * accepts with its envelope, and a small MIME reader (headers, RFC 2047 words, multipart,
 * quoted-printable, base64) to look inside them. Replies can be scripted to answer 4xx or 5xx.
 */
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface MimePart {
  /** lower-cased name → unfolded raw values, in order */
  headers: Map<string, string[]>;
  /** the raw header section, unfolded lines as sent */
  headerLines: string[];
  contentType: string;
  params: Record<string, string>;
  /** decoded text (text/* parts), or the raw body of a multipart */
  body: string;
  parts: MimePart[];
}

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  message: MimePart;
  messageId: string;
  /** the user that authenticated on the session, if any */
  user?: string;
}

export interface SmtpReply {
  code: number;
  message: string;
}

export interface TestSmtpOptions {
  /** require AUTH with these credentials (AUTH is otherwise disabled) */
  auth?: { user: string; pass: string };
  /** let AUTH happen without TLS (the server never offers STARTTLS here) */
  allowInsecureAuth?: boolean;
}

export class TestSmtpServer {
  readonly received: ReceivedMail[] = [];
  /** every AUTH attempt the server saw */
  readonly authAttempts: string[] = [];
  /** sessions opened (TCP connections accepted) */
  connections = 0;
  /** scripted replies: return one to refuse at that stage */
  reply: ((stage: 'rcpt' | 'data', address?: string) => SmtpReply | undefined) | undefined;
  #server: SMTPServer | undefined;
  readonly #sockets = new Set<Socket>();
  #waiters: { pred: (m: ReceivedMail) => boolean; resolve: (m: ReceivedMail) => void }[] = [];

  private constructor(
    public port: number,
    private readonly opts: TestSmtpOptions,
  ) {}

  static async start(opts: TestSmtpOptions = {}, port = 0): Promise<TestSmtpServer> {
    const s = new TestSmtpServer(port, opts);
    await s.up();
    return s;
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  /** Starts listening (again, on the same port after `down()`). */
  async up(): Promise<void> {
    if (this.#server) return;
    const options: SMTPServerOptions = {
      disabledCommands: this.opts.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !this.opts.auth,
      allowInsecureAuth: this.opts.allowInsecureAuth ?? false,
      logger: false,
      closeTimeout: 50,
      onConnect: (_session, cb) => {
        this.connections++;
        cb();
      },
      onAuth: (auth, _session, cb) => {
        this.authAttempts.push(`${auth.username}:${auth.password}`);
        if (this.opts.auth && auth.username === this.opts.auth.user && auth.password === this.opts.auth.pass) return cb(null, { user: auth.username });
        cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      },
      onRcptTo: (address, _session, cb) => {
        const r = this.reply?.('rcpt', address.address);
        cb(r ? Object.assign(new Error(r.message), { responseCode: r.code }) : null);
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const r = this.reply?.('data');
          if (r) return cb(Object.assign(new Error(r.message), { responseCode: r.code }));
          const raw = Buffer.concat(chunks).toString('utf8');
          const message = parseMime(raw);
          const mail: ReceivedMail = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw,
            message,
            messageId: (header(message, 'message-id') ?? '').trim(),
            user: typeof session.user === 'string' ? session.user : undefined,
          };
          this.received.push(mail);
          for (const w of [...this.#waiters]) {
            if (w.pred(mail)) {
              this.#waiters = this.#waiters.filter((x) => x !== w);
              w.resolve(mail);
            }
          }
          cb();
        });
      },
    };
    const server = new SMTPServer(options);
    server.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      const net = server.listen(this.port, '127.0.0.1', () => resolve());
      net.once('error', reject);
      net.on('connection', (socket: Socket) => {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
      });
    });
    this.port = (server.server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Stops listening and drops every open connection (the next connect is refused). */
  async down(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  stop(): Promise<void> {
    return this.down();
  }

  url(auth?: string, query = ''): string {
    return `smtp://${auth ? `${auth}@` : ''}127.0.0.1:${this.port}${query}`;
  }

  /** The next message matching `pred` (messages already received are checked first). */
  waitFor(pred: (m: ReceivedMail) => boolean = () => true, timeoutMs = 20_000): Promise<ReceivedMail> {
    const found = this.received.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching e-mail within ${timeoutMs} ms (${this.received.length} received)`));
      }, timeoutMs);
      const done = (m: ReceivedMail) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiters.push({ pred, resolve: done });
    });
  }

  /** How many times each Message-ID arrived. */
  countsByMessageId(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const m of this.received) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
    return counts;
  }
}

// -------------------------------------------------------------------------------------------------
// A small MIME reader (RFC 2045–2047), enough for what the service sends.

function decodeQp(text: string): Buffer {
  const soft = text.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/** RFC 2047 encoded words in a header value, decoded (UTF-8 assumed). */
export function decodeWords(value: string): string {
  return value
    .replace(/(=\?[^?]+\?[BbQq]\?[^?]*\?=)\s+(?==\?[^?]+\?[BbQq]\?[^?]*\?=)/g, '$1')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, data: string) =>
      enc.toUpperCase() === 'B' ? Buffer.from(data, 'base64').toString('utf8') : decodeQp(data.replace(/_/g, ' ')).toString('utf8'),
    );
}

function parseParams(value: string): { value: string; params: Record<string, string> } {
  const [first, ...rest] = value.split(';');
  const params: Record<string, string> = {};
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    params[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return { value: first.trim().toLowerCase(), params };
}

export function parseMime(raw: string): MimePart {
  const split = /\r?\n\r?\n/.exec(raw);
  const head = split ? raw.slice(0, split.index) : raw;
  const bodyRaw = split ? raw.slice(split.index + split[0].length) : '';
  const headerLines: string[] = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && headerLines.length) headerLines[headerLines.length - 1] += ` ${line.trim()}`;
    else if (line !== '') headerLines.push(line);
  }
  const headers = new Map<string, string[]>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  const ct = parseParams(headers.get('content-type')?.[0] ?? 'text/plain');
  const part: MimePart = { headers, headerLines, contentType: ct.value, params: ct.params, body: bodyRaw, parts: [] };
  if (ct.value.startsWith('multipart/') && ct.params.boundary) {
    const sections = bodyRaw.split(new RegExp(`(?:^|\\r?\\n)--${ct.params.boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*(?:\\r?\\n|$)`));
    part.parts = sections.slice(1, -1).filter((s) => s.trim() !== '').map(parseMime);
    return part;
  }
  const enc = (headers.get('content-transfer-encoding')?.[0] ?? '7bit').toLowerCase();
  if (enc === 'base64') part.body = Buffer.from(bodyRaw.replace(/\s+/g, ''), 'base64').toString('utf8');
  else if (enc === 'quoted-printable') part.body = decodeQp(bodyRaw).toString('utf8');
  return part;
}

/** A header's first value, RFC 2047 words decoded. */
export function header(part: MimePart, name: string): string | undefined {
  const v = part.headers.get(name.toLowerCase())?.[0];
  return v === undefined ? undefined : decodeWords(v);
}

/** Every leaf part, depth first. */
export function leaves(part: MimePart): MimePart[] {
  return part.parts.length ? part.parts.flatMap(leaves) : [part];
}

/** The decoded text of the first leaf of this content type. */
export function bodyOf(part: MimePart, contentType: 'text/plain' | 'text/html'): string | undefined {
  return leaves(part).find((p) => p.contentType === contentType)?.body;
}
