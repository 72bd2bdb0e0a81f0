/**
 * The component's connection to its XMPP server (XEP-0114): connect with backoff, classify the
 * refusals an operator must fix (secret, domain, a second instance), keep the link alive with
 * XEP-0199 pings, hand incoming stanzas to the router, and match replies to our own requests.
 *
 * Standby (`standby: true`, for Prosody, which holds one stream per component): a `conflict` at
 * stream start means another instance is the active one; we log that once, retry every
 * standbyRetryMs and serve nothing until the server lets us in, i.e. soon after the active
 * instance's stream ends. Prosody 0.12 and 13 refuse the newcomer by default
 * (`component_conflict_resolve = "kick_new"`); with "kick_old" they close the active stream with
 * `conflict` instead. The instance so replaced stops, standby or not: retrying would replace the
 * other in turn, over and over.
 *
 * We use @xmpp/component 0.13.1 for the socket, the stream and the handshake only. Its other
 * modules are switched off, because:
 * - reconnect retries every second forever, also after not-authorized / host-unknown / conflict;
 *   we run our own loop with a fresh entity per attempt and exponential backoff;
 * - the middleware's iqCallee answers every iq get/set nobody routed with service-unavailable,
 *   behind the router's back (and iqCaller matches replies by id only, so anyone who guesses an
 *   id can answer our requests).
 * It has no keepalive and no timeout on the TCP connect: a dead link would hang forever.
 *
 * References
 * https://xmpp.org/extensions/xep-0114.html
 * https://xmpp.org/extensions/xep-0199.html#c2s
 * https://xmpp.org/rfcs/rfc6120.html#streams-error-conditions
 * https://xmpp.org/rfcs/rfc6120.html#stanzas-error
 */
import { EventEmitter } from 'node:events';
import { secureRandomBytes } from '../domain/random';
import type pino from 'pino';
import { component, jid, type Component } from '@xmpp/component';
import { xml, type Element } from './xml';
import { sanitizeStanza } from './sanitize';
import { checkCharacters, StanzaRejectedError, type ForbiddenCharacterError } from './outgoing';

const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const NS_PING = 'urn:xmpp:ping';

export type FatalCondition = 'not-authorized' | 'host-unknown' | 'conflict';

const FATAL: Record<FatalCondition, { configKey: string; explain: (domain: string) => string }> = {
  'not-authorized': {
    configKey: 'component.secret',
    explain: () => 'The server refused the component secret (not-authorized): check component.secret',
  },
  'host-unknown': {
    configKey: 'component.domain',
    explain: (domain) =>
      `The server has no Component "${domain}" entry (host-unknown): check component.domain, or add the component to the server's configuration`,
  },
  conflict: {
    configKey: 'component.domain',
    explain: (domain) =>
      `Another process is already connected as "${domain}" (conflict): stop it, or check component.domain (or set component.standby: true to wait and take over when it goes)`,
  },
};

/** The server closed our online stream with conflict: it gives the component to the newest connection. */
const replacedExplain = (domain: string): string =>
  `Another process connected as "${domain}" and the server closed this one's stream (conflict): the server gives a component to its newest connection (Prosody: component_conflict_resolve = "kick_old"), so reconnecting would replace the other process in turn; stop it, or, to keep an instance waiting with component.standby, use Prosody's default "kick_new"`;

/** A refusal that retrying cannot fix: the operator must change the config named by `configKey`. */
export class FatalConnectionError extends Error {
  override readonly name = 'FatalConnectionError';
  readonly condition: FatalCondition;
  readonly configKey: string;

  constructor(condition: FatalCondition, domain: string, serverText?: string, explanation?: string) {
    super((explanation ?? FATAL[condition].explain(domain)) + (serverText ? ` (server said: ${serverText})` : ''));
    this.condition = condition;
    this.configKey = FATAL[condition].configKey;
  }
}

/** An `<iq type='error'/>` answering one of our requests. */
export class StanzaError extends Error {
  override readonly name = 'StanzaError';
  readonly condition: string;
  readonly type: string;
  readonly text?: string;
  readonly stanza?: Element;

  constructor(condition: string, type: string, text?: string, stanza?: Element) {
    super(condition + (text ? ` - ${text}` : ''));
    this.condition = condition;
    this.type = type;
    this.text = text;
    this.stanza = stanza;
  }

