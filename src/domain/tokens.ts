/**
 * Invite tokens are derived, never stored: the token of an invite is its id followed by an
 * HMAC-SHA-256 of `token_key` over the id and the invite's generation, truncated to 144 bits,
 * all base64url. The database holds the id and the generation, from which nobody without the key
 * can compute the MAC; anyone with the config (the service, the CLI, the outbox after a crash)
 * renders the same token again. Bumping the generation (resend) voids the previous token.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { secureRandomBytes } from './random';

export const ID_LENGTH = 10;
/** 18 bytes = 144 bits, 24 base64url characters */
const MAC_BYTES = 18;
const MAC_LENGTH = 24;
export const TOKEN_LENGTH = ID_LENGTH + MAC_LENGTH;

/**
 * Lower-case letters and digits without look-alikes (0/o, 1/l): ids are read aloud and typed. In
 * byte order, so that an id's time prefix (newInviteId) sorts as time does.
 */
export const ID_ALPHABET = '23456789abcdefghijkmnpqrstuvwxyz';

/**
 * `n` characters of ID_ALPHABET drawn at random: one random byte each, its low five bits an index
 * (32 divides 256: every character is equally likely).
 */
export function randomIdChars(n: number): string {
  const bytes = secureRandomBytes(n);
  let out = '';
  for (let i = 0; i < n; i++) out += ID_ALPHABET[bytes[i] & 31];
  return out;
}
const ID_PATTERN = new RegExp(`^[${ID_ALPHABET}]{${ID_LENGTH}}$`);
const UNSUBSCRIBE_PATTERN = new RegExp(`^([${ID_ALPHABET}]{${ID_LENGTH}})[A-Za-z0-9_-]{22}$`);
const TOKEN_PATTERN = new RegExp(`^([${ID_ALPHABET}]{${ID_LENGTH}})[A-Za-z0-9_-]{${MAC_LENGTH}}$`);

export function isInviteId(text: string): boolean {
  return ID_PATTERN.test(text);
}

export class TokenCodec {
  readonly #key: Buffer;

  constructor(key: string) {
    this.#key = Buffer.from(key, 'utf8');
  }

  render(id: string, generation: number): string {
    return id + this.#mac(id, generation).toString('base64url');
  }

  /** The invite id a token claims to belong to, or undefined when it is not shaped like a token. */
  idOf(token: string): string | undefined {
    const match = TOKEN_PATTERN.exec(token);
    return match ? match[1] : undefined;
  }

  /** Whether `token` is the current token of the invite (id, generation); constant time. */
  verify(token: string, id: string, generation: number): boolean {
    if (this.idOf(token) !== id) return false;
    const given = Buffer.from(token.slice(ID_LENGTH), 'base64url');
    const expected = this.#mac(id, generation);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /**
   * The code of a membership request's verification link: the request's id and a MAC over it under
   * another label than invite tokens', so that neither can pass for the other. Never stored; its
   * 24 hours are counted from the request's creation (src/domain/membership.ts).
   */
  requestCode(id: string): string {
    return id + this.#labelledMac('xmpp-invites/request-verify/v1', id).toString('base64url');
  }

  /** The token of a password reset link (its own label: it can pass for no invite token). */
  resetToken(id: string): string {
    return id + this.#labelledMac('xmpp-invites/reset/v1', id).toString('base64url');
  }

  /** Whether `token` is the token of password reset `id`; constant time. */
  verifyResetToken(token: string, id: string): boolean {
    if (this.idOf(token) !== id) return false;
    const given = Buffer.from(token.slice(ID_LENGTH), 'base64url');
    const expected = this.#labelledMac('xmpp-invites/reset/v1', id);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** Whether `code` is the verification code of request `id`; constant time. */
  verifyRequestCode(code: string, id: string): boolean {
    if (this.idOf(code) !== id) return false;
    const given = Buffer.from(code.slice(ID_LENGTH), 'base64url');
    const expected = this.#labelledMac('xmpp-invites/request-verify/v1', id);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The MAC of the id of an ad-hoc session that ended at its first stage (src/xmpp/adhoc.ts), under a label of its own. */
  sessionIdMac(data: string): Buffer {
    return createHmac('sha256', this.#key).update(`xmpp-invites/adhoc-one-stage/v1\0${data}`).digest();
  }

  /** A keyed hash of an address (e-mail key or JID) for the opt-out list: not reversible without the key. */
  addressHash(key: string): string {
    return createHmac('sha256', this.#key).update(`xmpp-invites/opt-out/v1\0${key}`).digest('base64url');
  }

  #labelledMac(label: string, id: string): Buffer {
    return createHmac('sha256', this.#key).update(`${label}\0${id}`).digest().subarray(0, MAC_BYTES);
  }

  /**
   * The MAC in a VERP envelope sender (`bounces+{outbox id}-{mac}@…`): 80 bits in lower-case hex,
   * since a local part may come back case-folded. Only the service can make one, so a bounce
   * naming an outbox row it did not send is told apart (and ignored).
   */
  bounceMac(outboxId: number): string {
    return createHmac('sha256', this.#key).update(`xmpp-invites/verp/v1\0${outboxId}`).digest().subarray(0, 10).toString('hex');
  }

  /** Whether `mac` is the VERP MAC of the outbox row; constant time. */
  verifyBounceMac(outboxId: number, mac: string): boolean {
    const expected = Buffer.from(this.bounceMac(outboxId));
    const given = Buffer.from(mac.toLowerCase());
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /**
   * The one-click unsubscribe code of an invite (RFC 8058 List-Unsubscribe): its id and a 128-bit
   * MAC, base64url. It names the invite, not a token generation, so a resend does not void it.
   */
  unsubscribeCode(id: string): string {
    return id + this.#unsubscribeMac(id).toString('base64url');
  }

  /** The invite id of a valid unsubscribe code, or undefined. */
  unsubscribeIdOf(code: string): string | undefined {
    const match = UNSUBSCRIBE_PATTERN.exec(code);
    if (!match) return undefined;
    // Compared as text, rendered again: decoding would let the last character's unused bits vary.
    const given = Buffer.from(code);
    const expected = Buffer.from(this.unsubscribeCode(match[1]));
    return given.length === expected.length && timingSafeEqual(given, expected) ? match[1] : undefined;
  }

  #unsubscribeMac(id: string): Buffer {
    return createHmac('sha256', this.#key).update(`xmpp-invites/unsubscribe/v1\0${id}`).digest().subarray(0, 16);
  }

  #mac(id: string, generation: number): Buffer {
    return createHmac('sha256', this.#key)
      .update(`xmpp-invites/token/v1\0${id}\0${generation}`)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}
