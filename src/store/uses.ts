/**
 * The one rule "all uses spent makes an invite exhausted", as SQL: the SET clause of an UPDATE of
 * `invites` that spends one use. Both ways a use is spent write it through here: a registration's
 * claim settling (claims-repo.ts, which also gives back the held slot) and a pre-approved
 * subscription spending a use directly (invites-repo.ts).
 *
 * Only a live invite (pending or open) becomes exhausted, and then ends at the time of its last
 * use. One that ended otherwise while a claim was held (revoked, declined) keeps its state and its
 * end: the contract's states go pending → open → exhausted, never from revoked to exhausted; the
 * use still counts, as the account was made from a claim taken before the end.
 *
 * `at` is the placeholder of the time in the caller's dialect (`@at` for better-sqlite3, `$2` for
 * node-postgres): the clause itself is plain SQL that both engines read alike.
 */
export function spendOneUse(at: string): string {
  const lastUse = `uses + 1 >= max_uses AND state IN ('pending', 'open')`;
  return `uses = uses + 1,
        state = CASE WHEN ${lastUse} THEN 'exhausted' ELSE state END,
        ended_at = CASE WHEN ${lastUse} THEN ${at} ELSE ended_at END`;
}