  /** RFC 6120 8.3.2: the defined condition is the child of <error/> in the stanzas namespace. */
  static fromStanza(stanza: Element): StanzaError {
    const error = stanza.getChild('error');
    const children = error?.getChildElements() ?? [];
    const condition = children.find((c) => c.getName() !== 'text' && c.getNS() === NS_STANZAS)?.getName();
    const text = error?.getChildText('text', NS_STANZAS) ?? undefined;
    return new StanzaError(condition ?? 'undefined-condition', error?.attrs.type ?? 'cancel', text || undefined, stanza);
  }
}

/** No reply to a request within its timeout. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  constructor(
    readonly to: string,
    readonly timeoutMs: number,
  ) {
    super(`No reply from ${to} within ${timeoutMs} ms`);
  }
}

/** send() or request() while offline, or the connection was lost before the reply: retry later. */
export class NotConnectedError extends Error {
  override readonly name = 'NotConnectedError';
}

export { ForbiddenCharacterError, StanzaRejectedError } from './outgoing';

export interface ConnectionOptions {
  /** xmpp://host:port */
  server: string;
  domain: string;
  secret: string;
  logger: pino.Logger;
  /** First reconnect delay, doubled after each failure up to maxBackoffMs; default 1000 */
  initialBackoffMs?: number;
  /** default 30000 */
  maxBackoffMs?: number;
  /** XEP-0199 ping interval while online; default 60000 */
  pingIntervalMs?: number;
  /** No reply to a ping within this → drop the socket and reconnect; default 20000 */
  pingTimeoutMs?: number;
  /** Who to ping; default the component domain minus its first label (invites.example.org → example.org). */
  pingTo?: string;
  /** One connect attempt (TCP, stream header, handshake) must finish within this; default 10000 */
  connectTimeoutMs?: number;
  /**
   * A `conflict` at stream start (another instance is connected as this component) is not fatal:
   * stand by, retrying every standbyRetryMs, and take over when the server accepts us; default false
   */
  standby?: boolean;
  /** default 1000 */
  standbyRetryMs?: number;
  /** send() refuses larger stanzas (Prosody closes the stream above 512 KiB); default 500 KiB */
  maxStanzaBytes?: number;
}

export type StanzaHandler = (stanza: Element) => Promise<void> | void;

interface Pending {
  to: string;
  resolve: (reply: Element) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One connect attempt and, if it succeeds, the online stream: one @xmpp/component entity each. */
interface Session {
  readonly entity: Component;
  online: boolean;
  /** writes are held until the end of this event-loop turn (#gatherWrites) */
  corked?: boolean;
  /** The last 'error' the entity emitted (a StreamError carries the server's condition). */
  lastError?: unknown;
  pingTimer?: NodeJS.Timeout;
  pinging: boolean;
  /** Ends the attempt in progress (stop()). */
  abort?: (err: Error) => void;
}

export interface ComponentConnection {
  on(event: 'online' | 'offline' | 'standby', listener: () => void): this;
  on(event: 'fatal', listener: (err: FatalConnectionError) => void): this;
  once(event: 'online' | 'offline' | 'standby', listener: () => void): this;
  once(event: 'fatal', listener: (err: FatalConnectionError) => void): this;
  emit(event: 'online' | 'offline' | 'standby'): boolean;
  emit(event: 'fatal', err: FatalConnectionError): boolean;
}

/**
 * Events: 'online' (each time the stream is up), 'offline' (each time an online stream is lost,
 * and on stop()), 'standby' (each time the server refuses us with conflict while another instance
 * holds the component, with `standby`), 'fatal' (FatalConnectionError after a successful first
 * connect; reconnecting has stopped and the process should exit).
 */
export class ComponentConnection extends EventEmitter {
  readonly #server: string;
  readonly #domain: string;
  readonly #secret: string;
  readonly #log: pino.Logger;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #pingIntervalMs: number;
  readonly #pingTimeoutMs: number;
  readonly #pingTo: string;
  readonly #connectTimeoutMs: number;
  readonly #maxStanzaBytes: number;
  readonly #standby: boolean;
  readonly #standbyRetryMs: number;
  #standingBy = false;

  readonly #handlers: StanzaHandler[] = [];
  readonly #pending = new Map<string, Pending>();
  /** The online session, if any. */
  #session: Session | null = null;
  /** The attempt in progress, if any. */
  #attempting: Session | null = null;
  #everOnline = false;
  #stopped = false;
  #running = false;
  #backoffMs: number;
  #started?: Promise<void>;
  #startSettle?: { resolve: () => void; reject: (err: Error) => void };
  #sleepTimer?: NodeJS.Timeout;
  #sleepWake?: () => void;
  #stopping?: Promise<void>;

