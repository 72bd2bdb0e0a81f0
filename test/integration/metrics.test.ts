/**
 * /metrics scraped during a scenario on the real service (a real Prosody, a real SMTP server on
 * loopback): invites created, approved and rejected, e-mails sent and one refused for good, an
 * account made on the landing page, stanzas handled. Each counter moves by exactly what happened,
 * and the output parses as Prometheus text. The Grafana dashboard in contrib/ uses only series
 * that the scrape holds. /healthz and /readyz on the same service.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { TestClient, xml } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { TestSmtpServer } from '../support/smtp';
import { get, post } from '../support/web';

const ALICE: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
const REFUSED = 'nobody@refused.example';

let prosody: TestProsody;
let smtp: TestSmtpServer;
let service: RunningService;
let alice: TestClient;

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  await prosody.register('alice', 'alice-password');
  smtp = await TestSmtpServer.start();
  smtp.reply = (stage, address) => (stage === 'rcpt' && address === REFUSED ? { code: 550, message: 'No such user' } : undefined);
  service = await startService(
    serviceConfig(prosody, {
      admins: ['admin@localhost'],
      mail: { transport: smtp.url(), from: 'Example Chat <invites@example.org>' },
      metrics: { listen: '127.0.0.1:0' },
      web: { public_url: 'https://chat.example.org', trusted_proxies: ['127.0.0.1'], listen: '127.0.0.1:0' },
    }),
    { provisionTimeoutMs: 5_000, outboxBackoffMs: 100, outboxPollMs: 100 },
  );
  alice = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
});

afterAll(async () => {
  await alice?.stop();
  await service?.stop();
  await smtp?.stop();
  await prosody?.stop();
});

interface Family {
  name: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; count?: string; buckets?: Record<string, string> }[];
}

async function scrape(): Promise<{ text: string; families: Map<string, Family> }> {
  const res = await fetch(`${service.app.metricsServer!.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const families = parsePrometheusTextFormat(text) as Family[];
  return { text, families: new Map(families.map((f) => [f.name, f])) };
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  if (!family) throw new Error(`no series ${name}`);
  const m = family.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  if (!m) throw new Error(`no series ${name} ${JSON.stringify(labels)}`);
  return Number(m.value ?? m.count);
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('/metrics', () => {
  it('moves each counter by exactly what happened in a scenario, and parses as Prometheus text', async () => {
    const { text: beforeText, families: before } = await scrape();
    const invites = service.app.invites;
    // 3 operator invites by e-mail (open at once, e-mailed), one to an address the server refuses
    for (const email of ['one@example.net', 'two@example.net', REFUSED]) invites.create(OPERATOR, { kind: 'account', source: 'cli', email });
    // 2 user invites that wait: one approved (then e-mailed), one rejected
    const a = invites.create(ALICE, { kind: 'contact-account', source: 'send', email: 'three@example.net' }).invite;
    const b = invites.create(ALICE, { kind: 'contact-account', source: 'send', email: 'four@example.net' }).invite;
    invites.approve(OPERATOR, a.id);
    invites.reject(OPERATOR, b.id, 'no');
    // an account made on the landing page
    const { links } = invites.create(OPERATOR, { kind: 'account', source: 'cli' });
    const ip = '192.0.2.9';
    const page = await get(`${service.app.web.url}/i/${links.token}`, { ip });
    expect((await post(`${service.app.web.url}/i/${links.token}/register`, { csrf: page.csrf!, username: 'metered', password: 'metered-pass' }, { ip, cookie: page.cookie })).status).toBe(200);
    // 3 stanzas handled (disco#info from a client)
    for (let i = 0; i < 3; i++) await alice.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    // the 3 e-mails delivered (two at once, one after approval) and the refused one failed
    await until('the e-mails', () => smtp.received.length === 3 && service.app.outbox.list({ channel: 'email', state: 'failed' }).length === 1).catch((err) => {
      throw new Error(`${(err as Error).message}: ${smtp.received.length} received; ${JSON.stringify(service.app.outbox.list({ channel: 'email' }).map((r) => [r.recipient, r.state, r.lastError]))}`);
    });

    const { text, families: after } = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(delta('xmpp_invites_invites_created_total')).toBe(6);
    expect(delta('xmpp_invites_invites_approved_total')).toBe(1);
    expect(delta('xmpp_invites_invites_rejected_total')).toBe(1);
    expect(delta('xmpp_invites_invites_redeemed_total')).toBe(1);
    expect(delta('xmpp_invites_invites_declined_total')).toBe(0);
    expect(delta('xmpp_invites_registrations_total', { door: 'web', outcome: 'created' })).toBe(1);
    expect(delta('xmpp_invites_registrations_total', { door: 'web', outcome: 'failed' })).toBe(0);
    expect(delta('xmpp_invites_deliveries_total', { channel: 'email', outcome: 'sent' })).toBe(3);
    expect(delta('xmpp_invites_deliveries_total', { channel: 'email', outcome: 'failed' })).toBe(1);
    expect(delta('xmpp_invites_deliveries_total', { channel: 'email', outcome: 'retry' })).toBe(0);
    // (the parser keeps no labels of histograms: read the count's line)
    const iqCount = (t: string) => Number(/^xmpp_invites_stanza_duration_seconds_count\{kind="iq"\} (\d+)$/m.exec(t)![1]);
    expect(iqCount(text) - iqCount(beforeText)).toBe(3);
    expect(value(after, 'xmpp_invites_invites', { state: 'exhausted' })).toBe(1);
    expect(value(after, 'xmpp_invites_invites', { state: 'rejected' })).toBe(1);
    expect(value(after, 'xmpp_invites_invites', { state: 'open' })).toBe(4);
    expect(value(after, 'xmpp_invites_xmpp_connected')).toBe(1);
    expect(value(after, 'xmpp_invites_outbox_depth', { channel: 'email' })).toBe(0);
    expect(value(after, 'xmpp_invites_outbox_oldest_age_seconds', { channel: 'email' })).toBe(0);
    // prom-client's defaults
    expect(after.has('process_cpu_seconds_total')).toBe(true);
    expect(after.has('nodejs_eventloop_lag_seconds')).toBe(true);
    // never an address or token in the series
    expect(text).not.toContain('example.net');
    expect(text).not.toContain(links.token);
  });

  it('answers 404 elsewhere on the metrics listener', async () => {
    expect((await fetch(`${service.app.metricsServer!.url}/`)).status).toBe(404);
  });

  it('the Grafana dashboard uses only series the service exports', async () => {
    const { families } = await scrape();
    const dashboard = readFileSync(join(__dirname, '..', '..', 'contrib', 'grafana-dashboard.json'), 'utf8');
    const exprs = [...dashboard.matchAll(/"expr":\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    expect(exprs.length).toBeGreaterThan(5);
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:xmpp_invites|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1])));
    // a histogram's series are its family's _bucket, _sum and _count
    const known = (name: string) => families.has(name) || families.has(name.replace(/_(bucket|sum|count)$/, ''));
    expect([...used].filter((n) => !known(n))).toEqual([]);
    expect(used.size).toBeGreaterThan(8);
  });
});

describe('/healthz and /readyz', () => {
  it('reports the outbox and the link, 200 while all is well; /readyz is 200 once connected', async () => {
    const res = await fetch(`${service.app.web.url}/healthz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'ok', xmpp: 'online', database: 'writable', held_claims: 0, oldest_held_claim_age_s: null });
    expect(body.outbox).toEqual({
      xmpp: expect.objectContaining({ depth: expect.any(Number) }),
      email: { depth: 0, oldest_age_s: null },
      webhook: { depth: 0, oldest_age_s: null },
    });
    const ready = await fetch(`${service.app.web.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { ready: true }]);
  });
});
