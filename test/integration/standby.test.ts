/**
 * `component.standby` on a real Prosody, with real `serve` processes as bin/xmpp-invites runs them,
 * sharing one store (a SQLite file; PostgreSQL in the -postgresql project): the second instance is refused with conflict, stands by (its /healthz
 * says 503 "standby"), and serves within seconds of the first one's SIGKILL. Also what Prosody does
 * with a second connection as the same component: by default it refuses the newcomer
 * (`component_conflict_resolve = "kick_new"`); with "kick_old" it replaces the active one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStoreOf, testDatabase } from '../support/engine';
import { stringify } from 'yaml';
import { adhoc, commandOf, formFields, TestClient, xml, type XmlElement } from '../support/client';
import { PROJECT_ROOT, TestProsody } from '../support/prosody';
import { rawTestConfig } from '../support/fixtures';
import { COMPONENT, COMPONENT_SECRET } from '../support/service';

/** A `serve` process and everything it has written so far. */
class Serve {
  output = '';
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve((this.exitCode = code))));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves when the output matches, rejects when the process exits first or after timeoutMs. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.output);
      if (m) return m;
      if (this.exitCode !== undefined) throw new Error(`serve exited (${this.exitCode}) before ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.output}`);
      await sleep(25);
    }
  }

  /** The web server's base URL, from its log line. */
  async webUrl(): Promise<string> {
    return (await this.waitFor(/web server listening on (http:\/\/[^\s"]+)/))[1];
  }
}

const running: Serve[] = [];

function serve(config: string): Serve {
  const child = spawn(join(PROJECT_ROOT, 'bin/xmpp-invites'), ['serve', '--config', config], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, XMPP_INVITES_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = new Serve(child);
  running.push(s);
  return s;
}

/** The store of the instances of one test dir: a SQLite file, or a PostgreSQL database in the -postgresql project. */
const databases = new Map<string, string>();
function databaseOf(dir: string): string {
  if (!databases.has(dir)) databases.set(dir, testDatabase(join(dir, 'invites.sqlite')));
  return databases.get(dir)!;
}

/** Every instance of a test reads and writes the same database. */
function writeConfig(prosody: TestProsody, dir: string, standby: boolean): string {
  const file = join(mkdtempSync(join(dir, 'serve-')), 'config.yaml');
  const raw = rawTestConfig({
    component: { server: prosody.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET, standby },
    host: prosody.host,
    database: databaseOf(dir),
    invites: { approval: 'none' },
  });
  writeFileSync(file, stringify(raw));
  return file;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function discoInfo(client: TestClient, timeoutMs: number): Promise<XmlElement> {
  return client.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })), timeoutMs);
}

async function newInvite(client: TestClient): Promise<string> {
  const reply = await adhoc(client, COMPONENT, 'urn:xmpp:invite#invite', { action: 'execute' });
  expect(reply.attrs.type).toBe('result');
  expect(commandOf(reply)?.attrs.status).toBe('completed');
  return formFields(reply).uri[0];
}

async function healthz(base: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

afterEach(async () => {
  // Every process a test started, by its PID.
  for (const s of running.splice(0)) {
    if (s.exitCode === undefined) {
      process.kill(s.pid, 'SIGKILL');
      await s.exited;
    }
  }
});

describe('Prosody, default component_conflict_resolve (kick_new)', () => {
  let prosody: TestProsody;
  let alice: TestClient;

  beforeAll(async () => {
    prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }] });
    await prosody.register('alice', 'alice-password');
    alice = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
  });
  afterAll(async () => {
    await alice?.stop();
    await prosody?.stop();
  });

  it('a standby instance waits (503 standby), then serves within 5 s of the active one’s SIGKILL', async () => {
    const dir = mkdtempSync(join(prosody.dir, 'standby-'));
    const first = serve(writeConfig(prosody, dir, true));
    await first.waitFor(/online as/);
    const firstWeb = await first.webUrl();
    const before = await newInvite(alice);

    // Without standby, a second instance is refused and exits with the message naming the fix.
    const plain = serve(writeConfig(prosody, dir, false));
    expect(await plain.exited).toBe(1);
    expect(plain.output).toMatch(/already connected as \\?"invites\.localhost\\?" \(conflict\)/);
    expect(plain.output).toMatch(/component\.standby/);

    const second = serve(writeConfig(prosody, dir, true));
    const secondWeb = await second.webUrl();
    await second.waitFor(/Standing by: another instance is connected as invites\.localhost/);
    await sleep(2000); // refused attempts, one a second: said once, no exit
    expect(second.output.match(/Standing by/g)).toHaveLength(1);
    expect(second.exitCode).toBeUndefined();
    expect(second.output).not.toMatch(/online as/);
    expect(await healthz(secondWeb)).toMatchObject({ status: 503, body: { status: 'standby', xmpp: 'standby', database: 'writable' } });
    expect(await healthz(firstWeb)).toMatchObject({ status: 200, body: { status: 'ok', xmpp: 'online' } });
    // Only the active instance answers (the standby one serves nothing XMPP).
    expect((await discoInfo(alice, 5000)).attrs.type).toBe('result');

    process.kill(first.pid, 'SIGKILL');
    const killedAt = Date.now();
    await first.exited;
    // Until the standby takes over, Prosody answers for the missing component with an error,
    // or (before it notices the dead socket) not at all.
    let answeredAt = 0;
    while (!answeredAt && Date.now() - killedAt < 10_000) {
      const reply = await discoInfo(alice, 500).catch(() => undefined);
      if (reply?.attrs.type === 'result') answeredAt = Date.now();
      else if (reply) await sleep(50);
    }
    const takeoverMs = answeredAt - killedAt;
    await second.waitFor(/Taking over as invites\.localhost/);
    console.log(`Prosody ${prosody.reportedVersion}: the standby answered disco#info ${takeoverMs} ms after the active instance's SIGKILL`);
    expect(answeredAt).toBeGreaterThan(0);
    expect(takeoverMs).toBeLessThan(5000);

    // It serves: a New Invite lands in the shared database beside the first instance's.
    const after = await newInvite(alice);
    expect(after).not.toBe(before);
    const db = openStoreOf(databaseOf(dir));
    try {
      expect(db.prepare(`SELECT count(*) AS n FROM invites WHERE inviter = 'alice@localhost'`).get()).toEqual({ n: 2 });
    } finally {
      db.close();
    }
    expect(await healthz(secondWeb)).toMatchObject({ status: 200, body: { status: 'ok', xmpp: 'online' } });

    process.kill(second.pid, 'SIGTERM');
    expect(await second.exited).toBe(0);
    expect(second.output).not.toContain(COMPONENT_SECRET);
  }, 60_000);

  it('a standby instance stopped while standing by exits 0, without a fatal line', async () => {
    const dir = mkdtempSync(join(prosody.dir, 'standby-'));
    const first = serve(writeConfig(prosody, dir, false));
    await first.waitFor(/online as/);
    const second = serve(writeConfig(prosody, dir, true));
    await second.waitFor(/Standing by/);
    process.kill(second.pid, 'SIGTERM');
    expect(await second.exited).toBe(0);
    expect(second.output).not.toMatch(/"level":60/);
    process.kill(first.pid, 'SIGTERM');
    expect(await first.exited).toBe(0);
  }, 30_000);
});

