/**
 * The component's side of the bridge protocol: requests from the Prosody module on `host`
 * (bridge/PROTOCOL.md). Accepted only from the bare `host`, and only for the component's own
 * invites (a token is only ever found among them).
 */
import type { Config } from '../config';
import type { InviteService } from '../domain/invites';
import { BRIDGE_CLAIM_LIFETIME_MS, type Registration } from '../domain/registration';
import type { AdhocCommands } from '../xmpp/adhoc';
import { requesterOf } from '../xmpp/requester';
import { xepDateTime } from '../xmpp/builders';
import { NS } from '../xmpp/ns';
import type { Router, StanzaContext } from '../xmpp/router';
import { StanzaFailure } from '../xmpp/stanza-errors';
import { xml, type Element } from '../xmpp/xml';

export interface BridgeDeps {
  config: Config;
  invites: InviteService;
  registration: Registration;
  adhoc: AdhocCommands;
  redeemedBy: (inviteId: string) => string[];
}

export class BridgeHandler {
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(private readonly deps: BridgeDeps) {}

  register(router: Router): void {
    const route = (type: 'get' | 'set', name: string, fn: (ctx: StanzaContext, el: Element) => Promise<Element | true> | Element | true) =>
      router.iq(type, name, NS.bridge, (ctx, el) => {
        this.#guard(ctx, el);
        return fn(ctx, el);
      });
    route('get', 'check', (_ctx, el) => this.check(el));
    route('set', 'claim', (ctx, el) => this.claim(ctx, el));
    route('set', 'settle', (ctx, el) => this.settle(ctx, el));
    route('set', 'subscription', (_ctx, el) => this.subscription(el));
    route('get', 'commands', (_ctx, el) => this.commands(el));
  }

  stop(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #guard(ctx: StanzaContext, el: Element): void {
    if (ctx.from !== this.deps.config.host) throw new StanzaFailure('forbidden', 'Bridge requests come from the server only');
    if (el.attrs.version !== '0') throw new StanzaFailure('feature-not-implemented', 'Bridge protocol version 0 only');
  }

  check(el: Element): Element {
    const token = required(el, 'token');
    const username = el.attrs.username ? el.attrs.username.toLowerCase() : undefined;
    const invite = this.deps.registration.usableInvite(token, { username });
    return xml('check', {
      xmlns: NS.bridge,
      version: '0',
      kind: invite.kind,
      username: invite.username ?? undefined,
      inviter: invite.inviter ?? undefined,
      expires: xepDateTime(invite.expiresAt),
    });
  }

  /** Asks the server whether the account exists first (claimNew): an existing one is `conflict`. */
  async claim(ctx: StanzaContext, el: Element): Promise<Element> {
    const claim = await this.deps.registration.claimNew({
      token: el.attrs.token || undefined,
      username: required(el, 'username'),
      door: 'bridge',
      ip: el.attrs.ip,
      requester: ctx.from,
      preauthed: el.attrs.preauth === 'true',
    });
    // Prosody fires no event when a registration fails after user-registering: a claim that is
    // not settled in time is asked about (account-exists) and settled by the component.
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.deps.registration.reconcile(claim.id);
    }, BRIDGE_CLAIM_LIFETIME_MS + 1_000);
    timer.unref();
    this.#timers.add(timer);
    ctx.logger.info({ claim: claim.id, username: claim.username }, 'bridge claim');
    return xml('claim', { xmlns: NS.bridge, version: '0', id: claim.id });
  }

  async settle(ctx: StanzaContext, el: Element): Promise<true> {
    const id = required(el, 'claim');
    const outcome = required(el, 'outcome');
    const claim = this.deps.registration.getClaim(id);
    if (!claim || claim.door !== 'bridge') throw new StanzaFailure('item-not-found', 'No such claim');
    if (outcome === 'done') {
      // A `done` may come after the claim lifetime, once the claim was released: the account
      // exists, so its use is spent again, or the overrun is counted where the use is gone.
      const late = claim.state === 'released';
      const result = await this.deps.registration.settleDoneLate(id, 'created at the server');
      if (result === 'overrun') {
        ctx.logger.error(
          { claim: id, invite: claim.inviteId, username: claim.username },
          'The server made an account for a released claim whose use went to another account: one use made two accounts',
        );
      } else if (late && result === 'spent') {
        ctx.logger.warn({ claim: id, invite: claim.inviteId, username: claim.username }, 'A late settle spent a released claim again');
      }
    } else if (outcome === 'released') this.deps.registration.release(id, 'released by the server');
    else throw new StanzaFailure('bad-request', 'outcome is done or released');
    return true;
  }

  subscription(el: Element): true {
    const token = required(el, 'token');
    const from = required(el, 'from');
    const to = required(el, 'to');
    this.deps.invites.useForSubscription(token, from, to, this.deps.redeemedBy);
    return true;
  }

  commands(el: Element): Element {
    // The commands of the user the server asks for (not of the sender, which is the server).
    const jid = required(el, 'for');
    const items = this.deps.adhoc.visibleTo(requesterOf(jid, this.deps.config));
    return xml('commands', { xmlns: NS.bridge, version: '0' }, ...items.map((c) => xml('item', { node: c.node, name: c.name })));
  }
}

function required(el: Element, attr: string): string {
  const value = el.attrs[attr];
  if (!value) throw new StanzaFailure('bad-request', `${el.name} needs ${attr}`);
  return value;
}
