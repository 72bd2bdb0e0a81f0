/**
 * Trust: who vouched for whom. Every account made through the service was made from an invite,
 * so it has an inviter (the invite's, or the operator) and an approver; the invitation tree is
 * those links, with each account's own invites and what became of them. Admins (and the operator)
 * may block a user from inviting, with a reason, and revoke every live invite of a subtree at once
 * (when one bad invitation has grown). The rules that limit inviting by the tree (min_account_age,
 * per_tree_open) live with the other limits in limits.ts; the block is checked by the invite
 * service in the transaction that makes an invite.
 */
import { InviteError } from '../errors';
import type { Window } from './limits';
import type { InviteService } from './invites';
import { normalizeBareJid } from './jid';
import { cleanText } from './text';
import { actorName, isPrivileged, shownState, type Actor, type Invite, type InviteKind, type ShownState } from './types';

/** An account made through the service. */
export interface Account {
  jid: string;
  /** the invite it was made from (null: `registration.mode: open`, without a token) */
  inviteId: string | null;
  /** who invited (null: the operator, or no invite) */
  inviter: string | null;
  /** who approved the invite (an admin's JID or `operator`) */
  approvedBy: string | null;
  joinedAt: number;
  /** component, web or bridge */
  door: string;
}

export interface Block {
  jid: string;
  reason: string | null;
  actor: string;
  at: number;
}

export interface TrustStore {
  transaction<T>(fn: () => T): T;
  /** the account of `jid` made through the service, if it was */
  accountOf(jid: string): Account | undefined;
  /** every account made through the service, oldest first */
  accounts(): Account[];
  /** `root` and the JIDs of every account below it, of those who have invited anyone */
  subtree(root: string): string[];
  /** pending or open, unexpired invites made by `root` and the accounts below it */
  openInTree(root: string, now: number): Window;
  openInviteIdsInTree(root: string, now: number): string[];
  /** the block in force on `jid`, if any */
  blockOf(jid: string): Block | undefined;
  blocked(): Block[];
  addBlock(entry: { jid: string; blocked: boolean; reason: string | null; actor: string; at: number }): void;
}

export interface TreeInvite {
  id: string;
  kind: InviteKind;
  state: ShownState;
  inviteeEmail: string | null;
  inviteeJid: string | null;
  created: number;
  /** the accounts made from it */
  accounts: string[];
}

export interface TreeNode {
  jid: string;
  /** whether the account was made through the service (false: an account from before, or an admin's) */
  madeHere: boolean;
  inviter: string | null;
  approvedBy: string | null;
  inviteId: string | null;
  joinedAt: number | null;
  blocked: Block | null;
  invites: TreeInvite[];
  children: TreeNode[];
}

export interface TrustDeps {
  store: TrustStore;
  invites: InviteService;
  clock?: () => number;
}

function requireJid(text: string): string {
  const jid = normalizeBareJid(text);
  if (!jid || !jid.includes('@')) throw new InviteError('invalid-input', `Not a user JID: ${text}`);
  return jid;
}

export class Trust {
  private readonly store: TrustStore;
  private readonly invites: InviteService;
  private readonly clock: () => number;

  constructor(deps: TrustDeps) {
    this.store = deps.store;
    this.invites = deps.invites;
    this.clock = deps.clock ?? Date.now;
  }

  blockOf(jid: string): Block | undefined {
    return this.store.blockOf(jid);
  }

  blocked(): Block[] {
    return this.store.blocked();
  }

  /** Blocks `jid` from inviting; blocking a blocked user again records the new reason. */
  block(actor: Actor, text: string, reason: string): Block {
    if (!isPrivileged(actor)) throw new InviteError('forbidden', 'Only admins may block users');
    const jid = requireJid(text);
    const why = cleanText(reason ?? '').trim();
    if (why === '') throw new InviteError('invalid-input', 'A block needs a reason (the user is shown it)');
    const entry = { jid, blocked: true, reason: why, actor: actorName(actor), at: this.clock() };
    this.store.transaction(() => this.store.addBlock(entry));
    return { jid, reason: why, actor: entry.actor, at: entry.at };
  }

