/**
 * Acting on several invites (or addresses) at once, each on its own: what was done and what was
 * refused, with the domain's error. Every door renders the outcome in its own words (command notes,
 * web pages, CLI lines); this is the one loop that turns an invite error into a refusal.
 */
import { isInviteError, type InviteError } from '../errors';

export interface Attempts<T> {
  /** how many items were asked for */
  asked: number;
  done: { item: string; result: T }[];
  refused: { item: string; error: InviteError }[];
}

/** Runs `act` for each item; an invite error is recorded as a refusal, anything else is thrown. */
export function attempt<T>(items: readonly string[], act: (item: string) => T): Attempts<T> {
  const out: Attempts<T> = { asked: items.length, done: [], refused: [] };
  for (const item of items) {
    try {
      out.done.push({ item, result: act(item) });
    } catch (err) {
      if (!isInviteError(err)) throw err;
      out.refused.push({ item, error: err });
    }
  }
  return out;
}
