/**
 * Reading a bounce: a delivery status notification (RFC 3464, a multipart/report whose
 * message/delivery-status part has a block of fields per recipient), or failing that a bounce
 * recognisable by its sender and subject, whose text names an enhanced status code (RFC 3463) or
 * an SMTP reply. The MIME structure is parsed by postal-mime; the fields of the status part are
 * header-like lines, read here.
 *
 * References: https://www.rfc-editor.org/rfc/rfc3464 (DSN), https://www.rfc-editor.org/rfc/rfc3463
 * (enhanced status codes), https://www.rfc-editor.org/rfc/rfc6522 (multipart/report)
 */
import { createRequire } from 'node:module';
import type PostalMimeClass from 'postal-mime';
import type { BounceRecipient, BounceReport } from '../domain/bounces';
import { headerText } from './headers';

/** Largest message read: bounces quote the original, which is small (an invitation). */
export const MAX_BOUNCE_BYTES = 1024 * 1024;

/** Longest diagnostic kept (characters): enough for the remote server's reply. */
const MAX_DIAGNOSTIC = 500;
const STATUS = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;

/** Header-like blocks of a message/delivery-status part: fields unfolded, names lower-cased. */
export function deliveryStatusBlocks(text: string): Map<string, string>[] {
  const blocks: Map<string, string>[] = [];
  let current = new Map<string, string>();
  let last: string | undefined;
  for (const raw of text.replace(/\r\n?/g, '\n').split('\n')) {
    if (raw.trim() === '') {
      if (current.size > 0) blocks.push(current);
      current = new Map();
      last = undefined;
      continue;
    }
    if (/^[ \t]/.test(raw) && last !== undefined) {
      current.set(last, `${current.get(last)} ${raw.trim()}`);
      continue;
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) continue;
    last = raw.slice(0, colon).trim().toLowerCase();
    current.set(last, raw.slice(colon + 1).trim());
  }
  if (current.size > 0) blocks.push(current);
  return blocks;
}

/** `rfc822; bob@example.org` → `bob@example.org` */
function addressField(value: string | undefined): string | null {
  if (!value) return null;
  const semi = value.indexOf(';');
  const address = (semi >= 0 ? value.slice(semi + 1) : value).trim().replace(/^<(.*)>$/, '$1');
  return address === '' ? null : address;
}

/** `smtp; 550 5.1.1 <bob@…>: no such user` → `550 5.1.1 <bob@…>: no such user` */
function diagnosticField(value: string | undefined): string | null {
  if (!value) return null;
  const semi = value.indexOf(';');
  const text = headerText(semi >= 0 && semi < 12 ? value.slice(semi + 1) : value, MAX_DIAGNOSTIC);
  return text === '' ? null : text;
}

/**
 * What an MTA wrote about the failed address in the human-readable part: the indented lines under
 * it (Exim: "  bob@example.org\n    No such user here"), else the first lines that carry a status.
 */
function explanation(text: string, address: string | null): string | null {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  if (address) {
    const at = lines.findIndex((l) => l.trim().toLowerCase() === address.toLowerCase());
    if (at >= 0) {
      const indent = lines[at].length - lines[at].trimStart().length;
      const under: string[] = [];
      for (const l of lines.slice(at + 1)) {
        if (l.trim() === '' || l.length - l.trimStart().length <= indent) break;
        under.push(l.trim());
      }
      if (under.length > 0) return headerText(under.join(' '), MAX_DIAGNOSTIC);
    }
  }
  const status = lines.find((l) => STATUS.test(l) || /\b5\d\d\b/.test(l));
  return status ? headerText(status, MAX_DIAGNOSTIC) : null;
}

const BOUNCE_SENDER = /^(mailer-daemon|postmaster|mail-daemon|mailer|bounce|bounces)@/i;
const BOUNCE_SUBJECT = /(undeliver|delivery (status|failure|failed|has failed)|returned mail|failure notice|mail delivery failed|could not be delivered|non-?delivery)/i;

function addressesOf(headers: { key: string; value: string }[]): string[] {
  // Where MTAs put the envelope recipient on local delivery, then the header recipient.
  const order = ['delivered-to', 'x-original-to', 'envelope-to', 'x-envelope-to', 'to'];
  const found: string[] = [];
  for (const name of order) {
    for (const h of headers.filter((x) => x.key === name)) {
      for (const m of h.value.matchAll(/<?([^\s<>,;"]+@[^\s<>,;"]+)>?/g)) found.push(m[1]);
    }
  }
  return [...new Set(found)];
}

let loaded: typeof PostalMimeClass | undefined;

/** postal-mime, loaded on the first bounce: a service that never reads one never holds it. */
function postalMime(): typeof PostalMimeClass {
  if (!loaded) {
    const mod = createRequire(__filename)('postal-mime') as typeof PostalMimeClass | { default: typeof PostalMimeClass };
    loaded = 'default' in mod ? mod.default : mod;
  }
  return loaded;
}

/**
 * Parses one message. Returns undefined when it is not a bounce (no DSN, and neither its sender
 * nor its subject says it is one, or no status code can be found in it).
 */
export async function parseBounce(raw: Buffer | string): Promise<BounceReport | undefined> {
  const email = await postalMime().parse(raw);
  const addressedTo = addressesOf(email.headers);
  const text = email.text ?? '';
  const status = email.attachments.find((a) => a.mimeType.toLowerCase() === 'message/delivery-status');
  if (status) {
    const body = typeof status.content === 'string' ? status.content : new TextDecoder().decode(status.content);
    const recipients = deliveryStatusBlocks(body)
      .filter((b) => b.has('status') && (b.has('final-recipient') || b.has('original-recipient') || b.has('action')))
      .map((b): BounceRecipient | undefined => {
        const code = STATUS.exec(b.get('status')!);
        if (!code) return undefined;
        const address = addressField(b.get('final-recipient')) ?? addressField(b.get('original-recipient'));
        return {
          address,
          status: code[0],
          diagnostic: diagnosticField(b.get('diagnostic-code')) ?? explanation(text, address),
          action: b.get('action')?.toLowerCase() ?? null,
        };
      })
      .filter((r): r is BounceRecipient => r !== undefined);
    if (recipients.length > 0) return { dsn: true, recipients, addressedTo };
  }
  const sender = email.from?.address ?? '';
  if (!BOUNCE_SENDER.test(sender) && !BOUNCE_SUBJECT.test(email.subject ?? '')) return undefined;
  // A bounce without a DSN (older or home-made MTAs): the first enhanced status code in the text,
  // else an SMTP reply code (5xx permanent, 4xx transient).
  const enhanced = STATUS.exec(text);
  const reply = /\b([45])\d\d\b/.exec(text);
  const code = enhanced ? enhanced[0] : reply ? `${reply[1]}.0.0` : undefined;
  if (!code) return undefined;
  const failed = /^\s*<?([^\s<>@]+@[^\s<>]+?)>?:?\s*$/m.exec(text)?.[1] ?? null;
  return { dsn: false, recipients: [{ address: failed, status: code, diagnostic: explanation(text, failed), action: 'failed' }], addressedTo };
}
