/**
 * "Create account invite" (XEP-0401 §3.3, node urn:xmpp:invite#create-account): admins only. The
 * form asks for an optional username (reserved for the invitee from approval until the invite
 * ends) and `roster-subscription` (the new account and the admin become contacts).
 */
import { isInviteError } from '../../errors';
import { USERNAME_RULE } from '../../domain/usernames';
import type { CommandDef, Note, Step } from '../../xmpp/adhoc';
import { invitationForm } from '../../xmpp/builders';
import { dataForm } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { actorOf, type Services } from '../services';

export const NO_BRIDGE_NOTE =
  'This server does not run the xmpp-invites bridge module, so standard clients cannot register with the xmpp: URI: ' +
  'share the landing page link instead.';
export const APPROVAL_NOTE = 'Another admin must approve this invite before it can create an account.';

function form(values: { username?: string; rosterSubscription?: boolean } = {}) {
  return dataForm({
    type: 'form',
    title: 'Create an account invite',
    instructions: 'Leave the username empty to let the invitee choose one.',
    fields: [
      { var: 'username', type: 'text-single', label: 'Username', desc: USERNAME_RULE, value: values.username },
      {
        var: 'roster-subscription',
        type: 'boolean',
        label: 'Add the new account to my contacts',
        value: values.rosterSubscription ?? false,
      },
    ],
  });
}

function ask(notes: Note[] = [], values?: { username?: string; rosterSubscription?: boolean }): Step {
  return { status: 'executing', form: form(values), notes, actions: { allowed: ['complete'], execute: 'complete' } };
}

export function createAccountCommand({ invites, config }: Services): CommandDef {
  return {
    node: NODES.createAccount,
    name: 'Create account invite',
    allowed: (req) => req.isLocal && req.isAdmin,
    start: () => ask(),
    next(req, { form }) {
      const username = form?.text('username');
      const rosterSubscription = form?.bool('roster-subscription');
      if (form?.text('roster-subscription') !== undefined && rosterSubscription === undefined) {
        return ask([{ type: 'error', text: 'roster-subscription is a boolean: 1 or 0' }], { username });
      }
      try {
        const { invite, links } = invites.create(actorOf(req), {
          kind: username ? 'account-locked' : 'account',
          username,
          rosterSubscription: rosterSubscription ?? false,
          source: 'create-account',
        });
        const notes: Note[] = [];
        if (invite.state === 'pending') notes.push({ type: 'info', text: APPROVAL_NOTE });
        if (!config.registration.serverBridge) notes.push({ type: 'info', text: NO_BRIDGE_NOTE });
        return { status: 'completed', form: invitationForm(links, invite.expiresAt), notes };
      } catch (err) {
        // A bad or reserved username is shown with the form again, so the admin can fix it.
        if (isInviteError(err) && (err.code === 'invalid-input' || err.code === 'conflict')) {
          return ask([{ type: 'error', text: err.message }], { username, rosterSubscription });
        }
        throw err;
      }
    },
  };
}
