/**
 * The e-mail's words and its defences: header values without line breaks, escaped HTML with no
 * external resource, capped messages, one validated recipient; and the whole message as nodemailer
 * composes it, read back with a MIME reader.
 */
import nodemailer from 'nodemailer';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { bodyText, cap, headerText, mailbox } from '../../src/mail/headers';
import { escapeHtml } from '../../src/present/html';
import { renderEmail, type EmailContent } from '../../src/mail/render-email';
import { describeSmtpError, isPermanent, smtpOptions } from '../../src/mail/smtp';
import { composeMessage } from '../../src/mail/transport';
import type { OutboxRow } from '../../src/store/outbox-repo';
import { inviteServiceFor, outboxFor } from '../../src/services';
import { openTestStore } from '../support/engine';
import { testConfig } from '../support/fixtures';
import { bodyOf, header, parseMime } from '../support/smtp';

const NOW = Date.UTC(2026, 10, 21, 12);
const alice: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: true };

function setup() {
  const config = testConfig({ site_name: 'Example Chat' });
  const db = openTestStore();
  const clock = () => NOW;
  const outbox = outboxFor(config, db, { clock });
  const invites = inviteServiceFor(config, db, { clock, outbox });
  const ctx = { siteName: 'Example Chat', invites, now: clock };
  const row = (): OutboxRow => outbox.list({ channel: 'email', limit: 1 })[0];
  return { invites, ctx, row, outbox };
}

function invitationOf(s: ReturnType<typeof setup>, req: { note?: string; name?: string; email?: string; kind?: 'contact-account' | 'account' }): EmailContent {
  const { invite } = s.invites.create(req.kind === 'account' ? OPERATOR : alice, {
    kind: req.kind ?? 'contact-account',
    source: 'send',
    email: req.email ?? 'bob@example.org',
    note: req.note,
    name: req.name,
  });
  return renderEmail('invitation', [s.invites.get(invite.id)!], {}, s.ctx, { subject: '', text: '' })!;
}

/** The message as it would go over SMTP. */
async function compose(row: OutboxRow, content: EmailContent, to: { name: string; address: string }): Promise<string> {
  const t = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  const info = await t.sendMail(composeMessage(row, content, { name: 'Example Chat', address: 'invites@example.org' }, to));
  return (info.message as Buffer).toString('utf8');
}

describe('header values', () => {
  it('lose CR, LF and every other control or line-separating character', () => {
    expect(headerText('Eve\r\nBcc: victim@evil.example')).toBe('Eve Bcc: victim@evil.example');
    expect(headerText('a\u2028b\u0085c\u0000d\te')).toBe('a b c d e');
  });

  it('are capped at 200 characters, marked with an ellipsis', () => {
    const long = headerText('x'.repeat(500));
    expect([...long]).toHaveLength(200);
    expect(long.endsWith('…')).toBe(true);
  });

  it('keep surrogate pairs whole when cut', () => {
    expect(cap('😀😀😀', 2)).toBe('😀…');
  });
});

describe('addresses', () => {
  it('become { name, address } objects only when they are one addr-spec', () => {
    expect(mailbox('bob@example.org', 'Bob\r\nBcc: eve@evil.example')).toEqual({ name: 'Bob Bcc: eve@evil.example', address: 'bob@example.org' });
    for (const bad of ['a@x.org, b@y.org', 'Bob <bob@example.org>', 'bob@example.org\r\nBcc: eve@evil.example', 'bob@example.org\nX: y', '"a,b"@example.org']) {
      expect([bad, mailbox(bad, 'Bob')]).toEqual([bad, undefined]);
    }
  });
});

describe('HTML', () => {
  it('escapes the five special characters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('caps a message and drops its control characters but keeps its lines', () => {
    expect(bodyText('one\r\ntwo\u0007\rthree', 100)).toBe('one\ntwo\nthree');
    expect([...bodyText('y'.repeat(5000), 1000)]).toHaveLength(1000);
  });
});

