/**
 * The delivery worker inside `serve`: takes due rows from the outbox, renders them, hands them to
 * the transport of their channel, and records the outcome. Temporary failures retry with
 * exponential backoff and jitter up to `mail.max_attempts`; permanent ones fail at once. Rows left
 * in `sending` by a crash are sent again (at least once; XMPP stanza ids and e-mail Message-IDs stay
 * the same, so receivers can tell a repeat): at start those of no live instance, then at every pass
 * those whose instance has died meanwhile (store/outbox-repo.ts).
 *
 * Several instances share the outbox. A notice queued here wakes this worker at once (`poke`); one
 * queued by another process (another instance, the CLI) is found by the poll, every `pollMs`
 * (default 1 s), whose pass first reads whether anything is due and asks for the write lock only
 * then.
 */
import type { Logger } from 'pino';
import type { Channel } from '../domain/notices';
import type { InviteService } from '../domain/invites';
import type { Invite } from '../domain/types';
import type { OutboxRow, SqliteOutbox } from '../store/outbox-repo';
import { renderNotice, type RenderContext, type Rendered } from './render';
import { retryWhileBusy } from '../store/busy';

/** A failure that will not go away by retrying (e.g. SMTP 5xx). */
export class PermanentDeliveryError extends Error {}
/** The transport cannot send now through no fault of the message (e.g. not connected). */
export class NotReadyError extends Error {}

export interface Transport {
  send(row: OutboxRow, rendered: Rendered, invites: Invite[]): Promise<void>;
}

export interface WorkerOptions {
  maxAttempts: number;
  pollMs?: number;
  batch?: number;
  /** backoff base (default 30 s, so that 8 attempts span about an hour): base · 2^(attempts-1), capped at 1 h, ±20 % jitter */
  backoffBaseMs?: number;
  /**
   * the shortest time between the starts of two passes woken by `poke` (default 250 ms): a notice
   * queued on a quiet service leaves at once; under a burst, what is queued meanwhile waits for the
   * next pass and is folded there (one message to an admin for many pending invites, rather than
   * one per invite)
   */
  coalesceMs?: number;
  now?: () => number;
  /** told of every attempt's outcome (metrics) */
  onOutcome?: (channel: Channel, outcome: 'sent' | 'retry' | 'failed') => void;
}

export interface OutboxWorkerDeps extends WorkerOptions {
  outbox: SqliteOutbox;
  invites: InviteService;
  /** the site's names the messages carry */
  render: Omit<RenderContext, 'invites' | 'now'>;
  logger: Logger;
}

export class OutboxWorker {
  readonly #transports = new Map<Channel, Transport>();
  /** attempts per channel where it differs from `maxAttempts` */
  readonly #maxAttempts = new Map<Channel, number>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  /** when the last pass started (performance.now()) */
  #lastPass = -Infinity;
  /** when the scheduled pass is due (performance.now()) */
  #dueAt = Infinity;

  private readonly outbox: SqliteOutbox;
  private readonly invites: InviteService;
  private readonly render: Omit<RenderContext, 'invites' | 'now'>;
  private readonly logger: Logger;
  private readonly opts: WorkerOptions;

  constructor(deps: OutboxWorkerDeps) {
    this.outbox = deps.outbox;
    this.invites = deps.invites;
    this.render = deps.render;
    this.logger = deps.logger;
    this.opts = deps;
  }

  use(channel: Channel, transport: Transport, opts: { maxAttempts?: number } = {}): this {
    this.#transports.set(channel, transport);
    if (opts.maxAttempts !== undefined) this.#maxAttempts.set(channel, opts.maxAttempts);
    return this;
  }

  start(): void {
    this.#stopped = false;
    const requeued = this.outbox.requeueOrphaned(true);
    if (requeued) this.logger.info('%d message(s) left in sending by a run that ended are queued again', requeued);
    this.#schedule(0);
  }