  constructor(opts: ConnectionOptions) {
    super();
    this.#server = opts.server;
    this.#domain = opts.domain;
    this.#secret = opts.secret;
    this.#log = opts.logger;
    this.#initialBackoffMs = opts.initialBackoffMs ?? 1000;
    this.#maxBackoffMs = opts.maxBackoffMs ?? 30000;
    this.#pingIntervalMs = opts.pingIntervalMs ?? 60000;
    this.#pingTimeoutMs = opts.pingTimeoutMs ?? 20000;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10000;
    this.#maxStanzaBytes = opts.maxStanzaBytes ?? 500 * 1024;
    this.#standby = opts.standby ?? false;
    this.#standbyRetryMs = opts.standbyRetryMs ?? 1000;
    this.#backoffMs = this.#initialBackoffMs;
    const parent = opts.domain.split('.').slice(1).join('.');
    const pingTo = opts.pingTo ?? parent;
    if (!pingTo) {
      // Pinging our own domain would route the ping back to us.
      throw new TypeError(`Cannot derive the server to ping from component domain "${opts.domain}": set pingTo`);
    }
    this.#pingTo = pingTo;
  }

  get online(): boolean {
    return this.#session !== null;
  }

  /** With `standby`: the server refused us because another instance holds the component. */
  get standingBy(): boolean {
    return this.#standingBy && this.#session === null && !this.#stopped;
  }

  /**
   * Registers a handler for every incoming message, presence and iq get/set (after 'online').
   * Handlers survive reconnects; a handler's rejection is logged. Nothing here answers an iq:
   * the router must. Replies to our requests go to request(); other iq results/errors are dropped.
   */
  onStanza(fn: StanzaHandler): void {
    this.#handlers.push(fn);
  }

