/**
 * Invites by e-mail end to end: a real Prosody, real client sessions, the service in-process, and a
 * real SMTP server on loopback. #send with mixed lines, approval before e-mail, the e-mailed link
 * creating an account, a 5xx told to the inviter by message, an outage and a crash survived with
 * each e-mail delivered once, and one reminder.
 */
import { openStoreOf } from '../support/engine';
import { OPERATOR } from '../../src/domain/types';
import { inviteServiceFor, outboxFor } from '../../src/services';
import { adhoc, commandNotes, commandOf, errorCondition, formFields, TestClient, xml, type XmlElement } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { bodyOf, header, leaves, TestSmtpServer, type ReceivedMail } from '../support/smtp';

const SEND = 'urn:xmpp-invites:0#send';
const NS_NOTIFY = 'urn:xmpp-invites:0';
const OPTIONS = { outboxBackoffMs: 100, outboxPollMs: 200 };

let prosody: TestProsody;
let smtp: TestSmtpServer;
let service: RunningService;
let alice: TestClient;
let admin: TestClient;

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    hostAdmins: [COMPONENT],
    anonymousHost: 'anon.localhost',
  });
  for (const u of ['alice', 'admin']) await prosody.register(u, `${u}-password`);
  smtp = await TestSmtpServer.start();
  service = await startService(
    serviceConfig(prosody, {
      site_name: 'Example Chat',
      admins: ['admin@localhost'],
      registration: { requester_domains: ['anon.localhost'] },
      mail: { transport: smtp.url(), from: 'Example Chat <invites@example.org>', max_attempts: 8, reminder_before: '1d' },
    }),
    OPTIONS,
  );
  const login = (u: string) => TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: u, password: `${u}-password` });
  [alice, admin] = await Promise.all([login('alice'), login('admin')]);
});