  /** Something was queued: send it now rather than at the next poll. */
  poke(): void {
    if (this.#stopped) return;
    this.#schedule(this.#coalesced());
  }

  /** Finishes the batch in hand; nothing new is started. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One pass over what is due (tests call it directly). */
  async runOnce(): Promise<number> {
    let done = 0;
    const batch = this.opts.batch ?? 50;
    // While another process holds the write lock, wait without blocking (store/busy.ts).
    const requeued = await retryWhileBusy(() => this.outbox.requeueOrphaned());
    if (requeued) this.logger.info('%d message(s) left in sending by an instance that ended are queued again', requeued);
    for (;;) {
      if (!this.outbox.anyDue()) return done;
      const rows = await retryWhileBusy(() => this.outbox.claimDue(batch));
      for (const row of rows) await this.#deliver(row);
      done += rows.length;
      if (rows.length < batch || this.#stopped) return done;
    }
  }

  /** The delay before a woken pass: none once `coalesceMs` have passed since the last one began. */
  #coalesced(): number {
    return Math.max(0, this.#lastPass + (this.opts.coalesceMs ?? 250) - performance.now());
  }

  #schedule(delay: number): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    // A pass already due sooner stays as it is.
    if (this.#timer !== undefined && this.#dueAt <= performance.now() + delay) return;
    clearTimeout(this.#timer);
    this.#dueAt = performance.now() + delay;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#lastPass = performance.now();
      this.#running = this.runOnce()
        .catch((err: unknown) => this.logger.error({ err }, 'outbox pass failed'))
        .then(() => {
          this.#running = undefined;
          if (this.#stopped) return;
          const again = this.#again;
          this.#again = false;
          this.#schedule(again ? this.#coalesced() : (this.opts.pollMs ?? 1_000));
        });
    }, delay);
    this.#timer.unref();
  }

  async #deliver(row: OutboxRow): Promise<void> {
    const log = this.logger.child({ outbox: row.id, kind: row.kind, channel: row.channel });
    const now = (this.opts.now ?? Date.now)();
    const invites = row.inviteIds.map((id) => this.invites.get(id)).filter((i): i is Invite => i !== undefined);
    const transport = this.#transports.get(row.channel);
    if (!transport) {
      await retryWhileBusy(() => this.outbox.markRetry(row.id, `no ${row.channel} transport`, now + 60_000, false));
      return;
    }
    let rendered: Rendered | undefined;
    try {
      rendered = renderNotice(row.kind, invites, row.params, { ...this.render, invites: this.invites, now: () => now });
    } catch (err) {
      log.error({ err }, 'cannot render');
      await retryWhileBusy(() => this.outbox.markFailed(row.id, `render: ${(err as Error).message}`));
      return;
    }
    if (!rendered) {
      // Nothing left to say (the invite moved on): recorded as sent with nothing delivered.
      await retryWhileBusy(() => this.outbox.markSent(row.id));
      log.debug('nothing to deliver any more');
      return;
    }
    try {
      await transport.send(row, rendered, invites);
      // Delivered: record it even if the lock is taken for a while (else it would be sent again).
      if (!(await retryWhileBusy(() => this.outbox.markSent(row.id)))) {
        // This instance stalled past its presence and another took the row back: it may go twice.
        log.warn('delivered, but another instance has taken the message over meanwhile and may send it again');
      }
      this.opts.onOutcome?.(row.channel, 'sent');
      log.info({ to: row.channel === 'xmpp' ? row.recipient : undefined }, 'delivered');
      if (row.kind === 'invitation' && row.channel !== 'webhook') for (const i of invites) this.invites.recordDelivery(i.id, row.channel, 'sent', null);
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      if (err instanceof NotReadyError) {
        await retryWhileBusy(() => this.outbox.markRetry(row.id, message, now + 5_000, false));
        return;
      }
      const attempts = row.attempts + 1;
      if (err instanceof PermanentDeliveryError || attempts >= (this.#maxAttempts.get(row.channel) ?? this.opts.maxAttempts)) {
        // Taken over meanwhile: the other instance's attempt says how it went.
        if (!(await retryWhileBusy(() => this.outbox.markFailed(row.id, message)))) return;
        this.opts.onOutcome?.(row.channel, 'failed');
        log.warn({ err: message, attempts }, 'delivery failed for good');
        if (row.kind === 'invitation' && row.channel !== 'webhook') for (const i of invites) this.invites.recordDelivery(i.id, row.channel, 'failed', message);
        return;
      }
      const base = this.opts.backoffBaseMs ?? 30_000;
      const delay = Math.min(base * 2 ** (attempts - 1), 3_600_000) * (0.8 + Math.random() * 0.4);
      await retryWhileBusy(() => this.outbox.markRetry(row.id, message, now + Math.round(delay)));
      this.opts.onOutcome?.(row.channel, 'retry');
      log.info({ err: message, attempts, retryInMs: Math.round(delay) }, 'delivery failed, will retry');
    }
  }
}
