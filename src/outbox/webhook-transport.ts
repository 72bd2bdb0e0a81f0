/**
 * Delivers webhook rows of the outbox: POSTs the stored body to the endpoint's URL, signed with
 * HMAC-SHA-256 under the endpoint's secret (from the configuration, never the database):
 *
 *   X-Xmpp-Invites-Id:        the event id (the same on every attempt; receivers deduplicate by it)
 *   X-Xmpp-Invites-Timestamp: Unix seconds of this attempt
 *   X-Xmpp-Invites-Signature: sha256=HEX of HMAC(secret, timestamp + "." + body)
 *
 * A 2xx answer is delivery; anything else (another status, a redirect, no answer within the
 * timeout) is a temporary failure, retried by the worker with backoff. A row whose URL is no longer
 * configured fails at once: its secret is gone.
 */
import { createHmac } from 'node:crypto';
import type { OutboxRow } from '../store/outbox-repo';
import type { Rendered } from './render';
import { PermanentDeliveryError, type Transport } from './worker';

/** Attempts before a webhook delivery fails for good: with the worker's backoff (30 s doubling, capped at 1 h), about 13 hours. */
export const WEBHOOK_MAX_ATTEMPTS = 20;

export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`;
}

export interface WebhookTransportDeps {
  endpoints: readonly { url: string; secret: string }[];
  /** how long one attempt may take (default 10 s) */
  timeoutMs?: number;
  clock?: () => number;
}

export class WebhookTransport implements Transport {
  readonly #secrets: Map<string, string>;
  readonly #timeoutMs: number;
  readonly #clock: () => number;

  constructor(deps: WebhookTransportDeps) {
    this.#secrets = new Map(deps.endpoints.map((e) => [e.url, e.secret]));
    this.#timeoutMs = deps.timeoutMs ?? 10_000;
    this.#clock = deps.clock ?? Date.now;
  }

  async send(row: OutboxRow, rendered: Rendered): Promise<void> {
    const secret = this.#secrets.get(row.recipient);
    if (secret === undefined) throw new PermanentDeliveryError('no webhook with this URL is configured any more');
    const body = rendered.text;
    const timestamp = String(Math.floor(this.#clock() / 1000));
    let res: Response;
    try {
      res = await fetch(row.recipient, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'xmpp-invites',
          'X-Xmpp-Invites-Id': String(row.params.event),
          'X-Xmpp-Invites-Event': String(row.params.type),
          'X-Xmpp-Invites-Timestamp': timestamp,
          'X-Xmpp-Invites-Signature': webhookSignature(secret, timestamp, body),
        },
        body,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`webhook not reached: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    // The answer's body is not read beyond what arrived: a receiver cannot hold the worker.
    await res.body?.cancel().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new Error(`webhook answered HTTP ${res.status}`);
  }
}
