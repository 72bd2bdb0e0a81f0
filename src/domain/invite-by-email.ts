/**
 * Inviting a list of e-mail addresses at once: the rule shared by the command "Invite by e-mail"
 * (urn:xmpp-invites:0#send) and the web console's form. Each line that is one address becomes its
 * own invite (kind contact-account, from the actor), with approval, limits, duplicates and opt-outs
 * as for any invite; a line that is not an address, or that repeats one, is refused and nothing is
 * made for it. The lifetimes on offer are those of `expiryChoices`.
 */
import { InviteError, isInviteError } from '../errors';
import { parseEmailAddress } from './email-address';
import type { InviteService, RoomRef } from './invites';
import { emailKey } from './jid';
import { trimSpace } from './text';
import type { Actor, Invite, InviteSource } from './types';
import { durationLabel, durationValue } from './durations';

export { durationLabel, durationValue } from './durations';

/** Policy: one submission invites at most this many addresses (a bigger list is refused whole). */
export const MAX_ADDRESSES = 50;

const DAY = 86_400_000;

export interface LifetimeChoice {
  value: string;
  label: string;
  ms: number;
}

/**
 * The lifetimes offered. Policy: 1, 3, 7, 14 and 30 days, but never longer than `invites.expiry`,
 * which is also the default (and the lifetime an invite gets again on approval): nobody's invite
 * outlives what the operator configured.
 */
export function expiryChoices(expiry: number): LifetimeChoice[] {
  const shorter = [1, 3, 7, 14, 30].map((d) => d * DAY).filter((ms) => ms < expiry);
  return [...shorter, expiry].map((ms) => ({ value: durationValue(ms), label: durationLabel(ms), ms }));
}

/** The non-empty lines of a list as people paste it (one address per line; CR, LF or CRLF). */
export function addressLines(values: readonly string[]): string[] {
  return values
    .flatMap((v) => v.split(/\r\n|\r|\n/))
    .map(trimSpace)
    .filter((l) => l !== '');
}

export interface EmailInvites {
  /** lines that became invites, in order */
  done: { line: string; address: string; invite: Invite }[];
  /** lines refused, in order, with why */
  refused: { line: string; error: InviteError }[];
}

/**
 * Makes one invite per address line. The list must already be within MAX_ADDRESSES and the
 * message within its length (the callers say so in their own words, before anything is made).
 */
export function inviteEmails(
  invites: InviteService,
  actor: Actor,
  lines: readonly string[],
  opts: { message?: string; expiresIn: number; source: InviteSource; rooms?: readonly RoomRef[] },
): EmailInvites {
  const out: EmailInvites = { done: [], refused: [] };
  const seen = new Set<string>();
  for (const line of lines) {
    try {
      const address = parseEmailAddress(line);
      if (address === undefined) {
        throw new InviteError('invalid-input', `not a single e-mail address${/[,;]/.test(line) ? ' (one address per line)' : ''}`);
      }
      if (seen.has(emailKey(address))) throw new InviteError('invalid-input', 'listed twice');
      seen.add(emailKey(address));
      const { invite } = invites.create(actor, {
        kind: 'contact-account',
        source: opts.source,
        email: address,
        note: opts.message === undefined || opts.message === '' ? undefined : opts.message,
        expiresIn: opts.expiresIn,
        ...(opts.rooms?.length ? { rooms: opts.rooms } : {}),
      });
      out.done.push({ line, address, invite });
    } catch (err) {
      if (!isInviteError(err)) throw err;
      out.refused.push({ line, error: err });
    }
  }
  return out;
}

/** Why an invite for this address was not made, in a few words. */
export function emailRefusal(err: InviteError): string {
  switch (err.code) {
    case 'duplicate': {
      const { state, id } = err.detail ?? {};
      return `you already invited this address${id ? ` (${state ?? 'open'} invite ${id})` : ''}`;
    }
    case 'opted-out':
      return 'this address asked not to be invited again';
    default:
      return err.message;
  }
}
