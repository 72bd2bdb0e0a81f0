/**
 * The membership door over plain HTTP against the real service, a real Prosody and a real SMTP
 * server on loopback: `off` has no door; every bad input is refused with its status and changes
 * nothing; no answer tells a new address from a known one; a rejected address asking too early
 * gets the same page and an e-mail saying when it may ask; and the CLI's `request` commands.
 */
import { openStoreOf } from '../support/engine';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { loadConfig } from '../../src/config';
import { OPERATOR } from '../../src/domain/types';
import { rawTestConfig } from '../support/fixtures';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, startService, type RunningService } from '../support/service';
import { bodyOf, header, TestSmtpServer, type ReceivedMail } from '../support/smtp';
import { get, post, snapshot, type Page } from '../support/web';

let prosody: TestProsody;
let smtp: TestSmtpServer;
let service: RunningService | undefined;
let configFile: string;
let nextIp = 1;
/** A fresh client address per request flow (X-Forwarded-For from the trusted loopback proxy). */
const newIp = () => `198.51.100.${nextIp++}`;

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  smtp = await TestSmtpServer.start();
});

afterEach(async () => {
  await service?.stop();
  service = undefined;
});

afterAll(async () => {
  await smtp?.stop();
  await prosody?.stop();
});

async function start(overrides: Record<string, unknown>): Promise<RunningService> {
  const dir = mkdtempSync(join(prosody.dir, 'membership-'));
  configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    stringify(
      rawTestConfig({
        component: { server: prosody.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET },
        host: prosody.host,
        database: './invites.sqlite',
        site_name: 'Example Chat',
        admins: ['admin@localhost'],
        mail: { transport: smtp.url(), from: 'Example Chat <invites@example.org>' },
        web: { public_url: 'https://chat.example.org', trusted_proxies: ['127.0.0.1'] },
        ...overrides,
      }),
    ),
  );
  service = await startService(loadConfig(configFile), { webRateLimit: { capacity: 1000, refillMs: 1_000 }, outboxPollMs: 200 });
  return service;
}

const base = () => service!.app.web.url;
const db = () => service!.config.database;

