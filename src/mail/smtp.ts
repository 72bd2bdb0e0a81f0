/**
 * Sending over SMTP with a pooled nodemailer transport.
 *
 * TLS: `smtps://` is implicit TLS from the first byte; `smtp://` upgrades with STARTTLS when the
 * server offers it, and *requires* it whenever credentials are configured (so a password never
 * crosses the network in clear), unless `?tls=none`, which never attempts TLS. Certificates are
 * verified.
 *
 * Failures: a 5xx reply to the message itself (MAIL FROM, RCPT TO, DATA) is permanent
 * (PermanentDeliveryError: the worker fails the row at once). Everything else is temporary and
 * retried by the outbox: connection refused, timeouts, dropped connections, 4xx replies, and also
 * failures of the session rather than of the message (greeting, STARTTLS, AUTH), which are the
 * server's or the configuration's to fix, not a reason to give up on the invitation.
 *
 * References: https://www.rfc-editor.org/rfc/rfc5321#section-4.2.1 (reply classes),
 * https://www.rfc-editor.org/rfc/rfc3207 (STARTTLS), https://www.rfc-editor.org/rfc/rfc8314 (implicit TLS)
 */
import nodemailer, { type NodemailerError, type SendMailOptions, type Transporter } from 'nodemailer';
import type { MailTransport } from '../config.types';
import { PermanentDeliveryError } from '../outbox/worker';
import { headerText } from './headers';
import type { MailSender, SendResult } from './transport';

export interface SmtpTimeouts {
  /** establishing the TCP (and TLS) connection; default 15 s */
  connectionMs?: number;
  /** waiting for the server's greeting; default 15 s */
  greetingMs?: number;
  /** inactivity on an open connection; default 60 s */
  socketMs?: number;
}

type SmtpConfig = Extract<MailTransport, { kind: 'smtp' }>;

/** The nodemailer options for a `smtp://` or `smtps://` transport (exported for tests). */
export function smtpOptions(t: SmtpConfig, timeouts: SmtpTimeouts = {}) {
  return {
    pool: true as const,
    host: t.host,
    port: t.port,
    secure: t.secure,
    // Contract: smtp with credentials requires TLS (STARTTLS) unless ?tls=none.
    requireTLS: t.requireTls,
    ignoreTLS: t.tlsNone,
    ...(t.auth ? { auth: { user: t.auth.user, pass: t.auth.pass } } : {}),
    tls: { minVersion: 'TLSv1.2' as const },
    connectionTimeout: timeouts.connectionMs ?? 15_000,
    greetingTimeout: timeouts.greetingMs ?? 15_000,
    socketTimeout: timeouts.socketMs ?? 60_000,
    // The worker sends one message at a time; a second connection covers a slow one.
    maxConnections: 2,
    maxMessages: 100,
    // Retries are the outbox's (counted, with backoff, visible in `mail list`), not the pool's.
    maxRequeues: 0,
    logger: false,
    debug: false,
  };
}

/** Whether a send failure is the message's own and will not change by retrying. */
export function isPermanent(err: NodemailerError): boolean {
  const aboutTheMessage = err.code === 'EENVELOPE' || err.code === 'EMESSAGE';
  return aboutTheMessage && (err.permanent === true || err.responseCode === undefined);
}

/** One line for `last_error` and the logs: the command and the server's reply, never the body. */
export function describeSmtpError(err: NodemailerError): string {
  const message = err.message ?? String(err);
  const reply = headerText(err.response ?? (err.code && !message.includes(err.code) ? `${err.code} ${message}` : message), 300);
  return err.command && err.command !== 'API' && err.command !== 'CONN' ? `${err.command}: ${reply}` : reply;
}

export class SmtpSender implements MailSender {
  readonly #transporter: Transporter;
  #closed = false;

  constructor(config: SmtpConfig, timeouts: SmtpTimeouts = {}) {
    this.#transporter = nodemailer.createTransport(smtpOptions(config, timeouts));
  }

  async send(message: SendMailOptions): Promise<SendResult> {
    try {
      const info = (await this.#transporter.sendMail(message)) as { response?: string };
      return { response: info.response ? headerText(info.response, 200) : undefined };
    } catch (err) {
      const e = err as NodemailerError;
      const text = describeSmtpError(e);
      throw isPermanent(e) ? new PermanentDeliveryError(text) : new Error(text);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#transporter.close();
  }
}
