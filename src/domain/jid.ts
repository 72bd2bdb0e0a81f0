/**
 * JID helpers for the domain. JIDs are compared as the XMPP server compares them: the localpart by
 * nodeprep, the domain by nameprep (stringprep.ts); the resource must pass resourceprep and is
 * dropped. So `Straße@Elsewhere.net`, `strasse@elsewhere.net` and `ＳＴＲＡＳＳＥ@elsewhere.net` are
 * one address, for the opt-out list, the duplicate rule and the limits alike.
 */
import { nameprep, nodeprep, resourceprep } from './stringprep';

/** A label of a domain once nameprep has run: letters, marks and digits, hyphens inside. */
const DOMAIN_LABEL = /^(?!-)[\p{L}\p{M}\p{N}-]{1,63}(?<!-)$/u;
/** RFC 3920 §3.1: each part is at most 1023 bytes. */
const MAX_PART_BYTES = 1023;

export interface BareJid {
  local: string | null;
  domain: string;
}

/** Parse and normalise a JID to its bare form; undefined when it is not a valid JID. */
export function parseBareJid(text: string): BareJid | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 3071) return undefined;
  const slash = text.indexOf('/');
  const bare = slash === -1 ? text : text.slice(0, slash);
  if (slash !== -1) {
    const resource = resourceprep(text.slice(slash + 1));
    if (!resource || Buffer.byteLength(resource) > MAX_PART_BYTES) return undefined;
  }
  const at = bare.indexOf('@');
  const localRaw = at === -1 ? null : bare.slice(0, at);
  let domainRaw = at === -1 ? bare : bare.slice(at + 1);
  // the root label's dot, as Prosody strips it
  if (domainRaw.endsWith('.')) domainRaw = domainRaw.slice(0, -1);
  const domain = nameprep(domainRaw);
  if (!domain || Buffer.byteLength(domain) > MAX_PART_BYTES) return undefined;
  if (!domain.split('.').every((label) => DOMAIN_LABEL.test(label))) return undefined;
  if (localRaw === null) return { local: null, domain };
  const local = nodeprep(localRaw);
  if (!local || Buffer.byteLength(local) > MAX_PART_BYTES) return undefined;
  return { local, domain };
}

export function formatBareJid(jid: BareJid): string {
  return jid.local === null ? jid.domain : `${jid.local}@${jid.domain}`;
}

/** The normalised bare JID, or undefined when `text` is not a JID. */
export function normalizeBareJid(text: string): string | undefined {
  const jid = parseBareJid(text);
  return jid ? formatBareJid(jid) : undefined;
}

/** A local user of `host`: a bare JID `user@host` (not the host itself, not a component). */
export function isLocalUser(bare: string, host: string): boolean {
  const jid = parseBareJid(bare);
  return jid !== undefined && jid.local !== null && jid.domain === host;
}

/**
 * E-mail addresses compared for duplicates and opt-outs: domain lower-cased, local part compared
 * case-insensitively (the contract's rule; RFC 5321 lets a server distinguish case, no real one does).
 */
export function emailKey(address: string): string {
  const at = address.lastIndexOf('@');
  return `${address.slice(0, at).toLowerCase()}@${address.slice(at + 1).toLowerCase()}`;
}
