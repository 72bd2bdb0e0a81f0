/**
 * The landing page in a real headless Chromium, against the real service and a real Prosody: the
 * invitee opens the link, creates the account, logs in over XMPP with it; declines, and the
 * inviter's session is told; answers three invitations at once; meets expired and unknown links.
 */
import type { Page } from 'playwright-core';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { launchBrowser, type TestBrowser } from '../support/browser';
import { TestClient, type XmlElement } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';

const NS_NOTIFY = 'urn:xmpp-invites:0';
const ALICE: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
const BOB: Actor = { kind: 'user', jid: 'bob@localhost', isAdmin: false };

let prosody: TestProsody;
let service: RunningService;
let browser: TestBrowser;
let alice: TestClient;
let bob: TestClient;
let page: Page;
/** what the page said about its Content-Security-Policy (nothing, when the hashed stylesheet matches) */
const cspViolations: string[] = [];

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  await prosody.register('alice', 'alice-password');
  await prosody.register('bob', 'bob-password');
  service = await startService(serviceConfig(prosody, { site_name: 'Example Chat' }), { provisionTimeoutMs: 5_000 });
  const login = (u: string) => TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: u, password: `${u}-password` });
  [alice, bob] = await Promise.all([login('alice'), login('bob')]);
  browser = await launchBrowser();
});

beforeEach(async () => {
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
  for (const c of [alice, bob]) await c?.stop();
  await service?.stop();
  await prosody?.stop();
});

const invites = () => service.app.invites;
/** The landing URL as the browser reaches it (web.public_url names the public host). */
const landing = (token: string) => `${service.app.web.url}/i/${token}`;
let emails = 0;
const newEmail = () => `browser${++emails}@example.net`;

function userInvite(actor: Actor, email: string, note?: string) {
  const { invite } = invites().create(actor, { kind: 'contact-account', source: 'send', email, note });
  const approved = invites().approve(OPERATOR, invite.id).invite;
  return { invite: approved, links: invites().links(approved) };
}

/** Waits for a notification of this kind about this invite at an XMPP session. */
function notified(client: TestClient, kind: string, invite: string): Promise<XmlElement> {
  return client.waitFor(
    (s) => s.name === 'message' && s.getChildren('notification', NS_NOTIFY).some((n) => n.attrs.kind === kind && n.attrs.invite === invite),
    20_000,
  );
}

it('opens an invite link, creates the account, shows the success page, and the account logs in over XMPP', async () => {
  const { links } = invites().create(OPERATOR, { kind: 'account', source: 'cli', note: 'Welcome aboard' });
  const response = await page.goto(landing(links.token));
  expect(response?.status()).toBe(200);
  await expect(page.locator('h1').textContent()).resolves.toBe('You are invited to Example Chat');
  await expect(page.locator('blockquote').textContent()).resolves.toBe('Welcome aboard');
  await expect(page.locator('svg.qr').count()).resolves.toBe(1);
  // the hashed stylesheet applies (a CSP violation would leave the page unstyled)
  await expect(page.locator('main').evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { maxWidth: string } }).getComputedStyle(el).maxWidth)).resolves.toBe('640px');

  await page.fill('#username', 'Browseruser');
  await page.fill('#password', 'browser-password');
  await Promise.all([page.waitForURL(/\/register$/), page.click('button:has-text("Create my account")')]);
  await expect(page.locator('h1').textContent()).resolves.toBe('Your account is ready');
  await expect(page.locator('#jid').textContent()).resolves.toBe('browseruser@localhost');

  const client = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'browseruser', password: 'browser-password' });
  expect(client.bareJid).toBe('browseruser@localhost');
  await client.stop();
  expect(cspViolations).toEqual([]);
});

