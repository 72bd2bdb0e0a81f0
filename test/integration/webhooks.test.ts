/**
 * Webhooks end to end: the real service on a real Prosody, receivers on loopback. Each event of
 * each kind reaches the receiver once, with a signature that verifies under its secret, whichever
 * door made the change (API, landing page, CLI, periodic job, `mail bounce`, the /request
 * pages); a receiver that fails for a while
 * gets every event once it recovers, with the same event id on every attempt.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { Verp } from '../../src/domain/verp';
import { webhookSignature } from '../../src/outbox/webhook-transport';
import { rawTestConfig } from '../support/fixtures';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, startService, type RunningService } from '../support/service';
import { loadConfig } from '../../src/config';
import { get, post } from '../support/web';
import { WebhookReceiver, type Received } from '../support/webhook-receiver';

const SECRET_A = 'webhook-secret-a-0123456789abcdef012345';
const SECRET_B = 'webhook-secret-b-0123456789abcdef012345';
const ALICE: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };

let prosody: TestProsody;
let service: RunningService;
let healthy: WebhookReceiver;
let flaky: WebhookReceiver;
let configFile: string;
/** When the flaky receiver starts answering 200. */
let flakyUntil = Infinity;

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  healthy = await WebhookReceiver.start('/a');
  flaky = await WebhookReceiver.start('/b');
  flaky.failing = () => Date.now() < flakyUntil;
  const dir = mkdtempSync(join(prosody.dir, 'webhooks-'));
  configFile = join(dir, 'config.yaml');
  const all = ['invite.created', 'invite.approved', 'invite.rejected', 'invite.redeemed', 'invite.declined', 'invite.expired', 'invite.bounced', 'request.verified'];
  writeFileSync(
    configFile,
    stringify(
      rawTestConfig({
        component: { server: prosody.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET },
        host: prosody.host,
        admins: ['admin@localhost'],
        database: './invites.sqlite',
        web: { public_url: 'https://chat.example.org', trusted_proxies: ['127.0.0.1'], listen: '127.0.0.1:0' },
        registration: { requests: 'approval' },
        // bounces come back to bounces+{row}-{mac}@bounce.example.org (`mail bounce` reads them)
        mail: { bounce_address: 'bounces@bounce.example.org' },
        webhooks: [
          { url: healthy.url, secret: SECRET_A, events: all },
          { url: flaky.url, secret: SECRET_B, events: all },
        ],
      }),
    ),
  );
  // Short backoff: a failing receiver is tried again within a second or two.
  service = await startService(loadConfig(configFile), { provisionTimeoutMs: 5_000, outboxBackoffMs: 100, outboxPollMs: 100 });
});

afterAll(async () => {
  await service?.stop();
  await Promise.all([healthy?.stop(), flaky?.stop()]);
  await prosody?.stop();
});

const invites = () => service.app.invites;

