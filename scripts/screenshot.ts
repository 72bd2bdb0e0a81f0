/**
 * `tsx scripts/screenshot.ts [OUT.png]`: renders the landing page of an example invitation in the
 * real headless Chromium and saves a full-page screenshot (default docs/landing-page.png).
 *
 * No XMPP server is needed: the service is built with an in-memory database and only its web
 * server is started (a GET never needs the server). The token, and so the QR code, is new each run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { App } from '../src/app';
import { parseConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { launchBrowser } from '../test/support/browser';

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? join(__dirname, '..', 'docs', 'landing-page.png'));
  const dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-screenshot-'));
  const config = parseConfig(
    stringify({
      component: { domain: 'invites.example.com', secret: 'screenshot-secret' },
      host: 'example.com',
      site_name: 'Example Chat',
      database: ':memory:',
      token_key: 'screenshot-token-key-0123456789abcdef',
      admins: ['admin@example.com'],
      web: { public_url: 'https://invites.example.com', listen: '127.0.0.1:0' },
    }),
    { baseDir: dir, env: {} },
  );
  const app = new App({ config, logger: createLogger({ level: 'warn' }) });
  const browser = await launchBrowser({ viewport: { width: 480, height: 900 } });
  try {
    const { invite } = app.invites.create(
      { kind: 'user', jid: 'juliet@example.com', isAdmin: false },
      { kind: 'contact-account', source: 'send', email: 'romeo@example.net', name: 'Romeo', note: 'Come and chat with us! The book club meets here on Thursdays.' },
    );
    const links = app.invites.links(app.invites.approve({ kind: 'operator' }, invite.id).invite);
    await app.web.start();
    const page = await browser.context.newPage();
    const response = await page.goto(`${app.web.url}/i/${links.token}`);
    if (response?.status() !== 200) throw new Error(`the landing page answered ${response?.status()}`);
    await page.screenshot({ path: out, fullPage: true });
    console.error(`[screenshot] ${out}`);
  } finally {
    await browser.close();
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
