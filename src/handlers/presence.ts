/**
 * Presence at the component: invite requests carried in available presence (directed to the
 * component, or broadcast to it by a user subscribed both ways), and the component's side of
 * presence subscriptions with local users. Contract: "Invite requests carried in presence".
 *
 * - `<invite-request xmlns='urn:xmpp-invites:0'>` in an available presence from a local user is
 *   processed once per sender, ever (src/domain/requests.ts) and acknowledged by one message to
 *   the sender's full JID, through the outbox; a replay gets nothing.
 * - Only structural faults get a presence error (`bad-request`); a sender outside `host` gets
 *   `forbidden`; presences without the element, unavailable and error presences get nothing.
 * - Subscriptions follow src/domain/subscriptions.ts. Users of other domains get no subscription: a
 *   `subscribe` from outside `host` is answered `unsubscribed`, anything else from them is ignored.
 *
 * References: https://www.rfc-editor.org/rfc/rfc6121#section-3 (subscriptions), §4.3 (probes),
 * §4.6 (directed presence); https://www.rfc-editor.org/rfc/rfc6120#section-8.3 (stanza errors).
 */
import type { Config } from '../config';
import { isInviteError } from '../errors';
import { retryWhileBusy } from '../store/busy';
import { normalizeBareJid } from '../domain/jid';
import { cleanText } from '../domain/text';
import { checkRequest, type InviteRequests, type RequestDraft, type RequestedInvitee } from '../domain/requests';
import { onInbound, type Answer, type InboundType, type SubscriptionStore } from '../domain/subscriptions';
import { actorOf } from './services';
import { presenceError } from '../xmpp/builders';
import { NS } from '../xmpp/ns';
import type { Router, StanzaContext } from '../xmpp/router';
import { errorElement, StanzaFailure, type Condition, type ErrorType } from '../xmpp/stanza-errors';
import type { RoomRef } from '../domain/invites';
import type { RoomsPort } from '../domain/rooms';
import { checkedRooms } from './commands/room-field';
import { xml, type Element } from '../xmpp/xml';

export interface PresenceDeps {
  config: Config;
  requests: InviteRequests;
  subscriptions: SubscriptionStore;
  send: (el: Element) => Promise<void>;
  clock?: () => number;
  /** the MUC service, for `<room/>` children (absent: room invitations are off) */
  rooms?: RoomsPort;
}

const INBOUND: ReadonlySet<string> = new Set<InboundType>(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'probe', 'error']);

/**
 * Reads `<invite-request/>` into a draft, applying no rule: `<invitee/>` and `<message/>` children of
 * the namespace are collected with their attributes as present, anything else is listed as unknown.
 */
export function readInviteRequest(el: Element): RequestDraft {
  const draft: RequestDraft = { invitees: [], messages: [], unknown: [] };
  if (el.attrs.id) draft.id = el.attrs.id;
  for (const child of el.getChildElements()) {
    if (child.getNS() === NS.project && child.name === 'invitee') {
      const invitee: RequestedInvitee = {};
      for (const attr of ['email', 'jid', 'name'] as const) {
        if (typeof child.attrs[attr] === 'string') invitee[attr] = child.attrs[attr];
      }
      // Free text from people loses what XML and terminals must not carry (src/domain/text.ts).
      if (invitee.name !== undefined) invitee.name = cleanText(invitee.name);
      draft.invitees.push(invitee);
    } else if (child.getNS() === NS.project && child.name === 'message') {
      draft.messages.push(cleanText(child.getText()));
    } else if (child.getNS() === NS.project && child.name === 'room') {
      (draft.rooms ??= []).push(typeof child.attrs.jid === 'string' ? child.attrs.jid : null);
    } else {
      draft.unknown.push(child.name);
    }
  }
  return draft;
}

export class PresenceHandler {
  readonly #clock: () => number;

  constructor(private readonly deps: PresenceDeps) {
    this.#clock = deps.clock ?? Date.now;
  }

  register(router: Router): void {
    router.presence((ctx) => this.handle(ctx));
  }

  /** What disco#info advertises for this feature. */
  features(): string[] {
    return [NS.project];
  }

  async handle(ctx: StanzaContext): Promise<boolean> {
    const type = ctx.stanza.attrs.type;
    if (type === undefined) return this.#available(ctx);
    if (INBOUND.has(type)) {
      await this.#subscription(ctx, type as InboundType);
      return true;
    }
    // unavailable (and anything unknown): nothing to do.
    return false;
  }

