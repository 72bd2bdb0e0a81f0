/**
 * A real XMPP client session for integration tests, on @xmpp/client 0.13.1 (CommonJS).
 *
 * Logs in with PLAIN (the test Prosody disables SCRAM-SHA-1, which @xmpp/client 0.13 gets wrong)
 * or with SASL ANONYMOUS when `anonymous: true` (against an anonymous VirtualHost). No automatic
 * reconnect. Incoming IQ get/set that nobody handles get `service-unavailable` from the library.
 */
import { randomBytes } from 'node:crypto';
import { xml, Element } from '../../src/xmpp/xml';

/** Elements are the project's ltx `Element` (src/xmpp/xml.ts); @xmpp/client shares the same ltx. */
export type XmlElement = Element;
export { xml };

/** Anything we can send: an ltx element. */
export type Stanza = { name: string; attrs: Record<string, any>; toString(): string };

// @xmpp/client 0.13.1 is CommonJS without types (a dev dependency: only tests use it).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const xmppClient = require('@xmpp/client') as { client: (opts: Record<string, unknown>) => any };

export interface TestClientOptions {
  /** c2s port on 127.0.0.1. */
  port: number;
  /** The XMPP domain (e.g. 'localhost', or 'anon.localhost' with anonymous). */
  domain: string;
  username?: string;
  password?: string;
  resource?: string;
  /** SASL ANONYMOUS (no credentials). */
  anonymous?: boolean;
  /** Send initial presence after login (default true), so messages to the bare JID reach this session. */
  presence?: boolean;
  /** Login timeout (default 10 s). */
  timeoutMs?: number;
}

interface PendingIq {
  id: string;
  to: string | undefined;
  resolve: (el: XmlElement) => void;
}

interface Waiter {
  pred: (s: XmlElement) => boolean;
  resolve: (el: XmlElement) => void;
}

const DEFAULT_TIMEOUT = 10_000;

function bare(jid: string): string {
  const i = jid.indexOf('/');
  return (i < 0 ? jid : jid.slice(0, i)).toLowerCase();
}

export class TestClient {
  /** Full JID after resource binding. */
  readonly jid: string;
  /** Every stanza received (message, presence, iq), in order, consumed or not. */
  readonly received: XmlElement[] = [];
  /** Errors the library emitted (stream errors, socket errors), for debugging. */
  readonly errors: Error[] = [];

  private readonly xmpp: any;
  private readonly consumed = new WeakSet<XmlElement>();
  private readonly pendingIqs = new Map<string, PendingIq>();
  private waiters: Waiter[] = [];
  private readonly taps: ((s: XmlElement) => void)[] = [];
  private stopped = false;

  private constructor(xmpp: any, jid: string) {
    this.xmpp = xmpp;
    this.jid = jid;
  }

