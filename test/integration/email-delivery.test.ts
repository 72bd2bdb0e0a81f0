/**
 * The e-mail channel of the outbox against a real SMTP server on loopback (smtp-server): outages,
 * 4xx and 5xx replies, timeouts, crashes, TLS rules, hostile input, the file: transport, reminders,
 * and the `mail` commands of the CLI. The clock of the domain and the worker is ours, so backoff
 * is skipped by moving it forward, while the SMTP conversation is real.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { configSecrets, loadConfig, type Config } from '../../src/config';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { createLogger } from '../../src/logger';
import { emailTransportFor } from '../../src/mail/transport';
import { OutboxWorker } from '../../src/outbox/worker';
import { inviteServiceFor, outboxFor } from '../../src/services';
import { openDatabase, type Db } from '../../src/store/database';
import { openTestStore } from '../support/engine';
import { rawTestConfig, testConfig } from '../support/fixtures';
import { LogCapture } from '../support/service';
import { bodyOf, header, parseMime, TestSmtpServer, type TestSmtpOptions } from '../support/smtp';

const alice: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface HarnessOptions {
  mail?: Record<string, unknown>;
  smtp?: TestSmtpOptions;
  /** the mail.transport URL, given the server */
  transport?: (smtp: TestSmtpServer) => string;
  config?: Record<string, unknown>;
  db?: Db;
}

async function harness(opts: HarnessOptions = {}) {
  const smtp = await TestSmtpServer.start(opts.smtp);
  cleanups.push(() => smtp.stop());
  const config: Config = testConfig({
    site_name: 'Example Chat',
    invites: { approval: 'none' },
    mail: { transport: opts.transport?.(smtp) ?? smtp.url(), from: 'Example Chat <invites@example.org>', max_attempts: 4, ...opts.mail },
    ...opts.config,
  });
  const db = opts.db ?? openTestStore();
  if (!opts.db) cleanups.push(() => db.close());
  let now = Date.now();
  const clock = () => now;
  const outbox = outboxFor(config, db, { clock });
  const invites = inviteServiceFor(config, db, { clock, outbox });
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', secrets: configSecrets(config), destination: logs });
  const newWorker = () => {
    const email = emailTransportFor({
      config,
      invites,
      logger: logger.child({ module: 'mail' }),
      timeouts: { connectionMs: 1_000, greetingMs: 1_000, socketMs: 5_000 },
      now: clock,
    });
    cleanups.push(() => email.close());
    return new OutboxWorker({
      outbox,
      invites,
      render: { siteName: config.siteName, component: config.component.domain },
      logger,
      maxAttempts: config.mail.maxAttempts,
      now: clock,
    }).use('email', email);
  };
  const worker = newWorker();
  const emailRows = () => outbox.list({ channel: 'email', limit: 1000 });
  const invite = (email: string, req: { name?: string; note?: string; actor?: Actor } = {}) =>
    invites.create(req.actor ?? alice, { kind: 'contact-account', source: 'send', email, name: req.name, note: req.note });
  return { smtp, config, db, outbox, invites, worker, newWorker, logs, emailRows, invite, advance: (ms: number) => (now += ms), clock };
}

it('delivers every e-mail exactly once when the SMTP server is down for a while, then up', async () => {
  const h = await harness({ mail: { max_attempts: 10 } });
  await h.smtp.down();
  const made = ['one@example.org', 'two@example.org', 'three@example.org'].map((a) => h.invite(a));
  for (let i = 0; i < 3; i++) {
    await h.worker.runOnce();
    h.advance(3_600_000);
  }
  const rows = h.emailRows();
  expect(rows.map((r) => [r.state, r.attempts])).toEqual([
    ['queued', 3],
    ['queued', 3],
    ['queued', 3],
  ]);
  expect(rows[0].lastError).toMatch(/ECONNREFUSED|connect/i);
  await h.smtp.up();
  await h.worker.runOnce();
  h.advance(3_600_000);
  await h.worker.runOnce();
  expect(h.emailRows().map((r) => r.state)).toEqual(['sent', 'sent', 'sent']);
  const counts = h.smtp.countsByMessageId();
  expect([...counts.values()]).toEqual([1, 1, 1]);
  expect(new Set(counts.keys())).toEqual(new Set(rows.map((r) => `<${r.messageId}>`)));
  expect(h.smtp.received.map((m) => m.to).sort()).toEqual([['one@example.org'], ['three@example.org'], ['two@example.org']]);
  for (const { invite } of made) expect(h.invites.get(invite.id)?.emailDelivery).toBe('sent');
});

