/**
 * "Pending approvals" (urn:xmpp-invites:0#pending, admins): the approval queue, oldest first, a
 * page at a time. `approve` and `reject` are list-multi fields whose option values are invite ids;
 * `next` and `complete` both apply the current page's selection. Approval and rejection are
 * idempotent and race-safe in the domain: two admins at once make one approval and one delivery.
 */
import type { Invite } from '../../domain/types';
import type { CommandDef, Note, Step } from '../../xmpp/adhoc';
import type { Requester } from '../../xmpp/requester';
import { dataForm, type FieldSpec } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { StanzaFailure } from '../../xmpp/stanza-errors';
import { actorOf, type Services } from '../services';
import { approvalLine, optionLabel } from '../../present/invite';
import { requestLabel, requestLine } from '../../present/request';
import { InviteError } from '../../errors';
import { attempt, INVITES, nothingDone, outcomeNotes, plural, refusalLines, tally } from './outcomes';

export const PAGE_SIZE = 20;

/** The session's state: plain data (a type, not an interface, so the compiler checks it is JSON). */
type PageState = {
  /** the last invite shown, for keyset paging */
  after?: { createdAt: number; id: string };
  /** the last membership request shown (requests come first, then invites) */
  afterRequest?: { createdAt: number; id: string };
  approved: number;
  rejected: number;
  /** how many were ticked in this session, for "1 of 2 invites approved" */
  asked: { approve: number; reject: number };
  /** of those, how many were membership requests (for the words: invites, requests or both) */
  askedRequests?: { approve: number; reject: number };
};

/** What one page's selection came to: its outcome, then what was already so or refused. */
interface Applied {
  outcome?: Note;
  details: Note[];
}

/** "3 invites wait", "2 invites and 1 membership request wait", "1 membership request waits". */
function waitingWords(invites: number, requests: number): string {
  const parts = [...(invites || !requests ? [plural(invites, 'invite')] : []), ...(requests ? [plural(requests, 'membership request')] : [])];
  return `${parts.join(' and ')} wait${invites + requests === 1 ? 's' : ''}`;
}

/** Option values of membership requests: `request/ID` (contract), beside invite ids. */
const REQUEST_PREFIX = 'request/';
const REQUESTS: [string, string] = ['membership request', 'membership requests'];
const EITHER: [string, string] = ['invite or request', 'invites and requests'];

/** What a selection is called: invites, membership requests, or both. */
function nounOf(values: readonly string[]): [string, string] {
  const requests = values.filter((v) => v.startsWith(REQUEST_PREFIX)).length;
  return requests === 0 ? INVITES : requests === values.length ? REQUESTS : EITHER;
}

/** The words for `asked` ticked items of which `requests` were membership requests. */
function nounFor(asked: number, requests: number): [string, string] {
  return requests === 0 ? INVITES : requests === asked ? REQUESTS : EITHER;
}

function sameNoun(a: readonly string[], b: readonly string[]): boolean {
  return nounOf(a) === nounOf(b);
}

