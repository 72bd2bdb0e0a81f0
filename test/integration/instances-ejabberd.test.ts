/**
 * Two real `serve` processes on one store (a SQLite file; a PostgreSQL database in the
 * integration-postgresql project), connected as the same component to a real ejabberd
 * 23.01 that shares the component's stanzas between them (`domain_balancing`, by bare sender, so
 * that one client's stanzas reach one instance). Racing registrations on a one-use invite make one
 * account; 1,000 New Invites spread over both make 1,000 invites; every notice queued beside them is
 * delivered once, by one of them; one instance killed with SIGKILL loses no acknowledged invite,
 * and the survivor takes over what it held and delivers every notice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { OPERATOR } from '../../src/domain/types';
import { EjabberdApiProvisioner } from '../../src/provisioners/ejabberd-api';
import { inviteServiceFor, outboxFor, databaseFor } from '../../src/services';
import type { Db } from '../../src/store/database';
import { parseConfig, type Config } from '../../src/config';
import { adhoc, formFields, TestClient, xml, type XmlElement } from '../support/client';
import { TestEjabberd } from '../support/ejabberd';
import { PROJECT_ROOT } from '../support/prosody';
import { rawTestConfig } from '../support/fixtures';
import { COMPONENT, COMPONENT_SECRET } from '../support/service';
import { testDatabase } from '../support/engine';
import { get, post } from '../support/web';

const ANON = 'anon.localhost';
const NEW_INVITE = 'urn:xmpp:invite#invite';

let ejabberd: TestEjabberd;
let config: Config;
let configFile: string;
let db: Db;
const instances: Serving[] = [];

interface Serving {
  child: ChildProcess;
  id: string;
  /** its web server's base URL */
  web: string;
  output: () => string;
  exited: Promise<number | null>;
}

async function serve(): Promise<Serving> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), 'serve', '--config', configFile], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, XMPP_INVITES_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 30_000;
  while (!/online as/.test(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not go online: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const id = /instance ([0-9a-f]{16}) starting/.exec(out)![1];
  const web = /web server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1];
  const s = { child, id, web, output: () => out, exited };
  instances.push(s);
  return s;
}

beforeAll(async () => {
  ejabberd = await TestEjabberd.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    httpApi: true,
    anonymousHost: ANON,
    domainBalancing: { [COMPONENT]: { type: 'bare_source', components: 2 } },
  });
  for (const u of ['alice', 'carol', 'dave', 'erin', 'bob', 'admin']) await ejabberd.register(u, `${u}-password`);
  const dir = mkdtempSync(join(ejabberd.dir, 'instances-'));
  const raw = rawTestConfig({
    component: { server: ejabberd.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET },
    host: ejabberd.host,
    // a SQLite file, or a new PostgreSQL database in the -postgresql project
    database: testDatabase(join(dir, 'invites.sqlite')),
    invites: { approval: 'none' },
    limits: { per_user_open: 'off', per_user_per_day: 'off' },
    registration: { requester_domains: [ANON], provisioner: { type: 'ejabberd-api', url: ejabberd.apiUrl() } },
  });
  configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, stringify(raw));
  config = parseConfig(stringify(raw), { baseDir: dir, env: {} });
  db = databaseFor(config);
  await Promise.all([serve(), serve()]);
}, 120_000);

afterAll(async () => {
  for (const s of instances) {
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
    await s.exited;
  }
  db?.close();
  await ejabberd?.stop();
});

const login = (u: string) => TestClient.connect({ port: ejabberd.ports.c2s, domain: ejabberd.host, username: u, password: `${u}-password` });

let inviters = 0;

/** Invitations to bob (each from another inviter) queued as the CLI queues them: beside the services, on the shared file. */
function queueInvitations(n: number): string[] {
  const invites = inviteServiceFor(config, db, { outbox: outboxFor(config, db) });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(invites.create(OPERATOR, { kind: 'contact-account', source: 'cli', inviter: `inviter${++inviters}@localhost`, jid: 'bob@localhost' }).invite.id);
  return ids;
}

