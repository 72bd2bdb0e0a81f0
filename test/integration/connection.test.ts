/** The component connection against a real Prosody: handshake, routing, refusals, reconnects, keepalive. */
import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger';
import {
  ComponentConnection,
  FatalConnectionError,
  ForbiddenCharacterError,
  NotConnectedError,
  StanzaError,
  StanzaRejectedError,
  type ConnectionOptions,
} from '../../src/xmpp/connection';
import { xml, type Element } from '../../src/xmpp/xml';
import { TestClient, xml as clientXml } from '../support/client';
import { TestProsody, freePorts, randomSecret } from '../support/prosody';

const DOMAIN = 'invites.localhost';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_PING = 'urn:xmpp:ping';

class Lines extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  messages(): string[] {
    return this.lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
  }
  text(): string {
    return this.lines.join('\n');
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, pred: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function once(conn: ComponentConnection, event: 'online' | 'offline'): Promise<void> {
  return new Promise((resolve) => conn.once(event, () => resolve()));
}

describe('ComponentConnection against Prosody', () => {
  const secret = randomSecret();
  const logs = new Lines();
  const logger = createLogger({ level: 'debug', secrets: [secret], destination: logs });
  let prosody: TestProsody;
  const connections: ComponentConnection[] = [];
  const clients: TestClient[] = [];

  function connection(opts: Partial<ConnectionOptions> = {}): ComponentConnection {
    const c = new ComponentConnection({
      server: prosody.componentUrl(),
      domain: DOMAIN,
      secret,
      logger: logger.child({ module: 'connection' }),
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      connectTimeoutMs: 3000,
      ...opts,
    });
    connections.push(c);
    return c;
  }

  async function login(username: string): Promise<TestClient> {
    const c = await TestClient.connect({ port: prosody.ports.c2s, domain: prosody.host, username, password: 'pw' });
    clients.push(c);
    return c;
  }

  function ping(conn: ComponentConnection, timeoutMs = 5000): Promise<Element> {
    return conn.request(xml('iq', { type: 'get', to: prosody.host }, xml('ping', { xmlns: NS_PING })), timeoutMs);
  }

  beforeAll(async () => {
    prosody = await TestProsody.start({ components: [{ domain: DOMAIN, secret }] });
    await prosody.register('alice', 'pw');
    await prosody.register('bob', 'pw');
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await Promise.all(connections.splice(0).map((c) => c.stop()));
  });

  afterAll(async () => {
    await prosody?.stop();
  });

  test('connects, and request() gets the server’s disco#info result', async () => {
    const conn = connection();
    await conn.start();
    expect(conn.online).toBe(true);
    const reply = await conn.request(xml('iq', { type: 'get', to: prosody.host }, xml('query', { xmlns: NS_DISCO_INFO })));
    expect(reply.attrs.type).toBe('result');
    expect(reply.attrs.from).toBe(prosody.host);
    expect(reply.getChild('query', NS_DISCO_INFO)?.getChild('identity')?.attrs.category).toBe('server');
  });

  test('the handshake is logged masked at debug level', async () => {
    await connection().start();
    expect(logs.text()).toContain('<handshake>[redacted]</handshake>');
  });

  test('request() rejects with StanzaError when the server answers type=error', async () => {
    const conn = connection();
    await conn.start();
    const failure = conn.request(xml('iq', { type: 'get', to: prosody.host }, xml('query', { xmlns: 'urn:example:nothing' })));
    await expect(failure).rejects.toBeInstanceOf(StanzaError);
    await expect(failure).rejects.toMatchObject({ condition: 'service-unavailable', type: 'cancel' });
  });

  test('a message from a client reaches onStanza', async () => {
    const conn = connection();
    const received: Element[] = [];
    conn.onStanza((s) => void received.push(s));
    await conn.start();
    const alice = await login('alice');
    await alice.send(clientXml('message', { to: DOMAIN, type: 'chat' }, clientXml('body', {}, 'hello component')));
    await until('the message', () => received.some((s) => s.name === 'message'));
    const message = received.find((s) => s.name === 'message')!;
    expect(message.attrs.from).toBe(alice.jid);
    expect(message.getChildText('body')).toBe('hello component');
  });

  test('an iq get from a client reaches onStanza, and only our handler answers it', async () => {
    const conn = connection();
    const seen: Element[] = [];
    conn.onStanza(async (s) => {
      seen.push(s);
      if (s.name === 'iq' && s.getChild('query', 'urn:example:slow')) {
        await sleep(1500); // the library must not answer meanwhile (xmpp.js iqCallee would)
        await conn.send(xml('iq', { type: 'result', to: s.attrs.from, id: s.attrs.id }, xml('query', { xmlns: 'urn:example:slow' })));
      }
    });
    await conn.start();
    const alice = await login('alice');
    const reply = await alice.iq(clientXml('iq', { type: 'get', to: DOMAIN }, clientXml('query', { xmlns: 'urn:example:slow' })));
    expect(reply.attrs.type).toBe('result');
    expect(reply.getChild('query', 'urn:example:slow')).toBeDefined();
    expect(seen).toHaveLength(1);
    await sleep(300);
    expect(alice.unconsumed().filter((s) => s.name === 'iq')).toEqual([]);
  });

  test('an iq get nobody handles gets no automatic reply', async () => {
    const conn = connection();
    await conn.start();
    const alice = await login('alice');
    await expect(
      alice.iq(clientXml('iq', { type: 'get', to: DOMAIN }, clientXml('query', { xmlns: 'urn:example:unrouted' })), 1500),
    ).rejects.toThrow(/no reply/);
  });

  test('an unexpected iq result is neither routed nor answered', async () => {
    const conn = connection();
    const seen: Element[] = [];
    conn.onStanza((s) => void seen.push(s));
    await conn.start();
    const alice = await login('alice');
    await alice.send(clientXml('iq', { type: 'result', to: DOMAIN, id: 'nobody-asked' }));
    await alice.send(clientXml('iq', { type: 'error', to: DOMAIN, id: 'nobody-asked-2' }, clientXml('error', { type: 'cancel' })));
    await until('the ignored replies in the log', () =>
      logs.messages().filter((m) => m === 'Ignoring an iq reply that answers no request of ours').length >= 2,
    );
    await sleep(300);
    expect(seen).toEqual([]);
    expect(alice.unconsumed().filter((s) => s.name === 'iq')).toEqual([]);
  });

  test('a reply with our id from another JID is ignored; the real one is taken', async () => {
    const conn = connection();
    let request: Element | undefined;
    // A request to our own domain comes back to us through the server: we play the answering side.
    conn.onStanza((s) => {
      if (s.name === 'iq' && s.attrs.type === 'get') request = s;
    });
    await conn.start();
    const bob = await login('bob');
    const id = 'guessable-id-1';
    const reply = conn.request(xml('iq', { type: 'get', to: DOMAIN, id }, xml('ping', { xmlns: NS_PING })), 10_000);
    await until('our own request', () => request !== undefined);
    await bob.send(clientXml('iq', { type: 'result', to: DOMAIN, id }));
    await until('the forged reply in the log', () =>
      logs.messages().includes('Ignoring an iq reply from the wrong sender'),
    );
    await conn.send(xml('iq', { type: 'result', to: request!.attrs.from, id: request!.attrs.id }));
    const got = await reply;
    expect(got.attrs.from).toBe(DOMAIN);
  });

  test('send() refuses what Prosody would answer by closing the stream, and the stream survives', async () => {
    const conn = connection({ maxStanzaBytes: 10_000 });
    await conn.start();
    await expect(conn.send(xml('message', { to: 'alice@localhost', from: 'alice@localhost' }))).rejects.toBeInstanceOf(
      StanzaRejectedError,
    );
    const big = xml('message', { to: 'alice@localhost' }, xml('body', {}, 'x'.repeat(20_000)));
    await expect(conn.send(big)).rejects.toThrow(/limit 10000/);
    await conn.send(xml('message', { to: 'alice@localhost', from: `bot@${DOMAIN}/r` }, xml('body', {}, 'fine')));
    await expect(ping(conn)).resolves.toBeDefined();
    expect(conn.online).toBe(true);
  });

  test('send() refuses a character XML forbids, at once and without logging the text; the stream survives', async () => {
    const conn = connection();
    await conn.start();
    let dropped = 0;
    conn.on('offline', () => dropped++);
    const alice = await login('alice');
    for (const el of [
      xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'secret-note \u0001 here')),
      xml('message', { to: 'alice@localhost', type: 'chat' }, xml('x', { xmlns: 'urn:test', name: 'secret-name\u001b[31m' })),
      xml('iq', { type: 'set', to: prosody.host }, xml('query', { xmlns: 'urn:test' }, xml('a', {}, xml('b', {}, 'secret-deep\uFFFF')))),
    ]) {
      const started = performance.now();
      const sending = el.name === 'iq' ? conn.request(el, 10_000) : conn.send(el);
      await expect(sending).rejects.toBeInstanceOf(ForbiddenCharacterError);
      // A definite failure at once, never a timeout.
      expect(performance.now() - started).toBeLessThan(500);
    }
    await sleep(300);
    expect(logs.messages().filter((m) => m === 'Refusing to send a stanza holding a character XML does not allow')).toHaveLength(3);
    expect(logs.text()).not.toMatch(/secret-(note|name|deep)/);
    // Prosody kept the stream: a ping answers, and a message written next reaches alice.
    await expect(ping(conn)).resolves.toBeDefined();
    await conn.send(xml('message', { to: 'alice@localhost', from: DOMAIN, type: 'chat' }, xml('body', {}, 'still here')));
    const got = await alice.waitFor((m) => m.name === 'message' && m.getChildText('body') === 'still here');
    expect(got.attrs.from).toBe(DOMAIN);
    // Nothing of the refused stanzas reached her (offline messages of earlier tests may).
    expect(alice.unconsumed().filter((m) => /secret-/.test(m.toString()))).toEqual([]);
    expect(conn.online).toBe(true);
    expect(dropped).toBe(0);
  });

  test('a component domain without a parent needs an explicit pingTo', () => {
    expect(() => connection({ domain: 'invites' })).toThrow(/pingTo/);
    expect(() => connection({ domain: 'invites', pingTo: 'localhost' })).not.toThrow();
  });

  test('send() while offline throws NotConnectedError; stop() is idempotent', async () => {
    const conn = connection();
    await expect(conn.send(xml('message', { to: 'alice@localhost' }))).rejects.toBeInstanceOf(NotConnectedError);
    await conn.start();
    await Promise.all([conn.stop(), conn.stop()]);
    await conn.stop();
    expect(conn.online).toBe(false);
    await expect(conn.send(xml('message', { to: 'alice@localhost' }))).rejects.toBeInstanceOf(NotConnectedError);
  });

  test('a wrong secret rejects start() with not-authorized naming component.secret, without retrying', async () => {
    const wrong = 'wrong-secret-for-test';
    const conn = connection({ secret: wrong });
    const failure = conn.start();
    await expect(failure).rejects.toBeInstanceOf(FatalConnectionError);
    await expect(failure).rejects.toMatchObject({ condition: 'not-authorized', configKey: 'component.secret' });
    await expect(failure).rejects.toThrow(/component\.secret/);
    const attempts = logs.messages().filter((m) => m === 'Connecting to the XMPP server').length;
    await sleep(500);
    expect(logs.messages().filter((m) => m === 'Connecting to the XMPP server').length).toBe(attempts);
    expect(conn.online).toBe(false);
  });

  test('an unknown component domain rejects start() with host-unknown naming component.domain', async () => {
    const conn = connection({ domain: 'unknown.localhost' });
    const failure = conn.start();
    await expect(failure).rejects.toMatchObject({ condition: 'host-unknown', configKey: 'component.domain' });
    await expect(failure).rejects.toThrow(/component\.domain/);
  });

  test('a second connection with the same domain gets conflict on its first connect; the first stays', async () => {
    const first = connection();
    await first.start();
    const second = connection();
    await expect(second.start()).rejects.toMatchObject({ condition: 'conflict', configKey: 'component.domain' });
    expect(first.online).toBe(true);
    await expect(ping(first)).resolves.toBeDefined();
  });

  test('with standby, a conflict at start is not fatal: it stands by, says so once, and takes over when the first goes', async () => {
    const first = connection();
    await first.start();
    const second = connection({ standby: true, standbyRetryMs: 200 });
    const standby = jest.fn();
    const fatal = jest.fn();
    second.on('standby', standby);
    second.on('fatal', fatal);
    let online = false;
    const started = second.start().then(() => (online = true));
    await until('standing by', () => second.standingBy);
    await sleep(700); // several refused attempts
    expect(standby).toHaveBeenCalledTimes(1);
    expect(logs.messages().filter((m) => m.startsWith('Standing by'))).toHaveLength(1);
    expect(online).toBe(false);
    expect(second.online).toBe(false);
    await first.stop();
    const stoppedAt = Date.now();
    await started;
    expect(Date.now() - stoppedAt).toBeLessThan(2000);
    expect(second.standingBy).toBe(false);
    expect(fatal).not.toHaveBeenCalled();
    await expect(ping(second)).resolves.toBeDefined();
  });

  test('start() keeps waiting while the server refuses TCP connections, and retries with growing delays', async () => {
    const [closedPort] = await freePorts(1);
    const conn = connection({ server: `xmpp://127.0.0.1:${closedPort}`, initialBackoffMs: 50, maxBackoffMs: 200 });
    let settled = false;
    const started = conn.start().finally(() => (settled = true));
    started.catch(() => undefined);
    const retry = (l: string) => l.includes(`127.0.0.1:${closedPort}`) && l.includes('next attempt in');
    await until('three retries', () => logs.lines.filter(retry).length >= 3);
    expect(settled).toBe(false);
    const delays = logs.lines.filter(retry).map((l) => (JSON.parse(l) as { delayMs: number }).delayMs);
    expect(delays.slice(0, 3)).toEqual([50, 100, 200]);
    await conn.stop();
    await expect(started).rejects.toThrow(/stopped/);
  });

  describe('disruptions', () => {
    test('Prosody restarted under a running connection: offline, then online again, and request() works', async () => {
      const conn = connection();
      const events: string[] = [];
      conn.on('online', () => events.push('online'));
      conn.on('offline', () => events.push('offline'));
      await conn.start();
      const offline = once(conn, 'offline');
      const online = once(conn, 'online');
      await prosody.restart();
      await offline;
      await online;
      expect(events).toEqual(['online', 'offline', 'online']);
      await expect(ping(conn)).resolves.toBeDefined();
    });

    test('a conflict on a later reconnect is retried, not fatal', async () => {
      const conn = connection({ initialBackoffMs: 1500, maxBackoffMs: 1500 });
      const fatal = jest.fn();
      conn.on('fatal', fatal);
      await conn.start();
      const offline = once(conn, 'offline');
      await prosody.restart();
      await offline;
      // Another instance takes the domain while ours waits for its reconnect.
      const squatter = connection();
      await squatter.start();
      await until('our conflict', () =>
        logs.lines.some((l) => l.includes('next attempt in') && l.includes('conflict')),
      );
      const online = once(conn, 'online');
      await squatter.stop();
      await online;
      expect(fatal).not.toHaveBeenCalled();
      await expect(ping(conn)).resolves.toBeDefined();
    });

    test('a paused (SIGSTOP) server is noticed by the keepalive, and the connection comes back after SIGCONT', async () => {
      const conn = connection({ pingIntervalMs: 300, pingTimeoutMs: 700, connectTimeoutMs: 1000, maxBackoffMs: 500 });
      await conn.start();
      await expect(ping(conn)).resolves.toBeDefined();
      const offline = once(conn, 'offline');
      prosody.pause();
      try {
        await offline;
        expect(conn.online).toBe(false);
        await sleep(1500); // a few attempts that time out against the stopped server
      } finally {
        prosody.resume();
      }
      if (!conn.online) await once(conn, 'online');
      await expect(ping(conn)).resolves.toBeDefined();
      expect(logs.messages()).toContain('No answer to a ping: dropping the connection');
    });

    test('a secret the server no longer accepts after a reconnect emits fatal and stops reconnecting', async () => {
      const conn = connection();
      await conn.start();
      const fatal = new Promise<FatalConnectionError>((resolve) => conn.once('fatal', resolve));
      const original = readFileSync(prosody.configFile, 'utf8');
      writeFileSync(prosody.configFile, original.replace(JSON.stringify(secret), JSON.stringify(randomSecret())));
      try {
        await prosody.restart();
        const err = await fatal;
        expect(err).toMatchObject({ condition: 'not-authorized', configKey: 'component.secret' });
        const attempts = logs.messages().filter((m) => m === 'Connecting to the XMPP server').length;
        await sleep(500);
        expect(logs.messages().filter((m) => m === 'Connecting to the XMPP server').length).toBe(attempts);
        expect(conn.online).toBe(false);
      } finally {
        writeFileSync(prosody.configFile, original);
        await prosody.restart();
      }
    });
  });

  test('no log line, debug level included, ever showed the component secret', () => {
    expect(logs.lines.length).toBeGreaterThan(100);
    expect(logs.text()).not.toContain(secret);
  });
});
