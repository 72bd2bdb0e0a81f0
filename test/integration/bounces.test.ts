/**
 * Bounces and one-click unsubscribe, end to end: the service e-mails an invitation through a real
 * Exim on loopback (test/support/exim.ts) to a mailbox that does not exist; Exim's own bounce,
 * addressed to the VERP envelope sender, reaches the service's LMTP listener (or `mail bounce` on
 * stdin); the delivery becomes `bounced`, the inviter is told with the status and diagnostic, and
 * the address is refused until `mail unsuppress`. A forged bounce changes nothing. The invitation
 * carries RFC 8058's List-Unsubscribe; a POST to it records the opt-out, a GET changes nothing.
 */
import { openStoreOf } from '../support/engine';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import nodemailer from 'nodemailer';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { loadConfig } from '../../src/config';
import { adhoc, commandNotes, commandOf, TestClient, type XmlElement } from '../support/client';
import { letEximReach, TestExim } from '../support/exim';
import { rawTestConfig } from '../support/fixtures';
import { freePorts, TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, startService, type RunningService } from '../support/service';
import { TestSmtpServer } from '../support/smtp';
import { get, snapshot } from '../support/web';

const NS = 'urn:xmpp-invites:0';

let prosody: TestProsody;
let service: RunningService | undefined;
let exim: TestExim | undefined;
let smtp: TestSmtpServer | undefined;
let configFile: string;
let lmtpPort: number;
const clients: TestClient[] = [];

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  for (const u of ['alice', 'admin']) await prosody.register(u, `${u}-password`);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await service?.stop();
  service = undefined;
  await exim?.stop();
  exim = undefined;
  await smtp?.stop();
  smtp = undefined;
});

afterAll(async () => {
  await prosody?.stop();
});

/** The service, sending through `smtpPort`, with the LMTP listener on `lmtpPort`. */
async function serve(smtpPort: number, dir = mkdtempSync(join(prosody.dir, 'bounces-'))): Promise<RunningService> {
  configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    stringify(
      rawTestConfig({
        component: { server: prosody.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET },
        host: prosody.host,
        admins: ['admin@localhost'],
        database: './invites.sqlite',
        invites: { approval: 'none' },
        web: { listen: '127.0.0.1:0', public_url: 'http://invites.test' },
        mail: {
          from: 'Test Chat <invites@localhost>',
          transport: `smtp://127.0.0.1:${smtpPort}?tls=none`,
          bounce_address: 'bounces@bounce.test',
          bounce_listen: `127.0.0.1:${lmtpPort}`,
        },
      }),
    ),
  );
  service = await startService(loadConfig(configFile), { outboxPollMs: 100, outboxBackoffMs: 100 });
  return service;
}

async function login(user: string): Promise<TestClient> {
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: user, password: `${user}-password` });
  clients.push(c);
  return c;
}

async function send(c: TestClient, emails: string[]): Promise<XmlElement> {
  const first = await adhoc(c, COMPONENT, `${NS}#send`);
  return adhoc(c, COMPONENT, `${NS}#send`, { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: { emails } });
}

