/**
 * Per-client rate limit on POSTs: a token bucket per key, which the web server makes the client's
 * address (an IPv6 client by its /64: client-ip.ts `addressKey`). A client may burst `capacity`
 * requests, then one more every `refillMs`. Memory is bounded: past `maxKeys` clients, full
 * buckets (clients quiet long enough) are forgotten first, then the oldest.
 */

export interface RateLimitOptions {
  capacity: number;
  refillMs: number;
  maxKeys?: number;
}

/** Ten POSTs at once, then one every 30 s: plenty for a person, little for a script. */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { capacity: 10, refillMs: 30_000, maxKeys: 10_000 };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();

  constructor(
    private readonly opts: RateLimitOptions = DEFAULT_RATE_LIMIT,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Takes one request from `key`'s bucket: ok, or how many seconds until the next is allowed. */
  take(key: string): { ok: true } | { ok: false; retryAfterS: number } {
    const now = this.clock();
    const bucket = this.#refill(this.#buckets.get(key), now);
    this.#buckets.delete(key); // re-inserted last: the Map keeps recently seen clients at the end
    if (bucket.tokens >= 1) {
      this.#buckets.set(key, { tokens: bucket.tokens - 1, at: bucket.at });
      this.#prune(now);
      return { ok: true };
    }
    this.#buckets.set(key, bucket);
    const waitMs = (1 - bucket.tokens) * this.opts.refillMs;
    return { ok: false, retryAfterS: Math.max(1, Math.ceil(Math.round(waitMs) / 1000)) };
  }

  #refill(bucket: Bucket | undefined, now: number): Bucket {
    if (!bucket) return { tokens: this.opts.capacity, at: now };
    const tokens = Math.min(this.opts.capacity, bucket.tokens + (now - bucket.at) / this.opts.refillMs);
    return { tokens, at: now };
  }

  #prune(now: number): void {
    const max = this.opts.maxKeys ?? DEFAULT_RATE_LIMIT.maxKeys!;
    if (this.#buckets.size <= max) return;
    for (const [key, bucket] of this.#buckets) {
      if (this.#refill(bucket, now).tokens >= this.opts.capacity) this.#buckets.delete(key);
    }
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= max) break;
      this.#buckets.delete(key);
    }
  }
}
