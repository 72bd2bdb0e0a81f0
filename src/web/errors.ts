/**
 * The domain's error codes as the web shows them. `Record<ErrorCode, …>`: the compiler refuses a
 * code without a status. `form` errors show the form again (400) with the message beside it.
 */
import type { ErrorCode, InviteError } from '../errors';

export interface WebError {
  status: number;
  /** the form is shown again with the message */
  form: boolean;
  title: string;
}

const BY_CODE: Record<ErrorCode, WebError> = {
  forbidden: { status: 403, form: false, title: 'This cannot be done here' },
  // Unknown tokens are 404 before any domain call; a known invite that cannot be used is gone.
  'invite-not-found': { status: 410, form: false, title: 'This invitation can no longer be used' },
  'invite-pending': { status: 409, form: false, title: 'This invitation waits for approval' },
  'invite-required': { status: 404, form: false, title: 'This invitation does not exist' },
  conflict: { status: 400, form: true, title: 'Please check the form' },
  'username-mismatch': { status: 400, form: true, title: 'Please check the form' },
  'invalid-input': { status: 400, form: true, title: 'Please check the form' },
  'bad-request': { status: 400, form: false, title: 'The request was not understood' },
  'wrong-state': { status: 409, form: false, title: 'This invitation changed meanwhile' },
  'limit-reached': { status: 429, form: false, title: 'Too many accounts right now' },
  duplicate: { status: 409, form: false, title: 'There is already such an invitation' },
  'opted-out': { status: 409, form: false, title: 'This address asked not to be invited' },
  suppressed: { status: 409, form: false, title: 'E-mail to this address bounced' },
  unavailable: { status: 503, form: false, title: 'The server is not available right now' },
  internal: { status: 500, form: false, title: 'Something went wrong' },
};

export function webError(code: ErrorCode): WebError {
  return BY_CODE[code];
}

/** Seconds until a limit frees (from the error's `frees` detail), for Retry-After. */
export function retryAfter(err: InviteError, now: number): number | undefined {
  if (err.code === 'unavailable') return 60;
  if (err.code !== 'limit-reached') return undefined;
  const frees = err.detail?.frees ? Date.parse(err.detail.frees) : NaN;
  return Number.isFinite(frees) ? Math.max(1, Math.ceil((frees - now) / 1000)) : 3600;
}
