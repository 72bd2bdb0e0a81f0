/**
 * CSRF protection without server state: a random value in a SameSite=Strict, HttpOnly cookie, and
 * in every form an HMAC of that value under a key derived from `token_key`. A form is accepted when
 * the cookie is there and the form's value is the MAC of it. Another site can neither read the
 * cookie nor make the browser send it with a cross-site POST.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const CSRF_COOKIE = 'xi_csrf';
export const CSRF_FIELD = 'csrf';
const VALUE = /^[A-Za-z0-9_-]{24}$/;

export class Csrf {
  readonly #key: Buffer;

  constructor(
    tokenKey: string,
    /** the Secure attribute: set when the public URL is https */
    private readonly secure: boolean,
  ) {
    this.#key = createHmac('sha256', tokenKey).update('xmpp-invites/csrf/v1').digest();
  }

  /** The cookie's value from a Cookie header, when well formed. */
  fromCookies(header: string | undefined): string | undefined {
    for (const part of (header ?? '').split(';')) {
      const [name, ...rest] = part.trim().split('=');
      if (name === CSRF_COOKIE) {
        const value = rest.join('=');
        if (VALUE.test(value)) return value;
      }
    }
    return undefined;
  }

  newValue(): string {
    return randomBytes(18).toString('base64url');
  }

  /** What the forms carry for this cookie value. */
  formToken(cookieValue: string): string {
    return createHmac('sha256', this.#key).update(cookieValue).digest('base64url');
  }

  verify(cookieValue: string | undefined, formValue: string | undefined): boolean {
    if (!cookieValue || !formValue) return false;
    const expected = Buffer.from(this.formToken(cookieValue));
    const given = Buffer.from(formValue);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  setCookie(value: string): string {
    return `${CSRF_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict${this.secure ? '; Secure' : ''}`;
  }
}
