/**
 * Membership requests in a real headless Chromium, against the real service, a real Prosody and a
 * real SMTP server on loopback: a person asks to join, reads the verification e-mail, verifies in
 * the browser, waits; an admin approves in #pending; the invitation e-mail arrives; the person
 * makes the account (the verified address shown read-only) and logs in over XMPP. And the `open`
 * mode: request, verify, the account form at once, no admin involved. And a password reset link
 * made with #reset, used in the browser: the new password logs in, the old one no longer does.
 */
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../support/browser';
import { adhoc, canLogIn, commandNotes, commandOf, formFields, TestClient, type XmlElement } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { bodyOf, header, TestSmtpServer, type ReceivedMail } from '../support/smtp';

const NS_NOTIFY = 'urn:xmpp-invites:0';
const PUBLIC_URL = 'https://invites.example.org';

let prosody: TestProsody;
let smtp: TestSmtpServer;
let browser: TestBrowser;
let service: RunningService | undefined;
let admin: TestClient;
let page: Page;

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  await prosody.register('admin', 'admin-password');
  smtp = await TestSmtpServer.start();
  browser = await launchBrowser();
});

beforeEach(async () => {
  page = await browser.context.newPage();
});

afterEach(async () => {
  await page?.close();
  await admin?.stop();
  await service?.stop();
  service = undefined;
});

afterAll(async () => {
  await browser?.close();
  await smtp?.stop();
  await prosody?.stop();
});

async function start(mode: 'approval' | 'open'): Promise<RunningService> {
  service = await startService(
    serviceConfig(prosody, {
      site_name: 'Example Chat',
      admins: ['admin@localhost'],
      registration: { requests: mode },
      mail: { transport: smtp.url(), from: 'Example Chat <invites@example.org>' },
      web: { public_url: PUBLIC_URL },
    }),
    { provisionTimeoutMs: 5_000, webRateLimit: { capacity: 100, refillMs: 1_000 }, outboxPollMs: 200 },
  );
  admin = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'admin', password: 'admin-password' });
  return service;
}

/** A link of an e-mail's text, as the browser reaches it (web.public_url names the public host). */
function linkIn(mail: ReceivedMail, path: RegExp): string {
  const text = bodyOf(mail.message, 'text/plain') ?? '';
  const found = new RegExp(`${PUBLIC_URL.replace(/[.]/g, '\\.')}(${path.source})`).exec(text);
  if (!found) throw new Error(`no link ${path} in: ${text}`);
  return `${service!.app.web.url}${found[1]}`;
}

const to = (address: string, subject: RegExp) => (m: ReceivedMail) =>
  m.to.some((a) => a.toLowerCase() === address.toLowerCase()) && subject.test(header(m.message, 'subject') ?? '');

async function askToJoin(email: string, reason?: string): Promise<void> {
  const response = await page.goto(`${service!.app.web.url}/request`);
  expect(response?.status()).toBe(200);
  await page.fill('#email', email);
  if (reason !== undefined) await page.fill('#reason', reason);
  await Promise.all([page.waitForURL(/\/request$/), page.click('button:has-text("Send my request")')]);
  await expect(page.locator('h1').textContent()).resolves.toBe('Check your e-mail');
}

async function verifyFromEmail(email: string): Promise<void> {
  const mail = await smtp.waitFor(to(email, /Confirm your e-mail address/));
  const link = linkIn(mail, /\/request\/v\/[A-Za-z0-9_-]+/);
  await page.goto(link);
  await expect(page.locator('h1').textContent()).resolves.toBe('Confirm your e-mail address');
  await page.click('button:has-text("Confirm my address")');
}

async function createAccount(email: string, username: string, password: string): Promise<void> {
  await expect(page.locator('#verified-email').inputValue()).resolves.toBe(email);
  await expect(page.locator('#verified-email').getAttribute('readonly')).resolves.not.toBeNull();
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(/\/register$/), page.click('button:has-text("Create my account")')]);
  await expect(page.locator('h1').textContent()).resolves.toBe('Your account is ready');
  await expect(page.locator('#jid').textContent()).resolves.toBe(`${username}@localhost`);
}

