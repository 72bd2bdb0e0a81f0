/**
 * Invite requests carried in presence (contract: "Invite requests carried in presence"). A client
 * puts `<invite-request xmlns='urn:xmpp-invites:0'>` in its presence; every invitee becomes an
 * invite from the sender, through the one InviteService (approval, duplicates, opt-outs and limits
 * as for every door). Clients resend their presence on every status change, so each request is
 * processed once per sender, ever: the request's key is recorded in the same transaction as the
 * invites it makes, and a request whose key is already there (or whose insert loses the primary
 * key race) is a replay that creates and sends nothing.
 *
 * The XMPP adapter (src/handlers/presence.ts) reads the element into a `RequestDraft`; the rules
 * from there on live here.
 */
import { createHash } from 'node:crypto';
import { isInviteError } from '../errors';
import { parseEmailAddress } from './email-address';
import type { InviteService } from './invites';
import type { Limits } from './limits';
import { parseBareJid } from './jid';
import type { NoticeQueue } from './notices';
import type { Clock } from './ports';
import type { RoomRef } from './invites';
import type { Actor } from './types';

/** One `<invitee/>` as sent: attributes present or not, values untouched. */
export interface RequestedInvitee {
  email?: string;
  jid?: string;
  name?: string;
}

/** What the adapter read from the element, before any rule is applied. */
export interface RequestDraft {
  /** the `id` attribute, when set and not empty */
  id?: string;
  invitees: RequestedInvitee[];
  /** the text of every `<message/>` child */
  messages: string[];
  /** the `jid` of every `<room/>` child (null: the attribute is missing) */
  rooms?: (string | null)[];
  /** names of child elements that are neither `<invitee/>` nor `<message/>` of the namespace */
  unknown: string[];
}

/** A structurally sound request: 1..max invitees with exactly one address each, at most one message. */
export interface InviteRequest {
  id?: string;
  invitees: ({ email: string; name?: string } | { jid: string; name?: string })[];
  message?: string;
  /** rooms every invitee is invited to (`<room jid='…'/>`), as sent */
  rooms?: string[];
}

export interface RequestRules {
  /** presence.max_invitees */
  maxInvitees: number;
  /** presence.max_message_length, in characters (Unicode code points) */
  maxMessageLength: number;
  /** rooms.max_per_invite */
  maxRooms?: number;
}

/**
 * The structural checks: the only faults answered with a presence error (`bad-request`). A bad
 * address is not one of them: that invitee is refused and the others proceed.
 */
export function checkRequest(draft: RequestDraft, rules: RequestRules): { request: InviteRequest } | { fault: string } {
  if (draft.unknown.length > 0) return { fault: `Unknown element <${draft.unknown[0]}/> in the invite request` };
  if (draft.invitees.length === 0) return { fault: 'An invite request names at least one invitee' };
  if (draft.invitees.length > rules.maxInvitees) {
    return { fault: `An invite request names at most ${rules.maxInvitees} invitees (this one names ${draft.invitees.length})` };
  }
  if (draft.messages.length > 1) return { fault: 'An invite request carries at most one message' };
  const invitees: InviteRequest['invitees'] = [];
  for (const i of draft.invitees) {
    if ((i.email === undefined) === (i.jid === undefined)) return { fault: 'Each invitee has either an email or a jid attribute' };
    const name = i.name === undefined ? {} : { name: i.name };
    invitees.push(i.email !== undefined ? { email: i.email, ...name } : { jid: i.jid!, ...name });
  }
  const message = draft.messages.length === 1 ? draft.messages[0] : undefined;
  if (message !== undefined && [...message].length > rules.maxMessageLength) {
    return { fault: `The message is longer than ${rules.maxMessageLength} characters` };
  }
  const rooms = draft.rooms ?? [];
  if (rooms.some((r) => r === null || r.trim() === '')) return { fault: 'Each <room/> has a jid attribute' };
  if (rules.maxRooms !== undefined && rooms.length > rules.maxRooms) return { fault: `An invite request names at most ${rules.maxRooms} rooms` };
  return {
    request: {
      ...(draft.id !== undefined ? { id: draft.id } : {}),
      invitees,
      ...(message !== undefined ? { message } : {}),
      ...(rooms.length ? { rooms: rooms as string[] } : {}),
    },
  };
}

