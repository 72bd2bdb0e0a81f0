/**
 * A store moved house with `db copy` goes on as it was: the copy of a SQLite store holding every
 * kind of row reads the same through every read command of the CLI as its source does, and the
 * service started on it against a real Prosody serves what was copied (a copied token lands and
 * makes an account, a copied held claim is settled, queued notices are delivered, pending invites
 * and requests are decided, new invites and events take new ids), every write on the copy only.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { OPERATOR } from '../../src/domain/types';
import { openPool, type Pool } from '../../src/store/pg/pool';
import { buildFullStore } from '../support/full-store';
import { rawTestConfig } from '../support/fixtures';
import { TestPostgres } from '../support/postgres';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { adhoc, canLogIn, commandOf, formFields, TestClient } from '../support/client';
import { get, post } from '../support/web';

let cluster: TestPostgres;
let prosody: TestProsody;
let dir: string;
/** the source (read by the CLI only) and its copy's URL */
let storeFile: string;
let url: string;
let pool: Pool;
const configFile: Record<'sqlite' | 'pg', string> = { sqlite: '', pg: '' };
/** the full store's settings (test/support/full-store.ts), but the database */
const SETTINGS = {
  host: 'localhost',
  admins: ['admin@localhost'],
  invites: { approval: 'non-admins' },
  registration: { requests: 'approval' },
  mail: { from: 'invites@localhost', bounce_address: 'bounces@invites.localhost' },
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-copy-serve-'));
  storeFile = join(dir, 'store.sqlite');
  const [pg, store, server] = await Promise.all([
    TestPostgres.start(),
    // begun two days ago and a little more: what is open in it is still open now
    buildFullStore(storeFile, { start: Date.now() - 2 * 86_400_000 - 600_000 }),
    TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] }),
  ]);
  cluster = pg;
  prosody = server;
  store.db.close();
  url = await cluster.createDatabase();
  pool = openPool(url);
  expect(await cli(['db', 'copy', '--from', storeFile, '--to', url])).toMatchObject({ code: 0 });
  for (const [engine, database] of [['sqlite', storeFile], ['pg', url]] as const) {
    configFile[engine] = join(dir, `${engine}.yaml`);
    writeFileSync(configFile[engine], stringify(rawTestConfig({ ...SETTINGS, database, mail: { ...SETTINGS.mail, transport: `file:${join(dir, `mail-${engine}`)}` } })));
  }
  await prosody.register('admin', 'admin-password');
  await prosody.register('alice', 'alice-password');
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await cluster?.stop();
  await prosody?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The same read command against the source and against the copy. */
async function both(argv: string[]) {
  return { sqlite: await cli([...argv, '--config', configFile.sqlite]), pg: await cli([...argv, '--config', configFile.pg]) };
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return Number((await pool.query(sql, params)).rows[0].n);
}

describe('the copy reads as its source', () => {
  it('through every read command of the CLI, for every invite, reset and request', async () => {
    const lists = await both(['invite', 'list', '--json']);
    expect(lists.sqlite.code).toBe(0);
    expect(lists.pg).toEqual(lists.sqlite);
    const ids = (JSON.parse(lists.sqlite.out) as { id: string }[]).map((i) => i.id);
    expect(ids.length).toBeGreaterThan(15);
    const resets = (await pool.query<{ id: string }>('SELECT id FROM password_resets ORDER BY id')).rows.map((r) => r.id);
    expect(resets).toHaveLength(2);
    const requests = (await pool.query<{ id: string }>('SELECT id FROM membership_requests ORDER BY id')).rows.map((r) => r.id);
    expect(requests).toHaveLength(4);
    const reads: string[][] = [
      ['stats'],
      ['stats', '--json'],
      ['invite', 'list'],
      ['invite', 'list', '--state', 'pending'],
      ['request', 'list'],
      ['mail', 'list'],
      ['tree'],
      ['user', 'blocked'],
      ...[...ids, ...resets].flatMap((id) => [
        ['invite', 'show', id],
        ['invite', 'log', id],
      ]),
      ...requests.map((id) => ['request', 'show', id]),
    ];
    for (const argv of reads) {
      const { sqlite, pg } = await both(argv);
      expect({ argv, ...pg }).toEqual({ argv, ...sqlite });
      expect({ argv, code: sqlite.code }).toEqual({ argv, code: 0 });
    }
  });
});

