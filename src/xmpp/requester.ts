/**
 * Who is asking: the sender of a stanza as the handlers see it. The router works it out once per
 * stanza (StanzaContext.requester); nothing downstream derives it again.
 */
import { isLocalUser } from '../domain/jid';

export interface Requester {
  /** full JID, as the server stamped it */
  full: string;
  /** bare JID, lower-cased */
  bare: string;
  /** a user of `host` */
  isLocal: boolean;
  /** one of the configured `admins` (the configuration is the only source of admins) */
  isAdmin: boolean;
}

/** What decides who is local and who is an admin. */
export interface RequesterRules {
  host: string;
  admins: readonly string[];
}

/** Local users of `host` may use the service; admins come from the config only. */
export function requesterOf(full: string, rules: RequesterRules): Requester {
  const bare = bareOf(full);
  return { full, bare, isLocal: isLocalUser(bare, rules.host), isAdmin: rules.admins.includes(bare) };
}

/** The bare JID of a full JID, lower-cased (the server has already applied stringprep). */
export function bareOf(jid: string): string {
  const slash = jid.indexOf('/');
  return (slash === -1 ? jid : jid.slice(0, slash)).toLowerCase();
}