it('approval: request with a reason, verify, wait; the admin approves in #pending; the invitation e-mail; the account; an XMPP login', async () => {
  const s = await start('approval');
  const email = 'Carol.Requester@Example.net';
  await askToJoin(email, 'I sing in the choir with Alice');
  const [request] = s.app.membership.list();
  expect(request).toMatchObject({ email, state: 'unverified', reason: 'I sing in the choir with Alice' });

  await verifyFromEmail(email);
  await expect(page.locator('h1').textContent()).resolves.toBe('Your request waits for an admin');
  expect(s.app.membership.get(request.id)?.state).toBe('pending');

  // The admin is told, with a notification naming the request.
  const told = await admin.waitFor(
    (m: XmlElement) => m.name === 'message' && m.getChildren('notification', NS_NOTIFY).some((n) => n.attrs.kind === 'request' && n.attrs.request === request.id),
    20_000,
  );
  expect(told.getChildText('body')).toContain('I sing in the choir with Alice');

  // #pending lists it beside invites, with the reason; approving it makes the invitation.
  const first = await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#pending');
  const form = commandOf(first)!.getChild('x', 'jabber:x:data')!;
  const approve = form.getChildren('field').find((f) => f.attrs.var === 'approve')!;
  const option = approve.getChildren('option').find((o) => o.getChildText('value') === `request/${request.id}`);
  expect(option?.attrs.label).toContain(email);
  expect(option?.attrs.label).toContain('I sing in the choir with Alice');
  const done = await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#pending', {
    sessionid: commandOf(first)!.attrs.sessionid,
    action: 'complete',
    fields: { approve: [`request/${request.id}`] },
  });
  expect(commandOf(done)?.attrs.status).toBe('completed');
  expect(commandNotes(done)[0].text).toBe('1 membership request approved.');
  const approved = s.app.membership.get(request.id)!;
  expect(approved).toMatchObject({ state: 'approved', decidedBy: 'admin@localhost' });

  const invitation = await smtp.waitFor(to(email, /invited to Example Chat/));
  await page.goto(linkIn(invitation, /\/i\/[A-Za-z0-9_-]+/));
  await createAccount(email, 'carol', 'carol-password-1');
  expect(await canLogIn(prosody.ports.c2s, 'carol', 'carol-password-1')).toBe(true);

  // The account is recorded with the verified address and who approved it.
  const redeemed = s.app.invites.events(approved.inviteId!).find((e) => e.type === 'redeemed');
  expect(redeemed?.data).toMatchObject({ jid: 'carol@localhost', email, approvedBy: 'admin@localhost' });
  expect(s.app.membership.stats().funnel).toEqual({ requested: 1, verified: 1, approved: 1, joined: 1 });
});

it('open: request, verify, the account form at once, the account made, no admin involved', async () => {
  const s = await start('open');
  const email = 'dave@example.net';
  await askToJoin(email);
  await verifyFromEmail(email);
  // Straight to the account form of the invite made for the verified address.
  await page.waitForURL(/\/i\/[A-Za-z0-9_-]+$/);
  await createAccount(email, 'dave', 'dave-password-1');
  expect(await canLogIn(prosody.ports.c2s, 'dave', 'dave-password-1')).toBe(true);
  const [request] = s.app.membership.list();
  expect(request).toMatchObject({ state: 'approved', decidedBy: 'system' });
  expect(s.app.membership.stats().funnel).toEqual({ requested: 1, verified: 1, approved: 1, joined: 1 });
  expect(admin.received.filter((m) => m.getChildren?.('notification', NS_NOTIFY).length)).toEqual([]);
});

it('reset: an admin makes a reset link with #reset; in the browser the holder sets a new password; the old one stops working, the link is used up', async () => {
  await start('approval');
  await prosody.register('erin', 'erin-old-password');
  const first = await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#reset');
  const done = await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#reset', { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: { username: 'erin' } });
  const landing = formFields(done)['landing-url'][0].replace(PUBLIC_URL, service!.app.web.url);
  expect((await page.goto(landing))?.status()).toBe(200);
  await expect(page.locator('h1').textContent()).resolves.toBe('Choose a new password');
  await expect(page.locator('#jid').textContent()).resolves.toBe('erin@localhost');
  await page.fill('#password', 'erin-new-password');
  await page.fill('#password-again', 'erin-new-password');
  await Promise.all([page.waitForURL(/\/reset$/), page.click('button:has-text("Set my new password")')]);
  await expect(page.locator('h1').textContent()).resolves.toBe('Your new password is set');
  expect(await canLogIn(prosody.ports.c2s, 'erin', 'erin-old-password')).toBe(false);
  expect(await canLogIn(prosody.ports.c2s, 'erin', 'erin-new-password')).toBe(true);
  expect((await page.goto(landing))?.status()).toBe(410);
});