  static async connect(opts: TestClientOptions): Promise<TestClient> {
    const params: Record<string, unknown> = {
      service: `xmpp://127.0.0.1:${opts.port}`,
      domain: opts.domain,
      resource: opts.resource,
    };
    if (!opts.anonymous) {
      if (!opts.username || opts.password === undefined) {
        throw new Error('TestClient.connect: username and password are required unless anonymous');
      }
      params.username = opts.username;
      params.password = opts.password;
    }
    const xmpp = xmppClient.client(params);
    xmpp.reconnect.stop();

    // Buffer stanzas from the moment the stream opens; the instance is attached after login.
    const early: XmlElement[] = [];
    let instance: TestClient | null = null;
    const errors: Error[] = [];
    xmpp.on('error', (err: Error) => {
      errors.push(err);
      instance?.errors.push(err);
    });
    xmpp.on('stanza', (s: XmlElement) => {
      if (instance) instance.onStanza(s);
      else if (!(s.name === 'iq' && (s.attrs.type === 'result' || s.attrs.type === 'error'))) early.push(s);
    });

    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT;
    let timer: NodeJS.Timeout | undefined;
    let address: { toString(): string };
    try {
      address = await Promise.race([
        xmpp.start() as Promise<{ toString(): string }>,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `TestClient.connect timed out after ${timeoutMs} ms` +
                    (errors.length ? `: ${errors.map((e) => e.message).join('; ')}` : ''),
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
    } catch (err) {
      await forceStop(xmpp);
      const e = err as Error & { condition?: string };
      throw new Error(
        `TestClient.connect ${opts.anonymous ? '(anonymous)' : opts.username}@${opts.domain}:${opts.port} failed: ` +
          `${e.condition ?? ''} ${e.message}`.trim(),
      );
    } finally {
      clearTimeout(timer);
    }

    const c = new TestClient(xmpp, address.toString());
    instance = c;
    c.errors.push(...errors);
    for (const s of early) c.onStanza(s);
    if (opts.presence ?? true) await c.send(xml('presence'));
    return c;
  }

  /** The bare JID. */
  get bareJid(): string {
    return bare(this.jid);
  }

  /**
   * Sends an iq get/set and resolves with the whole reply stanza, result or error (it does not
   * throw on type=error). Rejects only on timeout or when the connection is gone.
   */
  iq(el: Stanza, timeoutMs = DEFAULT_TIMEOUT): Promise<XmlElement> {
    if (el.name !== 'iq') throw new Error('TestClient.iq: not an iq');
    if (!el.attrs.id) el.attrs.id = 'test-' + randomBytes(6).toString('hex');
    const id = String(el.attrs.id);
    const to = el.attrs.to ? String(el.attrs.to) : undefined;
    return new Promise<XmlElement>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingIqs.delete(id);
        reject(new Error(`TestClient.iq: no reply to ${id} (to ${to ?? 'own server'}) within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pendingIqs.set(id, {
        id,
        to,
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
      });
      this.send(el).catch((err) => {
        clearTimeout(timer);
        this.pendingIqs.delete(id);
        reject(err);
      });
    });
  }

  /** Sends any stanza. */
  async send(el: Stanza): Promise<void> {
    if (this.stopped) throw new Error('TestClient.send after stop()');
    await this.xmpp.send(el);
  }

  /**
   * Writes text to the stream as it is, bypassing the XML library: for what it cannot build
   * (numeric character references, characters XML forbids, malformed markup). The server may
   * answer by closing the stream.
   */
  sendRaw(text: string | Buffer): void {
    if (this.stopped) throw new Error('TestClient.sendRaw after stop()');
    this.xmpp.socket.write(text);
  }

  /** Whether the stream is still up (the server has not closed it). */
  get connected(): boolean {
    return !this.stopped && this.xmpp.status === 'online';
  }

  /**
   * The next received stanza matching `pred` that no earlier waitFor consumed (already received
   * ones are checked first, oldest first). Rejects after the timeout.
   */
  waitFor(pred: (s: XmlElement) => boolean, timeoutMs = DEFAULT_TIMEOUT): Promise<XmlElement> {
    for (const s of this.received) {
      if (!this.consumed.has(s) && safe(pred, s)) {
        this.consumed.add(s);
        return Promise.resolve(s);
      }
    }
    return new Promise<XmlElement>((resolve, reject) => {
      const waiter: Waiter = {
        pred,
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `TestClient.waitFor (${this.jid}): nothing matched within ${timeoutMs} ms; unconsumed:\n` +
              this.unconsumed()
                .map((s) => '  ' + s.toString())
                .join('\n'),
          ),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Received stanzas no waitFor consumed yet. */
  unconsumed(): XmlElement[] {
    return this.received.filter((s) => !this.consumed.has(s));
  }

  /** Closes the stream (and the socket, also when the server does not answer). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await forceStop(this.xmpp);
  }

  /** Calls `fn` with every stanza received from now on (before any waitFor sees it). */
  tap(fn: (s: XmlElement) => void): void {
    this.taps.push(fn);
  }

  private onStanza(s: XmlElement): void {
    for (const t of this.taps) t(s);
    if (s.name === 'iq' && (s.attrs.type === 'result' || s.attrs.type === 'error')) {
      const p = this.pendingIqs.get(String(s.attrs.id));
      if (p && this.fromMatches(p.to, s.attrs.from)) {
        this.pendingIqs.delete(p.id);
        this.received.push(s);
        this.consumed.add(s);
        p.resolve(s);
        return;
      }
    }
    this.received.push(s);
    for (const w of this.waiters) {
      if (safe(w.pred, s)) {
        this.waiters = this.waiters.filter((x) => x !== w);
        this.consumed.add(s);
        w.resolve(s);
        return;
      }
    }
  }

  /** A reply must come from where the request went (or, for a request to our own account, from it or nobody). */
  private fromMatches(to: string | undefined, from: string | undefined): boolean {
    if (!to) return !from || bare(from) === this.bareJid || from.toLowerCase() === this.bareJid.split('@')[1];
    if (!from) return to.toLowerCase() === this.bareJid || to.toLowerCase() === this.jid.toLowerCase();
    return from.toLowerCase() === to.toLowerCase();
  }
}

function safe(pred: (s: XmlElement) => boolean, s: XmlElement): boolean {
  try {
    return pred(s);
  } catch {
    return false;
  }
}

async function forceStop(xmpp: any): Promise<void> {
  try {
    xmpp.reconnect?.stop();
  } catch {
    /* not started */
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve(xmpp.stop()).catch(() => undefined),
      new Promise((r) => {
        timer = setTimeout(r, 3000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    try {
      xmpp.socket?.destroy?.();
    } catch {
      /* closed */
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Small protocol helpers

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';
export const NS_DATA = 'jabber:x:data';
export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** The defined-condition name of an error stanza (e.g. 'forbidden'), or undefined. */
export function errorCondition(stanza: XmlElement): string | undefined {
  const err = stanza.getChild('error');
  return err?.getChildElements().find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== 'text')?.name;
}

/** The error text of an error stanza, if any. */
export function errorText(stanza: XmlElement): string | undefined {
  return stanza.getChild('error')?.getChildText('text', NS_STANZAS) ?? undefined;
}

export interface AdhocOptions {
  /** execute (default when absent), next, prev, complete, cancel */
  action?: 'execute' | 'next' | 'prev' | 'complete' | 'cancel';
  sessionid?: string;
  /** Submitted form fields (type='submit'); arrays become several <value/>s. */
  fields?: Record<string, string | string[] | boolean>;
  /** A whole submitted form, as a client built it (instead of `fields`). */
  form?: XmlElement;
  timeoutMs?: number;
}

/** Sends one XEP-0050 request; resolves with the whole reply iq (result or error). */
export function adhoc(client: TestClient, to: string, node: string, opts: AdhocOptions = {}): Promise<XmlElement> {
  const attrs: Record<string, string> = { xmlns: NS_COMMANDS, node };
  if (opts.action) attrs.action = opts.action;
  if (opts.sessionid) attrs.sessionid = opts.sessionid;
  const children: XmlElement[] = [];
  if (opts.fields) {
    const form = xml('x', { xmlns: NS_DATA, type: 'submit' });
    for (const [v, value] of Object.entries(opts.fields)) {
      const values = Array.isArray(value) ? value : [typeof value === 'boolean' ? (value ? '1' : '0') : value];
      form.append(xml('field', { var: v }, ...values.map((x) => xml('value', {}, x))));
    }
    children.push(form);
  }
  if (opts.form) children.push(opts.form);
  return client.iq(xml('iq', { type: 'set', to }, xml('command', attrs, ...children)), opts.timeoutMs);
}

/** The `<command/>` of an ad-hoc reply. */
export function commandOf(reply: XmlElement): XmlElement | undefined {
  return reply.getChild('command', NS_COMMANDS);
}

/** Fields of a data form (the command's form when given a reply iq or a command): var → values. */
export function formFields(el: XmlElement): Record<string, string[]> {
  let form: XmlElement | undefined = el.is('x', NS_DATA) ? el : el.getChild('x', NS_DATA);
  if (!form) form = commandOf(el)?.getChild('x', NS_DATA);
  const out: Record<string, string[]> = {};
  if (!form) return out;
  for (const f of form.getChildren('field')) {
    if (!f.attrs.var) continue;
    out[f.attrs.var] = f.getChildren('value').map((v) => v.getText());
  }
  return out;
}

/** The notes of an ad-hoc reply: { type, text }[]. */
export function commandNotes(reply: XmlElement): { type: string; text: string }[] {
  const cmd = commandOf(reply) ?? reply;
  return cmd.getChildren('note').map((n) => ({ type: n.attrs.type ?? 'info', text: n.getText() }));
}

/** Whether `username` can log in with `password` (a real c2s login, closed at once). */
export async function canLogIn(port: number, username: string, password: string, domain = 'localhost'): Promise<boolean> {
  try {
    const c = await TestClient.connect({ port, domain, username, password, presence: false });
    await c.stop();
    return true;
  } catch {
    return false;
  }
}
