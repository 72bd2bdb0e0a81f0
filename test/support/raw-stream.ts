/**
 * A tiny raw XMPP client stream over node:net, for what @xmpp/client cannot do: staying
 * unauthenticated to register at the server (XEP-0445 preauth, then XEP-0077 jabber:iq:register),
 * as Conversations does when it follows `xmpp:example.com?register;preauth=T`.
 *
 * Plaintext only (the test Prosody allows it). Parses with @xmpp/xml's stream parser (ltx).
 */
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { xml, Element } from '../../src/xmpp/xml';

export const NS_PARS = 'urn:xmpp:pars:0';
export const NS_REGISTER = 'jabber:iq:register';
export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const NS_STREAM = 'http://etherx.jabber.org/streams';

// @xmpp/xml's Parser is not in the project's typings (src/xmpp/xmpp.d.ts): describe what we use.
interface StreamParser {
  on(event: 'start' | 'element' | 'end', listener: (el: Element) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  write(data: string): void;
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { Parser } = require('@xmpp/xml') as { Parser: new () => StreamParser };

const DEFAULT_TIMEOUT = 10_000;

export interface StanzaError {
  type: string | undefined;
  condition: string | undefined;
  text: string | undefined;
}

/** The error of a stanza of type error, or null. */
export function stanzaError(stanza: Element): StanzaError | null {
  if (stanza.attrs.type !== 'error') return null;
  const err = stanza.getChild('error');
  if (!err) return { type: undefined, condition: undefined, text: undefined };
  const condition = err.getChildElements().find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== 'text')?.name;
  return { type: err.attrs.type, condition, text: err.getChildText('text', NS_STANZAS) ?? undefined };
}

interface Waiter {
  pred: (el: Element) => boolean;
  resolve: (el: Element) => void;
  reject: (err: Error) => void;
}

export class RawStream {
  /** The <stream:features/> of the opened stream. */
  features!: Element;
  /** Every top-level element received, in order. */
  readonly received: Element[] = [];
  private waiters: Waiter[] = [];
  private closed = false;
  private closedError: Error | null = null;

  private constructor(
    private readonly socket: net.Socket,
    readonly domain: string,
  ) {}

  /** Connects to 127.0.0.1:port, opens a stream to `domain` and reads its features. */
  static async open(port: number, domain = 'localhost', timeoutMs = DEFAULT_TIMEOUT): Promise<RawStream> {
    const socket = net.connect({ host: '127.0.0.1', port });
    const s = new RawStream(socket, domain);
    const parser = new Parser();
    parser.on('element', (el) => s.onElement(el));
    parser.on('end', () => s.onClosed(new Error('the server closed the stream')));
    parser.on('error', (err) => s.onClosed(err));
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => parser.write(data));
    socket.on('error', (err) => s.onClosed(err));
    socket.on('close', () => s.onClosed(new Error('the connection closed')));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    s.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' ` +
        `to='${xml.escapeXML(domain)}' version='1.0'>`,
    );
    s.features = await s.waitFor((el) => el.name === 'stream:features' || el.name === 'features', timeoutMs);
    return s;
  }

  /** Does the stream advertise feature `name` in `xmlns`? */
  hasFeature(name: string, xmlns: string): boolean {
    return this.features.getChildren(name).some((c) => c.attrs.xmlns === xmlns);
  }

  /** Sends an element. */
  send(el: Element): void {
    this.write(el.toString());
  }

  /** Sends an iq get/set (an id is added when missing) and resolves with its reply, result or error. */
  iq(el: Element, timeoutMs = DEFAULT_TIMEOUT): Promise<Element> {
    if (!el.attrs.id) el.attrs.id = 'raw-' + randomBytes(6).toString('hex');
    const id = el.attrs.id;
    const reply = this.waitFor(
      (s) => s.name === 'iq' && s.attrs.id === id && (s.attrs.type === 'result' || s.attrs.type === 'error'),
      timeoutMs,
    );
    this.send(el);
    return reply;
  }

  /** XEP-0445: presents a token. Resolves with the reply. */
  preauth(token: string, timeoutMs?: number): Promise<Element> {
    return this.iq(xml('iq', { type: 'set', to: this.domain }, xml('preauth', { xmlns: NS_PARS, token })), timeoutMs);
  }

  /** XEP-0077 registration form request. */
  registrationForm(timeoutMs?: number): Promise<Element> {
    return this.iq(xml('iq', { type: 'get', to: this.domain }, xml('query', { xmlns: NS_REGISTER })), timeoutMs);
  }

  /**
   * XEP-0077 registration. With `formToken`, sends a XEP-0004 form (FORM_TYPE jabber:iq:register)
   * carrying username, password and a `token` field instead of the legacy elements.
   */
  register(username: string, password: string, opts: { formToken?: string; timeoutMs?: number } = {}): Promise<Element> {
    let query: Element;
    if (opts.formToken !== undefined) {
      const field = (v: string, value: string, type?: string) => xml('field', { var: v, type }, xml('value', {}, value));
      query = xml(
        'query',
        { xmlns: NS_REGISTER },
        xml(
          'x',
          { xmlns: 'jabber:x:data', type: 'submit' },
          field('FORM_TYPE', NS_REGISTER, 'hidden'),
          field('username', username),
          field('password', password),
          field('token', opts.formToken),
        ),
      );
    } else {
      query = xml('query', { xmlns: NS_REGISTER }, xml('username', {}, username), xml('password', {}, password));
    }
    return this.iq(xml('iq', { type: 'set', to: this.domain }, query), opts.timeoutMs);
  }

  /** The next received element matching `pred` (earlier unconsumed ones first). */
  waitFor(pred: (el: Element) => boolean, timeoutMs = DEFAULT_TIMEOUT): Promise<Element> {
    const i = this.received.findIndex((el) => safe(pred, el));
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]);
    if (this.closed) return Promise.reject(this.closedError ?? new Error('stream closed'));
    return new Promise<Element>((resolve, reject) => {
      const waiter: Waiter = {
        pred,
        resolve: (el) => {
          clearTimeout(timer);
          resolve(el);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`RawStream: nothing matched within ${timeoutMs} ms; received: ${this.received.join(' ')}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Closes the stream and the socket. */
  async close(): Promise<void> {
    if (!this.closed) {
      try {
        this.write('</stream:stream>');
      } catch {
        /* already gone */
      }
    }
    this.socket.end();
    this.socket.destroy();
    this.closed = true;
  }

  private write(data: string): void {
    if (this.closed) throw this.closedError ?? new Error('RawStream: closed');
    this.socket.write(data);
  }

  private onElement(el: Element): void {
    for (const w of this.waiters) {
      if (safe(w.pred, el)) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(el);
        return;
      }
    }
    this.received.push(el);
  }

  private onClosed(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closedError = err;
    this.socket.destroy();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }
}

function safe(pred: (el: Element) => boolean, el: Element): boolean {
  try {
    return pred(el);
  } catch {
    return false;
  }
}