afterAll(async () => {
  for (const c of [alice, admin]) await c?.stop();
  await service?.stop();
  await smtp?.stop();
  await prosody?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const to = (address: string) => (m: ReceivedMail) => m.to.includes(address);

/** Runs #send: the form, then the submission; returns the final reply. */
async function send(client: TestClient, emails: string[], fields: Record<string, string | string[]> = {}): Promise<XmlElement> {
  const first = await adhoc(client, COMPONENT, SEND);
  expect(commandOf(first)?.attrs.status).toBe('executing');
  return adhoc(client, COMPONENT, SEND, { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: { emails, ...fields } });
}

function snapshot(): string {
  const db = openStoreOf(service.config.database);
  try {
    return ['invites', 'events', 'outbox'].map((t) => JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all().map((r) => JSON.stringify(r)).sort())).join('\n');
  } finally {
    db.close();
  }
}

function notified(client: TestClient, kind: string, invite: string): Promise<XmlElement> {
  return client.waitFor(
    (s) => s.name === 'message' && s.getChildren('notification', NS_NOTIFY).some((n) => n.attrs.kind === kind && n.attrs.invite === invite),
    20_000,
  );
}

it('offers the form with emails, message and the lifetimes up to invites.expiry', async () => {
  const reply = await adhoc(alice, COMPONENT, SEND);
  const form = commandOf(reply)!.getChild('x', 'jabber:x:data')!;
  const fields: Record<string, XmlElement> = Object.fromEntries(form.getChildren('field').map((f) => [f.attrs.var as string, f]));
  expect(fields.emails.attrs.type).toBe('text-multi');
  expect(fields.message.attrs.type).toBe('text-multi');
  expect(fields.expire.attrs.type).toBe('list-single');
  expect(fields.expire.getChildText('value')).toBe('7d');
  expect(fields.expire.getChildren('option').map((o) => o.getChildText('value'))).toEqual(['1d', '3d', '7d']);
  expect(form.getChildText('instructions')).toMatch(/admin must approve/);
  await adhoc(alice, COMPONENT, SEND, { sessionid: commandOf(reply)!.attrs.sessionid, action: 'cancel' });
});

it('invites each valid line, lists each invalid line and refusal, and e-mails only after approval', async () => {
  const reply = await send(alice, ['carol@example.org', 'not-an-address', 'a@x.org, b@y.org', 'Dave <dave@example.org>', 'Carol@Example.org', 'erin@example.org\nfrank@example.org'], {
    message: ['Come and chat with us!', 'It is nice here.'],
    expire: '3d',
  });
  expect(commandOf(reply)?.attrs.status).toBe('completed');
  const notes = commandNotes(reply);
  // The outcome first, then what was done, then each refused line named (clients show note types alike).
  expect(notes.slice(0, 2)).toEqual([
    { type: 'warn', text: '3 of 7 addresses invited.' },
    { type: 'info', text: 'E-mailed once an admin approves: carol@example.org, erin@example.org, frank@example.org.' },
  ]);
  expect(notes[2].type).toBe('warn');
  expect(notes[2].text.split('\n')).toEqual([
    '"not-an-address" not invited: not a single e-mail address',
    '"a@x.org, b@y.org" not invited: not a single e-mail address (one address per line)',
    '"Dave <dave@example.org>" not invited: not a single e-mail address',
    '"Carol@Example.org" not invited: listed twice',
  ]);
  const mine = service.app.invites.list({ inviter: 'alice@localhost' }).filter((i) => i.source === 'send');
  expect(mine.map((i) => [i.inviteeEmail, i.state, i.kind, i.note]).sort()).toEqual([
    ['carol@example.org', 'pending', 'contact-account', 'Come and chat with us!\nIt is nice here.'],
    ['erin@example.org', 'pending', 'contact-account', 'Come and chat with us!\nIt is nice here.'],
    ['frank@example.org', 'pending', 'contact-account', 'Come and chat with us!\nIt is nice here.'],
  ]);
  for (const i of mine) expect(i.expiresAt - i.createdAt).toBe(3 * 86_400_000);
  await sleep(1_000);
  expect(smtp.received.filter((m) => ['carol@example.org', 'erin@example.org', 'frank@example.org'].includes(m.to[0]))).toEqual([]);

  // A second submission for the same address is refused as a duplicate, changing nothing.
  const before = snapshot();
  const again = await send(alice, ['carol@example.org']);
  // Nothing came of it: the form again, not a completion.
  expect(commandOf(again)?.attrs.status).toBe('executing');
  expect(commandNotes(again)).toEqual([
    {
      type: 'error',
      text: `Nobody was invited.\n"carol@example.org" not invited: you already invited this address (pending invite ${mine.find((i) => i.inviteeEmail === 'carol@example.org')!.id})`,
    },
  ]);
  expect(snapshot()).toBe(before);
});

it('e-mails an approved invite with a text and an HTML part, and the link’s token creates an account', async () => {
  const reply = await send(alice, ['grace@example.org'], { message: 'See you <soon> & later' });
  expect(commandNotes(reply).map((n) => n.text)).toEqual(['1 address invited.', 'E-mailed once an admin approves: grace@example.org.']);
  const invite = service.app.invites.list({ inviter: 'alice@localhost', invitee: 'grace@example.org' })[0];
  expect(invite.state).toBe('pending');

  const page = await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#pending');
  await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#pending', { sessionid: commandOf(page)!.attrs.sessionid, action: 'complete', fields: { approve: [invite.id] } });
  const mail = await smtp.waitFor(to('grace@example.org'));
  expect(mail.from).toBe('invites@example.org');
  expect(header(mail.message, 'subject')).toBe('alice@localhost invites you to Example Chat');
  expect(header(mail.message, 'from')).toBe('Example Chat <invites@example.org>');
  expect(mail.message.contentType).toBe('multipart/alternative');
  expect(leaves(mail.message).map((p) => p.contentType)).toEqual(['text/plain', 'text/html']);
  const text = bodyOf(mail.message, 'text/plain')!;
  const html = bodyOf(mail.message, 'text/html')!;
  expect(text).toContain('> See you <soon> & later');
  expect(html).toContain('See you &lt;soon&gt; &amp; later');
  const token = /https:\/\/invites\.example\.org\/i\/([A-Za-z0-9_-]+)/.exec(text)![1];
  expect(html).toContain(`href="https://invites.example.org/i/${token}"`);
  const expiresAt = service.app.invites.get(invite.id)!.expiresAt;
  expect(text).toContain(`valid until ${new Date(expiresAt).toISOString().slice(0, 16).replace('T', ' ')} UTC`);

  const anon = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
  try {
    const registered = await anon.iq(
      xml('iq', { type: 'set', to: COMPONENT }, xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, 'grace'), xml('password', {}, 'grace-password-1'), xml('token', {}, token))),
      20_000,
    );
    expect(registered.attrs.type).toBe('result');
  } finally {
    await anon.stop();
  }
  expect(await prosody.userExists('grace')).toBe(true);
  await notified(alice, 'joined', invite.id);
  expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'exhausted', emailDelivery: 'sent' });
  expect(smtp.received.filter(to('grace@example.org'))).toHaveLength(1);
});

it('fails a 5xx at once and tells the inviter by message', async () => {
  smtp.reply = (stage, address) => (stage === 'rcpt' && address === 'nobody@example.org' ? { code: 550, message: 'No such mailbox' } : undefined);
  try {
    const reply = await send(admin, ['nobody@example.org']);
    expect(commandNotes(reply).map((n) => n.text)).toEqual(['1 address invited.', 'E-mailed now: nobody@example.org.']);
    const invite = service.app.invites.list({ inviter: 'admin@localhost', invitee: 'nobody@example.org' })[0];
    const told = await notified(admin, 'delivery-failed', invite.id);
    expect(told.attrs.type).toBe('chat');
    expect(told.getChildText('body')).toMatch(/nobody@example\.org could not be delivered by e-mail: RCPT TO: 550 No such mailbox/);
    expect(service.app.invites.get(invite.id)?.emailDelivery).toBe('failed');
    const [row] = service.app.outbox.list({ channel: 'email', limit: 100 }).filter((r) => r.recipient === 'nobody@example.org');
    expect(row).toMatchObject({ state: 'failed', attempts: 1 });
  } finally {
    smtp.reply = undefined;
  }
});

