/**
 * What a command did with each invite (or address) it was asked to act on, and how that reads.
 * This is the one place where an invite error becomes a note. Clients show error, warn and info
 * notes alike (Gajim 1.7 does), so the words carry the outcome: the outcome first ("1 of 2 invites
 * revoked"), then each refusal with the value it concerns named. A command that was asked to do
 * something and did none of it does not complete: `nothingDone` answers `bad-request` instead.
 */
import type { InviteError } from '../../errors';
import type { Attempts } from '../../domain/attempt';
import type { Note } from '../../xmpp/adhoc';
import { StanzaFailure } from '../../xmpp/stanza-errors';

export { attempt, type Attempts } from '../../domain/attempt';

/** Characters a client would not show as they are: controls, line separators, bidi overrides, non-characters, lone surrogates. */
const UNSHOWN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const QUOTED_MAX = 80;

/** A value someone gave, quoted as it was given: what it cannot show is written as \uXXXX, and it is cut at 80 characters. */
export function quote(value: string): string {
  const chars = [...value];
  const cut = chars.length > QUOTED_MAX ? `${chars.slice(0, QUOTED_MAX - 1).join('')}…` : value;
  return `"${cut.replace(UNSHOWN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "2 invites approved", "1 of 2 invites approved"; without a noun "1 of 2 rejected". */
export function tally(done: number, asked: number, verb: string, noun?: [string, string]): string {
  const count = done === asked ? String(done) : `${done} of ${asked}`;
  return noun ? `${count} ${asked === 1 ? noun[0] : noun[1]} ${verb}` : `${count} ${verb}`;
}

export const INVITES: [string, string] = ['invite', 'invites'];

/** One line per refusal: '"k3x9q2m7ab" not revoked: No invite k3x9q2m7ab'. */
export function refusalLines(refused: Attempts<unknown>['refused'], verb: string, reason: (e: InviteError) => string = (e) => e.message): string[] {
  return refused.map(({ item, error }) => `${quote(item)} not ${verb}: ${reason(error)}`);
}

/** The notes of a finished action: the outcome, then what was already so, then each refusal. */
export function outcomeNotes(summary: string, already: readonly string[], refusals: readonly string[]): Note[] {
  return [
    { type: refusals.length ? 'warn' : 'info', text: summary },
    ...already.map((text): Note => ({ type: 'info', text })),
    ...(refusals.length ? [{ type: 'warn' as const, text: refusals.join('\n') }] : []),
  ];
}

/**
 * Asked to act and nothing came of it (every item refused): not a completion. Throws `bad-request`
 * whose text says so and names each refusal.
 */
export function nothingDone(what: string, refusals: readonly string[]): never {
  throw new StanzaFailure('bad-request', [`Nothing was ${what}.`, ...refusals].join('\n'));
}