it('retries a 4xx reply with backoff, then delivers', async () => {
  const h = await harness();
  let refusals = 1;
  h.smtp.reply = (stage) => (stage === 'rcpt' && refusals-- > 0 ? { code: 451, message: 'Try again later' } : undefined);
  h.invite('bob@example.org');
  await h.worker.runOnce();
  let [row] = h.emailRows();
  expect(row).toMatchObject({ state: 'queued', attempts: 1 });
  expect(row.lastError).toMatch(/451/);
  expect(row.notBefore).toBeGreaterThan(h.clock() + 3_000);
  expect(await h.worker.runOnce()).toBe(0);
  h.advance(40_000);
  await h.worker.runOnce();
  [row] = h.emailRows();
  expect(row).toMatchObject({ state: 'sent', attempts: 2, lastError: null });
  expect(h.smtp.received).toHaveLength(1);
});

it('fails a 5xx reply at once, records the failed delivery, and tells the inviter', async () => {
  const h = await harness();
  h.smtp.reply = (stage) => (stage === 'rcpt' ? { code: 550, message: 'No such user here' } : undefined);
  const { invite } = h.invite('nobody@example.org');
  await h.worker.runOnce();
  const [row] = h.emailRows();
  expect(row).toMatchObject({ state: 'failed', attempts: 1 });
  expect(row.lastError).toMatch(/RCPT TO: 550 No such user here/);
  expect(h.invites.get(invite.id)?.emailDelivery).toBe('failed');
  const told = h.outbox.list({ channel: 'xmpp', limit: 10 }).filter((r) => r.kind === 'delivery-failed');
  expect(told).toHaveLength(1);
  expect(told[0]).toMatchObject({ recipient: 'alice@localhost', inviteIds: [invite.id], params: { channel: 'email' } });
  expect(String(told[0].params.error)).toMatch(/550/);
  expect(h.smtp.received).toHaveLength(0);
});

it('fails after mail.max_attempts temporary failures', async () => {
  const h = await harness({ mail: { max_attempts: 2 } });
  h.smtp.reply = () => ({ code: 421, message: 'Service not available' });
  const { invite } = h.invite('bob@example.org');
  await h.worker.runOnce();
  h.advance(3_600_000);
  await h.worker.runOnce();
  expect(h.emailRows()[0]).toMatchObject({ state: 'failed', attempts: 2 });
  expect(h.invites.get(invite.id)?.emailDelivery).toBe('failed');
});

it('retries a server that accepts the connection but never greets, after the greeting timeout', async () => {
  const silent: Server = createServer((s: Socket) => {
    s.on('error', () => undefined);
    cleanups.push(() => s.destroy());
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => silent.close(r)));
  const port = (silent.address() as { port: number }).port;
  const h = await harness({ transport: () => `smtp://127.0.0.1:${port}` });
  h.invite('bob@example.org');
  const started = Date.now();
  await h.worker.runOnce();
  const elapsed = Date.now() - started;
  expect(h.emailRows()[0]).toMatchObject({ state: 'queued', attempts: 1 });
  expect(h.emailRows()[0].lastError).toMatch(/ETIMEDOUT Greeting never received/);
  expect(elapsed).toBeLessThan(5_000);
});

it('sends after a restart what a crash left in sending, once, with the same Message-ID', async () => {
  const h = await harness();
  h.invite('bob@example.org');
  const [claimed] = h.outbox.claimDue(10);
  expect(claimed.state).toBe('sending');
  // The process dies here; the next start takes the row up again.
  const worker = h.newWorker();
  worker.start();
  await worker.stop();
  await worker.runOnce();
  await worker.runOnce();
  expect(h.smtp.received.map((m) => m.messageId)).toEqual([`<${claimed.messageId}>`]);
  expect(h.outbox.get(claimed.id)?.state).toBe('sent');
});