  async #available(ctx: StanzaContext): Promise<boolean> {
    const elements = ctx.stanza.getChildren('invite-request', NS.project);
    if (elements.length === 0) return false;
    const { requester } = ctx;
    // Contract: "a sender outside `host` gets `forbidden`".
    if (!requester.isLocal) {
      await this.#error(ctx, 'forbidden', `Invite requests are for users of ${this.deps.config.host}`);
      return true;
    }
    if (elements.length > 1) {
      await this.#error(ctx, 'bad-request', 'A presence carries at most one invite request');
      return true;
    }
    const checked = checkRequest(readInviteRequest(elements[0]), {
      maxInvitees: this.deps.config.presence.maxInvitees,
      maxMessageLength: this.deps.config.presence.maxMessageLength,
      maxRooms: this.deps.config.rooms.maxPerInvite,
    });
    if ('fault' in checked) {
      ctx.logger.info({ fault: checked.fault }, 'malformed invite request refused');
      await this.#error(ctx, 'bad-request', checked.fault);
      return true;
    }
    // Rooms: who may invite to each is asked of the MUC service, once per new request (a replay,
    // which clients send on every status change, asks nothing).
    let rooms: RoomRef[] = [];
    const actor = actorOf(requester);
    if (checked.request.rooms?.length && !this.deps.requests.isReplay(actor, checked.request)) {
      try {
        rooms = await checkedRooms(this.deps.rooms, requester, checked.request.rooms, this.deps.config.rooms.maxPerInvite);
      } catch (err) {
        if (!(err instanceof StanzaFailure)) throw err;
        await this.#error(ctx, err.condition, err.text ?? err.condition, err.type);
        return true;
      }
    }
    let result;
    try {
      // One transaction; while another process holds the write lock it is tried again later,
      // leaving the event loop free (store/busy.ts).
      result = await retryWhileBusy(() => this.deps.requests.submit(actor, ctx.from, checked.request, rooms));
    } catch (err) {
      // Nothing was stored (the transaction rolled back): the client may send it again.
      if (isInviteError(err) && err.code === 'limit-reached') {
        // invite_requests_per_minute: the whole request waits; later it is new again.
        ctx.logger.info({ limit: err.detail?.limit }, 'invite request refused by a limit');
        await this.#error(ctx, 'policy-violation', err.message, 'wait');
        return true;
      }
      ctx.logger.error({ err }, 'invite request failed');
      await this.#error(ctx, 'internal-server-error', 'The invite request could not be processed; nothing was recorded');
      return true;
    }
    if (result.replay) {
      // Clients resend their presence on every status change: a replay creates and sends nothing.
      ctx.logger.debug('invite request already processed');
    } else {
      // Statuses and invite ids only: the addresses are the invitees' personal data.
      ctx.logger.info({ request: result.key, outcomes: result.outcomes.map((o) => ({ status: o.status, id: o.id })) }, 'invite request processed');
    }
    return true;
  }

  async #subscription(ctx: StanzaContext, type: InboundType): Promise<void> {
    const { bare, isLocal } = ctx.requester;
    const jid = normalizeBareJid(bare);
    if (jid === undefined || !isLocal) {
      // Only local users may subscribe: say no to others at once (an answer to their request, not
      // to a `subscribed`, `unsubscribed` or error presence, which are never answered).
      if (type === 'subscribe' && jid !== undefined) await this.#presence(bare, 'unsubscribed');
      return;
    }
    const current = this.deps.subscriptions.get(jid);
    const { next, send } = onInbound(type, current);
    if (next.subscription !== current.subscription || next.pendingOut !== current.pendingOut) {
      this.deps.subscriptions.put(jid, next, this.#clock());
      ctx.logger.info({ jid, subscription: next.subscription, pendingOut: next.pendingOut }, 'subscription changed');
    }
    for (const answer of send) await this.#presence(jid, answer);
  }

  #presence(to: string, answer: Answer): Promise<void> {
    const from = this.deps.config.component.domain;
    return this.deps.send(xml('presence', { from, to, type: answer === 'available' ? undefined : answer }));
  }

  #error(ctx: StanzaContext, condition: Condition, text: string, type?: ErrorType): Promise<void> {
    return this.deps.send(
      presenceError({ from: this.deps.config.component.domain, to: ctx.from, id: ctx.stanza.attrs.id, error: errorElement(condition, { text, type }) }),
    );
  }
}
