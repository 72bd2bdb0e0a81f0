/**
 * "Create account invite" (XEP-0401 §3.3, node urn:xmpp:invite#create-account): admins only. The
 * form asks for an optional username (reserved for the invitee from approval until the invite
 * ends) and `roster-subscription` (the new account and the admin become contacts).
 */
import { isInviteError } from '../../errors';
import { normalizeUsername, USERNAME_REPERTOIRE, USERNAME_RULE } from '../../domain/usernames';
import type { CommandDef, Note, Step } from '../../xmpp/adhoc';
import { invitationForm } from '../../xmpp/builders';
import { dataForm, type FieldSpec } from '../../xmpp/forms';
import type { Requester } from '../../xmpp/requester';
import type { RoomsPort } from '../../domain/rooms';
import { checkedRooms, roomsField } from './room-field';
import { NODES } from '../../xmpp/ns';
import { actorOf, type Services } from '../services';
import { quote } from './outcomes';

/**
 * Without the bridge module, the server cannot take a `register;preauth` URI, so the link to share
 * is the web page: said first, in words for someone who has never heard of a URI.
 */
export function shareLinkNote(landingUrl: string): string {
  return (
    `Share this link with the person you invite: ${landingUrl}\n` +
    'It opens a web page where they choose a username and a password, and which shows them the apps to use. ' +
    'The app link below does not work on this server (it needs the xmpp-invites server module).'
  );
}
export const APPROVAL_NOTE = 'The invite waits for another admin’s approval: until then it cannot create an account.';
const NOT_CREATED = 'No invite was created';

interface Values {
  username?: string;
  rosterSubscription?: boolean;
  rooms?: readonly string[];
}

function form(values: Values = {}, roomField?: FieldSpec) {
  return dataForm({
    type: 'form',
    title: 'Create an account invite',
    // The rule is here, not only in the field's description, which some clients show only on hover.
    instructions: ['Leave the username empty to let the invitee choose one.', `${USERNAME_RULE}.`],
    fields: [
      { var: 'username', type: 'text-single', label: 'Username', desc: USERNAME_RULE, value: values.username },
      {
        var: 'roster-subscription',
        type: 'boolean',
        label: 'Add the new account to my contacts',
        value: values.rosterSubscription ?? false,
      },
      ...(roomField ? [{ ...roomField, value: values.rooms }] : []),
    ],
  });
}

export function createAccountCommand({ invites, config }: Services, rooms?: RoomsPort): CommandDef {
  // Rooms (rooms.service): the admin may invite to every room of the service.
  async function ask(req: Requester, notes: Note[] = [], values?: Values): Promise<Step> {
    const roomField = await roomsField(rooms, req, { label: 'Rooms to join with the account' });
    return { status: 'executing', form: form(values, roomField), notes, actions: { allowed: ['complete'], execute: 'complete' } };
  }

  return {
    node: NODES.createAccount,
    name: 'Create account invite',
    allowed: (req) => req.isLocal && req.isAdmin,
    start: (req) => ask(req),
    async next(req, { form }) {
      const username = form?.value('username');
      const rosterSubscription = form?.bool('roster-subscription');
      const given = form?.value('roster-subscription');
      if (given !== undefined && rosterSubscription === undefined) {
        return ask(req, [{ type: 'error', text: `${NOT_CREATED}: ${quote(given)} is not yes or no for “Add the new account to my contacts” (use 1 or 0).` }], { username });
      }
      if (username !== undefined) {
        try {
          normalizeUsername(username);
        } catch {
          return ask(req, [{ type: 'error', text: `${NOT_CREATED}: ${quote(username)} is not a valid username: use ${USERNAME_REPERTOIRE}.` }], { username, rosterSubscription });
        }
      }
      const roomRefs = await checkedRooms(rooms, req, form?.values('rooms') ?? [], config.rooms.maxPerInvite);
      try {
        const { invite, links, roomsSkipped } = invites.create(actorOf(req), {
          kind: username ? 'account-locked' : 'account',
          username,
          rosterSubscription: rosterSubscription ?? false,
          source: 'create-account',
          rooms: roomRefs,
        });
        const notes: Note[] = [];
        for (const r of roomsSkipped) notes.push({ type: 'warn', text: `Not with the room ${r.room}: ${r.reason}` });
        if (invite.state === 'pending') notes.push({ type: 'info', text: APPROVAL_NOTE });
        const shareLanding = !config.registration.serverBridge;
        if (shareLanding) notes.push({ type: 'info', text: shareLinkNote(links.landingUrl) });
        return { status: 'completed', form: invitationForm(links, invite.expiresAt, { shareLanding }), notes };
      } catch (err) {
        // A reserved username (or another bad value) is shown with the form again, so the admin can fix it.
        if (isInviteError(err) && (err.code === 'invalid-input' || err.code === 'conflict')) {
          return ask(req, [{ type: 'error', text: `${NOT_CREATED}: ${err.message}` }], { username, rosterSubscription });
        }
        throw err;
      }
    },
  };
}
