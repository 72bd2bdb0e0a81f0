/**
 * The optional `rooms` field (list-multi) of #create-account and #send, and the check of what comes
 * back, shared with #invite-to-rooms: the options are the rooms the requester may invite to; a room
 * JID of the service that was not listed is accepted when the requester may invite to it; one the
 * requester may not invite to answers the whole submission with `forbidden`, and nothing is made.
 */
import { normalizeBareJid } from '../../domain/jid';
import type { RoomRef } from '../../domain/invites';
import { authoriseRooms, invitableRooms, type RoomInfo, type RoomsPort } from '../../domain/rooms';
import { trimSpace } from '../../domain/text';
import type { FieldSpec } from '../../xmpp/forms';
import type { Requester } from '../../xmpp/requester';
import { StanzaFailure } from '../../xmpp/stanza-errors';
import { quote } from './outcomes';

/** How a room reads as an option: "The Team (team@conference.example.com)". */
export function roomOption(r: RoomInfo): { value: string; label: string } {
  return { value: r.jid, label: r.name === r.jid.slice(0, r.jid.indexOf('@')) ? r.jid : `${r.name} (${r.jid})` };
}

/** The field, or none when the service lists no room the requester may invite to (or cannot be asked). */
export async function roomsField(rooms: RoomsPort | undefined, req: Requester, opts: { required?: boolean; label?: string } = {}): Promise<FieldSpec | undefined> {
  if (!rooms) return undefined;
  const offered = await invitableRooms(rooms, req.bare, req.isAdmin);
  if (!offered.ok) {
    if (opts.required) throw new StanzaFailure('service-unavailable', `The room service ${rooms.service} did not list its rooms: ${offered.error.reason}`);
    return undefined;
  }
  if (offered.value.length === 0 && !opts.required) return undefined;
  return { var: 'rooms', type: 'list-multi', label: opts.label ?? 'Rooms', required: opts.required, options: offered.value.map(roomOption) };
}

/**
 * The rooms submitted, each checked with the service (contract: "Anyone else gets forbidden for
 * that room"). Throws `bad-request` for a value that is not a room of the service or for too many,
 * `forbidden` naming the rooms the requester may not invite to, `remote-server-timeout` when the
 * service could not answer.
 */
export async function checkedRooms(rooms: RoomsPort | undefined, req: Requester, values: readonly string[], max: number): Promise<RoomRef[]> {
  const asked = [...new Set(values.map(trimSpace).filter((r) => r !== ''))];
  if (asked.length === 0) return [];
  if (!rooms) throw new StanzaFailure('bad-request', 'Room invitations are off on this site');
  if (asked.length > max) throw new StanzaFailure('bad-request', `At most ${max} rooms per invitation (rooms.max_per_invite)`);
  for (const room of asked) {
    const jid = normalizeBareJid(room);
    if (!jid || !jid.endsWith(`@${rooms.service}`)) throw new StanzaFailure('bad-request', `${quote(room)} is not a room of ${rooms.service}`);
  }
  const listed = await rooms.listRooms();
  const rights = await authoriseRooms(rooms, req.bare, req.isAdmin, asked, listed.ok ? listed.value : []);
  if (rights.forbidden.length) throw new StanzaFailure('forbidden', `Nobody was invited. ${rights.forbidden.map((f) => `${f.room}: ${f.reason}`).join('; ')}`);
  if (rights.unclear.length) {
    throw new StanzaFailure('remote-server-timeout', `Nobody was invited: the room service did not answer for ${rights.unclear.map((u) => u.room).join(', ')}; try again`);
  }
  return rights.allowed.map((r) => ({ jid: r.jid, name: r.name }));
}