it('shows the form again with the username kept when the username is taken', async () => {
  const { links } = invites().create(OPERATOR, { kind: 'account', source: 'cli' });
  await page.goto(landing(links.token));
  await page.fill('#username', 'alice');
  await page.fill('#password', 'some-password');
  const [response] = await Promise.all([page.waitForResponse(/\/register$/), page.click('button:has-text("Create my account")')]);
  expect(response.status()).toBe(400);
  await expect(page.locator('[role=alert]').textContent()).resolves.toBe('The username alice is taken');
  await expect(page.inputValue('#username')).resolves.toBe('alice');
  await expect(page.inputValue('#password')).resolves.toBe('');
});

it('declines, and the inviter’s XMPP session receives the declined notification with the reason', async () => {
  const { invite, links } = userInvite(ALICE, newEmail(), 'Join me?');
  await page.goto(landing(links.token));
  await expect(page.locator('h1').textContent()).resolves.toBe('alice@localhost invites you to Example Chat');
  await page.fill('#reason', 'Maybe next year');
  await Promise.all([page.waitForURL(/\/decline$/), page.click('button:text-is("Decline")')]);
  await expect(page.locator('h1').textContent()).resolves.toBe('You declined the invitation');

  const message = await notified(alice, 'declined', invite.id);
  expect(message.attrs.type).toBe('chat');
  expect(message.getChildText('body')).toContain('Maybe next year');
  expect(invites().get(invite.id)?.state).toBe('declined');
});

it('lists three invitations for one address; accepting two makes one account, declining the third tells its inviter', async () => {
  const email = newEmail();
  const first = invites().create(OPERATOR, { kind: 'account', source: 'cli', email, note: 'From the team' });
  const fromAlice = userInvite(ALICE, email, 'Alice would like to chat');
  const fromBob = userInvite(BOB, email, 'Bob too');
  await page.goto(landing(first.links.token));
  await expect(page.locator('text=You have 3 invitations').count()).resolves.toBe(1);
  await expect(page.locator('legend').allTextContents()).resolves.toEqual(['alice@localhost invites you too', 'bob@localhost invites you too']);

  await page.check(`input[name="choice-${fromAlice.invite.id}"][value="accept"]`);
  await page.check(`input[name="choice-${fromBob.invite.id}"][value="decline"]`);
  await page.fill('#reason-companions', 'Alice was first');
  await page.fill('#username', 'threeinvites');
  await page.fill('#password', 'three-password');
  await Promise.all([page.waitForURL(/\/register$/), page.click('button:has-text("Create my account")')]);
  await expect(page.locator('h1').textContent()).resolves.toBe('Your account is ready');
  await expect(page.locator('#jid').textContent()).resolves.toBe('threeinvites@localhost');
  await expect(page.locator('main').textContent()).resolves.toContain('You declined the invitation from bob@localhost');

  expect((await notified(alice, 'joined', fromAlice.invite.id)).getChildText('body')).toContain('threeinvites@localhost');
  expect((await notified(bob, 'declined', fromBob.invite.id)).getChildText('body')).toContain('Alice was first');
  expect(invites().get(first.invite.id)).toMatchObject({ state: 'exhausted', uses: 1 });
  expect(invites().get(fromAlice.invite.id)).toMatchObject({ state: 'exhausted', uses: 1 });
  expect(invites().get(fromBob.invite.id)).toMatchObject({ state: 'declined', uses: 0 });
  const client = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'threeinvites', password: 'three-password' });
  await client.stop();
});

it('shows a friendly 410 page for an expired link and a friendly 404 page for an unknown one', async () => {
  const { links } = invites().create(OPERATOR, { kind: 'account', source: 'cli', expiresIn: 1 });
  await new Promise((r) => setTimeout(r, 5));
  const expired = await page.goto(landing(links.token));
  expect(expired?.status()).toBe(410);
  await expect(page.locator('h1').textContent()).resolves.toBe('This invitation can no longer be used');
  await expect(page.locator('main').textContent()).resolves.toContain('It has expired.');

  const unknown = await page.goto(landing(`${links.token.slice(0, 10)}${'A'.repeat(24)}`));
  expect(unknown?.status()).toBe(404);
  await expect(page.locator('h1').textContent()).resolves.toBe('This invitation link is not valid');
});