describe('the service on the copy', () => {
  let service: RunningService;
  let base: string;
  let admin: TestClient;

  beforeAll(async () => {
    service = await startService(
      serviceConfig(prosody, { ...SETTINGS, database: url, web: { public_url: 'https://invites.example.org', trusted_proxies: ['127.0.0.1'] } }, dir),
      { provisionTimeoutMs: 5_000 },
    );
    base = service.app.web.url;
    admin = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'admin', password: 'admin-password' });
  }, 60_000);
  afterAll(async () => {
    await admin?.stop();
    await service?.stop();
  });

  it('settles the claim held when the store was copied: the server has no such account, so its use is free again', async () => {
    await service.app.jobs.run('reconcile');
    expect(await count(`SELECT count(*) AS n FROM claims WHERE state = 'held'`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM claims WHERE username = 'judy' AND state = 'released'`)).toBe(1);
  });

  it('lands a copied token and makes the account with it on the real server', async () => {
    const invite = (await pool.query<{ id: string }>(`SELECT id FROM invites WHERE kind = 'account' AND state = 'open' AND max_uses = 3`)).rows[0];
    const token = service.app.invites.links(service.app.invites.get(invite.id)!).token;
    const ip = '192.0.2.50';
    const landing = await get(`${base}/i/${token}`, { ip });
    expect(landing.status).toBe(200);
    expect(landing.html).toContain('Bienvenue, l&#39;ami &quot;Bob&quot;');
    const done = await post(`${base}/i/${token}/register`, { csrf: landing.csrf!, username: 'olivia', password: 'olivia-password' }, { ip, cookie: landing.cookie });
    expect(done.status).toBe(200);
    expect(await canLogIn(prosody.ports.c2s, 'olivia', 'olivia-password')).toBe(true);
    expect(await count(`SELECT count(*) AS n FROM claims WHERE invite_id = $1 AND state = 'spent'`, [invite.id])).toBe(2);
  });

  it('delivers the XMPP notices queued in the source', async () => {
    const source = new Database(storeFile, { readonly: true });
    const queued = source.prepare(`SELECT id FROM outbox WHERE channel = 'xmpp' AND state = 'queued' AND not_before <= ?`).all(Date.now()) as { id: number }[];
    source.close();
    expect(queued.length).toBeGreaterThan(0);
    for (let i = 0; i < 200 && (await count(`SELECT count(*) AS n FROM outbox WHERE channel = 'xmpp' AND state IN ('queued', 'sending') AND not_before <= $1`, [Date.now()])) > 0; i++) {
      service.app.worker.poke();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await count(`SELECT count(*) AS n FROM outbox WHERE id = ANY($1) AND state = 'sent'`, [queued.map((r) => r.id)])).toBe(queued.length);
  });

  it('decides the copied pending invite and request, and New Invite makes an invite with new ids after the copied ones', async () => {
    const pending = (await pool.query<{ id: string }>(`SELECT id FROM invites WHERE state = 'pending'`)).rows;
    expect(pending).toHaveLength(2);
    for (const { id } of pending) expect(service.app.invites.approve(OPERATOR, id).invite.state).toBe('open');
    const waiting = (await pool.query<{ id: string }>(`SELECT id FROM membership_requests WHERE state = 'pending'`)).rows;
    expect(waiting).toHaveLength(1);
    expect(service.app.membership.approve(OPERATOR, waiting[0].id).changed).toBe(true);
    const lastEvent = await count('SELECT max(id) AS n FROM events');
    const invitesBefore = await count('SELECT count(*) AS n FROM invites');
    const reply = await adhoc(admin, COMPONENT, 'urn:xmpp:invite#invite');
    expect(commandOf(reply)?.attrs.status).toBe('completed');
    const uri = formFields(commandOf(reply)!).uri?.[0];
    expect(uri).toMatch(/^xmpp:admin@localhost\?roster;preauth=/);
    expect(await count('SELECT count(*) AS n FROM invites')).toBe(invitesBefore + 1);
    expect(await count('SELECT min(id) AS n FROM events WHERE id > $1', [lastEvent])).toBe(lastEvent + 1);
  });

  it('leaves the source as it was', async () => {
    const again = await cli(['invite', 'list', '--state', 'pending', '--json', '--config', configFile.sqlite]);
    expect(JSON.parse(again.out)).toHaveLength(2);
  });
});
