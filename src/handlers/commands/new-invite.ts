/**
 * "New Invite" (XEP-0401 §3.2, node urn:xmpp:invite#invite): any local user, one stage. The
 * invite makes the holder the user's contact and, where user invites may create accounts, lets
 * them register (after an admin's approval when the policy asks for it).
 */
import type { CommandDef } from '../../xmpp/adhoc';
import { invitationForm } from '../../xmpp/builders';
import { NODES } from '../../xmpp/ns';
import { actorOf, type Services } from '../services';

export const PENDING_NOTE =
  'An admin must approve this invite before it can create an account. Until then the link adds you as a contact; ' +
  'once approved, the same link also offers registration, and you will be told.';

export function newInviteCommand({ invites, commit }: Services): CommandDef {
  return {
    node: NODES.newInvite,
    name: 'New Invite',
    allowed: (req) => req.isLocal,
    async start(req) {
      const actor = actorOf(req);
      // The most frequent write of all: committed together with the others of the same turn.
      const { invite, links } = await commit.run(() => invites.create(actor, { kind: invites.newInviteKind(actor), source: 'command' }));
      return {
        status: 'completed',
        form: invitationForm(links, invite.expiresAt),
        notes: invite.state === 'pending' ? [{ type: 'info', text: PENDING_NOTE }] : [],
      };
    },
  };
}
