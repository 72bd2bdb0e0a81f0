/**
 * The component's own side of presence subscriptions with local users (RFC 6121 §3): the state is
 * the component's ("from": the user receives our presence; "to": we receive theirs), and each
 * inbound subscription presence gives the next state and what to send back. Pure: the presence
 * handler loads the record, applies this, stores the result and sends.
 *
 * The contract: "when a local user subscribes to the component, it answers `subscribed` and asks to
 * subscribe back …; it answers probes with its presence, and never answers a `subscribed`,
 * `unsubscribed` or error presence with anything but presence bookkeeping."
 *
 * References: https://www.rfc-editor.org/rfc/rfc6121#section-3.1.3 (inbound subscribe),
 * §3.1.6 (inbound subscribed), §3.2.3, §3.3.3 (inbound unsubscribe), §4.3.2 (probes).
 */

export type SubscriptionState = 'none' | 'from' | 'to' | 'both';

export interface SubscriptionRecord {
  subscription: SubscriptionState;
  /** we sent `subscribe` and wait for the user's answer */
  pendingOut: boolean;
}

export const NO_SUBSCRIPTION: SubscriptionRecord = { subscription: 'none', pendingOut: false };

/** Where the records live (src/store/requests-repo.ts). */
export interface SubscriptionStore {
  /** the record of a bare JID; NO_SUBSCRIPTION when there is none */
  get(jid: string): SubscriptionRecord;
  put(jid: string, record: SubscriptionRecord, at: number): void;
}

/** What the component sends back: presence types, `available` meaning a presence without a type. */
export type Answer = 'subscribed' | 'subscribe' | 'unsubscribed' | 'available' | 'unavailable';

export type InboundType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed' | 'probe' | 'error';

export function hasFrom(s: SubscriptionState): boolean {
  return s === 'from' || s === 'both';
}

export function hasTo(s: SubscriptionState): boolean {
  return s === 'to' || s === 'both';
}

function state(from: boolean, to: boolean): SubscriptionState {
  return from ? (to ? 'both' : 'from') : to ? 'to' : 'none';
}

/** The next record and the answers for an inbound presence of `type` from a local user. */
export function onInbound(type: InboundType, current: SubscriptionRecord): { next: SubscriptionRecord; send: Answer[] } {
  const from = hasFrom(current.subscription);
  const to = hasTo(current.subscription);
  switch (type) {
    case 'subscribe': {
      // Every local user may see the component: approve at once (again, if they ask again), send our
      // presence as a server does after an approval, and ask for theirs once, so that their broadcast
      // presence reaches us.
      const ask = !to && !current.pendingOut;
      return {
        next: { subscription: state(true, to), pendingOut: current.pendingOut || ask },
        send: ['subscribed', 'available', ...(ask ? (['subscribe'] as const) : [])],
      };
    }
    case 'subscribed':
      // §3.1.6: a `subscribed` we did not ask for is ignored.
      if (!current.pendingOut && !to) return { next: current, send: [] };
      return { next: { subscription: state(from, true), pendingOut: false }, send: [] };
    case 'unsubscribed':
      // They denied our request or cancelled our subscription: bookkeeping only.
      return { next: { subscription: state(from, false), pendingOut: false }, send: [] };
    case 'unsubscribe':
      // §3.3.3: they no longer want our presence; the last one they get says we are unavailable.
      return { next: { subscription: state(false, to), pendingOut: current.pendingOut }, send: from ? ['unavailable'] : [] };
    case 'probe':
      // §4.3.2: presence only to those subscribed to it; to anyone else an `unsubscribed`, which
      // lets their server correct a roster that says otherwise.
      return { next: current, send: from ? ['available'] : ['unsubscribed'] };
    case 'error':
      // Most likely our `subscribe` bounced: stop waiting for an answer, so a later subscribe asks again.
      return { next: { ...current, pendingOut: false }, send: [] };
  }
}
