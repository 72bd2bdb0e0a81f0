/**
 * The web console in a real headless Chromium, against the real service and a real Prosody, with
 * real XMPP sessions receiving the sign-in messages (the acceptance of the web console):
 * - a user signs in, creates an invite and sees its link and QR code, invites three e-mail
 *   addresses at once (one malformed: shown, nothing made for it), revokes one, signs out, and the
 *   session no longer works;
 * - an admin signs in, approves two of three pending invites and rejects the third with a reason;
 *   the inviters' sessions get their messages; the statistics show the new counts in the chart and
 *   the table;
 * - a user who is not an admin gets 403 on every admin page; a sign-in link works once and
 *   expires; a form without its CSRF token is refused; a session cookie from before a sign-out is
 *   refused.
 * Screenshots of the user's and the admin's main pages, at phone and desktop widths, go to docs/.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { LOGIN_TTL_MS } from '../../src/domain/console-auth';
import type { Actor } from '../../src/domain/types';
import { launchBrowser, type TestBrowser } from '../support/browser';
import { TestClient, type XmlElement } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';

const NS = 'urn:xmpp-invites:0';
/**
 * Screenshots go to docs/ when XMPP_INVITES_SCREENSHOTS=docs (to refresh the committed ones), else
 * to a temporary directory: every run still takes them at both widths.
 */
const DOCS = process.env.XMPP_INVITES_SCREENSHOTS === 'docs' ? join(__dirname, '..', '..', 'docs') : mkdtempSync(join(tmpdir(), 'xmpp-invites-shots-'));
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

let prosody: TestProsody;
let service: RunningService;
let browser: TestBrowser;
const clients: Record<string, TestClient> = {};
let page: Page;
const cspViolations: string[] = [];

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  for (const u of ['alice', 'bob', 'carol', 'admin']) await prosody.register(u, `${u}-password`);
  service = await startService(serviceConfig(prosody, { site_name: 'Example Chat', admins: ['admin@localhost'] }), { provisionTimeoutMs: 5_000 });
  for (const u of ['alice', 'bob', 'carol', 'admin']) {
    clients[u] = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: u, password: `${u}-password` });
  }
  browser = await launchBrowser({ viewport: PHONE });
});

beforeEach(async () => {
  await browser.context.clearCookies();
  page = await browser.context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
});

afterEach(async () => {
  await page?.close();
});

afterAll(async () => {
  await browser?.close();
  for (const c of Object.values(clients)) await c?.stop();
  await service?.stop();
  await prosody?.stop();
});

const web = () => service.app.web.url;
const invites = () => service.app.invites;

/** The next sign-in message at a session: the link's path (the public URL names another host) and the phrase. */
async function loginMessage(client: TestClient): Promise<{ path: string; phrase: string }> {
  const message = await client.waitFor((s) => s.name === 'message' && s.getChildren('notification', NS).some((n) => n.attrs.kind === 'login'), 15_000);
  const body = message.getChildText('body') ?? '';
  return { path: /https?:\/\/[^/\s]+(\/login\/\S+)/.exec(body)![1], phrase: /“([^”]+)”/.exec(body)![1] };
}

/** Waits for a notification of this kind about this invite at an XMPP session. */
function notified(client: TestClient, kind: string, invite: string): Promise<XmlElement> {
  return client.waitFor((s) => s.name === 'message' && s.getChildren('notification', NS).some((n) => n.attrs.kind === kind && n.attrs.invite === invite), 20_000);
}

/** Signs in in the browser through the message the user's session receives; returns the link's path. */
async function signIn(user: string): Promise<string> {
  await page.goto(`${web()}/login`);
  await page.fill('#jid', `${user}@localhost`);
  await Promise.all([page.waitForURL(/\/login$/), page.click('button:has-text("Send me a sign-in link")')]);
  const shown = await page.locator('#phrase').textContent();
  const { path, phrase } = await loginMessage(clients[user]);
  expect(shown).toBe(phrase);
  await page.goto(`${web()}${path}`);
  await expect(page.locator('#phrase').textContent()).resolves.toBe(phrase);
  await Promise.all([page.waitForURL(/\/(my\/invites|admin)$/), page.click('button:has-text("Sign in")')]);
  return path;
}