async function cli(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run([...args, '--config', configFile], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: {},
    stdin: async () => Buffer.from(stdin ?? ''),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${exim ? `\nexim log:\n${exim.log()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function rows(sql: string, ...params: unknown[]): Record<string, unknown>[] {
  const db = openStoreOf(service!.config.database);
  try {
    return db.prepare(sql).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

/** Every table of record, bounces and suppressions included. */
function state(): string {
  return [snapshot(service!.config.database), JSON.stringify(rows('SELECT * FROM bounces ORDER BY id')), JSON.stringify(rows('SELECT * FROM suppressions ORDER BY id'))].join('\n');
}

/** A DSN as an MTA writes it, for `address`, sent to `to`. */
function dsn(to: string, address: string, status: string, diagnostic: string): string {
  return [
    'From: Mail Delivery System <MAILER-DAEMON@mx.example.org>',
    `To: ${to}`,
    'Subject: Undelivered Mail Returned to Sender',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
    '',
    '--B',
    'Content-Type: text/plain',
    '',
    'Your message could not be delivered.',
    '--B',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.example.org',
    '',
    `Final-Recipient: rfc822; ${address}`,
    'Action: failed',
    `Status: ${status}`,
    `Diagnostic-Code: smtp; ${diagnostic}`,
    '',
    '--B--',
    '',
  ].join('\r\n');
}

it("relays through Exim, whose own bounce reaches the LMTP listener: bounced, the inviter told, the address refused; a forged bounce changes nothing", async () => {
  [lmtpPort] = await freePorts(1);
  exim = await TestExim.start({ localDomain: 'example.test', bounceDomain: 'bounce.test', bounceTo: { lmtpPort } });
  await serve(exim.port);
  const alice = await login('alice');
  await send(alice, ['nobody@example.test']);
  const [invite] = service!.app.invites.list({ inviter: 'alice@localhost' });

  const bounced = await until('the bounce', () => service!.app.invites.get(invite.id)?.emailBouncedAt ?? undefined);
  expect(bounced).toBeGreaterThan(0);
  // Exim relayed the invitation with the VERP sender and sent its bounce by LMTP.
  const [row] = rows(`SELECT id FROM outbox WHERE kind = 'invitation' AND recipient = 'nobody@example.test'`) as { id: number }[];
  const verp = new RegExp(`<= bounces\\+${row.id}-[0-9a-f]{20}@bounce\\.test `);
  expect(exim.log()).toMatch(verp);
  expect(exim.log()).toMatch(/\*\* nobody@example\.test R=no_such_user: No such user here/);
  await until('Exim to log the bounce delivered by LMTP', () => /=> bounces\+\d+-[0-9a-f]{20}@bounce\.test R=bounces T=lmtp_out .*C="250/.test(exim!.log()) || undefined);
  expect(rows('SELECT outbox_id, permanent, status, diagnostic, via FROM bounces')).toEqual([
    { outbox_id: row.id, permanent: 1, status: '5.0.0', diagnostic: 'No such user here', via: 'lmtp' },
  ]);

  const list = JSON.parse((await cli(['invite', 'list', '--json'])).out) as { id: string; delivery: string }[];
  expect(list.find((i) => i.id === invite.id)?.delivery).toBe('bounced');
  expect(service!.app.invites.events(invite.id).at(-1)).toMatchObject({ type: 'bounced', actor: 'system', reason: 'No such user here', data: { status: '5.0.0', outbox: row.id } });

  // The inviter is told, with the status and the diagnostic.
  const told = await alice.waitFor((s) => s.name === 'message' && s.getChild('notification', NS)?.attrs.kind === 'delivery-failed', 20_000);
  expect(told.getChild('notification', NS)!.attrs.invite).toBe(invite.id);
  expect(told.getChildText('body')).toContain('bounced (5.0.0): No such user here');

  // Statistics count it.
  const stats = await cli(['stats']);
  expect(stats.out).toContain('e-mail: bounced 1');
  expect(stats.out).toContain('bounces received: 1 permanent, 0 transient');
  expect(stats.out).toContain('alice@localhost: created 1, approved 1, used 0, accounts 0, bounced 1');

  // A new invite to that address is refused, by anyone, until unsuppressed.
  const before = state();
  expect(commandNotes(await send(await login('admin'), ['Nobody@example.test'])).map((n) => n.text).join('\n')).toContain(
    'E-mail to Nobody@example.test bounced; it is not invited again until an admin runs mail unsuppress',
  );
  const cliRefused = await cli(['invite', 'create', '--kind', 'account', '--email', 'nobody@example.test']);
  expect(cliRefused.code).toBe(1);
  expect(cliRefused.err).toContain('bounced');
  expect(state()).toBe(before);

  // Forged bounces: a wrong MAC by LMTP, a wrong MAC and a foreign address by the pipe. Nothing changes.
  const lmtp = nodemailer.createTransport({ host: '127.0.0.1', port: lmtpPort, lmtp: true, ignoreTLS: true } as never);
  const forgedTo = `bounces+${row.id}-${'0'.repeat(20)}@bounce.test`;
  await lmtp.sendMail({ envelope: { from: '', to: [forgedTo] }, raw: dsn(forgedTo, 'nobody@example.test', '5.1.1', '550 5.1.1 no such user') });
  lmtp.close();
  expect((await cli(['mail', 'bounce'], dsn(forgedTo, 'nobody@example.test', '5.1.1', '550 no'))).code).toBe(0);
  const other = await cli(['mail', 'bounce', '--recipient', 'someone@bounce.test'], dsn('someone@bounce.test', 'x@example.test', '5.1.1', '550 no'));
  expect(other).toMatchObject({ code: 0, out: 'ignored: not-ours' });
  const logs = service!.logs.text();
  expect(logs).toContain('a bounce whose VERP address does not check was ignored');
  expect(state()).toBe(before);

  // mail unsuppress lets it be invited again (and the resend clears `bounced`).
  expect((await cli(['mail', 'unsuppress', 'NOBODY@example.test'])).out).toBe('NOBODY@example.test: may be invited again');
  expect((await cli(['mail', 'unsuppress', 'nobody@example.test'])).out).toBe('nobody@example.test: was not suppressed');
  expect((await cli(['invite', 'resend', invite.id])).code).toBe(0);
  expect(service!.app.invites.get(invite.id)?.emailBouncedAt).toBeNull();
});

it("pipes Exim's own bounce to xmpp-invites mail bounce, run by Exim as its own user", async () => {
  [lmtpPort] = await freePorts(1);
  // Exim runs the pipe as Debian-exim: the store's directory and files must be open to it. Exim
  // refuses the (tainted) recipient as an argument; it adds Envelope-To, which mail bounce reads.
  const dir = mkdtempSync(join(tmpdir(), 'bounces-pipe-'));
  chmodSync(dir, 0o777);
  const root = resolve(__dirname, '..', '..');
  const command = [
    process.execPath,
    '--import',
    `file://${root}/node_modules/tsx/dist/loader.mjs`,
    `${root}/src/cli.ts`,
    'mail',
    'bounce',
    '--config',
    join(dir, 'config.yaml'),
  ].join(' ');
  const restoreModes = letEximReach(root);
  exim = await TestExim.start({ localDomain: 'example.test', bounceDomain: 'bounce.test', bounceTo: { pipe: command } });
  try {
    await serve(exim.port, dir);
    for (const f of ['invites.sqlite', 'invites.sqlite-wal', 'invites.sqlite-shm']) if (existsSync(join(dir, f))) chmodSync(join(dir, f), 0o666);
    const alice = await login('alice');
    await send(alice, ['ghost@example.test']);
    const [invite] = service!.app.invites.list({ inviter: 'alice@localhost' });
    const bouncedAt = await until('the bounce through the pipe', () => service!.app.invites.get(invite.id)?.emailBouncedAt ?? undefined, 30_000);
    expect(bouncedAt).toBeGreaterThan(0);
    // The pipe exited 0: Exim counts the bounce delivered.
    await until('Exim to log the pipe delivery', () => /=> bounces\+\d+-[0-9a-f]{20} <bounces\+\d+-[0-9a-f]{20}@bounce\.test> R=bounces T=pipe_out/.test(exim!.log()) || undefined);
    expect(rows('SELECT permanent, status, diagnostic, via FROM bounces')).toEqual([{ permanent: 1, status: '5.0.0', diagnostic: 'No such user here', via: 'pipe' }]);
    const told = await alice.waitFor((st) => st.name === 'message' && st.getChild('notification', NS)?.attrs.kind === 'delivery-failed', 20_000);
    expect(told.getChildText('body')).toContain('bounced (5.0.0): No such user here');
    expect(commandNotes(await send(alice, ['ghost@example.test'])).map((n) => n.text).join('\n')).toContain('E-mail to ghost@example.test bounced');
  } finally {
    await service?.stop();
    service = undefined;
    rmSync(dir, { recursive: true, force: true });
    restoreModes();
  }
});

