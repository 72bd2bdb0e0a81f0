/**
 * The username repertoire: 1–64 characters of a-z 0-9 . _ -, not starting or ending with a dot;
 * upper case is lower-cased first. It is valid and identical under nodeprep and PRECIS, so a
 * username accepted here means the same account on every server.
 */
import { InviteError } from '../errors';
import { checkPasswordCharacters, trimSpace } from './text';

/** What a username may hold, to follow "use" or "a username is". */
export const USERNAME_REPERTOIRE = '1 to 64 characters: letters a-z, digits, ".", "_" or "-", not starting or ending with "."';

export const USERNAME_RULE = `A username is ${USERNAME_REPERTOIRE}`;

const USERNAME = /^(?!\.)[a-z0-9._-]{1,64}(?<!\.)$/;

/** The normalised username, or an `invalid-input` error stating the rule. */
export function normalizeUsername(raw: string): string {
  const username = trimSpace(raw).toLowerCase();
  if (!USERNAME.test(username)) throw new InviteError('invalid-input', USERNAME_RULE);
  return username;
}

export function passwordRule(minLength: number): string {
  return `A password is at least ${minLength} characters long`;
}

export function checkPassword(password: string, minLength: number): void {
  if ([...password].length < minLength) throw new InviteError('invalid-input', passwordRule(minLength));
  checkPasswordCharacters(password);
}