/** GET /request for its CSRF cookie and field, then POST the form from `ip`. */
async function ask(fields: Record<string, string>, ip = newIp()): Promise<Page> {
  const form = await get(`${base()}/request`, { ip });
  expect(form.status).toBe(200);
  return post(`${base()}/request`, { csrf: form.csrf!, ...fields }, { ip, cookie: form.cookie });
}

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run([...argv, '--config', configFile], { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const to = (address: string, subject: RegExp) => (m: ReceivedMail) =>
  m.to.some((a) => a.toLowerCase() === address.toLowerCase()) && subject.test(header(m.message, 'subject') ?? '');

/** The verification code of an address's e-mail. */
async function codeFor(address: string): Promise<string> {
  const mail = await smtp.waitFor(to(address, /Confirm your e-mail address/));
  return /\/request\/v\/([A-Za-z0-9_-]+)/.exec(bodyOf(mail.message, 'text/plain') ?? '')![1];
}

/** The page's main text, without what differs per response (the CSRF field). */
const mainOf = (page: Page) => page.html.replace(/name="csrf" value="[^"]*"/g, '');

describe('off (the default)', () => {
  it('has no door: /request and verification links are 404, and nothing is recorded', async () => {
    await start({});
    const before = snapshot(db());
    expect((await get(`${base()}/request`)).status).toBe(404);
    expect((await post(`${base()}/request`, { email: 'x@example.net' })).status).toBe(404);
    expect((await get(`${base()}/request/v/abcdefghij${'A'.repeat(24)}`)).status).toBe(404);
    expect(snapshot(db())).toBe(before);
  });
});

describe('approval', () => {
  it('answers the same page for a new address, one already asking, and a member’s', async () => {
    const s = await start({ registration: { requests: 'approval' } });
    const fresh = await ask({ email: 'new1@example.net', reason: 'hello' });
    expect(fresh.status).toBe(200);
    // already unverified, asked again
    const again = await ask({ email: 'NEW1@example.net', reason: 'hello again' });
    // a member: an approved request whose invite was used
    const member = await ask({ email: 'member@example.net' });
    s.app.membership.verify(await codeFor('member@example.net'));
    const [m] = s.app.membership.list({ state: 'pending' });
    s.app.membership.approve(OPERATOR, m.id);
    const asMember = await ask({ email: 'member@example.net' });
    const another = await ask({ email: 'new2@example.net' });
    for (const p of [again, member, asMember, another]) {
      expect(p.status).toBe(200);
      expect(mainOf(p)).toBe(mainOf(fresh));
    }
    expect(fresh.html).toContain('Check your e-mail');
    // one live request per address: the second ask made nothing new
    expect(s.app.membership.list().filter((r) => r.emailKey === 'new1@example.net')).toHaveLength(1);
    expect(s.app.membership.events(s.app.membership.list()[0].id).map((e) => e.type)).toContain('asked-again');
  });

  it('a filled honeypot, a blocked domain, a missing reason, a bad address and a missing CSRF token create nothing', async () => {
    await start({ registration: { requests: 'approval', request_reason: 'required', email_domains: { block: ['spam.example'] } } });
    const before = snapshot(db());
    const honeypot = await ask({ email: 'bot@example.net', reason: 'buy', website: 'http://spam.example' });
    expect(honeypot.status).toBe(200);
    expect(honeypot.html).toContain('Check your e-mail');
    const blocked = await ask({ email: 'someone@mail.spam.example', reason: 'hi' });
    expect(blocked.status).toBe(400);
    expect(blocked.html).toContain('Requests from addresses at mail.spam.example are not accepted here');
    expect(blocked.html).toContain('value="someone@mail.spam.example"');
    const noReason = await ask({ email: 'ok@example.net', reason: '  ' });
    expect(noReason.status).toBe(400);
    expect(noReason.html).toContain('Please say why you would like to join');
    const badAddress = await ask({ email: 'Bob <bob@example.net>', reason: 'hi' });
    expect(badAddress.status).toBe(400);
    const tooLong = await ask({ email: 'long@example.net', reason: 'x'.repeat(1001) });
    expect(tooLong.status).toBe(400);
    const noCsrf = await post(`${base()}/request`, { email: 'ok@example.net', reason: 'hi' }, { ip: newIp() });
    expect(noCsrf.status).toBe(403);
    expect(snapshot(db())).toBe(before);
  });

  it('a request flood from one address gets 429 with Retry-After, and the refused request is not recorded', async () => {
    const s = await start({ registration: { requests: 'approval' }, limits: { requests_per_hour: 2 } });
    const ip = newIp();
    expect((await ask({ email: 'f1@example.net' }, ip)).status).toBe(200);
    expect((await ask({ email: 'f2@example.net' }, ip)).status).toBe(200);
    const before = snapshot(db());
    const third = await ask({ email: 'f3@example.net' }, ip);
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(3000);
    expect(snapshot(db())).toBe(before);
    // another address is not held back
    expect((await ask({ email: 'f3@example.net' })).status).toBe(200);
    expect(s.app.membership.count()).toBe(3);
  });

  it('a site-wide daily cap refuses with 429', async () => {
    await start({ registration: { requests: 'approval' }, limits: { requests_per_day: 1 } });
    expect((await ask({ email: 'd1@example.net' })).status).toBe(200);
    const before = snapshot(db());
    expect((await ask({ email: 'd2@example.net' })).status).toBe(429);
    expect(snapshot(db())).toBe(before);
  });

  it('a forged or unknown verification code is 404 and changes nothing; GET of a real one changes nothing', async () => {
    const s = await start({ registration: { requests: 'approval' } });
    await ask({ email: 'forge@example.net' });
    const code = await codeFor('forge@example.net');
    const forged = `${code.slice(0, 10)}${code[10] === 'A' ? 'B' : 'A'}${code.slice(11)}`;
    const before = snapshot(db());
    const page = await get(`${base()}/request/v/${forged}`);
    expect(page.status).toBe(404);
    const form = await get(`${base()}/request`);
    expect((await post(`${base()}/request/v/${forged}`, { csrf: form.csrf! }, { cookie: form.cookie })).status).toBe(404);
    expect((await get(`${base()}/request/v/nonsense`)).status).toBe(404);
    const real = await get(`${base()}/request/v/${code}`);
    expect(real.status).toBe(200);
    expect(real.html).toContain('Confirm my address');
    expect(snapshot(db())).toBe(before);
    // the POST with the page's CSRF verifies
    const verified = await post(`${base()}/request/v/${code}`, { csrf: real.csrf! }, { cookie: real.cookie });
    expect(verified.status).toBe(200);
    expect(verified.html).toContain('Your request waits for an admin');
    expect(s.app.membership.list()[0].state).toBe('pending');
    // the code never reaches the logs
    expect(s.logs.text()).not.toContain(code);
  });

  it('a rejected address asking again too early gets the same page and an e-mail saying when it may ask', async () => {
    const s = await start({ registration: { requests: 'approval' }, limits: { request_after_reject: '30d' } });
    const fresh = await ask({ email: 'nope@example.net', reason: 'let me in' });
    s.app.membership.verify(await codeFor('nope@example.net'));
    const [r] = s.app.membership.list({ state: 'pending' });
    const rejected = await cli('request', 'reject', r.id, '--reason', 'we only take neighbours');
    expect(rejected).toMatchObject({ code: 0, out: `${r.id}: rejected` });
    const answer = await smtp.waitFor(to('nope@example.net', /Your request to join Example Chat/));
    expect(bodyOf(answer.message, 'text/plain')).toContain('we only take neighbours');

    const again = await ask({ email: 'nope@example.net', reason: 'please' });
    expect(again.status).toBe(200);
    expect(mainOf(again)).toBe(mainOf(fresh));
    const wait = await smtp.waitFor((m) => to('nope@example.net', /Your request to join/)(m) && /ask again from/.test(bodyOf(m.message, 'text/plain') ?? ''));
    const until = new Date(s.app.membership.get(r.id)!.decidedAt! + 30 * 86_400_000).toISOString().slice(0, 16).replace('T', ' ');
    expect(bodyOf(wait.message, 'text/plain')).toContain(`You may ask again from ${until} UTC`);
    expect(s.app.membership.list().filter((x) => x.emailKey === 'nope@example.net')).toHaveLength(1);
  });

  it('lists, shows, approves and rejects requests from the CLI, and refuses bad ids', async () => {
    const s = await start({ registration: { requests: 'approval' } });
    await ask({ email: 'cli1@example.net', reason: 'one' });
    await ask({ email: 'cli2@example.net', reason: 'two' });
    s.app.membership.verify(await codeFor('cli1@example.net'));
    s.app.membership.verify(await codeFor('cli2@example.net'));
    const listed = await cli('request', 'list', '--state', 'pending', '--json');
    expect(listed.code).toBe(0);
    const rows = JSON.parse(listed.out) as { id: string; email: string; state: string; reason: string }[];
    expect(rows.map((x) => [x.email, x.state, x.reason])).toEqual([
      ['cli1@example.net', 'pending', 'one'],
      ['cli2@example.net', 'pending', 'two'],
    ]);
    expect(listed.out).not.toMatch(/request\/v\//);
    const approved = await cli('request', 'approve', rows[0].id);
    expect(approved.code).toBe(0);
    expect(approved.out).toMatch(new RegExp(`^${rows[0].id}: approved \\(invite [a-z0-9]{10}, e-mailed to cli1@example.net\\)$`));
    await smtp.waitFor(to('cli1@example.net', /You are invited to Example Chat/));
    expect((await cli('request', 'approve', rows[0].id)).out).toBe(`${rows[0].id}: already approved`);
    const shown = await cli('request', 'show', rows[0].id);
    expect(shown.out).toMatch(/^state: +approved$/m);
    expect(shown.out).toMatch(/approved +operator/);
    const before = snapshot(db());
    expect((await cli('request', 'approve', 'not-an-id')).code).toBe(2);
    expect((await cli('request', 'list', '--state', 'weird')).code).toBe(2);
    const wrong = await cli('request', 'reject', rows[0].id);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/is approved and cannot be rejected/);
    expect((await cli('request', 'show', '2222222222')).code).toBe(1);
    expect(snapshot(db())).toBe(before);
    const stats = await cli('stats');
    expect(stats.out).toContain('Membership requests (requested → verified → approved → joined): 2 → 2 → 1 → 0');
  });

  it('never lets a membership request row be deleted or its address changed', async () => {
    const s = await start({ registration: { requests: 'approval' } });
    await ask({ email: 'kept@example.net' });
    const [r] = s.app.membership.list();
    const raw = openStoreOf(db(), { write: true });
    try {
      expect(() => raw.prepare('DELETE FROM membership_requests WHERE id = ?').run(r.id)).toThrow(/never deleted/);
      expect(() => raw.prepare('UPDATE membership_requests SET email = ? WHERE id = ?').run('other@example.net', r.id)).toThrow(/never change/);
      expect(() => raw.prepare('DELETE FROM membership_events').run()).toThrow(/never deleted/);
      expect(() => raw.prepare("UPDATE membership_events SET type = 'x'").run()).toThrow(/never changed/);
    } finally {
      raw.close();
    }
  });
});
