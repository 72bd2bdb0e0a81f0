/**
 * The one stanza sanitiser: every stanza that reaches a log goes through `sanitizeStanza`, the way
 * @xmpp/debug hides the handshake and SASL payloads. It serialises a masked deep copy and never
 * touches the element it is given.
 *
 * Masked (replaced with `[redacted]`):
 * - the XEP-0114 handshake digest;
 * - `<password/>` text (XEP-0077 jabber:iq:register, and anywhere else);
 * - values of XEP-0004 fields named password, password-verify or token, and of text-private fields;
 * - every `token` attribute (XEP-0445 `<preauth xmlns='urn:xmpp:pars:0' token=.../>`, bridge IQs);
 * - through `maskSecrets`, in every text node and attribute: `preauth=` in xmpp: URIs, landing
 *   URLs `/i/TOKEN`, `token='...'`, and the configured secret strings.
 *
 * References: https://xmpp.org/extensions/xep-0114.html#example-3,
 * https://xmpp.org/extensions/xep-0077.html, https://xmpp.org/extensions/xep-0004.html#protocol-fieldtypes,
 * https://xmpp.org/extensions/xep-0445.html, https://xmpp.org/extensions/xep-0401.html
 */
import { createMasker, REDACTED } from '../logger';
import { Element } from './xml';

const NS_DATA = 'jabber:x:data';
const SECRET_FIELDS = new Set(['password', 'password-verify', 'token']);
const SECRET_ATTRS = new Set(['token']);

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
  return SECRET_FIELDS.has(field.attrs.var ?? '') || field.attrs.type === 'text-private';
}

/** Masks `el` (a copy) in place, depth first. */
function maskTree(el: Element, mask: (text: string) => string): void {
  for (const key of Object.keys(el.attrs)) {
    const value = el.attrs[key];
    if (value === undefined) continue;
    el.attrs[key] = SECRET_ATTRS.has(key) ? REDACTED : mask(String(value));
  }
  if (el.getName() === 'password') {
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
  // XEP-0114: the handshake is SHA-1(stream id + secret); with the id it allows offline guessing.
  if (copy.getName() === 'handshake') redactText(copy);
  maskTree(copy, mask);
  // A last pass over the XML catches a secret split across text nodes or escaped differently.
  return mask(copy.toString());
}
