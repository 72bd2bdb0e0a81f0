/**
 * "Invite statistics" (urn:xmpp-invites:0#stats, admins): invites per state and per delivery
 * state, and per inviter the funnel created → approved → used → accounts. The lines are those of
 * `xmpp-invites stats` (src/present/invite.ts).
 */
import type { CommandDef } from '../../xmpp/adhoc';
import { dataForm, type FieldSpec } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { SHOWN_STATES } from '../../domain/types';
import { roomStatsLines, STATS_HEADINGS, statsLines } from '../../present/invite';
import type { Services } from '../services';

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
        { var: 'delivery', type: 'text-multi', label: STATS_HEADINGS.delivery, value: lines.delivery.join('\n') },
        { var: 'funnel', type: 'text-multi', label: STATS_HEADINGS.funnel, value: lines.funnel.join('\n') || '(none yet)' },
        { var: 'overruns', type: 'text-single', label: STATS_HEADINGS.overruns, value: String(stats.overruns) },
        { var: 'claims', type: 'text-single', label: STATS_HEADINGS.claims, value: lines.claims },
      ];
      const rooms = roomStatsLines(invites.roomStats());
      if (rooms.length) fields.push({ var: 'rooms', type: 'text-multi', label: STATS_HEADINGS.rooms, value: rooms.join('\n') });
      return { status: 'completed', form: dataForm({ type: 'result', title: 'Invite statistics', formType: NODES.stats, fields }) };
    },
  };
}
