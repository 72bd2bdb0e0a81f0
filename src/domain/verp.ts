/**
 * VERP (variable envelope return path): each e-mail leaves with its own envelope sender,
 * `bounces+{outbox id}-{mac}@example.com` under `mail.bounce_address`, so that a bounce names the
 * message it is about whatever the remote server wrote in it. The MAC (tokens.ts, under
 * `token_key`) makes a forged bounce for another row detectable: it is ignored.
 *
 * References: https://cr.yp.to/proto/verp.txt
 */
import type { TokenCodec } from './tokens';

export type VerpMatch = { kind: 'ours'; outboxId: number } | { kind: 'forged'; outboxId: number | null } | { kind: 'other' };

export class Verp {
  readonly #local: string;
  readonly #domain: string;

  constructor(
    bounceAddress: string,
    private readonly tokens: TokenCodec,
  ) {
    const at = bounceAddress.lastIndexOf('@');
    this.#local = bounceAddress.slice(0, at);
    this.#domain = bounceAddress.slice(at + 1).toLowerCase();
  }

  /** The envelope sender of the outbox row `outboxId`. */
  address(outboxId: number): string {
    return `${this.#local}+${outboxId}-${this.tokens.bounceMac(outboxId)}@${this.#domain}`;
  }

  /**
   * What an address a bounce came to says: one of ours (the row it names), an address under the
   * bounce address whose MAC does not check (forged, or mangled on the way), or something else.
   */
  match(address: string): VerpMatch {
    const text = address.trim().replace(/^<(.*)>$/, '$1');
    const at = text.lastIndexOf('@');
    if (at < 0 || text.slice(at + 1).toLowerCase() !== this.#domain) return { kind: 'other' };
    const local = text.slice(0, at);
    const prefix = `${this.#local}+`;
    // Local parts are compared case-insensitively: some servers fold them on the way back.
    if (local.slice(0, prefix.length).toLowerCase() !== prefix.toLowerCase()) return { kind: 'other' };
    const m = /^(\d{1,15})-([0-9a-fA-F]{20})$/.exec(local.slice(prefix.length));
    if (!m) return { kind: 'forged', outboxId: null };
    const outboxId = Number(m[1]);
    return this.tokens.verifyBounceMac(outboxId, m[2]) ? { kind: 'ours', outboxId } : { kind: 'forged', outboxId };
  }
}