it('never sends to a list of addresses or an injected header, and opens no connection for them', async () => {
  const h = await harness();
  // The doors refuse such addresses; this is the transport's own guard behind them.
  for (const bad of ['a@x.org, b@y.org', 'bob@example.org\r\nBcc: eve@evil.example', 'Bob <bob@example.org>']) {
    h.invites.create(OPERATOR, { kind: 'account', source: 'cli', email: bad });
  }
  await h.worker.runOnce();
  expect(h.emailRows().map((r) => [r.state, r.attempts, r.lastError])).toEqual(
    Array(3).fill(['failed', 1, 'the recipient is not a single e-mail address']),
  );
  expect(h.smtp.connections).toBe(0);
});

it('keeps hostile names and messages out of the headers, the recipients and the HTML', async () => {
  const h = await harness();
  const name = 'Bob"\r\nBcc: eve@evil.example\r\nX-Injected: 1\r\n';
  const note = 'Hi!\r\nBcc: eve@evil.example\r\n\r\n<script>alert(1)</script><a href="https://evil.example/">x</a>\r\n.\r\nMAIL FROM:<eve@evil.example>';
  const { invite, links } = h.invite('bob@example.org', { name, note });
  await h.worker.runOnce();
  const [mail] = h.smtp.received;
  expect(h.smtp.received).toHaveLength(1);
  expect(mail.to).toEqual(['bob@example.org']);
  expect(mail.from).toBe('invites@example.org');
  const names = mail.message.headerLines.map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
  expect(names).not.toContain('bcc');
  expect(names).not.toContain('x-injected');
  expect(names.filter((n) => n === 'to')).toHaveLength(1);
  expect(header(mail.message, 'to')).toBe('"Bob\\" Bcc: eve@evil.example X-Injected: 1" <bob@example.org>');
  const html = bodyOf(mail.message, 'text/html')!;
  expect(html).not.toMatch(/<script|evil\.example\/"/);
  expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  const text = bodyOf(mail.message, 'text/plain')!;
  expect(text).toContain('> MAIL FROM:<eve@evil.example>');
  expect(text).toContain(links.landingUrl);
  expect(h.invites.get(invite.id)?.emailDelivery).toBe('sent');
});

it('logs the recipient and the Message-ID, never the body or the token', async () => {
  const h = await harness();
  const { links } = h.invite('bob@example.org', { note: 'a private message' });
  await h.worker.runOnce();
  const [row] = h.emailRows();
  const sent = h.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'e-mail sent')!;
  expect(sent).toMatchObject({ to: 'bob@example.org', messageId: row.messageId });
  expect(h.logs.text()).not.toContain(links.token);
  expect(h.logs.text()).not.toContain('a private message');
});

it('requires STARTTLS when credentials are configured: the password never crosses in clear', async () => {
  const h = await harness({ smtp: { auth: { user: 'mailer', pass: 'secret-pass-1' } }, transport: (s) => s.url('mailer:secret-pass-1') });
  h.invite('bob@example.org');
  await h.worker.runOnce();
  const [row] = h.emailRows();
  expect(row).toMatchObject({ state: 'queued', attempts: 1 });
  expect(row.lastError).toMatch(/STARTTLS/i);
  expect(h.smtp.authAttempts).toEqual([]);
  expect(h.logs.text()).not.toContain('secret-pass-1');
});

it('sends credentials without TLS only with ?tls=none', async () => {
  const h = await harness({
    smtp: { auth: { user: 'mailer', pass: 'secret-pass-1' }, allowInsecureAuth: true },
    transport: (s) => s.url('mailer:secret-pass-1', '?tls=none'),
  });
  h.invite('bob@example.org');
  await h.worker.runOnce();
  expect(h.emailRows()[0].state).toBe('sent');
  expect(h.smtp.received[0].user).toBe('mailer');
});

