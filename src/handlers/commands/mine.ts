/**
 * "My invites" (urn:xmpp-invites:0#mine, local users): the requester's invites with their state and
 * delivery, newest first; revoke or resend (a new link, the old one stops working) any of one's
 * own pending or open invites.
 */
import { isInviteError } from '../../errors';
import { shownState } from '../../domain/types';
import type { CommandDef, Note } from '../../xmpp/adhoc';
import { xepDateTime } from '../../xmpp/builders';
import { dataForm, type FieldSpec } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { StanzaFailure } from '../../xmpp/stanza-errors';
import { actorOf, type Services } from '../services';
import { listLine } from './describe';

const SHOWN = 50;

export function mineCommand({ invites }: Services): CommandDef {
  return {
    node: NODES.mine,
    name: 'My invites',
    allowed: (req) => req.isLocal,
    start(req) {
      const now = Date.now();
      const mine = invites.list({ inviter: req.bare, limit: SHOWN });
      if (mine.length === 0) return { status: 'completed', notes: [{ type: 'info', text: 'You have not invited anyone yet.' }] };
      const active = mine.filter((i) => ['pending', 'open'].includes(shownState(i, now)));
      const options = active.map((i) => ({ value: i.id, label: listLine(i, now) }));
      const total = invites.count({ inviter: req.bare });
      const fields: FieldSpec[] = [
        { type: 'fixed', value: total > SHOWN ? `Your ${SHOWN} newest invites of ${total}:` : `Your invites (${total}):` },
        ...mine.map((i): FieldSpec => ({ type: 'fixed', value: listLine(i, now) })),
      ];
      if (options.length > 0) {
        fields.push(
          { var: 'revoke', type: 'list-multi', label: 'Revoke', options },
          { var: 'resend', type: 'list-multi', label: 'New link (the old one stops working)', options },
        );
      }
      return {
        status: 'executing',
        form: dataForm({ type: 'form', title: 'My invites', formType: NODES.mine, fields }),
        actions: { allowed: ['complete'], execute: 'complete' },
      };
    },
    next(req, { form }) {
      const revoke = form?.all('revoke') ?? [];
      const resend = form?.all('resend') ?? [];
      const both = revoke.filter((id) => resend.includes(id));
      if (both.length) throw new StanzaFailure('bad-request', `An invite cannot be both revoked and resent: ${both.join(', ')}`);
      // "My invites" acts on the requester's own invites only, admins included: the ids come back
      // from the client and are checked against their owner (an admin revokes others' in All invites).
      const actor = { ...actorOf(req), isAdmin: false };
      const notes: Note[] = [];
      const links: FieldSpec[] = [];
      for (const id of revoke) {
        try {
          const { changed } = invites.revoke(actor, id);
          notes.push({ type: 'info', text: changed ? `${id} revoked.` : `${id} was already revoked.` });
        } catch (err) {
          if (!isInviteError(err)) throw err;
          notes.push({ type: 'warn', text: `${id}: ${err.message}` });
        }
      }
      for (const id of resend) {
        try {
          const { invite, links: l } = invites.resend(actor, id);
          notes.push({ type: 'info', text: `${id} has a new link: ${l.landingUrl}` });
          links.push(
            { var: `uri-${id}`, type: 'text-single', label: `Invite URI of ${id}`, value: l.uri },
            { var: `landing-url-${id}`, type: 'text-single', label: `Invite web page of ${id}`, value: l.landingUrl },
            { var: `expire-${id}`, type: 'text-single', label: `Valid until`, value: xepDateTime(invite.expiresAt) },
          );
        } catch (err) {
          if (!isInviteError(err)) throw err;
          notes.push({ type: 'warn', text: `${id}: ${err.message}` });
        }
      }
      if (notes.length === 0) notes.push({ type: 'info', text: 'Nothing changed.' });
      return {
        status: 'completed',
        notes,
        form: links.length ? dataForm({ type: 'result', title: 'New links', fields: links }) : undefined,
      };
    },
  };
}
