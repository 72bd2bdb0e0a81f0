import { StanzaRejectedError } from '../xmpp/connection';

/** An IQ error from the server is a definite answer (unlike a timeout or a lost link). */
export interface IqErrorLike {
  condition: string;
  text?: string;
}

export function isIqError(err: unknown): err is Error & IqErrorLike {
  return err instanceof Error && typeof (err as { condition?: unknown }).condition === 'string';
}

/**
 * The connection refused to write the request (e.g. a character XML does not allow): the server
 * never saw it, so the outcome is definite, not unclear.
 */
export function wasNotSent(err: unknown): err is StanzaRejectedError {
  return err instanceof StanzaRejectedError;
}