it('writes one .eml file per e-mail with the file: transport, atomically, naming the file in the log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-eml-'));
  const h = await harness({ transport: () => `file:${join(dir, 'outbox')}`, mail: { from: null } });
  const { links } = h.invite('bob@example.org', { note: 'See you' });
  await h.worker.runOnce();
  const files = readdirSync(join(dir, 'outbox'));
  expect(files).toHaveLength(1);
  expect(files[0]).toMatch(/^\d{4}-\d{2}-\d{2}T[\d-]+Z-\d+\.eml$/);
  const file = join(dir, 'outbox', files[0]);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const raw = readFileSync(file, 'utf8');
  expect(raw).toContain('\r\n');
  const msg = parseMime(raw);
  expect(header(msg, 'from')).toBe('Example Chat <xmpp-invites@localhost>');
  expect(header(msg, 'to')).toBe('bob@example.org');
  expect(header(msg, 'message-id')).toBe(`<${h.emailRows()[0].messageId}>`);
  expect(bodyOf(msg, 'text/plain')).toContain(links.landingUrl);
  expect(bodyOf(msg, 'text/html')).toContain('See you');
  const written = h.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'e-mail written')!;
  expect(written).toMatchObject({ to: 'bob@example.org', file: files[0], messageId: h.emailRows()[0].messageId });
  expect(h.logs.text()).not.toContain(links.token);
  // Sent again after a crash, the row replaces its own file.
  h.db.prepare(`UPDATE outbox SET state = 'queued'`).run();
  await h.worker.runOnce();
  expect(readdirSync(join(dir, 'outbox'))).toEqual(files);
});

describe('reminders', () => {
  const DAY = 86_400_000;

  it('queues one reminder for an e-mail invite neither used nor declined, and never a second', async () => {
    const h = await harness({ mail: { reminder_before: '2d' } });
    const { invite } = h.invite('bob@example.org');
    await h.worker.runOnce();
    expect(h.invites.queueReminders(2 * DAY)).toHaveLength(0);
    h.advance(5 * DAY + 60_000);
    expect(h.invites.queueReminders(2 * DAY).map((i) => i.id)).toEqual([invite.id]);
    expect(h.invites.queueReminders(2 * DAY)).toHaveLength(0);
    await h.worker.runOnce();
    h.advance(DAY);
    expect(h.invites.queueReminders(2 * DAY)).toHaveLength(0);
    await h.worker.runOnce();
    const reminders = h.smtp.received.filter((m) => /^Reminder/.test(header(m.message, 'subject') ?? ''));
    expect(reminders).toHaveLength(1);
    expect(reminders[0].to).toEqual(['bob@example.org']);
    expect(bodyOf(reminders[0].message, 'text/plain')).toContain(h.invites.links(h.invites.get(invite.id)!).landingUrl);
    expect(h.invites.get(invite.id)?.remindedAt).not.toBeNull();
    expect(h.invites.events(invite.id).map((e) => e.type)).toEqual(['created', 'delivered', 'reminded']);
  });

  it('reminds nobody whose invite was declined, used, revoked, is still pending, or whose invitation never left', async () => {
    const h = await harness({ config: { invites: { approval: 'non-admins' } } });
    const declined = h.invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'declined@example.org' });
    const revoked = h.invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'revoked@example.org' });
    const pending = h.invite('pending@example.org');
    await h.worker.runOnce();
    h.invites.decline(declined.links.token, null);
    h.invites.revoke(OPERATOR, revoked.invite.id);
    await h.smtp.down();
    const unsent = h.invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'unsent@example.org' });
    await h.worker.runOnce();
    const used = h.invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'used@example.org' });
    h.db.prepare(`UPDATE invites SET uses = 1, email_delivery = 'sent' WHERE id = ?`).run(used.invite.id);
    const before = JSON.stringify(h.db.prepare('SELECT * FROM invites ORDER BY id').all());
    h.advance(6 * DAY);
    expect(h.invites.queueReminders(2 * DAY)).toEqual([]);
    expect(JSON.stringify(h.db.prepare('SELECT * FROM invites ORDER BY id').all())).toBe(before);
    expect(h.outbox.list({ limit: 100 }).filter((r) => r.kind === 'reminder')).toEqual([]);
    void pending;
    void unsent;
  });
});

