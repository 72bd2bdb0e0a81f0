/**
 * The one stanza sanitiser: every stanza that reaches a log goes through `sanitizeStanza`, the way
 * @xmpp/debug hides the handshake and SASL payloads. It serialises a masked deep copy and never
 * touches the element it is given.
 *
 * Masked (replaced with `[redacted]`), wherever in the stanza it is:
 * - the XEP-0114 handshake digest, and the SASL payloads (`auth`, `response`, `challenge`,
 *   `success`: PLAIN carries the password in base64);
 * - the text of elements named password, token or secret (XEP-0077 jabber:iq:register's
 *   `<password/>`, a `<token/>` given there);
 * - values of XEP-0004 fields whose name says password, secret or token (password,
 *   password-verify, old-password, muc#roomconfig_roomsecret, token, ...), and of text-private
 *   fields whatever their name;
 * - attributes whose name says password, secret, token or preauth (the bridge's `create-account`
 *   `password='…'`, XEP-0445 `<preauth token=…/>`, the bridge's `token` attributes);
 * - through `maskSecrets`, in every text node and attribute: `preauth=` in xmpp: URIs, landing
 *   URLs `/i/TOKEN`, `token='...'`, `password='...'`, and the configured secret strings.
 *
 * References: https://xmpp.org/extensions/xep-0114.html#example-3,
 * https://xmpp.org/extensions/xep-0077.html, https://xmpp.org/extensions/xep-0004.html#protocol-fieldtypes,
 * https://xmpp.org/extensions/xep-0445.html, https://xmpp.org/extensions/xep-0401.html
 */
import { createMasker, REDACTED } from '../logger';
import { Element } from './xml';

const NS_DATA = 'jabber:x:data';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
/** A name (attribute, field var, element) that says its value is a secret. */
const SECRET_NAME = /password|passwd|secret|token|preauth/i;
/** Elements whose whole text is a secret. */
const SECRET_ELEMENTS = new Set(['password', 'token', 'secret', 'handshake']);
const SASL_PAYLOADS = new Set(['auth', 'response', 'challenge', 'success']);

/**
 * A detached deep copy: new attribute maps, new children arrays, no parent. Adjacent text nodes
 * (the parser emits one per network chunk) are merged so that a token split by TCP is masked whole.
 */
function cloneElement(el: Element): Element {
  const copy = new Element(el.name, { ...el.attrs });
  // ltx tolerates numbers and null among children (`t(5)`); the typings say Element | string.
  for (const child of el.children as unknown[]) {
    if (child === null || child === undefined) continue;
    if (typeof child === 'object') {
      copy.cnode(cloneElement(child as Element));
    } else if (typeof copy.children[copy.children.length - 1] === 'string') {
      copy.children[copy.children.length - 1] += String(child);
    } else {
      copy.children.push(String(child));
    }
  }
  return copy;
}

function redactText(el: Element): void {
  if (el.children.length > 0) el.children = [REDACTED];
}

function isSecretField(field: Element): boolean {
  return SECRET_NAME.test(field.attrs.var ?? '') || field.attrs.type === 'text-private';
}

function isSecretElement(el: Element): boolean {
  const name = el.getName();
  return SECRET_ELEMENTS.has(name) || (SASL_PAYLOADS.has(name) && el.getNS() === NS_SASL);
}

/** Masks `el` (a copy) in place, depth first. */
function maskTree(el: Element, mask: (text: string) => string): void {
  for (const key of Object.keys(el.attrs)) {
    const value = el.attrs[key];
    if (value === undefined) continue;
    // xmlns is never a secret (and names such as urn:xmpp:pars:0 are not either)
    el.attrs[key] = key !== 'xmlns' && SECRET_NAME.test(key) ? REDACTED : mask(String(value));
  }
  if (isSecretElement(el)) {
    redactText(el);
  } else if (el.getName() === 'field' && el.getNS() === NS_DATA && isSecretField(el)) {
    for (const value of el.getChildren('value')) redactText(value);
  }
  el.children = el.children.map((child) => {
    if (typeof child === 'string') return mask(child);
    maskTree(child, mask);
    return child;
  });
}

export function sanitizeStanza(el: Element, secrets: readonly string[] = []): string {
  const mask = createMasker(secrets);
  const copy = cloneElement(el);
  // XEP-0114: the handshake is SHA-1(stream id + secret); with the id it allows offline guessing
  // (masked by maskTree as a secret element).
  maskTree(copy, mask);
  // A last pass over the XML catches a secret split across text nodes or escaped differently.
  return mask(copy.toString());
}
