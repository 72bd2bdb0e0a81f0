/**
 * "Invite by e-mail" (urn:xmpp-invites:0#send): local users, or admins only where user invites may
 * not create accounts. The form takes `emails` (text-multi, one address per line), `message`
 * (text-multi, put in each e-mail) and `expire` (list-single). Each valid address becomes its own
 * invite (kind contact-account, from the requester); each invalid line and each refusal (duplicate,
 * opted out, a limit) is listed back in a note. Approval applies: an invite that waits for an admin
 * is e-mailed once approved (the domain queues the e-mail then).
 */
import { addressLines, emailRefusal, expiryChoices, inviteEmails, MAX_ADDRESSES } from '../../domain/invite-by-email';
import type { CommandDef, Note, Step } from '../../xmpp/adhoc';
import type { Requester } from '../../xmpp/requester';
import { dataForm } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { actorOf, type Services } from '../services';
import { quote, refusalLines, tally } from './outcomes';
import type { RoomsPort } from '../../domain/rooms';
import { checkedRooms, roomsField } from './room-field';

export { durationValue, expiryChoices, MAX_ADDRESSES } from '../../domain/invite-by-email';

interface Values {
  rooms?: readonly string[];
  emails?: string;
  message?: string;
  expire?: string;
}

export function sendCommand({ invites, config }: Services, rooms?: RoomsPort): CommandDef {
  const choices = expiryChoices(config.invites.expiry);
  const defaultChoice = choices[choices.length - 1].value;
  const maxMessage = config.presence.maxMessageLength;

  async function ask(req: Requester, notes: Note[] = [], values: Values = {}): Promise<Step> {
    const waits = invites.needsApproval(actorOf(req), 'contact-account');
    // Rooms (rooms.service): those the requester may invite to, joined with the account.
    const roomField = await roomsField(rooms, req, { label: 'Rooms to join with the account' });
    return {
      status: 'executing',
      notes,
      form: dataForm({
        type: 'form',
        title: 'Invite by e-mail',
        // The rules are here, not only in field descriptions, which some clients show only on hover.
        instructions: [
          `One e-mail address per line, at most ${MAX_ADDRESSES}. Each address gets its own invitation to ${config.siteName} from you, ` +
            `with a link to create an account and become your contact.` +
            (waits ? ' An admin must approve the invites before they are e-mailed.' : ''),
          `The message is optional (at most ${maxMessage} characters) and goes into each e-mail.`,
        ],
        formType: NODES.send,
        fields: [
          { var: 'emails', type: 'text-multi', label: 'E-mail addresses', required: true, value: values.emails },
          {
            var: 'message',
            type: 'text-multi',
            label: 'Message',
            desc: `Optional, put in each e-mail (at most ${maxMessage} characters)`,
            value: values.message,
          },
          {
            var: 'expire',
            type: 'list-single',
            label: 'Valid for',
            value: values.expire ?? defaultChoice,
            options: choices.map((c) => ({ value: c.value, label: c.label })),
          },
          ...(roomField ? [{ ...roomField, value: values.rooms }] : []),
        ],
      }),
      actions: { allowed: ['complete'], execute: 'complete' },
    };
  }

  return {
    node: NODES.send,
    name: 'Invite by e-mail',
    // Contract: when user invites may not create accounts, invites by e-mail are for admins only.
    allowed: (req) => req.isLocal && (req.isAdmin || config.invites.allowUserInvites),
    start: (req) => ask(req),
    async next(req, { form }) {
      // text-multi: one <value/> per line, but some clients send one value holding line breaks.
      const lines = addressLines(form?.values('emails') ?? []);
      const message = (form?.texts('message') ?? []).join('\n').trim();
      const expire = form?.value('expire') ?? defaultChoice;
      const values: Values = { emails: lines.join('\n'), message, expire, rooms: form?.values('rooms') };
      const nobody = (why: string) => ask(req, [{ type: 'error', text: `Nobody was invited: ${why}` }], values);
      const choice = choices.find((c) => c.value === expire);
      if (!choice) return nobody(`${quote(expire)} is not a lifetime on offer; choose one of ${choices.map((c) => c.value).join(', ')}.`);
      if (lines.length === 0) return nobody('give at least one e-mail address.');
      if (lines.length > MAX_ADDRESSES) return nobody(`the list has ${lines.length} addresses; at most ${MAX_ADDRESSES} are taken at a time.`);
      const length = [...message].length;
      if (length > maxMessage) return nobody(`the message has ${length} characters; at most ${maxMessage} are allowed.`);

      const roomRefs = await checkedRooms(rooms, req, form?.values('rooms') ?? [], config.rooms.maxPerInvite);
      const made = inviteEmails(invites, actorOf(req), lines, { message, expiresIn: choice.ms, source: 'send', rooms: roomRefs });
      const refused = made.refused.map((r) => ({ item: r.line, error: r.error }));
      const refusals = refusalLines(refused, 'invited', emailRefusal);
      // Nothing came of it: the form again, with every refusal, so that the list can be fixed.
      if (made.done.length === 0) return ask(req, [{ type: 'error', text: ['Nobody was invited.', ...refusals].join('\n') }], values);

      const sent = made.done.filter((m) => m.invite.state === 'open').map((m) => m.address);
      const waiting = made.done.filter((m) => m.invite.state === 'pending').map((m) => m.address);
      const notes: Note[] = [{ type: refusals.length ? 'warn' : 'info', text: `${tally(made.done.length, lines.length, 'invited', ['address', 'addresses'])}.` }];
      if (sent.length) notes.push({ type: 'info', text: `E-mailed now: ${sent.join(', ')}.` });
      if (waiting.length) notes.push({ type: 'info', text: `E-mailed once an admin approves: ${waiting.join(', ')}.` });
      if (refusals.length) notes.push({ type: 'warn', text: refusals.join('\n') });
      return { status: 'completed', notes };
    },
  };
}