export function pendingCommand({ invites, config, membership }: Services): CommandDef {
  const host = config.host;
  const waitingRequests = () => membership?.count('pending') ?? 0;
  const waiting = () => invites.count({ state: 'pending' }) + waitingRequests();

  function page(state: PageState, applied: Applied): Step {
    // Membership requests first, oldest first, then invites: one queue, paged by two keysets.
    const requests = membership ? membership.list({ state: 'pending', after: state.afterRequest, limit: PAGE_SIZE + 1 }) : [];
    const shownRequests = requests.slice(0, PAGE_SIZE);
    const room = PAGE_SIZE - shownRequests.length;
    const filter = { state: 'pending' as const, oldestFirst: true, after: state.after };
    const list = room > 0 ? invites.list({ ...filter, limit: room + 1 }) : invites.list({ ...filter, limit: 1 });
    if (list.length === 0 && shownRequests.length === 0) return finish(state, applied, 'No more invites or requests wait for approval.');
    const shown = room > 0 ? list.slice(0, room) : [];
    const more = requests.length > PAGE_SIZE || list.length > shown.length;
    const total = waiting();
    const options = [
      ...shownRequests.map((r) => ({ value: `${REQUEST_PREFIX}${r.id}`, label: requestLabel(r) })),
      ...shown.map((i: Invite) => ({ value: i.id, label: optionLabel(i, { host, now: 0, inviter: true }) })),
    ];
    const last = shown[shown.length - 1];
    const lastRequest = shownRequests[shownRequests.length - 1];
    return {
      status: 'executing',
      notes: [...(applied.outcome ? [applied.outcome] : []), ...applied.details],
      form: dataForm({
        type: 'form',
        title: 'Pending approvals',
        instructions:
          `${waitingWords(total - waitingRequests(), waitingRequests())} for approval` +
          `${more ? `; here are the ${shown.length + shownRequests.length} oldest, the next page has more` : ''}. ` +
          'Tick those to approve and those to reject; each inviter is told the outcome, with the reason for a rejection.',
        formType: NODES.pending,
        fields: [
          // The details of each invite, as lines: clients cut option labels short.
          ...shownRequests.map((r): FieldSpec => ({ type: 'fixed', value: requestLine(r) })),
          ...shown.map((i): FieldSpec => ({ type: 'fixed', value: approvalLine(i, host) })),
          { var: 'approve', type: 'list-multi', label: 'Approve', options },
          { var: 'reject', type: 'list-multi', label: 'Reject', options },
          { var: 'reason', type: 'text-single', label: 'Reason for the rejections (sent to the inviters, and to the addresses of rejected requests)' },
        ],
      }),
      actions: more ? { allowed: ['next', 'complete'], execute: 'next' } : { allowed: ['complete'], execute: 'complete' },
      state: {
        ...state,
        ...(last ? { after: { createdAt: last.createdAt, id: last.id } } : {}),
        ...(lastRequest ? { afterRequest: { createdAt: lastRequest.createdAt, id: lastRequest.id } } : {}),
      } satisfies PageState,
    };
  }

  /** The session's outcome first, then what the last page left to say. */
  function finish(state: PageState, applied: Applied, end?: string): Step {
    const { approve, reject } = state.asked;
    const parts = [
      ...(approve ? [tally(state.approved, approve, 'approved', nounFor(approve, state.askedRequests?.approve ?? 0))] : []),
      ...(reject
        ? [tally(state.rejected, reject, 'rejected', approve && nounFor(approve, state.askedRequests?.approve ?? 0) === nounFor(reject, state.askedRequests?.reject ?? 0) ? undefined : nounFor(reject, state.askedRequests?.reject ?? 0))]
        : []),
    ];
    const summary = parts.length ? `${parts.join(' and ')}.` : 'Nothing was approved or rejected: no invite was ticked.';
    return {
      status: 'completed',
      notes: [
        { type: applied.outcome?.type ?? 'info', text: summary },
        ...applied.details,
        ...(end ? [{ type: 'info' as const, text: end }] : []),
      ],
    };
  }

  /** Applies a page's selection: its outcome, and the notes on what was already so or refused. */
  function apply(req: Requester, approve: readonly string[], reject: readonly string[], reason: string | null, state: PageState): Applied {
    const both = approve.filter((id) => reject.includes(id));
    if (both.length) throw new StanzaFailure('bad-request', `An invite cannot be both approved and rejected: ${both.join(', ')}`);
    if (approve.length + reject.length === 0) return { details: [] };
    const actor = actorOf(req);
    const act = (value: string, onRequest: (id: string) => { changed: boolean }, onInvite: (id: string) => { changed: boolean }): { changed: boolean } => {
      if (!value.startsWith(REQUEST_PREFIX)) return onInvite(value);
      if (!membership) throw new InviteError('invite-not-found', `No request ${value.slice(REQUEST_PREFIX.length)}`);
      return onRequest(value.slice(REQUEST_PREFIX.length));
    };
    const approved = attempt(approve, (v) => act(v, (id) => membership!.approve(actor, id), (id) => invites.approve(actor, id)));
    const rejected = attempt(reject, (v) => act(v, (id) => membership!.reject(actor, id, reason), (id) => invites.reject(actor, id, reason)));
    const refusals = [...refusalLines(approved.refused, 'approved'), ...refusalLines(rejected.refused, 'rejected')];
    if (approved.done.length + rejected.done.length === 0) nothingDone('approved or rejected', refusals);
    const approvedNow = approved.done.filter((d) => d.result.changed).length;
    const rejectedNow = rejected.done.filter((d) => d.result.changed).length;
    state.approved += approvedNow;
    state.rejected += rejectedNow;
    state.asked = { approve: state.asked.approve + approve.length, reject: state.asked.reject + reject.length };
    const requestsIn = (values: readonly string[]) => values.filter((v) => v.startsWith(REQUEST_PREFIX)).length;
    state.askedRequests = {
      approve: (state.askedRequests?.approve ?? 0) + requestsIn(approve),
      reject: (state.askedRequests?.reject ?? 0) + requestsIn(reject),
    };
    const already = [
      ...approved.done.filter((d) => !d.result.changed).map((d) => `${d.item} was already approved.`),
      ...rejected.done.filter((d) => !d.result.changed).map((d) => `${d.item} was already rejected.`),
    ];
    const parts = [
      ...(approve.length ? [tally(approvedNow, approve.length, 'approved', nounOf(approve))] : []),
      ...(reject.length ? [tally(rejectedNow, reject.length, 'rejected', approve.length && sameNoun(approve, reject) ? undefined : nounOf(reject))] : []),
    ];
    const [outcome, ...details] = outcomeNotes(`${parts.join(' and ')}.`, already, refusals);
    return { outcome, details };
  }

  return {
    node: NODES.pending,
    name: 'Pending approvals',
    // Policy: with approval `none` nothing waits, so the command is not offered, unless invites
    // from before that setting still wait.
    allowed: (req) =>
      req.isLocal && req.isAdmin && (config.invites.approval !== 'none' || config.registration.requests === 'approval' || waiting() > 0),
    start: () => {
      if (waiting() === 0) return { status: 'completed', notes: [{ type: 'info', text: 'No invites or requests wait for approval.' }] };
      return page({ approved: 0, rejected: 0, asked: { approve: 0, reject: 0 } }, { details: [] });
    },
    next(req, { action, form, state }) {
      const s: PageState = { ...(state as PageState) };
      if (action === 'prev') throw new StanzaFailure('bad-request', 'The queue only goes forward');
      const applied = apply(req, form?.values('approve') ?? [], form?.values('reject') ?? [], form?.text('reason') ?? null, s);
      return action === 'next' ? page(s, applied) : finish(s, applied);
    },
  };
}
