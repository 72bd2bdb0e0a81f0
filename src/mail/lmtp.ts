/**
 * The LMTP listener for bounces (`mail.bounce_listen`): an MTA delivers what comes back to the
 * VERP addresses here (Postfix `transport_maps` → `lmtp:inet:127.0.0.1:PORT`, Exim an smtp
 * transport with `protocol = lmtp`). Built on smtp-server's LMTP mode. Only addresses under
 * `mail.bounce_address` are accepted as recipients (550 otherwise); a message is answered 250 once
 * handled or ignored (a forged bounce is ignored with a warning, so the MTA does not retry it), 451
 * when the store failed (the MTA keeps it and retries).
 *
 * References: https://www.rfc-editor.org/rfc/rfc2033 (LMTP)
 */
import type { Logger } from 'pino';
import { SMTPServer } from 'smtp-server';
import type { BounceOutcome, Bounces } from '../domain/bounces';
import type { Verp } from '../domain/verp';
import { MAX_BOUNCE_BYTES, parseBounce } from './dsn';


export interface LmtpDeps {
  bounces: Bounces;
  verp: Verp;
  logger: Logger;
}

/** Logs what became of one bounce, the same way for the listener and `mail bounce`. */
export function logOutcome(logger: Logger, outcome: BounceOutcome, via: string): void {
  if (outcome.kind === 'bounced') {
    logger.info({ outbox: outcome.outboxId, invites: outcome.invites, status: outcome.status, diagnostic: outcome.diagnostic, via }, 'e-mail bounced: the address is suppressed');
  } else if (outcome.kind === 'transient') {
    logger.info({ outbox: outcome.outboxId, status: outcome.status, via }, 'a transient bounce was recorded');
  } else if (outcome.reason === 'forged') {
    logger.warn({ outbox: outcome.outboxId, via }, 'a bounce whose VERP address does not check was ignored');
  } else {
    logger.info({ outbox: outcome.outboxId, reason: outcome.reason, via }, 'a message to the bounce address was ignored');
  }
}

export class LmtpListener {
  readonly #server: SMTPServer;
  #address: { host: string; port: number } | undefined;

  constructor(private readonly deps: LmtpDeps) {
    this.#server = new SMTPServer({
      lmtp: true,
      name: 'xmpp-invites',
      banner: 'xmpp-invites bounce listener',
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      hideSTARTTLS: true,
      size: MAX_BOUNCE_BYTES,
      logger: false,
      onRcptTo: (address, _session, callback) => {
        if (this.deps.verp.match(address.address).kind === 'other') {
          const err = new Error('Not a bounce address here') as Error & { responseCode: number };
          err.responseCode = 550;
          return callback(err);
        }
        callback();
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
            const err = new Error('Message too large') as Error & { responseCode: number };
            err.responseCode = 552;
            return callback(err);
          }
          void this.#handle(Buffer.concat(chunks), session.envelope.rcptTo.map((r) => r.address)).then(
            () => callback(),
            (e: unknown) => {
              this.deps.logger.error({ err: e }, 'a bounce could not be recorded; the MTA will retry');
              const err = new Error('Could not record the bounce, try again later') as Error & { responseCode: number };
              err.responseCode = 451;
              callback(err);
            },
          );
        });
      },
    });
    this.#server.on('error', (err) => this.deps.logger.warn({ err }, 'bounce listener error'));
  }

  async #handle(raw: Buffer, recipients: string[]): Promise<void> {
    const report = await parseBounce(raw).catch(() => undefined);
    // Each recipient is one VERP address: one bounce per outbox row it names.
    for (const rcpt of recipients) logOutcome(this.deps.logger, this.deps.bounces.handle(report, [rcpt], 'lmtp'), 'lmtp');
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const addr = this.#server.server.address();
        this.#address = { host, port: typeof addr === 'object' && addr ? addr.port : port };
        resolve(this.#address);
      });
    });
  }

  get address(): { host: string; port: number } | undefined {
    return this.#address;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