it('delivers once what was queued while the SMTP server was down', async () => {
  await smtp.down();
  const reply = await send(admin, ['late1@example.org', 'late2@example.org']);
  expect(commandNotes(reply).map((n) => n.text)).toEqual(['2 addresses invited.', 'E-mailed now: late1@example.org, late2@example.org.']);
  await sleep(1_500);
  const rows = () => service.app.outbox.list({ channel: 'email', limit: 100 }).filter((r) => r.recipient.startsWith('late'));
  expect(rows().every((r) => r.state === 'queued' && r.attempts >= 1)).toBe(true);
  await smtp.up();
  await Promise.all([smtp.waitFor(to('late1@example.org'), 30_000), smtp.waitFor(to('late2@example.org'), 30_000)]);
  await sleep(1_000);
  const ids = rows().map((r) => `<${r.messageId}>`);
  const counts = smtp.countsByMessageId();
  expect(ids.map((id) => counts.get(id))).toEqual([1, 1]);
});

it('delivers after a restart what a crash left in sending', async () => {
  await service.stop();
  const db = openStoreOf(service.config.database, { write: true });
  const outbox = outboxFor(service.config, db);
  const { invite } = inviteServiceFor(service.config, db, { outbox }).create(OPERATOR, { kind: 'account', source: 'cli', email: 'crash@example.org' });
  const [row] = outbox.claimDue(100).filter((r) => r.recipient === 'crash@example.org');
  expect(row).toMatchObject({ kind: 'invitation', state: 'sending' });
  db.close();
  service = await startService(service.config, OPTIONS);
  const mail = await smtp.waitFor(to('crash@example.org'));
  expect(mail.messageId).toBe(`<${row.messageId}>`);
  await sleep(1_000);
  expect(smtp.received.filter(to('crash@example.org'))).toHaveLength(1);
  expect(service.app.invites.get(invite.id)?.emailDelivery).toBe('sent');
});

it('sends one reminder before expiry, and never a second', async () => {
  const { invite } = service.app.invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'remind@example.org' });
  service.app.worker.poke();
  await smtp.waitFor(to('remind@example.org'));
  await sleep(500);
  // Six days later: the invite expires within reminder_before (1d).
  const db = openStoreOf(service.config.database, { write: true });
  const sixDays = 6 * 86_400_000;
  // (created_at never changes: migration 11; the reminder reads the expiry)
  db.prepare('UPDATE invites SET approved_at = approved_at - @d, expires_at = expires_at - @d WHERE id = @id').run({ d: sixDays, id: invite.id });
  db.close();
  expect(await service.app.jobs.run('reminders')).toBe(1);
  expect(await service.app.jobs.run('reminders')).toBe(0);
  const reminder = await smtp.waitFor((m) => m.to.includes('remind@example.org') && /^Reminder/.test(header(m.message, 'subject') ?? ''));
  expect(bodyOf(reminder.message, 'text/plain')).toContain(service.app.invites.links(service.app.invites.get(invite.id)!).landingUrl);
  await sleep(1_000);
  expect(await service.app.jobs.run('reminders')).toBe(0);
  expect(smtp.received.filter(to('remind@example.org')).map((m) => header(m.message, 'subject'))).toEqual([
    'You are invited to Example Chat',
    expect.stringMatching(/^Reminder: your invitation to Example Chat expires on /),
  ]);
});

it('refuses #send to a user of another domain, changing nothing', async () => {
  const anon = await TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
  try {
    const before = snapshot();
    expect(errorCondition(await adhoc(anon, COMPONENT, SEND))).toBe('forbidden');
    expect(snapshot()).toBe(before);
  } finally {
    await anon.stop();
  }
});

it('shows the form again when nothing valid is submitted or the lifetime is not offered', async () => {
  const before = snapshot();
  const first = await adhoc(alice, COMPONENT, SEND);
  const sessionid = commandOf(first)!.attrs.sessionid;
  const empty = await adhoc(alice, COMPONENT, SEND, { sessionid, action: 'complete', fields: { emails: ['  '] } });
  expect(commandOf(empty)?.attrs.status).toBe('executing');
  expect(commandNotes(empty)).toEqual([{ type: 'error', text: 'Nobody was invited: give at least one e-mail address.' }]);
  const long = await adhoc(alice, COMPONENT, SEND, { sessionid, action: 'complete', fields: { emails: ['x@example.org'], expire: '365d' } });
  expect(commandNotes(long)).toEqual([{ type: 'error', text: 'Nobody was invited: "365d" is not a lifetime on offer; choose one of 1d, 3d, 7d.' }]);
  expect(formFields(long).emails).toEqual(['x@example.org']);
  await adhoc(alice, COMPONENT, SEND, { sessionid, action: 'cancel' });
  expect(snapshot()).toBe(before);
});
