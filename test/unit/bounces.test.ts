/**
 * Reading bounces (RFC 3464 DSNs as Exim and Postfix write them, and a bounce without a DSN), VERP
 * addresses and their MAC, the unsubscribe code; and the bounce rules on a real store: a forged,
 * foreign or unknown bounce changes nothing, a permanent one is recorded once and suppresses the
 * address, a transient one is recorded only.
 */
import { Bounces } from '../../src/domain/bounces';
import { TokenCodec } from '../../src/domain/tokens';
import { Verp } from '../../src/domain/verp';
import { OPERATOR } from '../../src/domain/types';
import { deliveryStatusBlocks, parseBounce } from '../../src/mail/dsn';
import { inviteServiceFor, outboxFor } from '../../src/services';
import { openDatabase } from '../../src/store/database';
import { SqliteBounceStore } from '../../src/store/bounces-repo';
import { testConfig } from '../support/fixtures';

const KEY = 'k'.repeat(40);

// What Exim 4.96 (Debian) sent back for a mailbox it did not have, as delivered by LMTP.
const EXIM = [
  'Received: from Debian-exim by mta.test with local (Exim 4.96)',
  '\tid 1xYhJ9-0005d0-1g',
  '\tfor bounces+17-abc@bounce.test;',
  '\tWed, 02 Dec 2026 10:11:27 +0000',
  'X-Failed-Recipients: nobody@example.test',
  'Auto-Submitted: auto-replied',
  'From: Mail Delivery System <Mailer-Daemon@mta.test>',
  'To: bounces+17-abc@bounce.test',
  'Content-Type: multipart/report; report-type=delivery-status; boundary=1796206287-eximdsn-1727144242',
  'MIME-Version: 1.0',
  'Subject: Mail delivery failed: returning message to sender',
  '',
  '--1796206287-eximdsn-1727144242',
  'Content-type: text/plain; charset=us-ascii',
  '',
  'This message was created automatically by mail delivery software.',
  '',
  'A message that you sent could not be delivered to one or more of its',
  'recipients. This is a permanent error. The following address(es) failed:',
  '',
  '  nobody@example.test',
  '    No such user here',
  '',
  '--1796206287-eximdsn-1727144242',
  'Content-type: message/delivery-status',
  '',
  'Reporting-MTA: dns; mta.test',
  '',
  'Action: failed',
  'Final-Recipient: rfc822;nobody@example.test',
  'Status: 5.0.0',
  '',
  '--1796206287-eximdsn-1727144242--',
  '',
].join('\r\n');

// Postfix's shape: Delivered-To on a pipe, a Diagnostic-Code folded over two lines, two recipients.
const POSTFIX = [
  'Delivered-To: bounces+5-0123456789abcdef0123@example.com',
  'From: MAILER-DAEMON@mx.example.org (Mail Delivery System)',
  'To: bounces+5-0123456789abcdef0123@example.com',
  'Subject: Undelivered Mail Returned to Sender',
  'MIME-Version: 1.0',
  'Content-Type: multipart/report; report-type=delivery-status; boundary="XX"',
  '',
  '--XX',
  'Content-Type: text/plain',
  '',
  'I am sorry to have to inform you that your message could not be delivered.',
  '--XX',
  'Content-Type: message/delivery-status',
  '',
  'Reporting-MTA: dns; mx.example.org',
  'Arrival-Date: Wed,  2 Dec 2026 10:00:00 +0000 (UTC)',
  '',
  'Final-Recipient: rfc822; other@example.org',
  'Action: delayed',
  'Status: 4.4.1',
  '',
  'Final-Recipient: rfc822; bob@example.org',
  'Original-Recipient: rfc822;bob@example.org',
  'Action: failed',
  'Status: 5.1.1',
  'Remote-MTA: dns; mail.example.org',
  'Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: Recipient address rejected:',
  '    User unknown in virtual mailbox table',
  '',
  '--XX--',
  '',
].join('\r\n');