/**
 * The canonical form hashed when the client sets no `id`: the invitees sorted (each as its address
 * kind, address and name, exactly as sent), then the message without the white space around it.
 * Two presences with the same invitees in another order, or with the message pretty-printed
 * differently at its ends, are the same request; anything else makes another one.
 */
export function canonicalForm(request: InviteRequest): string {
  const invitees = request.invitees
    .map((i) => JSON.stringify('email' in i ? ['email', i.email, i.name ?? null] : ['jid', i.jid, i.name ?? null]))
    // Code unit order, not locale order: the same on every machine.
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const message = request.message?.trim() || null;
  // Rooms (sorted) only when there are some, so that the identity of a request without rooms stays as it was.
  const rooms = request.rooms?.length ? `\n${JSON.stringify([...request.rooms].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))}` : '';
  return `[${invitees.join(',')}]\n${JSON.stringify(message)}${rooms}`;
}

/** Longest `id` kept as it is in the database; longer ones are stored hashed (still one per id). */
const MAX_PLAIN_ID = 128;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The request's identity for its sender: `id:` and the client's id, or `sha256:` and the hash of the
 * canonical form. The prefixes keep a client id from ever colliding with a hash.
 */
export function requestKey(request: InviteRequest): string {
  if (request.id !== undefined) return request.id.length <= MAX_PLAIN_ID ? `id:${request.id}` : `id-sha256:${sha256(request.id)}`;
  return `sha256:${sha256(canonicalForm(request))}`;
}

export type InviteeStatus = 'pending' | 'open' | 'duplicate' | 'refused';

/** One invitee's outcome, as the acknowledgement carries it. */
export interface InviteeOutcome {
  /** the address exactly as sent */
  email?: string;
  jid?: string;
  status: InviteeStatus;
  /** the invite created, or for a duplicate the existing one */
  id?: string;
  /** for a duplicate: the existing invite's state */
  state?: string;
  /** for a refusal: why */
  reason?: string;
}

/** The records of requests already processed, in the database of the invites. */
export interface RequestStore {
  /** One write transaction, shared with the InviteService's store (nested calls join it). */
  transaction<T>(fn: () => T): T;
  seen(sender: string, key: string): boolean;
  /** false when (sender, key) is already recorded: the request is a replay */
  record(sender: string, key: string, at: number, outcomes: InviteeOutcome[]): boolean;
}

export type Submitted = { replay: true } | { replay: false; key: string; outcomes: InviteeOutcome[] };

export interface RequestPolicy {
  /** invites.allow_user_invites: when false, user invites are contact-only and e-mail is for admins */
  allowUserInvites: boolean;
}

/** Thrown inside the transaction when the request's key is taken: rolls back whatever it made. */
class Replay extends Error {}

export interface InviteRequestsDeps {
  store: RequestStore;
  invites: InviteService;
  /** where the acknowledgement to the sender is queued */
  notices: NoticeQueue;
  policy: RequestPolicy;
  clock?: Clock;
  /** invite_requests_per_minute (checked once the request is known not to be a replay) */
  limits?: Limits;
}

export class InviteRequests {
  private readonly store: RequestStore;
  private readonly invites: InviteService;
  private readonly notices: NoticeQueue;
  private readonly policy: RequestPolicy;
  private readonly clock: Clock;
  private readonly limits: Limits | undefined;

  constructor(deps: InviteRequestsDeps) {
    this.store = deps.store;
    this.invites = deps.invites;
    this.notices = deps.notices;
    this.policy = deps.policy;
    this.clock = deps.clock ?? Date.now;
    this.limits = deps.limits;
  }

