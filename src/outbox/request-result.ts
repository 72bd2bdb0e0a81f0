/**
 * The acknowledgement of an invite request carried in presence, as the outbox stores it: the
 * per-invitee outcomes in the notice's `result` parameter (JSON), rendered into a body here and
 * into `<invite-request-result/>` by the XMPP transport.
 */
import type { NoticeParams } from '../domain/notices';
import type { InviteeOutcome } from '../domain/requests';

/** The outcomes a `request-result` notice carries (none when the parameter is missing or broken). */
export function outcomesOf(params: NoticeParams): InviteeOutcome[] {
  if (typeof params.result !== 'string') return [];
  try {
    const parsed: unknown = JSON.parse(params.result);
    return Array.isArray(parsed) ? (parsed as InviteeOutcome[]) : [];
  } catch {
    return [];
  }
}

function line(o: InviteeOutcome): string {
  const who = o.email ?? o.jid ?? 'someone';
  switch (o.status) {
    case 'pending':
      return `${who}: waits for an admin's approval (invite ${o.id})`;
    case 'open':
      return `${who}: invited (invite ${o.id})`;
    case 'duplicate':
      return `${who}: you already invited them (invite ${o.id}, ${o.state})`;
    case 'refused':
      return `${who}: not invited: ${o.reason ?? 'refused'}`;
  }
}

/** The readable body: one line per invitee, in the order of the request. */
export function requestResultText(outcomes: readonly InviteeOutcome[], site: string): string {
  return [`Your invite request on ${site}:`, ...outcomes.map((o) => `• ${line(o)}`)].join('\n');
}
