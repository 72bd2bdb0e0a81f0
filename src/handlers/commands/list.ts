/**
 * "All invites" (urn:xmpp-invites:0#list, admins): filter by state, inviter and invitee, see the
 * matching invites newest first, and revoke any of them.
 */
import { normalizeBareJid, emailKey } from '../../domain/jid';
import { SHOWN_STATES, shownState, type ShownState } from '../../domain/types';
import type { CommandDef, Note, Step } from '../../xmpp/adhoc';
import { dataForm, type FieldSpec } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { actorOf, type Services } from '../services';
import { listLine, optionLabel } from '../../present/invite';
import { attempt, INVITES, nothingDone, outcomeNotes, quote, refusalLines, tally } from './outcomes';

const SHOWN = 50;

/** Carried in the session's state: plain data (a type, not an interface, so the compiler checks it is JSON). */
type Filter = {
  state?: ShownState;
  inviter?: string;
  invitee?: string;
};

function filterForm(values: Filter = {}, notes: Note[] = []): Step {
  return {
    status: 'executing',
    notes,
    form: dataForm({
      type: 'form',
      title: 'All invites',
      instructions: 'Leave a filter empty to match everything.',
      formType: NODES.list,
      fields: [
        {
          var: 'state',
          type: 'list-single',
          label: 'State',
          value: values.state ?? 'any',
          options: [{ value: 'any', label: 'any' }, ...SHOWN_STATES.map((s) => ({ value: s, label: s }))],
        },
        { var: 'inviter', type: 'jid-single', label: 'Inviter', value: values.inviter },
        { var: 'invitee', type: 'text-single', label: 'Invitee (e-mail address or JID)', value: values.invitee },
      ],
    }),
    actions: { allowed: ['next'], execute: 'next' },
    state: { stage: 'filter' },
  };
}

export function listCommand({ invites, config }: Services): CommandDef {
  const host = config.host;
  return {
    node: NODES.list,
    name: 'All invites',
    allowed: (req) => req.isLocal && req.isAdmin,
    start: () => filterForm(),
    next(req, { action, form, state }) {
      const stage = (state as { stage: string; filter?: Filter }).stage;
      if (stage === 'filter' || action === 'prev') {
        if (action === 'prev') return filterForm((state as { filter?: Filter }).filter);
        const filter: Filter = {};
        const errors: Note[] = [];
        const st = form?.value('state');
        if (st && st !== 'any') {
          if ((SHOWN_STATES as readonly string[]).includes(st)) filter.state = st as ShownState;
          else errors.push({ type: 'error', text: `${quote(st)} is not a state: choose one of any, ${SHOWN_STATES.join(', ')}.` });
        }
        const inviter = form?.value('inviter');
        if (inviter) {
          const jid = normalizeBareJid(inviter);
          if (jid) filter.inviter = jid;
          else errors.push({ type: 'error', text: `${quote(inviter)} is not a JID: give an inviter as user@domain.` });
        }
        const invitee = form?.value('invitee');
        if (invitee) filter.invitee = normalizeBareJid(invitee) ?? emailKey(invitee);
        if (errors.length) return filterForm({ ...filter, inviter, invitee }, errors);
        const now = invites.now();
        const found = invites.list({ ...filter, limit: SHOWN });
        const total = invites.count(filter);
        const active = found.filter((i) => ['pending', 'open'].includes(shownState(i, now)));
        const shown = { host, now, inviter: true };
        const fields: FieldSpec[] = [
          { type: 'fixed', value: total > SHOWN ? `${total} invites match; the ${SHOWN} newest:` : `${total === 1 ? '1 invite matches' : `${total} invites match`}.` },
          ...found.map((i): FieldSpec => ({ type: 'fixed', value: listLine(i, shown) })),
        ];
        if (active.length) fields.push({ var: 'revoke', type: 'list-multi', label: 'Revoke', options: active.map((i) => ({ value: i.id, label: optionLabel(i, shown) })) });
        fields.push({ var: 'reason', type: 'text-single', label: 'Reason for revoking (kept in the log)' });
        return {
          status: 'executing',
          form: dataForm({ type: 'form', title: 'All invites', formType: NODES.list, fields }),
          actions: { allowed: ['prev', 'complete'], execute: 'complete' },
          state: { stage: 'results', filter },
        };
      }
      const actor = actorOf(req);
      const reason = form?.text('reason') ?? null;
      const ticked = form?.values('revoke') ?? [];
      if (ticked.length === 0) return { status: 'completed', notes: [{ type: 'info', text: 'Nothing was revoked: no invite was ticked.' }] };
      const revoked = attempt(ticked, (id) => invites.revoke(actor, id, reason));
      const refusals = refusalLines(revoked.refused, 'revoked');
      if (revoked.done.length === 0) nothingDone('revoked', refusals);
      const changed = revoked.done.filter((d) => d.result.changed);
      const already = revoked.done.filter((d) => !d.result.changed).map((d) => `${d.item} was already revoked.`);
      return { status: 'completed', notes: outcomeNotes(`${tally(changed.length, ticked.length, 'revoked', INVITES)}.`, already, refusals) };
    },
  };
}
