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
import type { Limits } from '../../domain/limits';

/** The same lines for the command and the CLI. */
/** "2 held, the oldest for 3 h 12 min": a claim held long means the server could not be asked. */
export function heldClaimsLine(held: InviteStats['heldClaims'], now: number): string {
  if (held.count === 0 || held.oldestAt === null) return 'none held';
  const s = Math.max(0, Math.floor((now - held.oldestAt) / 1000));
  const age = s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` : s < 86_400 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
  return `${held.count} held, the oldest for ${age} (since ${new Date(held.oldestAt).toISOString().replace(/\.\d{3}Z$/, 'Z')})`;
}

export function statsLines(stats: InviteStats, limits?: Limits, now = Date.now()): { states: string[]; delivery: string[]; funnel: string[]; claims: string } {
  const states = SHOWN_STATES.map((s) => `${s}: ${stats.states[s] ?? 0}`);
  const fmt = (rec: Record<string, number>) =>
    ['queued', 'sent', 'failed', 'none']
      .filter((k) => rec[k])
      .map((k) => `${k} ${rec[k]}`)
      .join(', ') || 'none';
  const delivery = [`e-mail: ${fmt(stats.delivery.email)}`, `message: ${fmt(stats.delivery.message)}`];
  const funnel = stats.funnel.map((f) => {
    const u = limits?.usage(f.inviter, now);
    const close = [
      ...(u?.perUserOpen ? [`open ${u.perUserOpen.used}/${u.perUserOpen.limit}`] : []),
      ...(u?.perUserPerDay ? [`today ${u.perUserPerDay.used}/${u.perUserPerDay.limit}`] : []),
    ];
    return `${f.inviter}: created ${f.created}, approved ${f.approved}, used ${f.used}, accounts ${f.accounts}${close.length ? ` (limits: ${close.join(', ')})` : ''}`;
  });
  return { states, delivery, funnel, claims: heldClaimsLine(stats.heldClaims, now) };
}

export function statsCommand({ invites, limits }: Services): CommandDef {
  return {
    node: NODES.stats,
    name: 'Invite statistics',
    allowed: (req) => req.isLocal && req.isAdmin,
    start() {
      const stats = invites.stats();
      const lines = statsLines(stats, limits);
      const fields: FieldSpec[] = [
        ...SHOWN_STATES.map((s): FieldSpec => ({ var: `state-${s}`, type: 'text-single', label: `Invites ${s}`, value: String(stats.states[s] ?? 0) })),
        { var: 'delivery', type: 'text-multi', label: 'Delivery', value: lines.delivery.join('\n') },
        { var: 'funnel', type: 'text-multi', label: 'Per inviter: created → approved → used → accounts', value: lines.funnel.join('\n') || '(none yet)' },
        { var: 'overruns', type: 'text-single', label: 'Uses that made two accounts (late settles; should be 0)', value: String(stats.overruns) },
        { var: 'claims', type: 'text-single', label: 'Registrations not settled yet', value: lines.claims },
      ];
      return { status: 'completed', form: dataForm({ type: 'result', title: 'Invite statistics', formType: NODES.stats, fields }) };
    },
  };
}
