/**
 * Bounces: what comes back for an e-mail the outbox sent. The VERP address it came to names the
 * outbox row (verp.ts); a forged or mangled one changes nothing. A permanent failure (DSN status
 * 5.x.x, or a recognisable non-DSN bounce saying so) makes the invitation's delivery `bounced`,
 * tells the inviter (`delivery-failed`, with status and diagnostic) and suppresses the address
 * until `mail unsuppress`; a transient one (4.x.x) is recorded only. The same permanent bounce
 * arriving twice (an MTA retrying) is recorded once.
 */
import type { InviteService } from './invites';
import { emailKey } from './jid';
import type { Verp } from './verp';

export interface BounceRecipient {
  /** Final-Recipient (or Original-Recipient) address, when given */
  address: string | null;
  /** the enhanced status code, e.g. 5.1.1 */
  status: string;
  /** Diagnostic-Code, or the text explaining the failure */
  diagnostic: string | null;
  /** Action: failed, delayed, delivered, relayed, expanded */
  action: string | null;
}

export interface BounceReport {
  /** RFC 3464 (true) or a bounce recognised by its sender, subject and text (false) */
  dsn: boolean;
  recipients: BounceRecipient[];
  /** the addresses the bounce was delivered to, from its headers (where VERP addresses are found) */
  addressedTo: string[];
}

export interface BounceStore {
  transaction<T>(fn: () => T): T;
  /** the e-mail row of the outbox the bounce is about */
  outboxRow(id: number): { channel: string; recipient: string; inviteIds: string[] } | undefined;
  hasPermanentBounce(outboxId: number): boolean;
  addBounce(entry: { outboxId: number; permanent: boolean; status: string; diagnostic: string | null; via: string; at: number }): number;
}

export type BounceOutcome =
  | { kind: 'bounced'; outboxId: number; recipient: string; status: string; diagnostic: string | null; invites: string[] }
  | { kind: 'transient'; outboxId: number; status: string }
  | { kind: 'ignored'; reason: 'not-a-bounce' | 'not-ours' | 'forged' | 'unknown-row' | 'not-a-failure' | 'already-recorded'; outboxId?: number };

export interface BounceDeps {
  store: BounceStore;
  invites: InviteService;
  verp: Verp;
  clock?: () => number;
}

export class Bounces {
  constructor(private readonly deps: BounceDeps) {}

  /**
   * Handles one parsed message (`report` undefined: not a bounce) delivered to `envelope` (the
   * LMTP recipients, or `mail bounce --recipient`; else the message's own headers are read).
   */
  handle(report: BounceReport | undefined, envelope: readonly string[], via: 'pipe' | 'lmtp'): BounceOutcome {
    const { verp, store, invites } = this.deps;
    const candidates = envelope.length > 0 ? envelope : (report?.addressedTo ?? []);
    const matches = candidates.map((a) => verp.match(a));
    const ours = matches.find((m) => m.kind === 'ours');
    if (!ours || ours.kind !== 'ours') {
      const forged = matches.find((m) => m.kind === 'forged');
      return forged && forged.kind === 'forged' ? { kind: 'ignored', reason: 'forged', ...(forged.outboxId !== null ? { outboxId: forged.outboxId } : {}) } : { kind: 'ignored', reason: 'not-ours' };
    }
    const outboxId = ours.outboxId;
    if (!report) return { kind: 'ignored', reason: 'not-a-bounce', outboxId };
    const row = store.outboxRow(outboxId);
    if (!row || row.channel !== 'email') return { kind: 'ignored', reason: 'unknown-row', outboxId };
    const entry = pick(report.recipients, row.recipient);
    const permanent = entry.status.startsWith('5');
    const transient = entry.status.startsWith('4') || entry.action === 'delayed';
    if (!permanent && !transient) return { kind: 'ignored', reason: 'not-a-failure', outboxId };
    const now = (this.deps.clock ?? Date.now)();
    return store.transaction((): BounceOutcome => {
      if (permanent && store.hasPermanentBounce(outboxId)) return { kind: 'ignored', reason: 'already-recorded', outboxId };
      const id = store.addBounce({ outboxId, permanent: permanent && !transient, status: entry.status, diagnostic: entry.diagnostic, via, at: now });
      if (!permanent || transient) return { kind: 'transient', outboxId, status: entry.status };
      const bounced = invites.recordBounce(row.recipient, row.inviteIds, { id, status: entry.status, diagnostic: entry.diagnostic, outboxId });
      return { kind: 'bounced', outboxId, recipient: row.recipient, status: entry.status, diagnostic: entry.diagnostic, invites: bounced };
    });
  }
}

/** The report's entry for the row's recipient, else its first failure, else its first entry. */
function pick(recipients: readonly BounceRecipient[], recipient: string): BounceRecipient {
  const key = emailKey(recipient);
  return (
    recipients.find((r) => r.address !== null && emailKey(r.address) === key) ??
    recipients.find((r) => r.status.startsWith('5')) ??
    recipients[0]
  );
}
