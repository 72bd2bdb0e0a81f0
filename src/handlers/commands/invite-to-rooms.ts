/**
 * "Invite to rooms" (urn:xmpp-invites:0#invite-to-rooms, local users): invites people to rooms of
 * `rooms.service`. Fields: `jids` (jid-multi: existing accounts, local or remote, each gets a `room`
 * invite), `emails` (text-multi: people without an account, each gets an account-capable invite
 * carrying the rooms, under the usual approval rule), `rooms` (list-multi: the rooms the requester
 * may invite to; a room JID not listed is accepted when the requester may invite to it), `message`.
 *
 * Who may invite to a room is asked of the MUC service at every submission (its owners and admins,
 * and the site's admins): one room the requester may not invite to answers the whole submission
 * with `forbidden` naming it, and nothing is made. The result lists every invitee with its status.
 */
import { InviteError } from '../../errors';
import { parseEmailAddress } from '../../domain/email-address';
import { emailKey, normalizeBareJid } from '../../domain/jid';
import type { RoomsPort } from '../../domain/rooms';
import { checkedRooms, roomsField } from './room-field';
import { trimSpace } from '../../domain/text';
import type { CommandDef, Note, Step } from '../../xmpp/adhoc';
import { dataForm } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { StanzaFailure } from '../../xmpp/stanza-errors';
import type { Requester } from '../../xmpp/requester';
import { actorOf, type Services } from '../services';
import { attempt, quote } from './outcomes';
import { MAX_ADDRESSES } from './send';

function lines(values: readonly string[]): string[] {
  return values.flatMap((v) => v.split(/\r\n|\r|\n/)).map(trimSpace).filter((l) => l !== '');
}

/** Why an invitee was not invited, in a few words. */
function refusal(err: InviteError): string {
  if (err.code === 'duplicate') return `already has an open invitation${err.detail?.room ? ` to ${String(err.detail.room)}` : ''} (invite ${String(err.detail?.id ?? '')})`;
  if (err.code === 'opted-out') return 'asked not to be invited again';
  return err.message;
}

export function inviteToRoomsCommand({ invites, config }: Services, rooms: RoomsPort): CommandDef {
  const maxMessage = config.presence.maxMessageLength;

  async function ask(req: Requester, notes: Note[] = []): Promise<Step> {
    const roomField = (await roomsField(rooms, req, { required: true }))!;
    return {
      status: 'executing',
      notes,
      form: dataForm({
        type: 'form',
        title: 'Invite to rooms',
        instructions: [
          `Invite people to rooms of ${rooms.service} you own or administer. Each person answers each room (accept, decline, or later).`,
          `People with an XMPP account: their addresses under “XMPP addresses”. People without one: their e-mail addresses (one per line); they get an invitation to create an account on ${config.siteName}, with the rooms.`,
        ],
        formType: NODES.inviteToRooms,
        fields: [
          { var: 'jids', type: 'jid-multi', label: 'XMPP addresses' },
          { var: 'emails', type: 'text-multi', label: 'E-mail addresses' },
          roomField,
          { var: 'message', type: 'text-multi', label: 'Message', desc: `Optional (at most ${maxMessage} characters)` },
        ],
      }),
      actions: { allowed: ['complete'], execute: 'complete' },
    };
  }

  return {
    node: NODES.inviteToRooms,
    name: 'Invite to rooms',
    allowed: (req) => req.isLocal,
    start: (req) => ask(req),
    async next(req, { form }) {
      const jids = lines(form?.values('jids') ?? []);
      const emails = lines(form?.values('emails') ?? []);
      const message = (form?.texts('message') ?? []).join('\n').trim();
      if ((form?.values('rooms') ?? []).every((r) => r.trim() === '')) throw new StanzaFailure('bad-request', 'Choose at least one room');
      if (jids.length + emails.length === 0) throw new StanzaFailure('bad-request', 'Give at least one XMPP or e-mail address');
      if (jids.length + emails.length > MAX_ADDRESSES) throw new StanzaFailure('bad-request', `At most ${MAX_ADDRESSES} people at a time`);
      if ([...message].length > maxMessage) throw new StanzaFailure('bad-request', `The message has ${[...message].length} characters; at most ${maxMessage} are allowed`);
      const roomRefs = await checkedRooms(rooms, req, form?.values('rooms') ?? [], config.rooms.maxPerInvite);
      const actor = actorOf(req);
      const seen = new Set<string>();
      const note = message === '' ? undefined : message;
      const made = attempt([...jids.map((j) => `jid:${j}`), ...emails.map((e) => `email:${e}`)], (item) => {
        const isJid = item.startsWith('jid:');
        const value = item.slice(item.indexOf(':') + 1);
        if (isJid) {
          const jid = normalizeBareJid(value);
          if (!jid || !jid.includes('@')) throw new InviteError('invalid-input', 'not an XMPP address');
          if (seen.has(jid)) throw new InviteError('invalid-input', 'listed twice');
          seen.add(jid);
          return invites.create(actor, { kind: 'room', source: 'invite-to-rooms', jid, rooms: roomRefs, note });
        }
        const address = parseEmailAddress(value);
        if (address === undefined) throw new InviteError('invalid-input', 'not a single e-mail address');
        if (seen.has(emailKey(address))) throw new InviteError('invalid-input', 'listed twice');
        seen.add(emailKey(address));
        return invites.create(actor, { kind: 'contact-account', source: 'invite-to-rooms', email: address, rooms: roomRefs, note });
      });
      const name = (jid: string) => roomRefs.find((r) => r.jid === jid)?.name ?? jid;
      const statusLines = [
        ...made.done.map(({ item, result }) => {
          const who = item.slice(item.indexOf(':') + 1);
          const roomsText = result.rooms.map((r) => name(r.room)).join(', ');
          const status = result.invite.state === 'pending' ? 'pending (an admin must approve it first)' : 'invited';
          const skipped = result.roomsSkipped.map((s) => `; not to ${name(s.room)}: ${s.reason}`).join('');
          return `${who}: ${status} to ${roomsText} (invite ${result.invite.id})${skipped}`;
        }),
        ...made.refused.map(({ item, error }) => `${quote(item.slice(item.indexOf(':') + 1))}: not invited: ${refusal(error)}`),
      ];
      const n = made.done.length;
      const summary = `${n === made.asked ? n : `${n} of ${made.asked}`} ${made.asked === 1 ? 'person' : 'people'} invited.`;
      if (n === 0) {
        // Every one refused as a duplicate: the invitations exist already (RFC 6120 `conflict`).
        const condition = made.refused.every((r) => r.error.code === 'duplicate') ? 'conflict' : 'bad-request';
        throw new StanzaFailure(condition, [`Nobody was invited.`, ...statusLines].join('\n'));
      }
      return {
        status: 'completed',
        notes: [{ type: made.refused.length || made.done.some((d) => d.result.roomsSkipped.length) ? 'warn' : 'info', text: [summary, ...statusLines].join('\n') }],
      };
    },
  };
}