/** The stanza ids of the invitations to bob queued so far (the local part of the row's message id). */
function invitationIds(): string[] {
  return (db.prepare(`SELECT message_id FROM outbox WHERE recipient = 'bob@localhost' AND kind = 'invitation'`).all() as { message_id: string }[]).map((r) => r.message_id.split('@')[0]);
}

/** How many times bob received each stanza id. */
function receivedIds(bob: TestClient): Map<string, number> {
  const seen = new Map<string, number>();
  for (const s of bob.received) if (s.is('message') && s.attrs.id) seen.set(String(s.attrs.id), (seen.get(String(s.attrs.id)) ?? 0) + 1);
  return seen;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const started = performance.now();
  while (!cond()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.now() - started;
}

async function newInvite(client: TestClient): Promise<string | undefined> {
  try {
    const reply = await adhoc(client, COMPONENT, NEW_INVITE, {});
    const uri = formFields(reply).uri?.[0];
    return uri ? /preauth=([A-Za-z0-9_-]+)/.exec(uri)?.[1].slice(0, 10) : undefined;
  } catch {
    return undefined;
  }
}

it('makes one account of 20 racing registrations on a one-use invite', async () => {
  const { links } = inviteServiceFor(config, db, { outbox: outboxFor(config, db) }).create(OPERATOR, { kind: 'account', source: 'cli' });
  const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect({ port: ejabberd.ports.c2s, domain: ANON, anonymous: true })));
  try {
    const started = performance.now();
    const replies: XmlElement[] = await Promise.all(
      clients.map((c, i) =>
        c.iq(
          xml(
            'iq',
            { type: 'set', to: COMPONENT },
            xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, `racer${i}`), xml('password', {}, 'racer-password'), xml('token', {}, links.token)),
          ),
          20_000,
        ),
      ),
    );
    console.log(`20 racing registrations answered in ${Math.round(performance.now() - started)} ms`);
    expect(replies.filter((r) => r.attrs.type === 'result')).toHaveLength(1);
    const api = new EjabberdApiProvisioner({ url: ejabberd.apiUrl(), host: ejabberd.host, timeoutMs: 5_000 });
    const exists = await Promise.all(clients.map((_, i) => api.accountExists(`racer${i}`)));
    expect(exists.filter(Boolean)).toHaveLength(1);
  } finally {
    await Promise.all(clients.map((c) => c.stop()));
  }
}, 60_000);

it('serves the web pages on every instance: a form one of them gave is taken by the other', async () => {
  const [one, two] = instances;
  const { links } = inviteServiceFor(config, db, { outbox: outboxFor(config, db) }).create(OPERATOR, { kind: 'account', source: 'cli' });
  const landing = await get(`${one.web}/i/${links.token}`);
  expect(landing.status).toBe(200);
  const done = await post(`${two.web}/i/${links.token}/register`, { csrf: landing.csrf!, username: 'webwalker', password: 'webwalker-password' }, { cookie: landing.cookie });
  expect(done.status).toBe(200);
  expect(done.html).toContain('webwalker@localhost');
  expect(await new EjabberdApiProvisioner({ url: ejabberd.apiUrl(), host: ejabberd.host, timeoutMs: 5_000 }).accountExists('webwalker')).toBe(true);
  // The link is used up on both.
  for (const s of instances) expect((await get(`${s.web}/i/${links.token}`)).status).toBe(410);
}, 30_000);

