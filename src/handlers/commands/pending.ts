/**
 * "Pending approvals" (urn:xmpp-invites:0#pending, admins): the approval queue, oldest first, a
 * page at a time. `approve` and `reject` are list-multi fields whose option values are invite ids;
 * `next` and `complete` both apply the current page's selection. Approval and rejection are
 * idempotent and race-safe in the domain: two admins at once make one approval and one delivery.
 */
import { isInviteError } from '../../errors';
import type { Invite } from '../../domain/types';
import type { CommandDef, Note, Requester, Step } from '../../xmpp/adhoc';
import { dataForm } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { StanzaFailure } from '../../xmpp/stanza-errors';
import { actorOf, type Services } from '../services';
import { approvalLabel } from './describe';

export const PAGE_SIZE = 20;

interface PageState {
  /** the last invite shown, for keyset paging */
  after?: { createdAt: number; id: string };
  approved: number;
  rejected: number;
}

export function pendingCommand({ invites }: Services): CommandDef {
  function page(state: PageState, notes: Note[]): Step {
    const filter = { state: 'pending' as const, oldestFirst: true, after: state.after };
    const list = invites.list({ ...filter, limit: PAGE_SIZE + 1 });
    if (list.length === 0) return finish(state, [...notes, { type: 'info', text: 'No invites wait for approval.' }]);
    const shown = list.slice(0, PAGE_SIZE);
    const more = list.length > PAGE_SIZE;
    const total = invites.count({ state: 'pending' });
    const options = shown.map((i: Invite) => ({ value: i.id, label: approvalLabel(i) }));
    const last = shown[shown.length - 1];
    return {
      status: 'executing',
      notes,
      form: dataForm({
        type: 'form',
        title: 'Pending approvals',
        instructions: `${total} invite(s) wait for approval${more ? `; showing the ${shown.length} oldest here, more on the next page` : ''}. Each inviter is told the outcome.`,
        formType: NODES.pending,
        fields: [
          { var: 'approve', type: 'list-multi', label: 'Approve', options },
          { var: 'reject', type: 'list-multi', label: 'Reject', options },
          { var: 'reason', type: 'text-single', label: 'Reason for the rejections (sent to the inviters)' },
        ],
      }),
      actions: more ? { allowed: ['next', 'complete'], execute: 'next' } : { allowed: ['complete'], execute: 'complete' },
      state: { ...state, after: { createdAt: last.createdAt, id: last.id } } satisfies PageState,
    };
  }

  function finish(state: PageState, notes: Note[]): Step {
    return {
      status: 'completed',
      notes: [...notes, { type: 'info', text: `Approved ${state.approved}, rejected ${state.rejected} in this session.` }],
    };
  }

  function apply(req: Requester, approve: readonly string[], reject: readonly string[], reason: string | null, state: PageState): Note[] {
    const both = approve.filter((id) => reject.includes(id));
    if (both.length) throw new StanzaFailure('bad-request', `An invite cannot be both approved and rejected: ${both.join(', ')}`);
    const actor = actorOf(req);
    const notes: Note[] = [];
    for (const [ids, verb] of [
      [approve, 'approve'],
      [reject, 'reject'],
    ] as const) {
      for (const id of ids) {
        try {
          const result = verb === 'approve' ? invites.approve(actor, id) : invites.reject(actor, id, reason);
          if (result.changed) {
            if (verb === 'approve') state.approved++;
            else state.rejected++;
          } else {
            notes.push({ type: 'info', text: `${id} was already ${verb === 'approve' ? 'approved' : 'rejected'}.` });
          }
        } catch (err) {
          if (!isInviteError(err)) throw err;
          notes.push({ type: 'warn', text: `${id}: ${err.message}` });
        }
      }
    }
    return notes;
  }

  return {
    node: NODES.pending,
    name: 'Pending approvals',
    allowed: (req) => req.isLocal && req.isAdmin,
    start: () => page({ approved: 0, rejected: 0 }, []),
    next(req, { action, form, state }) {
      const s = { ...(state as PageState) };
      if (action === 'prev') throw new StanzaFailure('bad-request', 'The queue only goes forward');
      const notes = apply(req, form?.all('approve') ?? [], form?.all('reject') ?? [], form?.text('reason') ?? null, s);
      return action === 'next' ? page(s, notes) : finish(s, notes);
    },
  };
}
