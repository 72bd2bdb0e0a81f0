/** The claims table and the use counters of invites, behind the domain's ClaimStore port. */
import { OVERRUN_PREFIX, type Claim, type ClaimState, type ClaimStore, type Door } from '../domain/registration';
import { immediateTransaction, type Db } from './database';
import { spendOneUse } from './uses';

interface ClaimRow {
  id: string;
  invite_id: string | null;
  username: string;
  door: string;
  requester: string | null;
  ip: string | null;
  state: string;
  created_at: number;
  settled_at: number | null;
  outcome: string | null;
  absent_at_claim: number | null;
}

function rowToClaim(r: ClaimRow): Claim {
  return {
    id: r.id,
    inviteId: r.invite_id,
    username: r.username,
    door: r.door as Door,
    requester: r.requester,
    ip: r.ip,
    state: r.state as ClaimState,
    createdAt: r.created_at,
    settledAt: r.settled_at,
    outcome: r.outcome,
    absentAtClaim: r.absent_at_claim === 1,
  };
}

export class SqliteClaimStore implements ClaimStore {
  readonly #insert;
  readonly #get;
  readonly #held;
  readonly #settle;
  readonly #hold;
  readonly #spend;
  readonly #release;
  readonly #redeemed;
  readonly #respend;
  readonly #overrun;

  constructor(private readonly db: Db) {
    this.#insert = db.prepare(`INSERT INTO claims (id, invite_id, username, door, requester, ip, state, created_at, absent_at_claim)
      VALUES (@id, @inviteId, @username, @door, @requester, @ip, 'held', @createdAt, @absent) ON CONFLICT (id) DO NOTHING`);
    this.#get = db.prepare<[string], ClaimRow>('SELECT * FROM claims WHERE id = ?');
    this.#held = db.prepare<[], ClaimRow>(`SELECT * FROM claims WHERE state = 'held' ORDER BY created_at`);
    this.#settle = db.prepare(`UPDATE claims SET state = @state, outcome = @outcome, settled_at = @at WHERE id = @id AND state = 'held'`);
    this.#hold = db.prepare(`UPDATE invites SET held = held + 1 WHERE id = ? AND state = 'open' AND uses + held < max_uses`);
    this.#spend = db.prepare(`UPDATE invites SET held = held - 1, ${spendOneUse('@at')} WHERE id = @id AND held > 0`);
    this.#respend = db.prepare(`UPDATE claims SET state = 'spent', outcome = @outcome, settled_at = @at WHERE id = @id AND state = 'released'`);
    this.#overrun = db.prepare(`UPDATE claims SET outcome = @outcome WHERE id = @id AND state = 'released' AND (outcome IS NULL OR outcome NOT LIKE 'overrun:%')`);
    this.#release = db.prepare('UPDATE invites SET held = held - 1 WHERE id = ? AND held > 0');
    this.#redeemed = db.prepare<[string], { username: string }>(
      `SELECT username FROM claims WHERE invite_id = ? AND state = 'spent' ORDER BY settled_at`,
    );
  }

  #tx: (<T>(fn: () => T) => T) | undefined;

  transaction<T>(fn: () => T): T {
    return (this.#tx ??= immediateTransaction(this.db))(fn);
  }

  insertClaim(claim: Claim): boolean {
    const { id, inviteId, username, door, requester, ip, createdAt } = claim;
    return this.#insert.run({ id, inviteId, username, door, requester, ip, createdAt, absent: claim.absentAtClaim ? 1 : 0 }).changes === 1;
  }

  getClaim(id: string): Claim | undefined {
    const row = this.#get.get(id);
    return row ? rowToClaim(row) : undefined;
  }

  heldClaims(): Claim[] {
    return this.#held.all().map(rowToClaim);
  }

  settleClaim(id: string, state: 'spent' | 'released', outcome: string, at: number): boolean {
    return this.#settle.run({ id, state, outcome, at }).changes === 1;
  }

  respendReleased(id: string, outcome: string, at: number): boolean {
    return this.#respend.run({ id, outcome, at }).changes === 1;
  }

  markOverrun(id: string, outcome: string): boolean {
    return this.#overrun.run({ id, outcome: `${OVERRUN_PREFIX}${outcome}` }).changes === 1;
  }

  holdUse(inviteId: string): boolean {
    return this.#hold.run(inviteId).changes === 1;
  }

  spendUse(inviteId: string, at: number): void {
    this.#spend.run({ id: inviteId, at });
  }

  releaseUse(inviteId: string): void {
    this.#release.run(inviteId);
  }

  redeemedUsernames(inviteId: string): string[] {
    return this.#redeemed.all(inviteId).map((r) => r.username);
  }
}
