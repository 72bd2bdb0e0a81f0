/**
 * Routes incoming stanzas like HTTP: IQ get/set by (type, child name, namespace) to a handler that
 * returns its reply; presence and messages to ordered handlers. A handler returns an Element (the
 * result's payload) or `true` (an empty result); expected failures are thrown as StanzaFailure or
 * InviteError and answered with the matching `<error/>`; anything else is logged and answered with
 * internal-server-error. Every stanza's context carries its requester (who is asking: local? admin?),
 * worked out once here, and a child logger that carries its id and sender.
 *
 * References: RFC 6120 §8.2.3 (IQ semantics), §8.3 (stanza errors).
 */
import type { Logger } from 'pino';
import { StanzaRejectedError } from './outgoing';
import { isDatabaseBusy } from '../errors';
import { errorElement, errorFor } from './stanza-errors';
import { sanitizeStanza } from './sanitize';
import { requesterOf, type Requester, type RequesterRules } from './requester';
import { xml, type Element } from './xml';

export interface StanzaContext {
  stanza: Element;
  /** full JID of the sender, as the server stamped it: where answers go */
  from: string;
  /** who is asking (from `from`, with the configured host and admins) */
  requester: Requester;
  to: string;
  logger: Logger;
}

export interface RouterOptions extends RequesterRules {
  /** writes a stanza to the server */
  send: (el: Element) => Promise<void>;
  logger: Logger;
  /** configured secrets, masked in the stanzas a failed handler logs */
  secrets?: readonly string[];
}

export type IqHandler = (ctx: StanzaContext, payload: Element) => Promise<Element | true> | Element | true;
export type StanzaHandler = (ctx: StanzaContext) => Promise<boolean | void> | boolean | void;

export class Router {
  readonly #iq = new Map<string, IqHandler>();
  readonly #presence: StanzaHandler[] = [];
  readonly #message: StanzaHandler[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #seq = 0;
  private readonly send: (el: Element) => Promise<void>;
  private readonly logger: Logger;
  private readonly secrets: readonly string[];
  readonly #rules: RequesterRules;

  constructor(opts: RouterOptions) {
    this.send = opts.send;
    this.logger = opts.logger;
    this.secrets = opts.secrets ?? [];
    this.#rules = { host: opts.host, admins: opts.admins };
  }

  iq(type: 'get' | 'set', name: string, ns: string, handler: IqHandler): this {
    this.#iq.set(`${type} ${name} ${ns}`, handler);
    return this;
  }

  /** Presence handlers run in order until one returns true. */
  presence(handler: StanzaHandler): this {
    this.#presence.push(handler);
    return this;
  }

  message(handler: StanzaHandler): this {
    this.#message.push(handler);
    return this;
  }

  /** Handles one stanza; the returned promise settles when its reply is sent. Never rejects. */
  handle(stanza: Element): Promise<void> {
    const work = this.#dispatch(stanza).catch((err: unknown) => {
      this.logger.error({ err }, 'stanza handling failed');
    });
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
    return work;
  }

  /** Resolves when every stanza being handled has been answered (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  get busy(): number {
    return this.#inFlight.size;
  }

  async #dispatch(stanza: Element): Promise<void> {
    const from = stanza.attrs.from ?? '';
    const seq = ++this.#seq;
    const root = this.logger;
    let logger: Logger | undefined;
    const ctx: StanzaContext = {
      stanza,
      from,
      requester: requesterOf(from, this.#rules),
      to: stanza.attrs.to ?? '',
      // The per-stanza child logger is made only when a handler logs: most stanzas never do.
      get logger() {
        return (logger ??= root.child({ stanza: seq, kind: stanza.name, from, id: stanza.attrs.id }));
      },
    };
    if (stanza.name === 'iq') return this.#dispatchIq(ctx);
    const handlers = stanza.name === 'presence' ? this.#presence : stanza.name === 'message' ? this.#message : [];
    for (const handler of handlers) {
      if ((await handler(ctx)) === true) return;
    }
  }

  async #dispatchIq(ctx: StanzaContext): Promise<void> {
    const { stanza } = ctx;
    const type = stanza.attrs.type;
    // RFC 6120 §8.2.3: results and errors are never answered.
    if (type !== 'get' && type !== 'set') return;
    const payloads = stanza.children.filter((c): c is Element => typeof c !== 'string');
    if (payloads.length !== 1) {
      // "An IQ stanza of type get or set MUST contain exactly one child element"
      return this.#reply(ctx, errorElement('bad-request', { text: 'An IQ get or set carries exactly one child element' }));
    }
    const payload = payloads[0];
    const handler = this.#iq.get(`${type} ${payload.name} ${payload.attrs.xmlns}`);
    if (!handler) {
      return this.#reply(ctx, errorElement('service-unavailable'));
    }
    let reply: Element;
    try {
      const result = await handler(ctx, payload);
      reply = xml('iq', { type: 'result', to: ctx.from, from: ctx.to, id: stanza.attrs.id }, result === true ? null : result);
    } catch (err) {
      const error = errorFor(err);
      if (!error) {
        ctx.logger.error({ err, stanza: sanitizeStanza(stanza, this.secrets) }, 'handler failed');
      } else if (isDatabaseBusy(err)) {
        ctx.logger.warn({ err: (err as Error).message }, 'the database is locked by another process: answered "try again"');
      }
      return this.#reply(ctx, error ?? errorElement('internal-server-error'));
    }
    try {
      await this.send(reply);
    } catch (err) {
      // The connection would not write the answer (e.g. it holds a character XML forbids, from
      // text stored before the rule for text existed): the requester still gets an answer.
      if (!(err instanceof StanzaRejectedError)) throw err;
      return this.#reply(ctx, errorElement('internal-server-error', { text: 'The answer could not be sent' }));
    }
  }

  async #reply(ctx: StanzaContext, error: Element): Promise<void> {
    const { stanza } = ctx;
    await this.send(
      xml('iq', { type: 'error', to: ctx.from, from: ctx.to, id: stanza.attrs.id }, error),
    );
  }
}
