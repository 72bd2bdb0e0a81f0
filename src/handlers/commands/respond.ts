/**
 * "Answer room invitations" (urn:xmpp-invites:0#respond, local users): one form with one
 * list-single per open (invite, room) addressed to the requester's bare JID, from every inviter
 * (`var` = `ID/ROOMJID`; options accept (default), decline, later; labelled with the room's name,
 * the inviter and the date), and `message` (to every inviter answered). Accepting makes the
 * requester a member (RoomAnswers), and the result says for each room what became of it, with the
 * service's error when the membership failed.
 */
import { assertChoice, parsePairVar, type AnsweredRoom, type RoomAnswer, type RoomAnswers } from '../../domain/room-answers';
import { roomLabel } from '../../domain/types';
import { shortDate } from '../../present/invite';
import type { CommandDef, Note } from '../../xmpp/adhoc';
import { dataForm, type FieldSpec } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { StanzaFailure } from '../../xmpp/stanza-errors';
import type { Services } from '../services';
import { quote } from './outcomes';

const CHOICES = [
  { value: 'accept', label: 'Accept' },
  { value: 'decline', label: 'Decline' },
  { value: 'later', label: 'Decide later' },
];

function outcomeLine(a: AnsweredRoom): string {
  const room = a.roomName ? `${a.roomName} (${a.room})` : a.room;
  switch (a.outcome.kind) {
    case 'accepted':
      return `${room}: accepted; you are a member now, and your client has been sent an invitation to join.`;
    case 'declined':
      return `${room}: declined${a.inviter ? `; ${a.inviter} is told` : ''}.`;
    case 'later':
      return `${room}: left for later.`;
    case 'failed':
      return `${room}: accepted, but you could not be made a member: ${a.outcome.reason}.`;
    case 'pending':
      return `${room}: accepted; the room service has not answered yet, it is tried again (${a.outcome.reason}).`;
    case 'refused':
      return `${room}: not answered: ${a.outcome.reason}.`;
  }
}

export function respondCommand({ config }: Services, answers: RoomAnswers): CommandDef {
  const maxMessage = config.presence.maxMessageLength;
  return {
    node: NODES.respond,
    name: 'Answer room invitations',
    allowed: (req) => req.isLocal,
    start(req) {
      const open = answers.openFor(req.bare);
      if (open.length === 0) return { status: 'completed', notes: [{ type: 'info', text: 'No room invitation waits for your answer.' }] };
      const fields: FieldSpec[] = open.map(({ row, invite }) => ({
        var: `${row.inviteId}/${row.room}`,
        type: 'list-single',
        label: `${roomLabel(row)} (${row.room}), invited by ${invite.inviter ?? config.siteName} on ${shortDate(row.createdAt)} UTC`,
        value: 'accept',
        options: CHOICES,
      }));
      fields.push({ var: 'message', type: 'text-multi', label: 'Note to the inviters', desc: `Optional, sent to everyone whose invitation you answer (at most ${maxMessage} characters)` });
      return {
        status: 'executing',
        form: dataForm({
          type: 'form',
          title: 'Answer room invitations',
          instructions: `${open.length === 1 ? 'One room invitation waits' : `${open.length} room invitations wait`} for your answer: accept, decline, or decide later.`,
          formType: NODES.respond,
          fields,
        }),
        actions: { allowed: ['complete'], execute: 'complete' },
        state: open.map(({ row }) => `${row.inviteId}/${row.room}`),
      };
    },
    async next(req, { form, state }) {
      const pairs = Array.isArray(state) ? (state as unknown[]).filter((p): p is string => typeof p === 'string') : [];
      const message = (form?.texts('message') ?? []).join('\n').trim();
      if ([...message].length > maxMessage) throw new StanzaFailure('bad-request', `The note has ${[...message].length} characters; at most ${maxMessage} are allowed`);
      const chosen: RoomAnswer[] = [];
      for (const v of pairs) {
        const pair = parsePairVar(v)!;
        const value = form?.value(v) ?? 'accept';
        try {
          chosen.push({ ...pair, choice: assertChoice(value, v) });
        } catch {
          throw new StanzaFailure('bad-request', `${quote(value)} is not an answer for ${v}: choose accept, decline or later`);
        }
      }
      // A field the form did not offer is someone else's invitation, or none: refused, nothing recorded.
      for (const name of form?.fields.keys() ?? []) {
        if (name !== 'message' && name !== 'FORM_TYPE' && !pairs.includes(name) && parsePairVar(name)) {
          throw new StanzaFailure('bad-request', `${quote(name)} was not offered to you`);
        }
      }
      const answered = await answers.answer({ inviteeKey: req.bare, memberJid: req.bare }, chosen, message === '' ? null : message);
      const notes: Note[] = [{ type: answered.some((a) => a.outcome.kind === 'failed' || a.outcome.kind === 'refused') ? 'warn' : 'info', text: answered.map(outcomeLine).join('\n') }];
      return { status: 'completed', notes };
    },
  };
}
