/**
 * The one rule for text that comes from people (web forms, data forms, presence, the CLI, the
 * configuration) before it is stored or written to the XMPP stream:
 *
 * - a password must be representable in XML and survive the server's SASLprep (RFC 4013), or no
 *   client could ever log in with it: anything else is a form error, never silently changed;
 * - free text (notes, reasons, names, messages) loses the characters XML 1.0 does not allow
 *   (C0 controls but tab, line feed and carriage return; lone surrogates; U+FFFE, U+FFFF), and also
 *   DEL and the C1 controls, which XML allows but which only ever serve to steer a terminal;
 * - an identifier (username, e-mail address, JID, token, invite id, option value) is never cleaned:
 *   cleaning could turn one into another (`del` + DEL into `del`). It is taken as sent, less the
 *   white space around it (trimSpace), and a character it may not hold makes its own validation
 *   refuse it, naming the value.
 *
 * References: https://www.w3.org/TR/xml/#charsets (production [2] Char),
 * https://www.rfc-editor.org/rfc/rfc4013 (SASLprep), https://www.rfc-editor.org/rfc/rfc3454 (C.2)
 */
import { createRequire } from 'node:module';
import type { saslprep as SaslPrep } from '@mongodb-js/saslprep';
import { InviteError } from '../errors';

/**
 * A character outside XML 1.0's Char production:
 * #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
 * With the `u` flag a lone surrogate is one code point in D800–DFFF, so it matches too.
 */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
/** What free text loses: not XML, DEL and the C1 controls. */
const UNWANTED_IN_TEXT = /[^\t\n\r\u0020-\u007E\u00A0-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export const PASSWORD_CHARACTERS_RULE =
  'A password may not hold control characters or other characters that cannot be used to log in';

/** The first character XML 1.0 does not allow, as U+XXXX (never the text around it); undefined when none. */
export function forbiddenXmlCharacter(text: string): string | undefined {
  const m = NOT_XML_CHAR.exec(text);
  if (!m) return undefined;
  return `U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function isXmlText(text: string): boolean {
  return !NOT_XML_CHAR.test(text);
}

/** XML's white space (production [3] S: space, tab, CR, LF). */
const SPACE_AROUND = /^[ \t\r\n]+|[ \t\r\n]+$/g;

/**
 * An identifier as typed, less the white space XML knows around it (a client may add a line
 * break; a person a space). Nothing else goes: not NBSP, U+3000 or U+FEFF, which String#trim would
 * take away, turning a value that must be refused into one that passes.
 */
export function trimSpace(text: string): string {
  return text.replace(SPACE_AROUND, '');
}

/** Free text from a person, with the characters XML forbids and the control characters removed. */
export function cleanText(text: string): string {
  return text.replace(UNWANTED_IN_TEXT, '');
}

/** Like cleanText, for an optional value. */
export function cleanOptional<T extends string | null | undefined>(text: T): T {
  return (typeof text === 'string' ? cleanText(text) : text) as T;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
let loadedSaslprep: typeof SaslPrep | undefined;

function saslprep(): typeof SaslPrep {
  return (loadedSaslprep ??= (createRequire(__filename)('@mongodb-js/saslprep') as { saslprep: typeof SaslPrep }).saslprep);
}

/**
 * A password the server can store and a client can log in with: XML text, and accepted by SASLprep
 * (no control characters, private use, non-characters, surrogates, tagging or bidi misuse).
 * Throws `invalid-input`: every door reports it as a form error (400, `not-acceptable`).
 */
export function checkPasswordCharacters(password: string): void {
  if (!isXmlText(password)) throw new InviteError('invalid-input', PASSWORD_CHARACTERS_RULE);
  // Printable ASCII passes SASLprep unchanged (RFC 4013: nothing in it is mapped, prohibited or
  // right-to-left): the library, and its 2 MB of tables, is loaded for the first password beyond it.
  if (PRINTABLE_ASCII.test(password)) return;
  try {
    saslprep()(password);
  } catch {
    throw new InviteError('invalid-input', PASSWORD_CHARACTERS_RULE);
  }
}
