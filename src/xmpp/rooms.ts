/**
 * The component as a client of the server's MUC service (`rooms.service`): lists its rooms, reads
 * owner/admin lists, grants membership and sends XEP-0249 direct invitations. Every request goes
 * over the component's connection, which matches a reply by id and by the JID it was sent to.
 *
 * The component must be an admin of the service (Prosody: `admins` of the MUC Component; ejabberd:
 * mod_muc `access_admin`): both servers then treat it as an owner of every room. checkRights tries
 * that on a room of the service at connect.
 *
 * Expected failures are values (RoomResult): `item-not-found` (no such room), `forbidden` (no
 * rights), `refused` (another definite error), `unclear` (timeout, link lost).
 *
 * References: https://xmpp.org/extensions/xep-0045.html §6.5 (discovering rooms), §9.3 (granting
 * membership), §9.5 (member list), §9.8 (admin list), §10.5 (owner list);
 * https://xmpp.org/extensions/xep-0249.html §2
 */
import { formatBareJid, normalizeBareJid, parseBareJid } from '../domain/jid';
import {
  atLeast,
  mayInviteTo,
  type Affiliation,
  type MemberOutcome,
  type RightsCheck,
  type RoomError,
  type RoomInfo,
  type RoomManagers,
  type RoomResult,
  type RoomsPort,
} from '../domain/rooms';
import { cleanText } from '../domain/text';
import { NotConnectedError, RequestTimeoutError, StanzaError, StanzaRejectedError } from './connection';
import { NS } from './ns';
import { xml, type Element } from './xml';

export interface RoomsDeps {
  /** the MUC service's JID */
  service: string;
  /** the component's JID (the `from` of the invitations) */
  component: string;
  /** sends an IQ and resolves with its result (ComponentConnection.request) */
  request: (iq: Element, timeoutMs?: number) => Promise<Element>;
  /** sends a stanza (ComponentConnection.send) */
  send: (el: Element) => Promise<void>;
  /** how long to wait for an answer (default 10 s) */
  timeoutMs?: number;
}

/** The affiliation lists a JID may be on (highest first); on none of them, it is `none`. */
const LISTS = ['owner', 'admin', 'member', 'outcast'] as const;

/** How ejabberd ends a room's name in its service's disco#items. */
const OCCUPANT_COUNT = / \(\d+\)$/;

/** Conditions that mean "you may not": the service does not count the component as an admin. */
const FORBIDDEN = new Set(['forbidden', 'not-allowed', 'not-authorized']);

const ok = <T>(value: T): RoomResult<T> => ({ ok: true, value });
const fail = (kind: RoomError['kind'], reason: string): { ok: false; error: RoomError } => ({ ok: false, error: { kind, reason } });

/** XEP-0249 §2: `<message to='BARE'><x xmlns='jabber:x:conference' jid='ROOM' reason='…'/></message>`. */
export function directInvitation(from: string, to: string, room: string, reason?: string): Element {
  const text = reason === undefined ? '' : cleanText(reason).trim();
  return xml('message', { from, to }, xml('x', { xmlns: NS.conference, jid: room, ...(text ? { reason: text } : {}) }));
}

export class MucRooms implements RoomsPort {
  readonly service: string;
  readonly #component: string;
  readonly #request: RoomsDeps['request'];
  readonly #send: RoomsDeps['send'];
  readonly #timeoutMs: number;

  constructor(deps: RoomsDeps) {
    this.service = deps.service.toLowerCase();
    this.#component = deps.component;
    this.#request = deps.request;
    this.#send = deps.send;
    this.#timeoutMs = deps.timeoutMs ?? 10_000;
  }

  async listRooms(): Promise<RoomResult<RoomInfo[]>> {
    const reply = await this.#ask(xml('iq', { type: 'get', to: this.service }, xml('query', { xmlns: NS.discoItems })));
    if (!reply.ok) return reply;
    const rooms: RoomInfo[] = [];
    for (const item of reply.value.getChild('query', NS.discoItems)?.getChildren('item') ?? []) {
      const jid = this.#roomJid(item.attrs.jid);
      if (!jid) continue;
      const name = typeof item.attrs.name === 'string' && item.attrs.name.trim() ? cleanText(item.attrs.name).trim() : jid.slice(0, jid.indexOf('@'));
      rooms.push({ jid, name });
    }
    // ejabberd lists a room as "Title (N)", N the number of occupants at that moment: the title
    // proper is in the room's disco#info identity (one question per such room, all at once).
    await Promise.all(
      rooms
        .filter((r) => OCCUPANT_COUNT.test(r.name))
        .map(async (r) => {
          r.name = (await this.#title(r.jid)) ?? r.name;
        }),
    );
    return ok(rooms);
  }

  /** The name in a room's disco#info identity (XEP-0045 §6.4), if it gives one. */
  async #title(room: string): Promise<string | undefined> {
    const reply = await this.#ask(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })));
    if (!reply.ok) return undefined;
    const identity = reply.value
      .getChild('query', NS.discoInfo)
      ?.getChildren('identity')
      .find((i) => i.attrs.category === 'conference' && typeof i.attrs.name === 'string' && i.attrs.name.trim());
    return identity ? cleanText(String(identity.attrs.name)).trim() : undefined;
  }