describe('the invitation e-mail', () => {
  it('has the site, the inviter, the message, the landing link and the expiry in both parts', () => {
    const s = setup();
    const mail = invitationOf(s, { note: 'Come and chat with us', name: 'Bob' });
    const invite = s.invites.list({})[0];
    const { landingUrl } = s.invites.links(invite);
    expect(mail.subject).toBe('alice@localhost invites you to Example Chat');
    for (const part of [mail.text, mail.html]) {
      expect(part).toContain('Example Chat');
      expect(part).toContain('alice@localhost');
      expect(part).toContain('Come and chat with us');
      expect(part).toContain(landingUrl);
      expect(part).toContain('2026-11-28 12:00 UTC');
      expect(part).toContain('Hello Bob');
    }
    expect(mail.text).toContain(`Accept the invitation:\n${landingUrl}`);
    expect(mail.html).toContain(`<a href="${landingUrl}"`);
    expect(landingUrl).toMatch(/^https:\/\/invites\.example\.org\/i\/[A-Za-z0-9_-]{34}$/);
  });

  it('says who invites when the operator made the invite, and how to decline', () => {
    const s = setup();
    const mail = invitationOf(s, { kind: 'account' });
    expect(mail.subject).toBe('You are invited to Example Chat');
    expect(mail.text).toContain('You are invited to create an account on Example Chat.');
    expect(mail.text).toMatch(/open the link and decline/);
  });

  it('escapes a hostile message in HTML, loads nothing from outside, and links only to the landing page', () => {
    const s = setup();
    const hostile = '</blockquote><script>alert(1)</script><img src="https://evil.example/x.png"> <a href="https://evil.example">win</a> & "quotes"';
    const mail = invitationOf(s, { note: hostile, name: '<b>Bob</b>' });
    expect(mail.html).not.toMatch(/<script|<img|<b>|evil\.example">/);
    expect(mail.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(mail.html).toContain('Hello &lt;b&gt;Bob&lt;/b&gt;');
    // No element loads anything: no src or background attribute, stylesheet link, import or url().
    expect(mail.html).not.toMatch(/<[a-z][^>]*\s(src|background)=|<link|@import|url\(/i);
    const hrefs = [...mail.html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    const { landingUrl } = s.invites.links(s.invites.list({})[0]);
    expect(new Set(hrefs)).toEqual(new Set([landingUrl]));
    expect(mail.text).toContain('> </blockquote><script>alert(1)</script>');
  });

  it('caps the inviter’s message at the configured length', () => {
    const s = setup();
    const mail = invitationOf(s, { note: 'z'.repeat(3000) });
    expect(mail.text).toContain(`${'z'.repeat(999)}…`);
    expect(mail.text).not.toContain('z'.repeat(1000));
  });

  it('is not rendered once the invite is no longer open', () => {
    const s = setup();
    invitationOf(s, {});
    const invite = s.invites.list({})[0];
    s.invites.revoke(alice, invite.id);
    expect(renderEmail('invitation', [s.invites.get(invite.id)!], {}, s.ctx, { subject: '', text: '' })).toBeUndefined();
  });
});

describe('the reminder e-mail', () => {
  it('names the expiry and links the landing page again', () => {
    const s = setup();
    invitationOf(s, {});
    const invite = s.invites.list({})[0];
    const mail = renderEmail('reminder', [invite], {}, s.ctx, { subject: '', text: '' })!;
    expect(mail.subject).toBe('Reminder: your invitation to Example Chat expires on 2026-11-28 12:00 UTC');
    expect(mail.text).toContain(s.invites.links(invite).landingUrl);
    expect(mail.text).toContain('alice@localhost’s invitation');
  });
});

describe('the composed message', () => {
  it('carries one recipient, the row’s Message-ID, a subject on one line, and both parts', async () => {
    const s = setup();
    const content = invitationOf(s, { note: 'Line one\r\nBcc: eve@evil.example\r\n\r\n<b>x</b>', name: 'Bob\r\nBcc: eve@evil.example' });
    const row = s.row();
    const raw = await compose(row, { ...content, subject: `${content.subject}\r\nBcc: eve@evil.example` }, mailbox('bob@example.org', 'Bob\r\nBcc: eve@evil.example')!);
    const msg = parseMime(raw);
    expect(msg.headerLines.filter((l) => /^(bcc|cc|to|from|subject|message-id):/i.test(l)).map((l) => l.split(':')[0].toLowerCase()).sort()).toEqual([
      'from',
      'message-id',
      'subject',
      'to',
    ]);
    expect(header(msg, 'message-id')).toBe(`<${row.messageId}>`);
    expect(row.messageId).toMatch(/^[0-9a-f]{24}@invites\.localhost$/);
    expect(header(msg, 'to')).toBe('"Bob Bcc: eve@evil.example" <bob@example.org>');
    expect(header(msg, 'from')).toBe('Example Chat <invites@example.org>');
    expect(header(msg, 'subject')).toBe('alice@localhost invites you to Example Chat Bcc: eve@evil.example');
    expect(header(msg, 'auto-submitted')).toBe('auto-generated');
    expect(msg.contentType).toBe('multipart/alternative');
    expect(bodyOf(msg, 'text/plain')).toContain('> Bcc: eve@evil.example');
    expect(bodyOf(msg, 'text/html')).toContain('&lt;b&gt;x&lt;/b&gt;');
  });

  it('encodes a display name full of specials as a name, never as more addresses', async () => {
    const s = setup();
    const content = invitationOf(s, {});
    const raw = await compose(s.row(), content, mailbox('bob@example.org', 'a@x.org, b@y.org; <c@z.org>')!);
    const to = header(parseMime(raw), 'to')!;
    expect(to).toBe('"a@x.org, b@y.org; <c@z.org>" <bob@example.org>');
  });
});

describe('SMTP settings', () => {
  const transport = (url: string) => {
    const t = testConfig({ mail: { transport: url, from: 'invites@example.org' } }).mail.transport;
    if (t.kind !== 'smtp') throw new Error('not smtp');
    return smtpOptions(t);
  };

  it('use implicit TLS for smtps://, and require STARTTLS for smtp:// with credentials unless ?tls=none', () => {
    expect(transport('smtps://u:p@mail.example.org')).toMatchObject({ secure: true, port: 465, requireTLS: false, ignoreTLS: false, pool: true });
    expect(transport('smtp://u:p@mail.example.org')).toMatchObject({ secure: false, port: 587, requireTLS: true, ignoreTLS: false, auth: { user: 'u', pass: 'p' } });
    expect(transport('smtp://mail.example.org:25')).toMatchObject({ secure: false, port: 25, requireTLS: false, ignoreTLS: false });
    expect(transport('smtp://u:p@mail.example.org?tls=none')).toMatchObject({ requireTLS: false, ignoreTLS: true });
  });

  it('set connection, greeting and socket timeouts, and leave retries to the outbox', () => {
    expect(transport('smtp://mail.example.org')).toMatchObject({ connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 60_000, maxRequeues: 0 });
  });

  it('count only a 5xx about the message itself as permanent', () => {
    const e = (code: string, command: string, responseCode?: number) =>
      Object.assign(new Error('x'), { code, command, responseCode, permanent: responseCode === undefined ? undefined : responseCode >= 500 && responseCode !== 503 });
    expect(isPermanent(e('EENVELOPE', 'RCPT TO', 550))).toBe(true);
    expect(isPermanent(e('EMESSAGE', 'DATA', 554))).toBe(true);
    expect(isPermanent(e('EENVELOPE', 'RCPT TO', 451))).toBe(false);
    expect(isPermanent(e('EENVELOPE', 'MAIL FROM', 503))).toBe(false);
    expect(isPermanent(e('EAUTH', 'AUTH PLAIN', 535))).toBe(false);
    expect(isPermanent(e('ESOCKET', 'CONN'))).toBe(false);
    expect(isPermanent(e('ETIMEDOUT', 'CONN'))).toBe(false);
  });

  it('describe a failure by command and reply, on one line', () => {
    expect(describeSmtpError(Object.assign(new Error('x'), { code: 'EENVELOPE', command: 'RCPT TO', response: '550 5.1.1 No such user\r\nmore' }))).toBe(
      'RCPT TO: 550 5.1.1 No such user more',
    );
    expect(describeSmtpError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:25'), { code: 'ESOCKET', command: 'CONN' }))).toBe(
      'ESOCKET connect ECONNREFUSED 127.0.0.1:25',
    );
  });
});
