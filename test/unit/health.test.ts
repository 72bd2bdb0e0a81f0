/**
 * /healthz and /readyz as a load balancer reads them: the status code and the reason, from the
 * state of the store, the XMPP link (with its grace period) and the outbox.
 */
import pino from 'pino';
import { registerHealthRoutes, type Health } from '../../src/web/health';
import { WebServer } from '../../src/web/server';
import { siteOf } from '../../src/web';
import { testConfig } from '../support/fixtures';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const writable = { writable: true, heldClaims: 0, oldestHeldClaimAt: null };

async function ask(path: string, health: Partial<Health>): Promise<{ status: number; body: Record<string, unknown> }> {
  const web = new WebServer({
    listen: { host: '127.0.0.1', port: 0 },
    trustedProxies: [],
    tokenKey: 'k'.repeat(40),
    secureCookies: false,
    site: siteOf(testConfig()),
    logger: pino({ level: 'silent' }),
  });
  registerHealthRoutes(web, () => ({ xmpp: true, store: writable, now: NOW, ...health }));
  await web.start();
  try {
    const res = await fetch(`${web.url}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } finally {
    await web.stop();
  }
}

describe('/healthz', () => {
  it('is 200 with the outbox per channel when all is well', async () => {
    const outbox = [
      { channel: 'xmpp', count: 0, oldestAt: null },
      { channel: 'email', count: 3, oldestAt: NOW - 90_000 },
    ];
    expect(await ask('/healthz', { outbox, xmppDownSince: null, graceMs: 60_000, ready: true })).toEqual({
      status: 200,
      body: {
        status: 'ok',
        xmpp: 'online',
        database: 'writable',
        held_claims: 0,
        oldest_held_claim_age_s: null,
        outbox: { xmpp: { depth: 0, oldest_age_s: null }, email: { depth: 3, oldest_age_s: 90 } },
      },
    });
  });

  it('stays 200 while the link is down within the grace period, then 503 with the reason', async () => {
    expect(await ask('/healthz', { xmpp: false, xmppDownSince: NOW - 30_000, graceMs: 60_000 })).toMatchObject({
      status: 200,
      body: { status: 'ok', xmpp: 'offline', xmpp_down_s: 30 },
    });
    expect(await ask('/healthz', { xmpp: false, xmppDownSince: NOW - 61_000, graceMs: 60_000 })).toMatchObject({
      status: 503,
      body: { status: 'error', xmpp: 'offline', xmpp_down_s: 61, reason: 'the XMPP link has been down for 61 s' },
    });
  });

  it('gives the database as the reason when both fail', async () => {
    const store = { writable: false, reason: 'the database is open read-only', heldClaims: 0, oldestHeldClaimAt: null };
    expect(await ask('/healthz', { xmpp: false, xmppDownSince: NOW - 120_000, graceMs: 60_000, store })).toMatchObject({
      status: 503,
      body: { status: 'error', database: 'unwritable', reason: 'the database is open read-only' },
    });
  });

  it('is 503 "standby" on a standby instance, however long it has waited', async () => {
    expect(await ask('/healthz', { xmpp: false, standby: true, xmppDownSince: NOW - 600_000, graceMs: 60_000 })).toMatchObject({
      status: 503,
      body: { status: 'standby', xmpp: 'standby' },
    });
  });
});

describe('/readyz', () => {
  it('is 503 until the component has connected once, then 200', async () => {
    expect(await ask('/readyz', { xmpp: false, ready: false })).toEqual({ status: 503, body: { ready: false, reason: 'the component has not connected yet' } });
    expect(await ask('/readyz', { xmpp: true, ready: true })).toEqual({ status: 200, body: { ready: true } });
    // a later reconnection does not take it out of rotation: /healthz's grace period decides that
    expect(await ask('/readyz', { xmpp: false, ready: true })).toEqual({ status: 200, body: { ready: true } });
  });

  it('is 503 on a standby instance and when the database cannot be written', async () => {
    expect(await ask('/readyz', { xmpp: false, standby: true, ready: false })).toMatchObject({ status: 503, body: { ready: false } });
    const store = { writable: false, reason: 'the database is full', heldClaims: 0, oldestHeldClaimAt: null };
    expect(await ask('/readyz', { store, ready: true })).toEqual({ status: 503, body: { ready: false, reason: 'the database is full' } });
  });
});