  /**
   * Resolves at the first 'online'. Rejects with FatalConnectionError when the server refuses
   * the first connection with not-authorized, host-unknown or conflict (conflict: unless
   * `standby`); other failures are logged and retried with backoff while start() keeps waiting.
   */
  start(): Promise<void> {
    if (!this.#started) {
      this.#started = new Promise<void>((resolve, reject) => {
        this.#startSettle = { resolve, reject };
      });
      if (this.#stopped) {
        this.#settleStart(new Error('The connection was stopped before it was started'));
      } else {
        void this.#run();
      }
    }
    return this.#started;
  }

  /** Sends a stanza; throws NotConnectedError when offline (the caller's outbox retries). */
  async send(el: Element): Promise<void> {
    const session = this.#session;
    if (!session) throw new NotConnectedError(`Not connected to ${this.#server}`);
    this.#checkOutgoing(el);
    this.#gatherWrites(session);
    await session.entity.send(el);
  }

  /**
   * Holds back what is written in this turn of the event loop and writes it in one go at its end:
   * a group commit (store/group-commit.ts) answers dozens of stanzas at once, and one write for
   * them, rather than one each, spares a system call per stanza here and a wake-up per stanza in
   * the server.
   */
  #gatherWrites(session: Session): void {
    const socket = session.entity.socket;
    if (!socket || session.corked) return;
    session.corked = true;
    socket.cork();
    setImmediate(() => {
      session.corked = false;
      socket.uncork();
    });
  }

  /**
   * Sends an iq get/set and resolves with the reply of type result, or rejects with StanzaError
   * (type error), RequestTimeoutError, or NotConnectedError (offline, or lost before the reply).
   * A reply must carry our id AND come from the JID we asked.
   */
  async request(iq: Element, timeoutMs = 30000): Promise<Element> {
    const { type, to } = iq.attrs;
    if (iq.name !== 'iq' || (type !== 'get' && type !== 'set')) {
      throw new TypeError('request() takes an <iq/> of type get or set');
    }
    if (!to) throw new TypeError("request() needs an iq with a 'to'");
    if (!iq.attrs.id) iq.attrs.id = newId();
    const id = iq.attrs.id;
    if (this.#pending.has(id)) throw new TypeError(`A request with id ${id} is already waiting for its reply`);

    const reply = new Promise<Element>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RequestTimeoutError(to, timeoutMs));
      }, timeoutMs);
      this.#pending.set(id, { to, resolve, reject, timer });
    });
    // The reply may be rejected (connection lost) while send() is still pending.
    reply.catch(() => undefined);
    try {
      await this.send(iq);
    } catch (err) {
      const pending = this.#pending.get(id);
      if (pending) {
        clearTimeout(pending.timer);
        this.#pending.delete(id);
      }
      throw err;
    }
    return reply;
  }

  /** Stops reconnecting and closes the stream gracefully. Idempotent. */
  stop(): Promise<void> {
    if (!this.#stopping) this.#stopping = this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#stopped = true;
    this.#wake();
    this.#settleStart(new Error('The connection was stopped before it came online'));
    this.#attempting?.abort?.(new Error('stopped'));
    const session = this.#session;
    if (!session) return;
    this.#goOffline(session, new NotConnectedError('The connection was stopped'));
    try {
      await session.entity.stop();
    } catch {
      // the socket is destroyed below anyway
    }
    this.#discard(session);
    this.#log.info('Disconnected from the XMPP server');
    this.emit('offline');
  }

  /** Connect attempts until one succeeds, a fatal refusal, or stop(). */
  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let attempt = 1; !this.#stopped; attempt++) {
        // Standing by, an attempt a second is routine: only the change of state is worth a line.
        this.#log[this.#standingBy ? 'debug' : 'info']({ server: this.#server, domain: this.#domain, attempt }, 'Connecting to the XMPP server');
        try {
          await this.#attempt();
          return;
        } catch (err) {
          if (this.#stopped) return;
          const fatal = fatalOf(err, this.#domain);
          if (fatal?.condition === 'conflict' && this.#standby) {
            this.#standBy(fatal);
            await this.#sleep(this.#standbyRetryMs);
            continue;
          }
          // On the first connect, every refusal is fatal. Later, conflict is retried: the
          // server may still hold our previous stream (it notices a dead TCP link late).
          if (fatal && !(fatal.condition === 'conflict' && this.#everOnline)) {
            this.#fail(fatal);
            return;
          }
          const delayMs = this.#nextDelay();
          this.#log.warn(
            { server: this.#server, attempt, delayMs, err: describe(err) },
            `Could not connect to the XMPP server (${describe(err)}); next attempt in ${delayMs} ms`,
          );
          await this.#sleep(delayMs);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /** One attempt with a fresh entity; resolves once online (the session is then current). */
  #attempt(): Promise<void> {
    const entity = component({ service: this.#server, domain: this.#domain, password: this.#secret });
    // See the header: no library reconnect, no middleware (iqCallee/iqCaller listen on 'element').
    entity.reconnect.stop();
    entity.removeAllListeners('element');
    entity.timeout = this.#connectTimeoutMs;
    const session: Session = { entity, online: false, pinging: false };
    this.#attempting = session;
    this.#instrument(session);

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const done = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        entity.removeListener('online', onOnline);
        entity.removeListener('error', done);
        entity.removeListener('disconnect', onDisconnect);
        if (this.#attempting === session) this.#attempting = null;
        if (err !== undefined || this.#stopped) {
          this.#discard(session);
          reject(err ?? new Error('stopped'));
          return;
        }
        // Synchronously, so that no stanza of the new stream can slip in before we route it.
        this.#goOnline(session);
        resolve();
      };
      session.abort = done;
      const onOnline = (): void => done();
      const onDisconnect = (): void => done(session.lastError ?? new Error('The server closed the connection'));
      const timer = setTimeout(
        () => done(new Error(`No answer from ${this.#server} within ${this.#connectTimeoutMs} ms`)),
        this.#connectTimeoutMs,
      );
      entity.on('online', onOnline);
      entity.on('error', done);
      entity.on('disconnect', onDisconnect);
      entity
        .connect(this.#server)
        .then(() => entity.open({ domain: this.#domain }))
        .catch((err: unknown) => done(err ?? new Error('connect failed')));
    });
  }

  /** Listeners every entity keeps until it is discarded: error sink, stanza log and routing. */
  #instrument(session: Session): void {
    const { entity } = session;
    entity.on('error', (err: unknown) => {
      session.lastError = err;
      this.#log.debug({ err: describe(err) }, 'XMPP connection error');
    });
    entity.on('element', (el: Element) => {
      if (this.#log.isLevelEnabled('debug')) {
        this.#log.debug({ stanza: sanitizeStanza(el, [this.#secret]) }, 'XMPP in');
      }
      if (session.online && this.#session === session) this.#route(el);
    });
    entity.on('send', (el: Element) => {
      if (this.#log.isLevelEnabled('debug')) {
        this.#log.debug({ stanza: sanitizeStanza(el, [this.#secret]) }, 'XMPP out');
      }
    });
  }

  #goOnline(session: Session): void {
    const { entity } = session;
    session.online = true;
    this.#session = session;
    this.#everOnline = true;
    this.#backoffMs = this.#initialBackoffMs;
    if (this.#standingBy) {
      this.#standingBy = false;
      this.#log.info({ server: this.#server, domain: this.#domain }, `Taking over as ${this.#domain}: the server accepted this instance (standby ends)`);
    }
    entity.on('disconnect', () => this.#lost(session, 'the connection was closed'));
    // The server's </stream:stream> (e.g. on shutdown): xmpp.js 0.13 leaves the socket open.
    entity.on('close', () => this.#lost(session, 'the server closed the stream'));
    entity.on('error', (err: unknown) => this.#lost(session, err));
    session.pingTimer = setInterval(() => void this.#ping(session), this.#pingIntervalMs);
    this.#log.info({ server: this.#server, domain: this.#domain }, 'Connected to the XMPP server');
    this.#settleStart();
    this.emit('online');
  }

  /** The online stream is gone: reconnect, unless the server said something retrying cannot fix. */
  #lost(session: Session, reason: unknown): void {
    if (this.#session !== session) return;
    const cause = session.lastError ?? reason;
    this.#goOffline(session, new NotConnectedError(`The connection to ${this.#server} was lost before the reply`));
    this.#discard(session);
    this.#log.warn({ server: this.#server, reason: describe(cause) }, `Lost the connection to the XMPP server (${describe(cause)})`);
    this.emit('offline');
    if (this.#stopped) return;
    const fatal = fatalOf(cause, this.#domain);
    if (fatal && fatal.condition !== 'conflict') {
      this.#fail(fatal);
      return;
    }
    if (fatal) {
      // Closed with conflict while online: another process replaced this one (see the header).
      const { text } = cause as { text?: unknown };
      this.#fail(new FatalConnectionError('conflict', this.#domain, typeof text === 'string' && text ? text : undefined, replacedExplain(this.#domain)));
      return;
    }
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    const delayMs = this.#nextDelay();
    this.#log.info({ delayMs }, `Reconnecting in ${delayMs} ms`);
    await this.#sleep(delayMs);
    if (!this.#stopped) await this.#run();
  }

  #goOffline(session: Session, reason: Error): void {
    if (this.#session === session) this.#session = null;
    session.online = false;
    clearInterval(session.pingTimer);
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(reason);
      this.#pending.delete(id);
    }
  }

  /** Forgets an entity: only an error sink stays (an unheard 'error' would throw), the socket goes. */
  #discard(session: Session): void {
    const { entity } = session;
    session.online = false;
    clearInterval(session.pingTimer);
    entity.removeAllListeners();
    entity.on('error', () => undefined);
    entity.socket?.destroy();
  }

  /** Another instance holds the component: say so once, then keep retrying quietly. */
  #standBy(refusal: FatalConnectionError): void {
    this.#backoffMs = this.#initialBackoffMs;
    if (this.#standingBy) {
      this.#log.debug('Still standing by');
      return;
    }
    this.#standingBy = true;
    this.#log.info(
      { server: this.#server, domain: this.#domain, retryMs: this.#standbyRetryMs, condition: refusal.condition },
      `Standing by: another instance is connected as ${this.#domain}; retrying every ${this.#standbyRetryMs} ms to take over when it goes`,
    );
    this.emit('standby');
  }

  #fail(fatal: FatalConnectionError): void {
    this.#stopped = true;
    this.#log.error({ condition: fatal.condition, configKey: fatal.configKey }, fatal.message);
    if (this.#startSettle) {
      this.#settleStart(fatal);
    } else {
      this.emit('fatal', fatal);
    }
  }

  #settleStart(err?: Error): void {
    const settle = this.#startSettle;
    if (!settle) return;
    this.#startSettle = undefined;
    if (err) settle.reject(err);
    else settle.resolve();
  }

  #route(el: Element): void {
    if (this.#stopped) return;
    if (el.name === 'iq') {
      const { type } = el.attrs;
      if (type === 'result' || type === 'error') {
        this.#onReply(el);
        return;
      }
      if (type !== 'get' && type !== 'set') return;
    } else if (el.name !== 'message' && el.name !== 'presence') {
      return;
    }
    for (const handler of this.#handlers) {
      try {
        const result = handler(el);
        if (result) result.catch((err: unknown) => this.#handlerFailed(el, err));
      } catch (err) {
        this.#handlerFailed(el, err);
      }
    }
  }

  #handlerFailed(el: Element, err: unknown): void {
    this.#log.error({ err, stanza: sanitizeStanza(el, [this.#secret]) }, 'A stanza handler failed');
  }

  #onReply(el: Element): void {
    const { id, from } = el.attrs;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending || id === undefined) {
      this.#log.debug({ id, from }, 'Ignoring an iq reply that answers no request of ours');
      return;
    }
    if (!sameJid(from, pending.to)) {
      this.#log.warn({ id, from, expected: pending.to }, 'Ignoring an iq reply from the wrong sender');
      return;
    }
    clearTimeout(pending.timer);
    this.#pending.delete(id);
    if (el.attrs.type === 'result') pending.resolve(el);
    else pending.reject(StanzaError.fromStanza(el));
  }

  /** XEP-0199: any reply, result or error, proves the link is alive. */
  async #ping(session: Session): Promise<void> {
    if (session.pinging || this.#session !== session) return;
    session.pinging = true;
    try {
      await this.request(xml('iq', { type: 'get', to: this.#pingTo }, xml('ping', { xmlns: NS_PING })), this.#pingTimeoutMs);
    } catch (err) {
      if (err instanceof RequestTimeoutError) {
        this.#log.warn({ to: this.#pingTo, timeoutMs: this.#pingTimeoutMs }, 'No answer to a ping: dropping the connection');
        this.#lost(session, new Error(`no answer to a ping within ${this.#pingTimeoutMs} ms`));
      }
      // StanzaError: the server answered. NotConnectedError: already lost.
    } finally {
      session.pinging = false;
    }
  }

  /** Refuses what Prosody would answer by closing the whole stream. */
  #checkOutgoing(el: Element): void {
    const { from } = el.attrs;
    if (from !== undefined && domainOf(from) !== this.#domain.toLowerCase()) {
      throw new StanzaRejectedError(`Refusing to send a stanza from ${from}: outside ${this.#domain} (invalid-from)`);
    }
    const serialized = el.toString();
    // The last line of defence of the one rule for text (src/domain/text.ts).
    try {
      checkCharacters(el, serialized);
    } catch (err) {
      const character = (err as ForbiddenCharacterError).character;
      this.#log.error({ stanza: el.name, type: el.attrs.type, to: el.attrs.to, id: el.attrs.id, character }, 'Refusing to send a stanza holding a character XML does not allow');
      throw err;
    }
    const bytes = Buffer.byteLength(serialized);
    if (bytes > this.#maxStanzaBytes) {
      throw new StanzaRejectedError(`Refusing to send a ${bytes}-byte stanza (limit ${this.#maxStanzaBytes})`);
    }
  }

  #nextDelay(): number {
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#maxBackoffMs);
    return delay;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#sleepWake = resolve;
      this.#sleepTimer = setTimeout(resolve, ms);
    });
  }

  #wake(): void {
    clearTimeout(this.#sleepTimer);
    this.#sleepWake?.();
    this.#sleepWake = undefined;
  }
}

function newId(): string {
  return secureRandomBytes(9).toString('base64url');
}

function domainOf(address: string): string | undefined {
  try {
    return jid(address).domain;
  } catch {
    return undefined;
  }
}

function sameJid(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  try {
    return jid(a).equals(jid(b));
  } catch {
    return a === b;
  }
}

function isFatalCondition(condition: unknown): condition is FatalCondition {
  return condition === 'not-authorized' || condition === 'host-unknown' || condition === 'conflict';
}

/** A <stream:error/> (xmpp.js StreamError) whose condition an operator must fix. */
function fatalOf(err: unknown, domain: string): FatalConnectionError | undefined {
  if (!(err instanceof Error) || err.name !== 'StreamError') return undefined;
  const { condition, text } = err as Error & { condition?: unknown; text?: unknown };
  if (!isFatalCondition(condition)) return undefined;
  return new FatalConnectionError(condition, domain, typeof text === 'string' && text ? text : undefined);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return err.message + (typeof code === 'string' && !err.message.includes(code) ? ` (${code})` : '');
  }
  return String(err);
}