describe('Prosody with component_conflict_resolve = "kick_old"', () => {
  let prosody: TestProsody;

  beforeAll(async () => {
    prosody = await TestProsody.start({
      components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
      globalConfig: 'component_conflict_resolve = "kick_old"',
    });
  });
  afterAll(async () => {
    await prosody?.stop();
  });

  it('gives the component to the newcomer; the replaced instance exits saying why, standby or not', async () => {
    const dir = mkdtempSync(join(prosody.dir, 'standby-'));
    const first = serve(writeConfig(prosody, dir, false));
    await first.waitFor(/online as/);
    const second = serve(writeConfig(prosody, dir, true));
    await second.waitFor(/online as/);
    expect(await first.exited).toBe(1);
    expect(first.output).toMatch(/kick_old/);
    expect(first.output).toMatch(/Replaced by a new connection/);
    expect(second.output).not.toMatch(/Standing by/);

    const third = serve(writeConfig(prosody, dir, true));
    await third.waitFor(/online as/);
    expect(await second.exited).toBe(1);
    expect(second.output).toMatch(/component_conflict_resolve = \\"kick_old\\"/);
    await sleep(1500); // nothing comes back to replace it
    expect(third.exitCode).toBeUndefined();
    expect(third.output).not.toMatch(/Lost the connection/);
    process.kill(third.pid, 'SIGTERM');
    expect(await third.exited).toBe(0);
  }, 30_000);
});
