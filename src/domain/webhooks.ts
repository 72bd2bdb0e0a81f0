/**
 * Webhooks: which changes are told to which endpoints, and the exact JSON each is told. An event
 * becomes one outbox row per subscribed endpoint (channel `webhook`), written inside the
 * transaction of the change, so an event is sent if and only if the change is stored; the row
 * holds the whole body, so every attempt sends the same id and bytes (at least once: a receiver
 * deduplicates by `id`). Signing and sending are src/outbox/webhook-transport.ts's.
 *
 * Adding an event: its name to WEBHOOK_EVENTS, and either a line in INVITE_EVENT_HOOKS (a change
 * the invite event log records) or one `webhooks.emit(type, data)` call in the transaction that
 * makes the change (e.g. a membership request verified).
 */
import { randomUUID } from 'node:crypto';
import type { NoticeQueue } from './notices';
import type { MembershipRequest } from './membership';
import type { EventType, Invite } from './types';

export const WEBHOOK_EVENTS = [
  'invite.created',
  'invite.approved',
  'invite.rejected',
  'invite.redeemed',
  'invite.declined',
  'invite.expired',
  'invite.bounced',
  'request.verified',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

/** Events of the invite event log that are webhook events. */
export const INVITE_EVENT_HOOKS: Partial<Record<EventType, WebhookEventType>> = {
  created: 'invite.created',
  approved: 'invite.approved',
  rejected: 'invite.rejected',
  redeemed: 'invite.redeemed',
  declined: 'invite.declined',
  expired: 'invite.expired',
  // a permanent bounce of the invitation e-mail (bounces.ts, through InviteService.recordBounce)
  bounced: 'invite.bounced',
};

export interface WebhookEndpoint {
  url: string;
  events: readonly WebhookEventType[];
}

/** What the outbox row of one delivery holds (its `params`). */
export interface WebhookParams {
  [key: string]: string;
  /** the event id, the same for every endpoint and every attempt */
  event: string;
  type: WebhookEventType;
  /** the exact body POSTed */
  body: string;
}

export class Webhooks {
  constructor(
    private readonly endpoints: readonly WebhookEndpoint[],
    private readonly notices: NoticeQueue,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Whether any endpoint takes this event (so that callers build its data only then). */
  wants(type: WebhookEventType): boolean {
    return this.endpoints.some((e) => e.events.includes(type));
  }

  /** Queues the event for every endpoint that takes it; called inside the change's transaction. */
  emit(type: WebhookEventType, data: Record<string, unknown>, inviteIds: string[] = []): void {
    const targets = this.endpoints.filter((e) => e.events.includes(type));
    if (targets.length === 0) return;
    const id = randomUUID();
    const body = JSON.stringify({ id, type, created: new Date(this.clock()).toISOString(), data });
    const params: WebhookParams = { event: id, type, body };
    for (const t of targets) this.notices.enqueue({ channel: 'webhook', kind: 'webhook', recipient: t.url, inviteIds, params });
  }
}

/** An invite as a webhook tells it: what `invite list --json` shows, never a token. */
export function inviteHookData(invite: Invite): Record<string, unknown> {
  return {
    id: invite.id,
    kind: invite.kind,
    state: invite.state,
    inviter: invite.inviter,
    source: invite.source,
    invitee_email: invite.inviteeEmail,
    invitee_jid: invite.inviteeJid,
    created: new Date(invite.createdAt).toISOString(),
    expires: new Date(invite.expiresAt).toISOString(),
    uses: invite.uses,
    max_uses: invite.maxUses,
  };
}

/** A membership request as a webhook tells it: what `request show --json` shows, never a code. */
export function requestHookData(request: MembershipRequest): Record<string, unknown> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: request.id,
    email: request.email,
    state: request.state,
    reason: request.reason,
    created: iso(request.createdAt),
    verified: iso(request.verifiedAt),
    decided: iso(request.decidedAt),
    decided_by: request.decidedBy,
    invite: request.inviteId,
  };
}