  /** Lets `jid` invite again; false when it was not blocked (nothing is recorded then). */
  unblock(actor: Actor, text: string, reason: string | null = null): boolean {
    if (!isPrivileged(actor)) throw new InviteError('forbidden', 'Only admins may unblock users');
    const jid = requireJid(text);
    return this.store.transaction(() => {
      if (!this.store.blockOf(jid)) return false;
      this.store.addBlock({ jid, blocked: false, reason: cleanText(reason ?? '').trim() || null, actor: actorName(actor), at: this.clock() });
      return true;
    });
  }

  /**
   * Revokes every pending or open, unexpired invite made by `jid` and by the accounts below it, in
   * one transaction (nothing in the subtree can make a new one meanwhile). Returns those revoked.
   */
  revokeTree(actor: Actor, text: string, reason: string | null): Invite[] {
    if (!isPrivileged(actor)) throw new InviteError('forbidden', 'Only admins may revoke a whole tree');
    const jid = requireJid(text);
    return this.store.transaction(() =>
      this.store.openInviteIdsInTree(jid, this.clock()).map((id) => this.invites.revoke(actor, id, reason ?? `revoked with the tree of ${jid}`).invite),
    );
  }

  /**
   * The invitation tree below `root` (one node), or the whole forest: every account made through
   * the service under the one who invited it, and everyone who invited at the top.
   */
  tree(rootText?: string): TreeNode[] {
    const now = this.clock();
    const root = rootText === undefined ? undefined : requireJid(rootText);
    const accounts = new Map<string, Account>();
    for (const a of this.store.accounts()) accounts.set(a.jid, a); // oldest first: the latest of a JID wins
    const members = root === undefined ? undefined : this.store.subtree(root);
    const invites = members === undefined ? this.invites.list({}) : members.flatMap((m) => this.invites.list({ inviter: m }));
    const invitesBy = new Map<string, Invite[]>();
    for (const i of invites) if (i.inviter) invitesBy.set(i.inviter, [...(invitesBy.get(i.inviter) ?? []), i]);
    const madeFrom = new Map<string, string[]>();
    const childrenOf = new Map<string, string[]>();
    for (const a of accounts.values()) {
      if (a.inviteId) madeFrom.set(a.inviteId, [...(madeFrom.get(a.inviteId) ?? []), a.jid]);
      if (a.inviter) childrenOf.set(a.inviter, [...(childrenOf.get(a.inviter) ?? []), a.jid]);
    }
    const seen = new Set<string>();
    const node = (jid: string): TreeNode => {
      seen.add(jid);
      const a = accounts.get(jid);
      const own = (invitesBy.get(jid) ?? []).sort((x, y) => x.createdAt - y.createdAt || (x.id < y.id ? -1 : 1));
      return {
        jid,
        madeHere: a !== undefined,
        inviter: a?.inviter ?? null,
        approvedBy: a?.approvedBy ?? null,
        inviteId: a?.inviteId ?? null,
        joinedAt: a?.joinedAt ?? null,
        blocked: this.store.blockOf(jid) ?? null,
        invites: own.map((i) => ({
          id: i.id,
          kind: i.kind,
          state: shownState(i, now),
          inviteeEmail: i.inviteeEmail,
          inviteeJid: i.inviteeJid,
          created: i.createdAt,
          accounts: madeFrom.get(i.id) ?? [],
        })),
        children: (childrenOf.get(jid) ?? []).filter((c) => !seen.has(c)).map(node),
      };
    };
    if (root !== undefined) return [node(root)];
    const everyone = new Set<string>([...accounts.keys(), ...invitesBy.keys()]);
    const hasParent = (jid: string) => {
      const inviter = accounts.get(jid)?.inviter;
      return inviter !== null && inviter !== undefined && inviter !== jid;
    };
    const roots = [...everyone].filter((j) => !hasParent(j)).sort();
    const forest = roots.map(node);
    // An account whose chain of inviters loops (usernames made again) has no root: shown at the top.
    for (const j of [...everyone].sort()) if (!seen.has(j)) forest.push(node(j));
    return forest;
  }
}
