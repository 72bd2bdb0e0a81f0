/**
 * What may reach an e-mail header or its HTML: every value that came from a person (a display
 * name, an inviter's message, a subject made of both) passes through here first.
 *
 * - Header values lose every line break and control character (RFC 5322 §2.2: a header field is one
 *   logical line; a CR or LF inside a value would start a new header, or the body), and are capped.
 * - Addresses must be exactly one addr-spec (src/domain/email-address.ts) and go to nodemailer as
 *   `{ name, address }` objects, so that a display name is always encoded as a name and never parsed
 *   as an address list.
 * - HTML gets every value escaped (the `html` tag of src/present/html.ts, as on the web pages); the
 *   message is length-capped before it is escaped.
 *
 * References: https://www.rfc-editor.org/rfc/rfc5322#section-2.2
 */
import { parseEmailAddress } from '../domain/email-address';

/** Longest display name and subject kept (characters); longer ones end with "…". */
export const MAX_HEADER_TEXT = 200;

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: all end a line somewhere.
const BREAKING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/gu;

/** Cuts text to `max` characters (not splitting a surrogate pair), marking the cut with "…". */
export function cap(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, Math.max(0, max - 1)).join('').trimEnd()}…`;
}

/** A value fit for one header line: no CR, LF or other control character, spaces collapsed, capped. */
export function headerText(value: string, max = MAX_HEADER_TEXT): string {
  return cap(value.replace(BREAKING, ' ').replace(/\s+/g, ' ').trim(), max);
}

/** Body text of a person (the inviter's message): controls other than line breaks removed, capped. */
export function bodyText(value: string, max: number): string {
  const lines = value
    .replace(/\r\n?/g, '\n')
    .replace(/[\u2028\u2029]/g, '\n')
    .replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, '')
    .split('\n')
    .map((l) => l.trimEnd());
  return cap(lines.join('\n').trim(), max);
}

export interface Mailbox {
  name: string;
  address: string;
}

/** A nodemailer address object; undefined when `address` is not exactly one addr-spec. */
export function mailbox(address: string, name?: string | null): Mailbox | undefined {
  const addr = parseEmailAddress(address);
  if (addr === undefined) return undefined;
  return { name: name ? headerText(name) : '', address: addr };
}