it('makes every New Invite spread over both, and delivers every notice queued beside them once', async () => {
  const inviters = await Promise.all(['alice', 'carol', 'dave', 'erin'].map(login));
  const bob = await login('bob');
  try {
    const before = (db.prepare('SELECT count(*) AS n FROM invites').get() as { n: number }).n;
    const started = performance.now();
    queueInvitations(200);
    // 1,000 New Invites, 250 from each of four users (ejabberd sends each user's to one instance)
    const made = await Promise.all(inviters.map(async (c) => {
      const ids: (string | undefined)[] = [];
      for (let i = 0; i < 250; i++) ids.push(await newInvite(c));
      return ids;
    }));
    const newInvitesMs = performance.now() - started;
    expect(made.flat().filter(Boolean)).toHaveLength(1_000);
    expect(new Set(made.flat()).size).toBe(1_000);
    const ids = invitationIds();
    const deliveredMs = await until(() => ids.every((id) => receivedIds(bob).has(id)), 60_000, 'every invitation at bob');
    await new Promise((r) => setTimeout(r, 1_500));
    const seen = receivedIds(bob);
    expect(ids.map((id) => seen.get(id)).filter((n) => n !== 1)).toEqual([]);
    expect((db.prepare('SELECT count(*) AS n FROM invites').get() as { n: number }).n - before).toBe(1_200);
    // Every row is sent, by one of the two (whichever polls first may take every batch of a burst).
    const by = db.prepare(`SELECT claimed_by AS by, count(*) AS n FROM outbox WHERE recipient = 'bob@localhost' GROUP BY claimed_by`).all() as { by: string; n: number }[];
    expect(by.every((r) => instances.some((s) => s.id === r.by))).toBe(true);
    expect(db.prepare(`SELECT count(*) AS n FROM outbox WHERE state <> 'sent'`).get()).toEqual({ n: 0 });
    console.log(
      `1,000 New Invites (4 users) and 200 queued invitations in ${Math.round(newInvitesMs)} ms; every invitation at bob ${Math.round(deliveredMs)} ms after; sent by ${by.map((r) => r.n).join(' + ')}`,
    );
  } finally {
    await Promise.all([...inviters, bob].map((c) => c.stop()));
  }
}, 180_000);

it('loses no acknowledged invite when one instance is killed, and the survivor delivers every notice', async () => {
  const [alice, carol, bob] = await Promise.all([login('alice'), login('carol'), login('bob')]);
  try {
    const known = new Set(invitationIds());
    queueInvitations(300);
    const ids = invitationIds().filter((id) => !known.has(id));
    // New Invites keep coming while an instance dies.
    let going = true;
    const acknowledged: string[] = [];
    const load = Promise.all([alice, carol].map(async (c) => {
      while (going) {
        const id = await newInvite(c);
        if (id) acknowledged.push(id);
        // A refused or lost command answers at once: leave the event loop to the rest.
        else await new Promise((r) => setTimeout(r, 50));
      }
    }));
    await until(() => ids.filter((id) => receivedIds(bob).has(id)).length >= 20, 30_000, 'the first invitations');
    const [victim, survivor] = instances;
    victim.child.kill('SIGKILL');
    const killedAt = performance.now();
    await victim.exited;
    const held = (db.prepare(`SELECT count(*) AS n FROM outbox WHERE state = 'sending' AND claimed_by = ?`).get(victim.id) as { n: number }).n;
    const takeoverMs = await until(() => ids.every((id) => receivedIds(bob).has(id)), 60_000, 'every invitation after the kill');
    going = false;
    await load;
    await new Promise((r) => setTimeout(r, 1_500));
    const seen = receivedIds(bob);
    const twice = ids.filter((id) => (seen.get(id) ?? 0) > 1);
    // At least once: only what the dead instance held may have gone twice (sent, not yet recorded).
    expect(twice.length).toBeLessThanOrEqual(held);
    expect(ids.every((id) => (seen.get(id) ?? 0) <= 2)).toBe(true);
    const stored = new Set((db.prepare('SELECT id FROM invites').all() as { id: string }[]).map((r) => r.id));
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    expect(db.prepare(`SELECT count(*) AS n FROM outbox WHERE state NOT IN ('sent', 'failed')`).get()).toEqual({ n: 0 });
    expect(survivor.child.exitCode).toBeNull();
    console.log(
      `SIGKILL with ${held} row(s) in sending: every invitation at bob ${Math.round(performance.now() - killedAt)} ms after (${Math.round(takeoverMs)} ms of waiting), ${twice.length} twice; ${acknowledged.length} New Invites acknowledged, all stored`,
    );
  } finally {
    await Promise.all([alice, carol, bob].map((c) => c.stop()));
  }
}, 120_000);