async function until<T>(what: string, fn: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Hook {
  id: string;
  type: string;
  created: string;
  data: {
    invite: { id: string; state: string };
    actor: string;
    reason: string | null;
    details?: Record<string, unknown>;
    request?: { id: string; email: string; state: string; reason: string | null; invite: string | null };
    mode?: string;
  };
}

const parse = (r: Received) => JSON.parse(r.body) as Hook;

/** The events delivered to a receiver about one invite, in order. */
function eventsOf(receiver: WebhookReceiver, inviteId: string): Hook[] {
  return receiver.delivered().map(parse).filter((h) => h.data.invite?.id === inviteId);
}

function verify(r: Received, secret: string): void {
  const ts = String(r.headers['x-xmpp-invites-timestamp']);
  expect(r.headers['content-type']).toBe('application/json');
  expect(r.headers['x-xmpp-invites-signature']).toBe(webhookSignature(secret, ts, r.body));
  expect(r.headers['x-xmpp-invites-id']).toBe(parse(r).id);
  expect(r.headers['x-xmpp-invites-event']).toBe(parse(r).type);
  expect(Math.abs(Number(ts) * 1000 - r.at)).toBeLessThan(5_000);
}

describe('each event reaches the receiver once, signed', () => {
  it('created and approved (a user invite approved by an admin), signed under the secret', async () => {
    const { invite } = invites().create(ALICE, { kind: 'contact-account', source: 'send', email: 'bob@example.net' });
    invites().approve(OPERATOR, invite.id);
    const hooks = await until('two events', () => eventsOf(healthy, invite.id).length >= 2 && eventsOf(healthy, invite.id));
    expect(hooks.map((h) => [h.type, h.data.invite.state, h.data.actor])).toEqual([
      ['invite.created', 'pending', 'alice@localhost'],
      ['invite.approved', 'open', 'operator'],
    ]);
    expect(hooks[0].data.invite).toMatchObject({ inviter: 'alice@localhost', invitee_email: 'bob@example.net', kind: 'contact-account', source: 'send' });
    for (const r of healthy.delivered().filter((r) => parse(r).data.invite?.id === invite.id)) verify(r, SECRET_A);
    // never a token, nor the secret
    const page = invites().links(invites().get(invite.id)!);
    for (const r of healthy.received) {
      expect(r.body).not.toContain(page.token);
      expect(r.body).not.toContain(SECRET_A);
    }
  });

  it('rejected, with the reason', async () => {
    const { invite } = invites().create(ALICE, { kind: 'contact-account', source: 'send', email: 'carol@example.net' });
    invites().reject(OPERATOR, invite.id, 'not this time');
    const hooks = await until('two events', () => eventsOf(healthy, invite.id).length >= 2 && eventsOf(healthy, invite.id));
    expect(hooks.map((h) => [h.type, h.data.reason])).toEqual([
      ['invite.created', null],
      ['invite.rejected', 'not this time'],
    ]);
  });

  it('redeemed, when an account is made on the landing page', async () => {
    const { invite, links } = invites().create(OPERATOR, { kind: 'account', source: 'cli' });
    const ip = '192.0.2.7';
    const s = await get(links.landingUrl.replace('https://chat.example.org', service.app.web.url), { ip });
    const done = await post(`${service.app.web.url}/i/${links.token}/register`, { csrf: s.csrf!, username: 'hooked', password: 'hooked-password' }, { ip, cookie: s.cookie });
    expect(done.status).toBe(200);
    const hooks = await until('two events', () => eventsOf(healthy, invite.id).length >= 2 && eventsOf(healthy, invite.id));
    expect(hooks.map((h) => h.type)).toEqual(['invite.created', 'invite.redeemed']);
    expect(hooks[1].data).toMatchObject({ actor: 'hooked@localhost', invite: { state: 'exhausted', uses: 1 } });
  });

  it('declined, by the invitee', async () => {
    const { invite, links } = invites().create(OPERATOR, { kind: 'account', source: 'cli', email: 'dave@example.net' });
    invites().decline(links.token, 'no thanks');
    const hooks = await until('two events', () => eventsOf(healthy, invite.id).length >= 2 && eventsOf(healthy, invite.id));
    expect(hooks.map((h) => [h.type, h.data.reason])).toEqual([
      ['invite.created', null],
      ['invite.declined', 'no thanks'],
    ]);
  });

  it('expired, recorded by the periodic job', async () => {
    const { invite } = invites().create(OPERATOR, { kind: 'account', source: 'cli', expiresIn: 1 });
    await new Promise((r) => setTimeout(r, 5));
    await service.app.jobs.run('expiry');
    const hooks = await until('two events', () => eventsOf(healthy, invite.id).length >= 2 && eventsOf(healthy, invite.id));
    expect(hooks.map((h) => h.type)).toEqual(['invite.created', 'invite.expired']);
  });

  it('created by the CLI beside the service: delivered by the running service', async () => {
    const out: string[] = [];
    const code = await run(['invite', 'create', '--kind', 'account', '--config', configFile], { out: (l) => out.push(l), err: (l) => out.push(l), env: {} });
    expect(code).toBe(0);
    const id = /^id:\s+(\S+)/.exec(out[0])![1];
    const hooks = await until('the created event', () => eventsOf(healthy, id).length >= 1 && eventsOf(healthy, id));
    expect(hooks.map((h) => [h.type, h.data.actor])).toEqual([['invite.created', 'operator']]);
  });

  it('bounced, when `mail bounce` (an MTA pipe) records a permanent bounce of the invitation e-mail', async () => {
    const { invite } = invites().create(OPERATOR, { kind: 'account', source: 'cli', email: 'gone@example.net' });
    const row = service.app.outbox.list({ channel: 'email' }).find((r) => r.inviteIds.includes(invite.id))!;
    const verpAddress = new Verp('bounces@bounce.example.org', invites().tokens).address(row.id);
    const dsn = [
      'From: Mail Delivery System <Mailer-Daemon@mx.example.net>',
      `To: ${verpAddress}`,
      'Subject: Mail delivery failed: returning message to sender',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary=b0undary',
      '',
      '--b0undary',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'A message that you sent could not be delivered.',
      '',
      '--b0undary',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.example.net',
      '',
      'Action: failed',
      'Final-Recipient: rfc822;gone@example.net',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 no such user',
      '',
      '--b0undary--',
      '',
    ].join('\r\n');
    const out: string[] = [];
    const code = await run(['mail', 'bounce', '--recipient', verpAddress, '--config', configFile], {
      out: (l) => out.push(l),
      err: (l) => out.push(l),
      env: {},
      stdin: async () => Buffer.from(dsn),
    });
    expect([code, out.join('\n')]).toEqual([0, expect.stringContaining('bounced (5.1.1')]);
    const hooks = await until('two events', () => eventsOf(healthy, invite.id).length >= 2 && eventsOf(healthy, invite.id));
    expect(hooks.map((h) => [h.type, h.data.actor])).toEqual([
      ['invite.created', 'operator'],
      ['invite.bounced', 'system'],
    ]);
    expect(hooks[1].data.reason).toMatch(/no such user/);
    expect(hooks[1].data.details).toEqual({ status: '5.1.1', outbox: row.id });
    expect(hooks[1].data.invite).toMatchObject({ id: invite.id, invitee_email: 'gone@example.net' });
    for (const r of healthy.delivered().filter((r) => parse(r).id === hooks[1].id)) verify(r, SECRET_A);
  });

  it('request.verified, when the address of a membership request is confirmed on its page', async () => {
    const web = service.app.web.url;
    const ip = '192.0.2.30';
    const form = await get(`${web}/request`, { ip });
    expect((await post(`${web}/request`, { csrf: form.csrf!, email: 'joiner@example.net', reason: 'I know Alice' }, { ip, cookie: form.cookie })).status).toBe(200);
    const request = service.app.membership.list({ limit: 100 }).find((r) => r.email === 'joiner@example.net')!;
    // The code is the one the verification e-mail carries.
    const link = service.app.membership.verifyUrl(request).replace('https://chat.example.org', web);
    const page = await get(link, { ip });
    expect((await post(link, { csrf: page.csrf! }, { ip, cookie: page.cookie })).status).toBe(200);
    const hooks = await until('the verified event', () => {
      const got = healthy.delivered().map(parse).filter((h) => h.type === 'request.verified' && h.data.request?.id === request.id);
      return got.length > 0 && got;
    });
    expect(hooks).toHaveLength(1);
    expect(hooks[0].data).toEqual({
      mode: 'approval',
      request: expect.objectContaining({ id: request.id, email: 'joiner@example.net', state: 'pending', reason: 'I know Alice', invite: null }),
    });
    for (const r of healthy.delivered().filter((r) => parse(r).id === hooks[0].id)) verify(r, SECRET_A);
    // confirming again changes nothing and tells nothing
    expect((await post(link, { csrf: page.csrf! }, { ip, cookie: page.cookie })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(healthy.delivered().map(parse).filter((h) => h.type === 'request.verified' && h.data.request?.id === request.id)).toHaveLength(1);
  });

  it('each event once: no id delivered twice', async () => {
    await new Promise((r) => setTimeout(r, 500));
    const ids = healthy.delivered().map((r) => parse(r).id);
    expect(ids.length).toBeGreaterThanOrEqual(14);
    expect(new Set(ids).size).toBe(ids.length);
    expect(healthy.received.length).toBe(ids.length);
  });
});

describe('a receiver that fails for a while', () => {
  it('gets every event once it recovers, each with the same id on every attempt', async () => {
    // Fails from the start until now + 1.5 s; meanwhile events keep coming.
    flakyUntil = Date.now() + 1_500;
    for (let i = 0; i < 3; i++) invites().create(OPERATOR, { kind: 'account', source: 'cli' });
    await new Promise((r) => setTimeout(r, 2_000));
    const expected = new Set(healthy.delivered().map((r) => parse(r).id));
    await until('every event at the flaky receiver', () => {
      const got = new Set(flaky.delivered().map((r) => parse(r).id));
      return [...expected].every((id) => got.has(id)) && got;
    });
    const delivered = flaky.delivered().map((r) => parse(r).id);
    expect(new Set(delivered)).toEqual(expected);
    // once each
    expect(delivered.length).toBe(expected.size);
    // it did fail, and every failed attempt was one of those events, retried with its own id
    const failed = flaky.received.filter((r) => r.status !== 200);
    expect(failed.length).toBeGreaterThan(0);
    for (const r of failed) {
      expect(expected.has(parse(r).id)).toBe(true);
      expect(r.headers['x-xmpp-invites-id']).toBe(parse(r).id);
    }
    // the same bytes on every attempt; each signed under this receiver's own secret
    const bodies = new Map<string, string>();
    for (const r of flaky.received) {
      const id = parse(r).id;
      if (bodies.has(id)) expect(r.body).toBe(bodies.get(id));
      bodies.set(id, r.body);
      verify(r, SECRET_B);
    }
  });
});
