/**
 * "Reset a password" (urn:xmpp-invites:0#reset, admins): a one-use link with which the holder of
 * an existing account sets a new password (src/domain/resets.ts). The form asks for the username;
 * the server is asked whether the account exists, and a link for a missing one is refused.
 */
import { isInviteError } from '../../errors';
import { ProvisionUnclear } from '../../domain/registration';
import { normalizeUsername, USERNAME_REPERTOIRE, USERNAME_RULE } from '../../domain/usernames';
import type { CommandDef, Note, Step } from '../../xmpp/adhoc';
import { dataForm } from '../../xmpp/forms';
import { NODES, NS } from '../../xmpp/ns';
import { actorOf, type Services } from '../services';
import { quote } from './outcomes';

const NOT_MADE = 'No reset link was made';

function ask(notes: Note[] = [], username?: string): Step {
  return {
    status: 'executing',
    form: dataForm({
      type: 'form',
      title: 'Reset a password',
      instructions: ['The link lets whoever holds it choose a new password for this account, once.', `${USERNAME_RULE}.`],
      fields: [{ var: 'username', type: 'text-single', label: 'Username', desc: USERNAME_RULE, value: username, required: true }],
    }),
    notes,
    actions: { allowed: ['complete'], execute: 'complete' },
  };
}

export function resetCommand({ resets, config }: Services): CommandDef {
  return {
    node: NODES.reset,
    name: 'Reset a password',
    // Offered only where the provisioner can set passwords.
    allowed: (req) => req.isLocal && req.isAdmin && resets?.setter !== undefined,
    start: () => ask(),
    async next(req, { form }) {
      const given = form?.value('username') ?? '';
      let username: string;
      try {
        username = normalizeUsername(given);
      } catch {
        return ask([{ type: 'error', text: `${NOT_MADE}: ${quote(given)} is not a valid username: use ${USERNAME_REPERTOIRE}.` }], given);
      }
      let exists: boolean;
      try {
        exists = await resets!.setter!.accountExists(username);
      } catch (err) {
        if (!(err instanceof ProvisionUnclear)) throw err;
        return ask([{ type: 'error', text: `${NOT_MADE}: the server cannot say now whether ${username}@${config.host} exists; try again in a minute.` }], username);
      }
      try {
        const { reset, links } = resets!.service.create(actorOf(req), username, exists);
        return {
          status: 'completed',
          form: dataForm({
            type: 'result',
            title: 'Password reset link',
            formType: NS.project,
            fields: [
              { var: 'landing-url', type: 'text-single', label: 'Link to give the account’s owner (one use)', value: links.landingUrl },
              { var: 'expire', type: 'text-single', label: 'Valid until (UTC)', value: new Date(reset.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z') },
            ],
          }),
          notes: [{ type: 'info', text: `Give this link to the owner of ${username}@${config.host} only: it sets a new password, once, until ${new Date(reset.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z')}.` }],
        };
      } catch (err) {
        if (isInviteError(err) && err.code === 'invalid-input') return ask([{ type: 'error', text: `${NOT_MADE}: ${err.message}` }], username);
        throw err;
      }
    },
  };
}