  async managers(room: string): Promise<RoomResult<RoomManagers>> {
    const jid = this.#roomJid(room);
    if (!jid) return fail('item-not-found', `${room} is not a room of ${this.service}`);
    const [owners, admins] = await Promise.all([this.#list(jid, 'owner'), this.#list(jid, 'admin')]);
    if (!owners.ok) return owners;
    if (!admins.ok) return admins;
    return ok({ owners: owners.value, admins: admins.value });
  }

  async affiliation(room: string, bare: string): Promise<RoomResult<Affiliation>> {
    const jid = this.#roomJid(room);
    if (!jid) return fail('item-not-found', `${room} is not a room of ${this.service}`);
    const who = normalizeBareJid(bare);
    if (!who) return fail('refused', `${bare} is not a JID`);
    const lists = await Promise.all(LISTS.map((a) => this.#list(jid, a)));
    for (const [i, list] of lists.entries()) {
      if (!list.ok) return list;
      if (list.value.includes(who)) return ok(LISTS[i]);
    }
    return ok('none');
  }

  async mayInvite(room: string, bare: string, opts: { siteAdmin: boolean }): Promise<RoomResult<boolean>> {
    // Contract: the site's admins may invite to every room of the service, and only of it.
    if (!this.#roomJid(room)) return ok(false);
    if (opts.siteAdmin) return ok(true);
    const managers = await this.managers(room);
    if (!managers.ok) return managers;
    const who = normalizeBareJid(bare);
    return ok(who !== undefined && mayInviteTo(who, managers.value, false));
  }

  async makeMember(room: string, bare: string): Promise<RoomResult<MemberOutcome>> {
    const jid = this.#roomJid(room);
    if (!jid) return fail('item-not-found', `${room} is not a room of ${this.service}`);
    const who = parseBareJid(bare);
    if (!who || who.local === null) return fail('refused', `${bare} is not a user's JID`);
    // Contract: "unless it already has an affiliation at least as high" (an admin stays an admin;
    // an outcast's ban is lifted, as the affiliation is lower).
    const current = await this.affiliation(jid, formatBareJid(who));
    if (!current.ok) return current;
    if (atLeast(current.value, 'member')) return ok({ kind: 'already', affiliation: current.value as 'owner' | 'admin' | 'member' });
    const set = await this.#ask(
      xml('iq', { type: 'set', to: jid }, xml('query', { xmlns: NS.mucAdmin }, xml('item', { affiliation: 'member', jid: formatBareJid(who) }))),
    );
    if (!set.ok) return set;
    return ok({ kind: 'made' });
  }

  async sendInvitation(room: string, bare: string, reason?: string): Promise<RoomResult<void>> {
    const jid = this.#roomJid(room);
    if (!jid) return fail('item-not-found', `${room} is not a room of ${this.service}`);
    // XEP-0249 §2: the invitation goes to the invitee's bare JID, so that every client of theirs may offer it.
    try {
      await this.#send(directInvitation(this.#component, bare, jid, reason));
      return ok(undefined);
    } catch (err) {
      return mapError(err);
    }
  }

  async checkRights(): Promise<RightsCheck> {
    const rooms = await this.listRooms();
    if (!rooms.ok) {
      return rooms.error.kind === 'forbidden'
        ? { kind: 'missing', room: this.service, reason: rooms.error.reason }
        : { kind: 'unknown', reason: `${this.service} did not list its rooms: ${rooms.error.reason}` };
    }
    const room = rooms.value[0]?.jid;
    if (!room) return { kind: 'unknown', reason: `${this.service} lists no room to try the rights on` };
    // Reading the owner list needs an owner's rights: a service admin has them in every room.
    const owners = await this.#list(room, 'owner');
    if (owners.ok) return { kind: 'ok', room };
    if (owners.error.kind === 'forbidden') return { kind: 'missing', room, reason: owners.error.reason };
    return { kind: 'unknown', reason: `${room}: ${owners.error.reason}` };
  }

  /** XEP-0045 §9.5/§9.8/§10.5: the bare JIDs holding one affiliation in a room. */
  async #list(room: string, affiliation: (typeof LISTS)[number]): Promise<RoomResult<string[]>> {
    const reply = await this.#ask(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.mucAdmin }, xml('item', { affiliation }))));
    if (!reply.ok) return reply;
    const items = reply.value.getChild('query', NS.mucAdmin)?.getChildren('item') ?? [];
    const jids = items
      .filter((i) => i.attrs.affiliation === undefined || i.attrs.affiliation === affiliation)
      .map((i) => (typeof i.attrs.jid === 'string' ? parseBareJid(i.attrs.jid) : undefined))
      .filter((j) => j !== undefined)
      .map(formatBareJid);
    return ok([...new Set(jids)]);
  }

  async #ask(iq: Element): Promise<RoomResult<Element>> {
    try {
      return ok(await this.#request(iq, this.#timeoutMs));
    } catch (err) {
      return mapError(err);
    }
  }

  /** `local@service`, normalised; undefined when `room` is not a room of this service. */
  #roomJid(room: unknown): string | undefined {
    if (typeof room !== 'string') return undefined;
    const jid = parseBareJid(room);
    if (!jid || jid.local === null || jid.domain !== this.service || room.includes('/')) return undefined;
    return formatBareJid(jid);
  }
}

/** The one place a failure of the service becomes a RoomError; anything else is a bug and throws. */
function mapError(err: unknown): { ok: false; error: RoomError } {
  if (err instanceof StanzaError) {
    const reason = err.text ? `${err.condition}: ${err.text}` : err.condition;
    if (err.condition === 'item-not-found') return fail('item-not-found', reason);
    if (FORBIDDEN.has(err.condition)) return fail('forbidden', reason);
    return fail('refused', reason);
  }
  if (err instanceof RequestTimeoutError || err instanceof NotConnectedError) return fail('unclear', err.message);
  if (err instanceof StanzaRejectedError) return fail('refused', err.message);
  throw err;
}
