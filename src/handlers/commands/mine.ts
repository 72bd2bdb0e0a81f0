/**
 * "My invites" (urn:xmpp-invites:0#mine, local users): the requester's invites with their state and
 * delivery, newest first; revoke or resend (a new link, the old one stops working) any of one's
 * own pending or open invites.
 */
import { shownState } from '../../domain/types';
import type { CommandDef } from '../../xmpp/adhoc';
import { xepDateTime } from '../../xmpp/builders';
import { dataForm, type FieldSpec } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { StanzaFailure } from '../../xmpp/stanza-errors';
import { actorOf, type Services } from '../services';
import { listLine, optionLabel } from '../../present/invite';
import { attempt, INVITES, nothingDone, outcomeNotes, refusalLines, tally } from './outcomes';

const SHOWN = 50;

export function mineCommand({ invites, config }: Services): CommandDef {
  const host = config.host;
  return {
    node: NODES.mine,
    name: 'My invites',
    allowed: (req) => req.isLocal,
    start(req) {
      const now = invites.now();
      const mine = invites.list({ inviter: req.bare, limit: SHOWN });
      if (mine.length === 0) return { status: 'completed', notes: [{ type: 'info', text: 'You have not invited anyone yet.' }] };
      const active = mine.filter((i) => ['pending', 'open'].includes(shownState(i, now)));
      const shown = { host, now, inviter: false };
      const options = active.map((i) => ({ value: i.id, label: optionLabel(i, shown) }));
      const total = invites.count({ inviter: req.bare });
      const fields: FieldSpec[] = [
        { type: 'fixed', value: total > SHOWN ? `Your ${SHOWN} newest invites of ${total}:` : `Your invites (${total}):` },
        ...mine.map((i): FieldSpec => ({ type: 'fixed', value: listLine(i, shown) })),
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
      const revoke = form?.values('revoke') ?? [];
      const resend = form?.values('resend') ?? [];
      const both = revoke.filter((id) => resend.includes(id));
      if (both.length) throw new StanzaFailure('bad-request', `An invite cannot be both revoked and resent: ${both.join(', ')}`);
      if (revoke.length + resend.length === 0) return { status: 'completed', notes: [{ type: 'info', text: 'Nothing changed: no invite was ticked.' }] };
      // "My invites" acts on the requester's own invites only, admins included: the ids come back
      // from the client and are checked against their owner (an admin revokes others' in All invites).
      const actor = { ...actorOf(req), isAdmin: false };
      const revoked = attempt(revoke, (id) => invites.revoke(actor, id));
      const resent = attempt(resend, (id) => invites.resend(actor, id));
      const refusals = [...refusalLines(revoked.refused, 'revoked'), ...refusalLines(resent.refused, 'given a new link')];
      if (revoked.done.length + resent.done.length === 0) nothingDone('changed', refusals);
      const links: FieldSpec[] = resent.done.flatMap(({ item: id, result: { invite, links: l } }): FieldSpec[] => [
        { var: `uri-${id}`, type: 'text-single', label: `Invite URI of ${id}`, value: l.uri },
        { var: `landing-url-${id}`, type: 'text-single', label: `Web page to share for ${id}`, value: l.landingUrl },
        { var: `expire-${id}`, type: 'text-single', label: `Valid until`, value: xepDateTime(invite.expiresAt) },
      ]);
      const changed = revoked.done.filter((d) => d.result.changed).length;
      const parts = [
        ...(revoke.length ? [tally(changed, revoke.length, 'revoked', INVITES)] : []),
        ...(resend.length ? [tally(resent.done.length, resend.length, 'given a new link (the old one no longer works)', revoke.length ? undefined : INVITES)] : []),
      ];
      const already = revoked.done.filter((d) => !d.result.changed).map((d) => `${d.item} was already revoked.`);
      return {
        status: 'completed',
        notes: outcomeNotes(`${parts.join(' and ')}.`, already, refusals),
        form: links.length ? dataForm({ type: 'result', title: 'New links', fields: links }) : undefined,
      };
    },
  };
}
