/**
 * One error catalogue for the whole service. The domain throws `InviteError` with a stable code;
 * each adapter maps codes to its own vocabulary (XMPP conditions in src/xmpp/errors.ts, HTTP
 * statuses in src/web, exit codes in src/cli.ts). The maps are `Record<ErrorCode, …>`, so the
 * compiler refuses a code that an adapter forgot.
 */

export type ErrorCode =
  /** the requester may not do this (not local, not admin, not the owner) */
  | 'forbidden'
  /** unknown, expired, used, revoked, rejected or declined invite */
  | 'invite-not-found'
  /** the invite waits for an admin's approval */
  | 'invite-pending'
  /** registration without a valid token where invites are required */
  | 'invite-required'
  /** the username is taken or reserved */
  | 'conflict'
  /** the username differs from the one the invite is locked to */
  | 'username-mismatch'
  /** a value breaks a rule (username repertoire, password length, unknown option) */
  | 'invalid-input'
  /** the request is malformed */
  | 'bad-request'
  /** the action is not possible in the invite's current state */
  | 'wrong-state'
  /** a limit was reached */
  | 'limit-reached'
  /** the same inviter already has a pending or open invite for this invitee */
  | 'duplicate'
  /** the invitee asked never to be invited again */
  | 'opted-out'
  /** a dependency (the XMPP server) cannot be reached now */
  | 'unavailable'
  /** an unexpected failure */
  | 'internal';

export class InviteError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** details for adapters, e.g. the existing invite of a duplicate */
    readonly detail?: Record<string, string>,
  ) {
    super(message);
    this.name = 'InviteError';
  }
}

export function isInviteError(err: unknown): err is InviteError {
  return err instanceof InviteError;
}

/**
 * "The database is locked": another process held the write lock longer than the service waits
 * (src/store/busy.ts). On SQLite, SQLITE_BUSY, SQLITE_LOCKED and their extended codes; on
 * PostgreSQL, lock_not_available (55P03: lock_timeout passed), and the two a retry resolves,
 * serialization_failure (40001) and deadlock_detected (40P01). Adapters answer it as "try again in
 * a moment" (XMPP `resource-constraint` of type wait, HTTP 503), not as a fault.
 */
export function isDatabaseBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (/^SQLITE_(BUSY|LOCKED)(_|$)/.test(code) || code === '55P03' || code === '40001' || code === '40P01');
}
