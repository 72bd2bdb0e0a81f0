/**
 * `file:DIR`, for development: each e-mail becomes one .eml file (RFC 5322, as it would go over
 * SMTP), composed by nodemailer's stream transport. Files are written atomically (a temporary file,
 * flushed, then renamed), so a reader never sees half a message; the name is stable per outbox row,
 * so a row sent again after a crash replaces its own file rather than adding a second. Files hold
 * live tokens: they are readable by the service's user only.
 */
import { constants } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer, { type SendMailOptions, type Transporter } from 'nodemailer';
import type { OutboxRow } from '../store/outbox-repo';
import type { MailSender, SendResult } from './transport';

/** "2026-11-21T12-00-00-000Z-42.eml": sorts by time of queueing, unique per row. */
export function emlName(row: OutboxRow): string {
  return `${new Date(row.createdAt).toISOString().replace(/[:.]/g, '-')}-${row.id}.eml`;
}

export class FileSender implements MailSender {
  readonly #transporter: Transporter;

  constructor(private readonly dir: string) {
    this.#transporter = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  }

  async send(message: SendMailOptions, row: OutboxRow): Promise<SendResult> {
    const info = (await this.#transporter.sendMail(message)) as { message: Buffer };
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const name = emlName(row);
    const tmp = join(this.dir, `.${name}.${process.pid}.tmp`);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      await fh.writeFile(info.message);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, name));
    return { file: name };
  }

  close(): void {
    this.#transporter.close();
  }
}
