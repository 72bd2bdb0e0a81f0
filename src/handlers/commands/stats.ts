/**
 * "Invite statistics" (urn:xmpp-invites:0#stats, admins): invites per state and per delivery
 * state, and per inviter the funnel created → approved → used → accounts.
 */
import type { InviteStats } from '../../domain/ports';
import type { CommandDef } from '../../xmpp/adhoc';
import { dataForm, type FieldSpec } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { SHOWN_STATES } from '../../domain/types';
import type { Services } from '../services';

/** The same lines for the command and the CLI. */
export function statsLines(stats: InviteStats): { states: string[]; delivery: string[]; funnel: string[] } {
  const states = SHOWN_STATES.map((s) => `${s}: ${stats.states[s] ?? 0}`);
  const fmt = (rec: Record<string, number>) =>
    ['queued', 'sent', 'failed', 'none']
      .filter((k) => rec[k])
      .map((k) => `${k} ${rec[k]}`)
      .join(', ') || 'none';
  const delivery = [`e-mail: ${fmt(stats.delivery.email)}`, `message: ${fmt(stats.delivery.message)}`];
  const funnel = stats.funnel.map((f) => `${f.inviter}: created ${f.created}, approved ${f.approved}, used ${f.used}, accounts ${f.accounts}`);
  return { states, delivery, funnel };
}

export function statsCommand({ invites }: Services): CommandDef {
  return {
    node: NODES.stats,
    name: 'Invite statistics',
    allowed: (req) => req.isLocal && req.isAdmin,
    start() {
      const stats = invites.stats();
      const lines = statsLines(stats);
      const fields: FieldSpec[] = [
        ...SHOWN_STATES.map((s): FieldSpec => ({ var: `state-${s}`, type: 'text-single', label: `Invites ${s}`, value: String(stats.states[s] ?? 0) })),
        { var: 'delivery', type: 'text-multi', label: 'Delivery', value: lines.delivery.join('\n') },
        { var: 'funnel', type: 'text-multi', label: 'Per inviter: created → approved → used → accounts', value: lines.funnel.join('\n') || '(none yet)' },
      ];
      return { status: 'completed', form: dataForm({ type: 'result', title: 'Invite statistics', formType: NODES.stats, fields }) };
    },
  };
}