describe('parseBounce', () => {
  it("reads Exim's DSN: the status, and the explanation under the address when there is no Diagnostic-Code", async () => {
    expect(await parseBounce(EXIM)).toEqual({
      dsn: true,
      recipients: [{ address: 'nobody@example.test', status: '5.0.0', diagnostic: 'No such user here', action: 'failed' }],
      addressedTo: ['bounces+17-abc@bounce.test'],
    });
  });

  it("reads Postfix's DSN: every recipient, folded Diagnostic-Code unfolded, Delivered-To first", async () => {
    const report = await parseBounce(POSTFIX);
    expect(report?.recipients).toEqual([
      { address: 'other@example.org', status: '4.4.1', diagnostic: null, action: 'delayed' },
      { address: 'bob@example.org', status: '5.1.1', diagnostic: '550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in virtual mailbox table', action: 'failed' },
    ]);
    expect(report?.addressedTo).toEqual(['bounces+5-0123456789abcdef0123@example.com']);
  });

  it('recognises a bounce without a DSN by its sender and its status code', async () => {
    const qmail = 'From: MAILER-DAEMON@old.example.org\r\nTo: bounces+9-x@example.com\r\nSubject: failure notice\r\n\r\nHi. This is the qmail-send program.\r\n\r\n<carol@old.example.org>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n';
    expect(await parseBounce(qmail)).toMatchObject({ dsn: false, recipients: [{ address: 'carol@old.example.org', status: '5.1.1' }] });
  });

  it('is undefined for a message that is no bounce', async () => {
    expect(await parseBounce('From: bob@example.org\r\nSubject: thanks for the invite\r\n\r\nsee you, 550 of us\r\n')).toBeUndefined();
    expect(await parseBounce('')).toBeUndefined();
  });

  it('splits delivery-status blocks at blank lines and unfolds continuation lines', () => {
    expect(deliveryStatusBlocks('A: 1\n\nB: 2\n  more\nC:3\n').map((b) => Object.fromEntries(b))).toEqual([{ a: '1' }, { b: '2 more', c: '3' }]);
  });
});

describe('VERP and unsubscribe codes', () => {
  const tokens = new TokenCodec(KEY);
  const verp = new Verp('bounces@Example.com', tokens);

  it('gives each outbox row its own address, which matches back (case-folded or not)', () => {
    const a = verp.address(42);
    expect(a).toMatch(/^bounces\+42-[0-9a-f]{20}@example\.com$/);
    expect(verp.match(a)).toEqual({ kind: 'ours', outboxId: 42 });
    expect(verp.match(`<${a.toUpperCase()}>`)).toEqual({ kind: 'ours', outboxId: 42 });
  });

  it('tells a forged or mangled address from one that is not under the bounce address', () => {
    const mac = verp.address(42).split('-')[1].split('@')[0];
    expect(verp.match(`bounces+43-${mac}@example.com`)).toEqual({ kind: 'forged', outboxId: 43 });
    expect(verp.match('bounces+42-abc@example.com')).toEqual({ kind: 'forged', outboxId: null });
    expect(verp.match(new Verp('bounces@example.com', new TokenCodec('x'.repeat(40))).address(42))).toEqual({ kind: 'forged', outboxId: 42 });
    expect(verp.match('bounces@example.com')).toEqual({ kind: 'other' });
    expect(verp.match(`bounces+42-${mac}@example.org`)).toEqual({ kind: 'other' });
    expect(verp.match('someone@example.com')).toEqual({ kind: 'other' });
  });

  it('accepts exactly the unsubscribe code it made', () => {
    const code = tokens.unsubscribeCode('abcdefghij');
    expect(code).toHaveLength(32);
    expect(tokens.unsubscribeIdOf(code)).toBe('abcdefghij');
    for (let i = 10; i < code.length; i++) {
      const altered = code.slice(0, i) + (code[i] === 'A' ? 'B' : 'A') + code.slice(i + 1);
      expect(tokens.unsubscribeIdOf(altered)).toBeUndefined();
    }
    expect(tokens.unsubscribeIdOf(code.slice(0, -1))).toBeUndefined();
    expect(new TokenCodec('y'.repeat(40)).unsubscribeIdOf(code)).toBeUndefined();
  });
});

