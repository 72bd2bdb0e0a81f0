/**
 * How the invitation tree reads, for `xmpp-invites tree`, the #stats command and the console's
 * `/admin/tree` alike: one line per account (who invited it, who approved, when it joined), one
 * line per invite it made with what became of it, the accounts below indented; and the `--json` form.
 */
import type { TreeInvite, TreeNode } from '../domain/trust';
import { dateTime, instant } from './invite';

/** One invite of an account and what became of it. */
export function inviteLine(i: TreeInvite): string {
  const to = i.inviteeEmail ?? i.inviteeJid;
  const made = i.accounts.length > 0 ? ` → ${i.accounts.join(', ')}` : '';
  return `- invite ${i.id} (${i.kind}) ${i.state}${to ? ` to ${to}` : ''}, created ${dateTime(i.created)}${made}`;
}

/** One account: who invited it, who approved, when it joined, a block. */
export function headLine(n: TreeNode): string {
  const parts = [n.jid];
  if (n.madeHere) {
    parts.push(`joined ${dateTime(n.joinedAt!)}`);
    parts.push(n.inviteId ? `with invite ${n.inviteId} of ${n.inviter ?? 'the operator'}` : 'without an invite (open registration)');
    if (n.approvedBy && n.approvedBy !== n.inviter) parts.push(`approved by ${n.approvedBy}`);
  } else {
    parts.push('(account not made here)');
  }
  if (n.blocked) parts.push(`BLOCKED: ${n.blocked.reason ?? 'no reason given'}`);
  return parts.join('  ');
}

/** The tree as indented lines (two spaces a generation). */
export function treeLines(forest: readonly TreeNode[]): string[] {
  const lines: string[] = [];
  const walk = (n: TreeNode, depth: number) => {
    const pad = '  '.repeat(depth);
    lines.push(`${pad}${headLine(n)}`);
    for (const i of n.invites) lines.push(`${pad}  ${inviteLine(i)}`);
    for (const c of n.children) walk(c, depth + 1);
  };
  for (const n of forest) walk(n, 0);
  return lines;
}

export interface TreeJson {
  jid: string;
  made_here: boolean;
  inviter: string | null;
  approved_by: string | null;
  invite: string | null;
  joined: string | null;
  blocked: { reason: string | null; by: string; at: string } | null;
  invites: { id: string; kind: string; state: string; invitee_email: string | null; invitee_jid: string | null; created: string; accounts: string[] }[];
  children: TreeJson[];
}

export function treeJson(n: TreeNode): TreeJson {
  return {
    jid: n.jid,
    made_here: n.madeHere,
    inviter: n.inviter,
    approved_by: n.approvedBy,
    invite: n.inviteId,
    joined: n.joinedAt === null ? null : instant(n.joinedAt),
    blocked: n.blocked ? { reason: n.blocked.reason, by: n.blocked.actor, at: instant(n.blocked.at) } : null,
    invites: n.invites.map((i) => ({
      id: i.id,
      kind: i.kind,
      state: i.state,
      invitee_email: i.inviteeEmail,
      invitee_jid: i.inviteeJid,
      created: instant(i.created),
      accounts: i.accounts,
    })),
    children: n.children.map(treeJson),
  };
}
