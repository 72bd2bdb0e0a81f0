/**
 * "Invite statistics" (urn:xmpp-invites:0#stats, admins): invites per state and per delivery
 * state, and per inviter the funnel created → approved → used → accounts. The lines are those of
 * `xmpp-invites stats` (src/present/invite.ts); and the invitation tree, as `xmpp-invites tree` prints it.
 */
import type { CommandDef } from '../../xmpp/adhoc';
import { dataForm, type FieldSpec } from '../../xmpp/forms';
import { NODES } from '../../xmpp/ns';
import { SHOWN_STATES } from '../../domain/types';
import { roomStatsLines, STATS_HEADINGS, statsLines } from '../../present/invite';
import type { Services } from '../services';
import { treeLines } from '../../present/tree';

/** Lines of the invitation tree the form carries at most (`xmpp-invites tree` prints all). */
const TREE_LINES = 400;

export function statsCommand({ invites, limits, membership, trust }: Services): CommandDef {
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
      if (membership) {
        const r = membership.stats();
        fields.push(
          ...Object.entries(r.states).map(([s, n]): FieldSpec => ({ var: `request-${s}`, type: 'text-single', label: `Membership requests ${s}`, value: String(n) })),
          {
            var: 'request-funnel',
            type: 'text-single',
            label: 'Membership requests: requested → verified → approved → joined',
            value: `${r.funnel.requested} → ${r.funnel.verified} → ${r.funnel.approved} → ${r.funnel.joined}`,
          },
        );
      }
      if (trust) {
        const tree = treeLines(trust.tree());
        const shown = tree.length > TREE_LINES ? [...tree.slice(0, TREE_LINES), `… ${tree.length - TREE_LINES} more lines: xmpp-invites tree`] : tree;
        fields.push({ var: 'tree', type: 'text-multi', label: 'Who invited whom', value: shown.join('\n') || '(nobody yet)' });
      }
      const rooms = roomStatsLines(invites.roomStats());
      if (rooms.length) fields.push({ var: 'rooms', type: 'text-multi', label: STATS_HEADINGS.rooms, value: rooms.join('\n') });
      return { status: 'completed', form: dataForm({ type: 'result', title: 'Invite statistics', formType: NODES.stats, fields }) };
    },
  };
}