  /**
   * Processes the request of `actor` (a local user) sent from the full JID `from`: once ever per
   * sender and key. A new request makes its invites and queues one acknowledgement to `from`, all in
   * one transaction; a replay changes nothing.
   */
  /** Whether this sender's request was processed already (a replay changes nothing). */
  isReplay(actor: Actor & { kind: 'user' }, request: InviteRequest): boolean {
    return this.store.seen(actor.jid, requestKey(request));
  }

  /**
   * `rooms`: the request's rooms, checked by the adapter with the MUC service (the sender may
   * invite to each): JID invitees get a `room` invite to them, e-mail invitees an account invite
   * carrying them.
   */
  submit(actor: Actor & { kind: 'user' }, from: string, request: InviteRequest, rooms: readonly RoomRef[] = []): Submitted {
    const key = requestKey(request);
    try {
      return this.store.transaction(() => {
        if (this.store.seen(actor.jid, key)) throw new Replay();
        // Replays are free (clients resend presence on every status change); new requests count.
        this.limits?.checkInviteRequest(actor, actor.jid, this.clock());
        const note = request.message?.trim() || undefined;
        const outcomes = request.invitees.map((invitee) => this.#invite(actor, invitee, note, rooms));
        if (!this.store.record(actor.jid, key, this.clock(), outcomes)) throw new Replay();
        this.notices.enqueue({
          channel: 'xmpp',
          kind: 'request-result',
          // The contract: "a message to the sender's full JID".
          recipient: from,
          inviteIds: [...new Set(outcomes.flatMap((o) => (o.id ? [o.id] : [])))],
          params: { result: JSON.stringify(outcomes), request: request.id ?? null },
        });
        return { replay: false as const, key, outcomes };
      });
    } catch (err) {
      if (err instanceof Replay) return { replay: true };
      throw err;
    }
  }

  /** One invitee: an invite, a duplicate of an existing one, or a refusal with its reason. */
  #invite(actor: Actor & { kind: 'user' }, invitee: InviteRequest['invitees'][number], note: string | undefined, rooms: readonly RoomRef[]): InviteeOutcome {
    const echo = 'email' in invitee ? { email: invitee.email } : { jid: invitee.jid };
    const refused = (reason: string): InviteeOutcome => ({ ...echo, status: 'refused', reason });
    let target: { email: string } | { jid: string };
    if ('email' in invitee) {
      const email = parseEmailAddress(invitee.email);
      if (email === undefined) return refused('Not a valid e-mail address: give one address such as bob@example.org');
      // Contract: "when allow_user_invites is false, … invites by e-mail are refused for non-admins".
      if (!this.policy.allowUserInvites && !actor.isAdmin) return refused('Only admins may invite by e-mail on this server');
      target = { email };
    } else {
      const jid = parseBareJid(invitee.jid);
      if (jid === undefined) return refused('Not a valid JID');
      // A server or a component cannot be anybody's contact.
      if (jid.local === null) return refused('Not the address of a person: give a JID such as carol@example.org');
      const bare = `${jid.local}@${jid.domain}`;
      if (bare === actor.jid) return refused('You cannot invite yourself');
      target = { jid: bare };
    }
    try {
      const { invite } = this.invites.create(actor, {
        // contact-account, or contact where user invites may not create accounts (admins excepted);
        // with rooms, a JID invitee (an account already) gets a room invitation.
        kind: rooms.length && 'jid' in target ? 'room' : this.invites.newInviteKind(actor),
        ...(rooms.length ? { rooms } : {}),
        source: 'presence',
        ...target,
        ...(invitee.name !== undefined && invitee.name.trim() !== '' ? { name: invitee.name.trim() } : {}),
        ...(note !== undefined ? { note } : {}),
      });
      return { ...echo, status: invite.state === 'pending' ? 'pending' : 'open', id: invite.id };
    } catch (err) {
      if (!isInviteError(err)) throw err;
      if (err.code === 'duplicate') return { ...echo, status: 'duplicate', id: err.detail?.id, state: err.detail?.state };
      // Opt-outs, and the limits (InviteError 'limit-reached' from InviteService.create, with a
      // text naming the limit and when it frees), refuse this invitee only: the others proceed.
      return refused(err.message);
    }
  }
}
