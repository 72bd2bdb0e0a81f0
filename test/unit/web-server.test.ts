/**
 * The web server's resource bounds, over real sockets: header and body timeouts enforced as
 * configured (not only at node's 30 s check), the connection caps (total and per address), the
 * rate limit per IPv6 /64, and the QR code drawn once per URI.
 */
import net from 'node:net';
import pino from 'pino';
import { WebServer, type WebLimits } from '../../src/web/server';
import { siteOf } from '../../src/web';
import { qrStats, qrSvg } from '../../src/web/qr';
import { addressKey } from '../../src/web/client-ip';
import { testConfig } from '../support/fixtures';

const servers: WebServer[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function start(limits: Partial<WebLimits> = {}, trustedProxies: string[] = [], rateLimit = { capacity: 10, refillMs: 30_000 }): Promise<WebServer> {
  const web = new WebServer({
    listen: { host: '127.0.0.1', port: 0 },
    trustedProxies,
    tokenKey: 'k'.repeat(40),
    secureCookies: false,
    site: siteOf(testConfig()),
    logger: pino({ level: 'silent' }),
    rateLimit,
    limits: { headersTimeoutMs: 500, requestTimeoutMs: 1_000, checkIntervalMs: 100, ...limits },
  });
  web.get('/', () => ({ status: 200, body: 'hello' }));
  web.post('/form', () => ({ status: 200, body: 'posted' }));
  await web.start();
  servers.push(web);
  return web;
}

function connect(web: WebServer): Promise<net.Socket> {
  const { port } = new URL(web.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
    sockets.push(socket);
  });
}

/** Everything the server writes until it closes the connection, and when that was. */
function untilClosed(socket: net.Socket): Promise<{ data: string; ms: number }> {
  const started = performance.now();
  let data = '';
  return new Promise((resolve) => {
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ data, ms: performance.now() - started }));
  });
}

/** Writes `chunks` one every `everyMs` while the socket is open. */
function drip(socket: net.Socket, chunks: string[], everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= chunks.length) return clearInterval(timer);
    socket.write(chunks[i++]);
  }, everyMs);
}

describe('timeouts', () => {
  it('cuts a client that drips its headers at the header timeout', async () => {
    const web = await start();
    const socket = await connect(web);
    const closed = untilClosed(socket);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    drip(socket, Array.from({ length: 100 }, (_, i) => `X-Drip-${i}: y\r\n`), 50);
    const { data, ms } = await closed;
    expect(data).toMatch(/^HTTP\/1\.1 408 /);
    // 500 ms configured, checked every 100 ms (node's default check alone would take 30 s).
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(1_000);
  });

  it('cuts a client that drips its body at the request timeout', async () => {
    const web = await start();
    const socket = await connect(web);
    const closed = untilClosed(socket);
    socket.write('POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n');
    drip(socket, Array.from({ length: 200 }, () => 'a'), 50);
    const { data, ms } = await closed;
    expect(data).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(1_600);
  });

  it('still serves a client that sends its request in time', async () => {
    const web = await start();
    const res = await fetch(`${web.url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello');
  });
});

describe('connection caps', () => {
  it('answers 503 to a connection over the total cap, and admits again once one closes', async () => {
    const web = await start({ maxConnections: 3, maxConnectionsPerAddress: 100 });
    const held = await Promise.all([connect(web), connect(web), connect(web)]);
    const extra = await connect(web);
    const { data } = await untilClosed(extra);
    expect(data).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(data).toMatch(/Retry-After: 10/);
    held[0].destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(web.connections).toBe(2);
    const res = await fetch(`${web.url}/`, { headers: { Connection: 'close' } });
    expect(res.status).toBe(200);
  });

  it('caps the connections from one address, but not from a trusted proxy', async () => {
    const web = await start({ maxConnections: 100, maxConnectionsPerAddress: 2 });
    await Promise.all([connect(web), connect(web)]);
    const { data } = await untilClosed(await connect(web));
    expect(data).toMatch(/^HTTP\/1\.1 503 /);

    const behindProxy = await start({ maxConnections: 100, maxConnectionsPerAddress: 2 }, ['127.0.0.1']);
    await Promise.all([connect(behindProxy), connect(behindProxy), connect(behindProxy)]);
    await new Promise((r) => setTimeout(r, 50));
    expect(behindProxy.connections).toBe(3);
  });
});

describe('rate limits per IPv6 /64', () => {
  it('puts the addresses of one /64 in one bucket, and another /64 in its own', async () => {
    const web = await start({}, ['127.0.0.1'], { capacity: 1, refillMs: 60_000 });
    const postFrom = (ip: string) =>
      fetch(`${web.url}/form`, { method: 'POST', headers: { 'X-Forwarded-For': ip, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=b' });
    // The first POST passes the rate limit (then fails CSRF: 403); the second of the /64 is 429.
    expect((await postFrom('2001:db8:1:2::1')).status).toBe(403);
    expect((await postFrom('2001:db8:1:2:ffff:ffff:ffff:ffff')).status).toBe(429);
    expect((await postFrom('2001:db8:1:3::1')).status).toBe(403);
    expect((await postFrom('192.0.2.1')).status).toBe(403);
    expect((await postFrom('192.0.2.2')).status).toBe(403);
  });

  it('keys addresses: IPv4 as it is, IPv6 by its /64 however written, NAT64 by the IPv4 inside', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('2001:db8:1:2:a:b:c:d')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:DB8:0001:0002::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('64:ff9b::198.51.100.9')).toBe('198.51.100.9');
  });
});

describe('the QR code', () => {
  it('is drawn once per URI and served from the cache after', async () => {
    const uri = `xmpp:alice@localhost?roster;preauth=${'t'.repeat(22)}${Math.random()}`;
    const before = qrStats.drawn;
    const first = await qrSvg(uri, 'QR');
    const second = await qrSvg(uri, 'QR of another label');
    expect(qrStats.drawn - before).toBe(1);
    expect(second.value.replace(/aria-label="[^"]*"/, '')).toBe(first.value.replace(/aria-label="[^"]*"/, ''));
    await qrSvg(`${uri}x`, 'QR');
    expect(qrStats.drawn - before).toBe(2);
  });
});