async function shoot(name: string): Promise<void> {
  for (const [width, size] of [
    ['phone', PHONE],
    ['desktop', DESKTOP],
  ] as const) {
    await page.setViewportSize(size);
    // Nothing wider than the screen: no sideways scrolling on a phone.
    const scrollWidth = await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth);
    expect([name, width, scrollWidth <= size.width]).toEqual([name, width, true]);
    await page.screenshot({ path: join(DOCS, `console-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(PHONE);
}

it('a user signs in, creates an invite with its link and QR code, invites three addresses (one malformed), revokes one, signs out, and the old session is refused', async () => {
  const before = invites().count({ inviter: 'alice@localhost' });
  await signIn('alice');
  await expect(page.locator('h1').textContent()).resolves.toBe('My invites');

  await Promise.all([page.waitForURL(/\/my\/invites\/[a-z0-9]{10}\?done=created$/), page.click('button:has-text("Create an invitation link")')]);
  await expect(page.locator('.done').textContent()).resolves.toBe('The invitation link is ready.');
  const landing = await page.locator('#landing-url').textContent();
  expect(landing).toMatch(/^https:\/\/invites\.example\.org\/i\/[A-Za-z0-9_-]{34}$/);
  await expect(page.locator('svg.qr').count()).resolves.toBe(1);
  const created = /\/my\/invites\/([a-z0-9]{10})/.exec(page.url())![1];
  expect(invites().get(created)).toMatchObject({ inviter: 'alice@localhost', source: 'web', state: 'pending' });

  await page.goto(`${web()}/my/invites`);
  await page.fill('#emails', 'ann@example.net\nnot an address\nben@example.org');
  await page.fill('#message', 'Come and chat');
  await Promise.all([page.waitForURL(/\/my\/invites\/email$/), page.click('button:has-text("Send the invitations")')]);
  await expect(page.locator('h1').textContent()).resolves.toBe('2 addresses invited');
  await expect(page.locator('#refused li').allTextContents()).resolves.toEqual(['not an address: not a single e-mail address']);
  await expect(page.locator('#waiting li').allTextContents()).resolves.toEqual(['ann@example.net', 'ben@example.org']);
  const mine = invites().list({ inviter: 'alice@localhost' });
  expect(mine).toHaveLength(before + 3);
  expect(mine.filter((i) => i.inviteeEmail).map((i) => i.inviteeEmail).sort()).toEqual(['ann@example.net', 'ben@example.org']);

  await page.goto(`${web()}/my/invites`);
  await shoot('user');
  const ann = mine.find((i) => i.inviteeEmail === 'ann@example.net')!;
  await page.click(`a:text-is("${ann.id}")`);
  await Promise.all([page.waitForURL(/done=revoked$/), page.click('button:has-text("Revoke this invite")')]);
  await expect(page.locator('#invite-state').textContent()).resolves.toBe('revoked');
  const events = invites().events(ann.id);
  expect(events.at(-1)).toMatchObject({ type: 'revoked', actor: 'alice@localhost', data: { via: 'web' } });

  const before403 = await browser.context.cookies();
  await Promise.all([page.waitForURL(/\/login\?out=1$/), page.click('button:has-text("Sign out")')]);
  await expect(page.locator('.done').textContent()).resolves.toBe('You are signed out.');
  // The cookie from before the sign-out, put back, opens nothing.
  await browser.context.addCookies(before403.filter((c) => c.name === 'xi_session'));
  const old = await page.goto(`${web()}/my/invites`);
  expect(old?.url()).toMatch(/\/login$/);
  await expect(page.locator('h1').textContent()).resolves.toBe('Sign in to Example Chat');
  expect(cspViolations).toEqual([]);
});

it('an admin approves two of three pending invites and rejects the third with a reason; the inviters are told; the statistics show it', async () => {
  const bob: Actor = { kind: 'user', jid: 'bob@localhost', isAdmin: false };
  const carol: Actor = { kind: 'user', jid: 'carol@localhost', isAdmin: false };
  const one = invites().create(bob, { kind: 'contact-account', source: 'command', note: 'For my sister' }).invite;
  const two = invites().create(carol, { kind: 'contact-account', source: 'send', email: 'dan@example.net' }).invite;
  const three = invites().create(carol, { kind: 'contact-account', source: 'command' }).invite;
  const today = new Date().toISOString().slice(0, 10);

  // The admins' pending messages name the console's queue (later ones are folded: any of them).
  const pending = await clients.admin.waitFor((m) => m.name === 'message' && m.getChildren('notification', NS).some((n) => n.attrs.kind === 'pending'), 40_000);
  expect(pending.getChildText('body')).toContain('or open https://invites.example.org/admin.');
  await signIn('admin');
  expect(page.url()).toMatch(/\/admin$/);
  await shoot('admin');
  await page.check(`#pick-${one.id}`);
  await page.check(`#pick-${two.id}`);
  await Promise.all([page.waitForURL(/\/admin\/decide$/), page.click('button:has-text("Approve selected")')]);
  await expect(page.locator('.done').textContent()).resolves.toBe('2 of 2 invites approved.');
  await page.check(`#pick-${three.id}`);
  await page.fill('#reason', 'We are full this month');
  await Promise.all([page.waitForURL(/\/admin\/decide$/), page.click('button:has-text("Reject selected")')]);
  await expect(page.locator('.done').textContent()).resolves.toBe('1 of 1 invite rejected.');

  expect((await notified(clients.bob, 'approved', one.id)).attrs.type).toBe('chat');
  await notified(clients.carol, 'approved', two.id);
  expect((await notified(clients.carol, 'rejected', three.id)).getChildText('body')).toContain('We are full this month');
  for (const [id, type] of [
    [one.id, 'approved'],
    [two.id, 'approved'],
    [three.id, 'rejected'],
  ]) {
    expect(invites().events(id).find((e) => e.type === type)).toMatchObject({ actor: 'admin@localhost', data: expect.objectContaining({ via: 'web' }) });
  }

  await page.goto(`${web()}/admin/stats`);
  await expect(page.locator(`#activity rect[data-series="approved"][data-day="${today}"]`).getAttribute('data-value')).resolves.toBe('2');
  await expect(page.locator(`#activity rect[data-series="rejected"][data-day="${today}"]`).getAttribute('data-value')).resolves.toBe('1');
  await expect(page.locator(`#activity-table tr[data-day="${today}"] td[data-series="approved"]`).textContent()).resolves.toBe('2');
  await expect(page.locator(`#activity-table tr[data-day="${today}"] td[data-series="rejected"]`).textContent()).resolves.toBe('1');
  await expect(page.locator('#funnel-table tr[data-inviter="carol@localhost"] td[data-series="approved"]').textContent()).resolves.toBe('1');
  // Named for screen readers: the chart is an image with a title and a description in words.
  await expect(page.locator('#activity').getAttribute('role')).resolves.toBe('img');
  await expect(page.locator('#activity-desc').textContent()).resolves.toMatch(/\d+ approved, \d+ rejected/);
  // What Chromium gives assistive technology: the charts as named images, the figures as tables.
  const tree = await page.locator('main').ariaSnapshot();
  expect(tree).toMatch(/- img "Invites per day, \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d \(UTC\)"/);
  expect(tree).toMatch(/- img "Invites per inviter at each step"/);
  expect(tree).toMatch(/- table "Invites per day \(UTC\) by what happened to them"/);
  await shoot('stats');

  // The invitation tree, from the navigation: the inviters with the invites they made.
  await Promise.all([page.waitForURL(/\/admin\/tree$/), page.click('nav a:text-is("Invitation tree")')]);
  await expect(page.locator('h1').textContent()).resolves.toBe('Invitation tree');
  await expect(page.locator('#tree li[data-jid="carol@localhost"] > ul.invites li').allTextContents()).resolves.toEqual(
    expect.arrayContaining([expect.stringContaining(`- invite ${three.id} (contact-account) rejected`)]),
  );
  await shoot('tree');

  await page.goto(`${web()}/admin/invites?q=${three.id}`);
  await expect(page.locator('#count').textContent()).resolves.toBe('1 invite');
  await page.click(`a:text-is("${three.id}")`);
  await expect(page.locator('#events td:text-is("rejected")').count()).resolves.toBe(1);
  await expect(page.locator('#events').textContent()).resolves.toContain('We are full this month');
  expect(cspViolations).toEqual([]);
});

it('refuses a non-admin on every admin page (403), a used or expired sign-in link, and a form without its CSRF token', async () => {
  const path = await signIn('bob');
  for (const p of ['/admin', '/admin/invites', '/admin/stats', '/admin/tree', `/admin/invites/${invites().list({ limit: 1 })[0].id}`]) {
    const res = await page.goto(`${web()}${p}`);
    expect([p, res?.status()]).toEqual([p, 403]);
  }

  // The link that signed bob in does not work twice.
  const used = await page.goto(`${web()}${path}`);
  expect(used?.status()).toBe(410);
  await expect(page.locator('main').textContent()).resolves.toContain('already been used');

  // A new link, opened 10 minutes later, has expired (the process's clock is moved on).
  await page.goto(`${web()}/my/invites`);
  await Promise.all([page.waitForURL(/\/login\?out=1$/), page.click('button:has-text("Sign out")')]);
  await page.fill('#jid', 'bob@localhost');
  await page.click('button:has-text("Send me a sign-in link")');
  const fresh = await loginMessage(clients.bob);
  const now = Date.now();
  const clock = jest.spyOn(Date, 'now').mockImplementation(() => now + LOGIN_TTL_MS + 1_000);
  try {
    const expired = await page.goto(`${web()}${fresh.path}`);
    expect(expired?.status()).toBe(410);
    await expect(page.locator('main').textContent()).resolves.toContain('has expired');
  } finally {
    clock.mockRestore();
  }

  // A form whose CSRF token was taken out is refused, and nothing is made.
  await page.goto(`${web()}/login`);
  await page.fill('#jid', 'bob@localhost');
  await page.locator('input[name=csrf]').evaluate((el) => el.remove());
  const [refused] = await Promise.all([page.waitForResponse(/\/login$/), page.click('button:has-text("Send me a sign-in link")')]);
  expect(refused.status()).toBe(403);
  await expect(page.locator('h1').textContent()).resolves.toBe('This form has expired');
  expect(cspViolations).toEqual([]);
});
