/**
 * Stanza errors (RFC 6120 §8.3). Expected failures are thrown as `StanzaFailure` or as the domain's
 * `InviteError` and turned into `<error/>` by the router; the `Record<ErrorCode, …>` below makes the
 * compiler refuse a domain error code without an XMPP condition.
 */
import type { ErrorCode } from '../errors';
import { isDatabaseBusy, isInviteError } from '../errors';
import { NS } from './ns';
import { xml, type Element } from './xml';

export type ErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

export type Condition =
  | 'bad-request'
  | 'conflict'
  | 'feature-not-implemented'
  | 'forbidden'
  | 'internal-server-error'
  | 'item-not-found'
  | 'not-acceptable'
  | 'not-allowed'
  | 'policy-violation'
  | 'remote-server-timeout'
  | 'resource-constraint'
  | 'service-unavailable'
  | 'unexpected-request';

/** The error type RFC 6120 §8.3.3 gives for each condition. */
const DEFAULT_TYPE: Record<Condition, ErrorType> = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  'internal-server-error': 'wait',
  'item-not-found': 'cancel',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'policy-violation': 'modify',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'unexpected-request': 'wait',
};

const BY_CODE: Record<ErrorCode, { condition: Condition; type?: ErrorType }> = {
  forbidden: { condition: 'forbidden' },
  'invite-not-found': { condition: 'item-not-found' },
  'invite-pending': { condition: 'not-allowed' },
  'invite-required': { condition: 'not-acceptable' },
  conflict: { condition: 'conflict' },
  'username-mismatch': { condition: 'forbidden' },
  'invalid-input': { condition: 'not-acceptable' },
  'bad-request': { condition: 'bad-request' },
  'wrong-state': { condition: 'not-allowed' },
  'limit-reached': { condition: 'policy-violation' },
  duplicate: { condition: 'conflict' },
  'opted-out': { condition: 'not-allowed' },
  suppressed: { condition: 'not-allowed' },
  unavailable: { condition: 'service-unavailable', type: 'wait' },
  internal: { condition: 'internal-server-error' },
};

/** An expected failure to be answered with an error stanza. */
export class StanzaFailure extends Error {
  readonly type: ErrorType;
  constructor(
    readonly condition: Condition,
    text?: string,
    readonly appSpecific?: Element,
    type?: ErrorType,
  ) {
    super(text ?? condition);
    this.type = type ?? DEFAULT_TYPE[condition];
    this.text = text;
  }
  readonly text: string | undefined;
}

export function errorElement(condition: Condition, opts: { type?: ErrorType; text?: string; appSpecific?: Element } = {}): Element {
  return xml(
    'error',
    { type: opts.type ?? DEFAULT_TYPE[condition] },
    xml(condition, { xmlns: NS.stanzas }),
    opts.text ? xml('text', { xmlns: NS.stanzas, 'xml:lang': 'en' }, opts.text) : null,
    opts.appSpecific ?? null,
  );
}

/** The `<error/>` for a thrown value, or undefined when it is not an expected failure. */
export function errorFor(err: unknown): Element | undefined {
  if (err instanceof StanzaFailure) {
    return errorElement(err.condition, { type: err.type, text: err.text, appSpecific: err.appSpecific });
  }
  if (isInviteError(err)) {
    const { condition, type } = BY_CODE[err.code];
    return errorElement(condition, { type, text: err.message });
  }
  // Another process held the database's write lock too long: nothing was done; retry later.
  if (isDatabaseBusy(err)) return errorElement('resource-constraint', { type: 'wait', text: 'The service is busy; please try again in a moment' });
  return undefined;
}

export function conditionOf(code: ErrorCode): Condition {
  return BY_CODE[code].condition;
}