it('records a bounce read by mail bounce from stdin (an MTA pipe) once, and a transient one only as such', async () => {
  smtp = await TestSmtpServer.start();
  [lmtpPort] = await freePorts(1);
  await serve(smtp.port);
  const alice = await login('alice');
  await send(alice, ['gone@example.org', 'slow@example.org']);
  const gone = await smtp.waitFor((m) => m.to.includes('gone@example.org'));
  const slow = await smtp.waitFor((m) => m.to.includes('slow@example.org'));
  // The envelope sender is the VERP address, and the invitation offers one-click unsubscribe.
  expect(gone.from).toMatch(/^bounces\+\d+-[0-9a-f]{20}@bounce\.test$/);
  expect(gone.message.headers.get('list-unsubscribe')?.[0]).toMatch(/^<http:\/\/invites\.test\/u\/[2-9a-z]{10}[A-Za-z0-9_-]{22}>$/);
  expect(gone.message.headers.get('list-unsubscribe-post')).toEqual(['List-Unsubscribe=One-Click']);

  // Postfix's pipe passes the recipient (${recipient}); the DSN is RFC 3464 with a Diagnostic-Code.
  const permanent = dsn('whoever@example.org', 'gone@example.org', '5.1.1', '550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown');
  const first = await cli(['mail', 'bounce', '--recipient', gone.from], permanent);
  expect(first.code).toBe(0);
  expect(first.out).toMatch(/^e-mail \d+ to gone@example\.org bounced \(5\.1\.1: 550 5\.1\.1 <gone@example\.org>: Recipient address rejected: User unknown\); the address is suppressed; invites \w+$/);
  const again = await cli(['mail', 'bounce', '--recipient', gone.from], permanent);
  expect(again.out).toBe('ignored: already-recorded');

  // Without --recipient, the VERP address is read from the headers (here To).
  const transient = await cli(['mail', 'bounce'], dsn(slow.from, 'slow@example.org', '4.2.2', '452 4.2.2 Mailbox full'));
  expect(transient.out).toMatch(/^e-mail \d+: transient failure 4\.2\.2 recorded$/);
  const [goneInvite, slowInvite] = ['gone@example.org', 'slow@example.org'].map((e) => service!.app.invites.list({ invitee: e })[0]);
  expect(goneInvite.emailBouncedAt).toBeGreaterThan(0);
  expect(slowInvite.emailBouncedAt ?? null).toBeNull();
  expect(rows('SELECT permanent, status, via FROM bounces ORDER BY id')).toEqual([
    { permanent: 1, status: '5.1.1', via: 'pipe' },
    { permanent: 0, status: '4.2.2', via: 'pipe' },
  ]);
  // Not a bounce at all (a reply to the bounce address): ignored, exit 0.
  const reply = await cli(['mail', 'bounce', '--recipient', gone.from], 'From: bob@example.org\r\nSubject: thanks\r\n\r\nsee you\r\n');
  expect(reply).toMatchObject({ code: 0, out: 'ignored: not-a-bounce' });
  expect(service!.app.invites.isSuppressed('slow@example.org')).toBe(false);
  expect(service!.app.invites.isSuppressed('gone@example.org')).toBe(true);
});

