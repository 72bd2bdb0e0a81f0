/**
 * A strict reader of one e-mail address: a bare addr-spec (RFC 5322 §3.4.1) with a dot-atom local
 * part and a host name, nothing else. No display names, no comments, no quoted local parts, no
 * domain literals, no lists (commas), no CR/LF or other control characters: whatever is accepted
 * here can go into a header and an SMTP envelope as it is. UTF-8 letters are accepted in both parts
 * (RFC 6531), ASCII punctuation only where RFC 5322 `atext` allows it.
 *
 * References: RFC 5322 §3.2.3 (atext, dot-atom), §3.4.1 (addr-spec); RFC 5321 §4.5.3.1 (lengths).
 */

/** RFC 5322 atext, plus non-ASCII letters, marks and digits (RFC 6531 UTF8-non-ascii). */
const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\p{L}\p{M}\p{N}]+$/u;
/** A host name label: letters, digits and hyphens, not at either end (RFC 1123; IDN U-labels). */
const LABEL = /^(?!-)[A-Za-z0-9\-\p{L}\p{M}\p{N}]{1,63}(?<!-)$/u;
/** Every control character, CR and LF included, and the Unicode line and paragraph separators. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;

/** RFC 5321 §4.5.3.1.1: "The maximum total length of a user name or other local-part is 64 octets." */
const MAX_LOCAL_OCTETS = 64;
/** RFC 5321 §4.5.3.1.3 path limit (256) less the angle brackets. */
const MAX_ADDRESS_OCTETS = 254;

/**
 * The address, without the spaces and tabs around it, when `text` is exactly one addr-spec such
 * as `bob@example.org`; undefined otherwise (`Bob <bob@example.org>`, `a@b.org, c@d.org`,
 * `"bob"@example.org`, `bob@[192.0.2.1]`, `bob@localhost`, anything with a line break).
 */
export function parseEmailAddress(text: string): string | undefined {
  if (typeof text !== 'string') return undefined;
  const address = text.replace(/^[ \t]+|[ \t]+$/g, '');
  if (CONTROL.test(address)) return undefined;
  if (Buffer.byteLength(address) > MAX_ADDRESS_OCTETS) return undefined;
  const at = address.lastIndexOf('@');
  if (at <= 0) return undefined;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (Buffer.byteLength(local) > MAX_LOCAL_OCTETS) return undefined;
  if (!local.split('.').every((atom) => ATOM.test(atom))) return undefined;
  const labels = (domain.endsWith('.') ? domain.slice(0, -1) : domain).split('.');
  // A host name with at least two labels: mail to a bare `localhost` or `com` is not an invitation.
  if (labels.length < 2 || !labels.every((label) => LABEL.test(label))) return undefined;
  // The top-level label is never all digits (that would be an IPv4 address in disguise).
  if (/^[0-9]+$/.test(labels[labels.length - 1])) return undefined;
  return address;
}
