/**
 * The e-mail channel of the outbox: turns a row into one message (text and HTML, the row's stable
 * Message-ID, one validated recipient) and hands it to a sender: SMTP (src/mail/smtp.ts) or a
 * directory of .eml files (src/mail/file.ts). The worker retries what throws an ordinary error and
 * fails at once what throws PermanentDeliveryError.
 *
 * Logs name the recipient, the Message-ID and the file or the server's reply: never the body (it
 * holds the invite's token).
 */
import type { SendMailOptions } from 'nodemailer';
import type { Logger } from 'pino';
import type { Config, MailAddress } from '../config.types';
import type { InviteService } from '../domain/invites';
import { emailKey } from '../domain/jid';
import type { Invite } from '../domain/types';
import type { MembershipReader, Rendered } from '../outbox/render';
import { PermanentDeliveryError, type Transport } from '../outbox/worker';
import type { OutboxRow } from '../store/outbox-repo';
import { Verp } from '../domain/verp';
import { FileSender } from './file';
import { headerText, mailbox } from './headers';
import { renderEmail, type EmailContent, type EmailRenderContext } from './render-email';
import { SmtpSender, type SmtpTimeouts } from './smtp';

export interface SendResult {
  /** the .eml file written (file: transport) */
  file?: string;
  /** the server's final reply (SMTP) */
  response?: string;
}

/** Where composed messages go. */
export interface MailSender {
  send(message: SendMailOptions, row: OutboxRow): Promise<SendResult>;
  /** Closes pooled connections; idempotent. */
  close(): void;
}

/** What the envelope and headers add to a message beyond its content. */
export interface Extras {
  /** the envelope sender (VERP: `bounces+{id}-{mac}@…`); default the From address */
  envelopeFrom?: string;
  /** RFC 8058 one-click unsubscribe URL */
  unsubscribe?: string;
}

/** The kinds of e-mail that invite someone (and so carry List-Unsubscribe). */
const INVITING = new Set(['invitation', 'reminder']);

/** The message of an outbox row: everything a person wrote is sanitised on the way in. */
export function composeMessage(row: OutboxRow, content: EmailContent, from: MailAddress, to: { name: string; address: string }, extras: Extras = {}): SendMailOptions {
  const sender = { name: headerText(from.name ?? ''), address: from.address };
  return {
    from: sender,
    to: [to],
    // The envelope names exactly one recipient: whatever the headers say, nobody else gets it.
    envelope: { from: extras.envelopeFrom ?? from.address, to: [to.address] },
    subject: headerText(content.subject),
    text: content.text,
    html: content.html,
    // The same Message-ID on every attempt, so a receiver can tell a repeat after a crash.
    messageId: `<${row.messageId}>`,
    headers: {
      'Auto-Submitted': 'auto-generated',
      // RFC 8058 §3.1: a one-click POST to the HTTPS URI; the code is the only credential it needs.
      ...(extras.unsubscribe ? { 'List-Unsubscribe': `<${extras.unsubscribe}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } : {}),
    },
    textEncoding: 'quoted-printable',
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

export interface EmailTransportOptions {
  from: MailAddress;
  render: EmailRenderContext;
  /** VERP envelope senders under `mail.bounce_address` */
  verp?: Verp;
  /** the one-click unsubscribe URL of an invite (`{web.public_url}/u/{code}`) */
  unsubscribeUrl?: (inviteId: string) => string;
}

export class EmailTransport implements Transport {
  constructor(
    private readonly sender: MailSender,
    private readonly opts: EmailTransportOptions,
    private readonly logger: Logger,
  ) {}

  async send(row: OutboxRow, rendered: Rendered, invites: Invite[]): Promise<void> {
    const invitee = invites.find((i) => i.inviteeEmailKey !== null && i.inviteeEmailKey === emailKey(row.recipient));
    const to = mailbox(row.recipient, invitee?.inviteeName);
    // Addresses are checked when invites are made; one that is not a single addr-spec will never
    // become deliverable, and must never reach a header or an envelope.
    if (!to) throw new PermanentDeliveryError('the recipient is not a single e-mail address');
    const content = renderEmail(row.kind, invites, row.params, this.opts.render, rendered);
    if (!content) {
      this.logger.debug({ outbox: row.id, kind: row.kind }, 'nothing to e-mail any more');
      return;
    }
    const extras: Extras = {
      envelopeFrom: this.opts.verp?.address(row.id),
      unsubscribe: INVITING.has(row.kind) && invitee && this.opts.unsubscribeUrl ? this.opts.unsubscribeUrl(invitee.id) : undefined,
    };
    const result = await this.sender.send(composeMessage(row, content, this.opts.from, to, extras), row);
    this.logger.info({ outbox: row.id, kind: row.kind, to: to.address, messageId: row.messageId, ...result }, result.file ? 'e-mail written' : 'e-mail sent');
  }

  close(): void {
    this.sender.close();
  }
}

/**
 * The e-mail transport the config asks for. Policy: without `mail.from` (allowed with file: only),
 * mail comes from xmpp-invites@{host}; a From without a display name shows the site name.
 */
export interface EmailTransportDeps {
  config: Config;
  invites: InviteService;
  logger: Logger;
  /** SMTP connection, greeting and socket timeouts (tests shorten them) */
  timeouts?: SmtpTimeouts;
  now?: () => number;
  /** membership requests, for the verification e-mail */
  membership?: MembershipReader;
}

export function emailTransportFor(deps: EmailTransportDeps): EmailTransport {
  const { config, invites, logger, ...opts } = deps;
  const t = config.mail.transport;
  const sender: MailSender = t.kind === 'file' ? new FileSender(t.dir) : new SmtpSender(t, opts.timeouts);
  const from = config.mail.from ?? { address: `xmpp-invites@${config.host}` };
  return new EmailTransport(
    sender,
    {
      from: { name: from.name || config.siteName, address: from.address },
      render: { siteName: config.siteName, invites, now: opts.now ?? Date.now, maxMessageLength: config.presence.maxMessageLength, membership: opts.membership },
      verp: config.mail.bounceAddress ? new Verp(config.mail.bounceAddress, invites.tokens) : undefined,
      unsubscribeUrl: (id) => `${config.web.publicUrl}/u/${invites.tokens.unsubscribeCode(id)}`,
    },
    logger,
  );
}