describe('the mail commands of the CLI', () => {
  async function cli(...args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await run(args, { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  it('lists e-mails without tokens, and puts a failed one back in the queue', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-cli-'));
    const smtp = await TestSmtpServer.start();
    cleanups.push(() => smtp.stop());
    const configFile = join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      stringify(rawTestConfig({ database: './invites.sqlite', mail: { transport: smtp.url(), from: 'invites@example.org', max_attempts: 3 } })),
    );
    const created = await cli('invite', 'create', '--kind', 'account', '--email', 'bob@example.org', '--note', 'hello', '--config', configFile);
    expect(created.code).toBe(0);
    const token = /landing: +\S+\/i\/(\S+)/.exec(created.out)![1];
    expect((await cli('invite', 'create', '--kind', 'account', '--email', 'a@x.org, b@y.org', '--config', configFile)).code).toBe(2);

    let list = await cli('mail', 'list', '--json', '--config', configFile);
    const rows = JSON.parse(list.out) as Record<string, unknown>[];
    expect(rows).toHaveLength(1);
    expect(Object.keys(rows[0]).sort()).toEqual(
      ['id', 'kind', 'recipient', 'state', 'attempts', 'last_error', 'created', 'sent', 'next_attempt', 'message_id', 'invites'].sort(),
    );
    expect(rows[0]).toMatchObject({ kind: 'invitation', recipient: 'bob@example.org', state: 'queued', attempts: 0, sent: null });
    const id = String(rows[0].id);

    // The running service meets a 5xx.
    const db = openDatabase(loadConfig(configFile).database);
    cleanups.push(() => db.close());
    const h = await harness({ db, config: { database: loadConfig(configFile).database } });
    smtp.reply = () => ({ code: 550, message: 'Mailbox unavailable' });
    const config = loadConfig(configFile);
    const email = emailTransportFor({ config, invites: h.invites, logger: createLogger({ level: 'silent' }) });
    cleanups.push(() => email.close());
    const worker = new OutboxWorker({
      outbox: h.outbox,
      invites: h.invites,
      render: { siteName: 'x', component: 'invites.localhost' },
      logger: createLogger({ level: 'silent' }),
      maxAttempts: 3,
    }).use('email', email);
    await worker.runOnce();

    list = await cli('mail', 'list', '--state', 'failed', '--config', configFile);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^ID +KIND +STATE +ATTEMPTS +RECIPIENT +CREATED +SENT +LAST ERROR$/m);
    expect(list.out).toMatch(new RegExp(`^${id} +invitation +failed +1 +bob@example.org .* RCPT TO: 550 Mailbox unavailable$`, 'm'));
    expect(list.out).not.toContain(token);

    const before = JSON.stringify(db.prepare('SELECT * FROM outbox').all());
    expect(await cli('mail', 'retry', 'x1', '--config', configFile)).toMatchObject({ code: 2 });
    expect(await cli('mail', 'retry', '999', '--config', configFile)).toMatchObject({ code: 1, err: expect.stringMatching(/no e-mail 999/) });
    expect(JSON.stringify(db.prepare('SELECT * FROM outbox').all())).toBe(before);

    expect(await cli('mail', 'retry', id, '--config', configFile)).toMatchObject({ code: 0, out: `${id}: queued again for bob@example.org (the running service sends it)` });
    expect(await cli('mail', 'retry', id, '--config', configFile)).toMatchObject({ code: 1, err: expect.stringMatching(/is queued, not failed/) });
    smtp.reply = undefined;
    h.advance(60_000);
    await worker.runOnce();
    expect(smtp.received).toHaveLength(1);
    expect(bodyOf(smtp.received[0].message, 'text/plain')).toContain(token);
    list = await cli('mail', 'list', '--json', '--config', configFile);
    expect(JSON.parse(list.out)[0]).toMatchObject({ state: 'sent', attempts: 1, last_error: null });
    expect(list.out).not.toContain(token);
  });

  it('queues a new e-mail with the new link on invite resend', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-cli-'));
    const configFile = join(dir, 'config.yaml');
    writeFileSync(configFile, stringify(rawTestConfig({ database: './invites.sqlite', mail: { transport: 'file:./mail' } })));
    const created = await cli('invite', 'create', '--kind', 'account', '--email', 'bob@example.org', '--config', configFile);
    const id = /^id: +(\S+)$/m.exec(created.out)![1];
    const resent = await cli('invite', 'resend', id, '--config', configFile);
    expect(resent.code).toBe(0);
    const rows = JSON.parse((await cli('mail', 'list', '--json', '--config', configFile)).out) as { kind: string; recipient: string; invites: string[] }[];
    expect(rows.map((r) => [r.kind, r.recipient, r.invites])).toEqual([
      ['invitation', 'bob@example.org', [id]],
      ['invitation', 'bob@example.org', [id]],
    ]);
  });
});
