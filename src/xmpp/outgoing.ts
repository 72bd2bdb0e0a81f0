/**
 * What the connection refuses to write because the server would answer it by closing the whole
 * stream: the errors send() throws before anything reaches the socket, and the character check.
 *
 * References: https://www.w3.org/TR/xml/#charsets, RFC 6120 §11.1 ("XML streams MUST be
 * well-formed"; a parse error is the stream error <not-well-formed/>)
 */
import { forbiddenXmlCharacter } from '../domain/text';
import type { Element } from './xml';

/**
 * send() refused a stanza the server would answer by closing the stream: nothing was written, so
 * the outcome is definite (the request did not happen); do not retry.
 */
export class StanzaRejectedError extends Error {
  override readonly name: string = 'StanzaRejectedError';
}

/**
 * send() refused a stanza holding a character XML 1.0 does not allow (in text or in an attribute
 * value, anywhere in the tree). The message names the code point and the stanza, never the text.
 */
export class ForbiddenCharacterError extends StanzaRejectedError {
  override readonly name: string = 'ForbiddenCharacterError';
  constructor(
    readonly stanza: string,
    readonly character: string,
  ) {
    super(`Refusing to send a <${stanza}/> holding ${character}, a character XML does not allow`);
  }
}

/**
 * Throws ForbiddenCharacterError when `serialized` (the stanza `el` as it would be written) holds a
 * character XML forbids. ltx escapes only "&'<>", so such a character stays as it is in the
 * serialization, wherever it was in the tree: one scan covers every text node and attribute value.
 */
export function checkCharacters(el: Element, serialized: string = el.toString()): void {
  const character = forbiddenXmlCharacter(serialized);
  if (character !== undefined) throw new ForbiddenCharacterError(el.name, character);
}