it('records the opt-out on a POST to the one-click unsubscribe URL; GET changes nothing; later invites are refused', async () => {
  smtp = await TestSmtpServer.start();
  [lmtpPort] = await freePorts(1);
  await serve(smtp.port);
  const alice = await login('alice');
  await send(alice, ['carol@example.org']);
  const mail = await smtp.waitFor((m) => m.to.includes('carol@example.org'));
  const url = /^<(.*)>$/.exec(mail.message.headers.get('list-unsubscribe')![0])![1];
  const local = url.replace('http://invites.test', service!.app.web!.url);
  const [invite] = service!.app.invites.list({ inviter: 'alice@localhost' });
  await until('the delivery recorded', () => service!.app.invites.get(invite.id)?.emailDelivery === 'sent' || undefined);

  const before = state();
  const page = await get(local);
  expect(page.status).toBe(200);
  expect(page.html).toContain('Never invite me again');
  expect(state()).toBe(before);
  // Unknown or altered codes are 404 and change nothing.
  expect((await get(`${local.slice(0, -1)}${local.endsWith('A') ? 'B' : 'A'}`)).status).toBe(404);
  expect((await fetch(`${service!.app.web!.url}/u/nonsense`, { method: 'POST', body: 'List-Unsubscribe=One-Click' })).status).toBe(404);
  expect(state()).toBe(before);

  // RFC 8058 §3.2: a POST with only List-Unsubscribe=One-Click, no cookie, no CSRF token.
  const res = await fetch(local, { method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary=x' }, body: '--x\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--x--\r\n' });
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('You will not be invited again');
  expect(service!.app.invites.isOptedOut('carol@example.org')).toBe(true);
  expect(service!.app.invites.get(invite.id)?.state).toBe('declined');
  // Again: nothing more happens.
  const after = state();
  expect((await fetch(local, { method: 'POST', body: 'List-Unsubscribe=One-Click' })).status).toBe(200);
  expect(state()).toBe(after);

  const notes = commandNotes(await send(await login('admin'), ['carol@example.org'])).map((n) => n.text).join('\n');
  expect(notes).toContain('asked not to be invited again');
});

it('refuses bad bounce input (usage, foreign LMTP recipients, oversized messages) and changes nothing', async () => {
  smtp = await TestSmtpServer.start();
  [lmtpPort] = await freePorts(1);
  await serve(smtp.port);
  const alice = await login('alice');
  await send(alice, ['dan@example.org']);
  const mail = await smtp.waitFor((m) => m.to.includes('dan@example.org'));
  const [invite] = service!.app.invites.list({ inviter: 'alice@localhost' });
  await until('the delivery recorded', () => service!.app.invites.get(invite.id)?.emailDelivery === 'sent' || undefined);
  const before = state();

  expect((await cli(['mail', 'unsuppress'])).code).toBe(2);
  expect((await cli(['mail', 'unsuppress', 'not an address'])).code).toBe(2);
  expect((await cli(['mail', 'unsuppress', 'a@example.org', 'b@example.org'])).code).toBe(2);
  expect((await cli(['mail', 'bounce', 'extra'], 'x')).code).toBe(2);
  // Over 1 MiB: ignored (exit 0: the MTA must not retry it).
  const huge = dsn(mail.from, 'dan@example.org', '5.1.1', `550 ${'x'.repeat(1024 * 1024)}`);
  expect(await cli(['mail', 'bounce', '--recipient', mail.from], huge)).toMatchObject({ code: 0, err: expect.stringContaining('larger than') });

  // The LMTP listener refuses recipients outside the bounce address, and oversized messages.
  const lmtp = nodemailer.createTransport({ host: '127.0.0.1', port: lmtpPort, lmtp: true, ignoreTLS: true } as never);
  await expect(lmtp.sendMail({ envelope: { from: '', to: ['postmaster@example.org'] }, raw: dsn('postmaster@example.org', 'dan@example.org', '5.1.1', '550') })).rejects.toMatchObject({ responseCode: 550 });
  // LMTP answers each recipient after the data: this one is refused.
  expect(await lmtp.sendMail({ envelope: { from: '', to: [mail.from] }, raw: huge })).toMatchObject({ accepted: [], rejected: [mail.from], response: '552 Message too large' });
  lmtp.close();
  expect(state()).toBe(before);

  // A config without mail.bounce_address: mail bounce is a usage error (exit 2).
  const file = join(mkdtempSync(join(prosody.dir, 'nobounce-')), 'config.yaml');
  writeFileSync(file, stringify(rawTestConfig({ host: prosody.host, database: './x.sqlite', web: { public_url: 'http://invites.test' } })));
  const errs: string[] = [];
  expect(await run(['mail', 'bounce', '--config', file], { out: () => undefined, err: (l) => errs.push(l), env: {}, stdin: async () => Buffer.from('x') })).toBe(2);
  expect(errs.join('\n')).toContain('mail.bounce_address');
});
