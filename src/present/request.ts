/**
 * How a membership request reads to an admin, in every door (#pending, the CLI): "bob@example.org,
 * verified 21 Nov 12:00: “I am Alice's brother”".
 */
import type { MembershipRequest, RequestState } from '../domain/membership';
import { dateTime, shortDate } from './invite';

function excerpt(text: string, max: number): string {
  const chars = [...text.replace(/\s+/g, ' ')];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join('');
}

/** The option label: address, when verified, the reason's start. */
export function requestLabel(r: MembershipRequest): string {
  const when = r.verifiedAt ?? r.createdAt;
  return `Request: ${r.email}, verified ${shortDate(when)}${r.reason ? `: “${excerpt(r.reason, 60)}”` : ''}`;
}

/** The whole request on one line, for the fixed lines of #pending and `request list`. */
export function requestLine(r: MembershipRequest): string {
  return [
    `Request ${r.id}`,
    r.email,
    r.state,
    `asked ${dateTime(r.createdAt)}`,
    ...(r.verifiedAt !== null ? [`verified ${dateTime(r.verifiedAt)}`] : []),
    ...(r.decidedBy !== null && r.decidedAt !== null ? [`${r.state} by ${r.decidedBy} ${dateTime(r.decidedAt)}`] : []),
    ...(r.inviteId ? [`invite ${r.inviteId}`] : []),
    ...(r.reason ? [`reason “${excerpt(r.reason, 200)}”`] : []),
  ].join(', ');
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * A membership request as `request list --json` prints it and the API and webhooks tell it: never a
 * verification code. `state` is the shown one (an unverified request past its 24 hours is expired).
 */
export function requestJson(r: MembershipRequest, state: RequestState) {
  return {
    id: r.id,
    email: r.email,
    state,
    reason: r.reason,
    created: iso(r.createdAt),
    verified: iso(r.verifiedAt),
    decided: iso(r.decidedAt),
    decided_by: r.decidedBy,
    decision_reason: r.decisionReason,
    invite: r.inviteId,
  };
}
