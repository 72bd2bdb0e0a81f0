/**
 * JID helpers for the domain. Comparison follows nodeprep/nameprep for the repertoire the service
 * deals with: Unicode compatibility normalisation (NFKC) and case folding of the localpart and
 * domain; the resource is dropped. Characters that nodeprep prohibits in a localpart are refused.
 */

const PROHIBITED_LOCAL = /[\s"&'/:<>@\u0000-\u001f\u007f]/u;
const DOMAIN_LABEL = /^(?!-)[\p{L}\p{N}-]{1,63}(?<!-)$/u;

export interface BareJid {
  local: string | null;
  domain: string;
}

/** Parse and normalise a JID to its bare form; undefined when it is not a valid JID. */
export function parseBareJid(text: string): BareJid | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 3071) return undefined;
  const slash = text.indexOf('/');
  const bare = slash === -1 ? text : text.slice(0, slash);
  if (slash !== -1 && slash === text.length - 1) return undefined;
  const at = bare.indexOf('@');
  const localRaw = at === -1 ? null : bare.slice(0, at);
  const domainRaw = at === -1 ? bare : bare.slice(at + 1);
  let domain = domainRaw.normalize('NFKC').toLowerCase();
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (!domain || Buffer.byteLength(domain) > 1023) return undefined;
  if (!domain.split('.').every((label) => DOMAIN_LABEL.test(label))) return undefined;
  if (localRaw === null) return { local: null, domain };
  const local = localRaw.normalize('NFKC').toLowerCase();
  if (!local || Buffer.byteLength(local) > 1023 || PROHIBITED_LOCAL.test(local)) return undefined;
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