describe('the bounce rules on a store', () => {
  function setup() {
    const config = testConfig({ token_key: KEY, mail: { bounce_address: 'bounces@example.com' } });
    const db = openDatabase(':memory:');
    const outbox = outboxFor(config, db);
    const invites = inviteServiceFor(config, db, { outbox });
    const verp = new Verp('bounces@example.com', invites.tokens);
    const bounces = new Bounces({ store: new SqliteBounceStore(db), invites, verp });
    const { invite } = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'Bob@Example.org', inviter: 'alice@localhost' });
    const row = outbox.list({ channel: 'email' })[0];
    const count = (sql: string) => Number((db.prepare(sql).get() as { n: number }).n);
    return { db, invites, verp, bounces, invite, row, count };
  }
  const report = (status: string, address = 'bob@example.org') => ({ dsn: true, recipients: [{ address, status, diagnostic: 'x', action: status.startsWith('4') ? 'delayed' : 'failed' }], addressedTo: [] });

  it('ignores what is not ours, forged, not a bounce, or about an unknown row, and records nothing', () => {
    const { bounces, verp, row, count } = setup();
    expect(bounces.handle(report('5.1.1'), ['postmaster@example.com'], 'pipe')).toEqual({ kind: 'ignored', reason: 'not-ours' });
    expect(bounces.handle(report('5.1.1'), [`bounces+${row.id}-${'f'.repeat(20)}@example.com`], 'pipe')).toEqual({ kind: 'ignored', reason: 'forged', outboxId: row.id });
    expect(bounces.handle(undefined, [verp.address(row.id)], 'pipe')).toEqual({ kind: 'ignored', reason: 'not-a-bounce', outboxId: row.id });
    expect(bounces.handle(report('5.1.1'), [verp.address(9999)], 'pipe')).toEqual({ kind: 'ignored', reason: 'unknown-row', outboxId: 9999 });
    expect(bounces.handle(report('2.0.0'), [verp.address(row.id)], 'pipe')).toEqual({ kind: 'ignored', reason: 'not-a-failure', outboxId: row.id });
    expect(count('SELECT count(*) AS n FROM bounces') + count('SELECT count(*) AS n FROM suppressions')).toBe(0);
  });

  it('records a transient bounce only, and a permanent one once: bounced, told, suppressed', () => {
    const { bounces, verp, row, invites, invite, count, db } = setup();
    expect(bounces.handle(report('4.2.2'), [verp.address(row.id)], 'lmtp')).toEqual({ kind: 'transient', outboxId: row.id, status: '4.2.2' });
    expect(invites.isSuppressed('bob@example.org')).toBe(false);
    expect(bounces.handle(report('5.1.1'), [verp.address(row.id)], 'lmtp')).toMatchObject({ kind: 'bounced', invites: [invite.id] });
    expect(bounces.handle(report('5.1.1'), [verp.address(row.id)], 'lmtp')).toEqual({ kind: 'ignored', reason: 'already-recorded', outboxId: row.id });
    expect(count('SELECT count(*) AS n FROM bounces')).toBe(2);
    expect(count(`SELECT count(*) AS n FROM outbox WHERE kind = 'delivery-failed' AND recipient = 'alice@localhost'`)).toBe(1);
    expect(invites.isSuppressed('BOB@example.org')).toBe(true);
    expect(() => invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'bob@example.org' })).toThrow(/bounced/);
    // No reminder goes to an invitation that bounced, even one sent and about to expire.
    db.prepare(`UPDATE invites SET email_delivery = 'sent', approved_at = created_at - 2 * 86400000 WHERE id = ?`).run(invite.id);
    expect(invites.queueReminders(8 * 86_400_000)).toEqual([]);
    expect(invites.unsuppress(OPERATOR, 'bob@example.org')).toBe(true);
    expect(invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'bob@example.org' }).invite.state).toBe('open');
  });
});
