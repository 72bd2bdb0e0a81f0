/**
 * The web console over plain HTTP against the real service and a real Prosody, with real client
 * sessions receiving the sign-in messages: signing in and out, the same answer for every JID, the
 * limits, admin rights at every request, CSRF, nothing changed by GET or by refusals, no code or
 * session id in the database or the logs, and every change recorded with `via: web`.
 */
import { everyRow, openStoreOf, TEST_ENGINE } from '../support/engine';
import { OPERATOR } from '../../src/domain/types';
import { TestClient, type XmlElement } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { get, post, snapshot, type Page } from '../support/web';
import { SECURITY_HEADERS } from '../../src/web/server';

const NS = 'urn:xmpp-invites:0';
let prosody: TestProsody;
let service: RunningService;
let base: string;
let alice: TestClient;
let admin: TestClient;
let nextIp = 1;
/** A fresh client address per test (X-Forwarded-For from the trusted loopback proxy): own rate limits. */
const newIp = () => `198.51.100.${nextIp++}`;

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  for (const u of ['alice', 'carol', 'admin']) await prosody.register(u, `${u}-password`);
  service = await startService(
    serviceConfig(prosody, {
      site_name: 'Example Chat',
      admins: ['admin@localhost'],
      web: { public_url: 'https://chat.example.org', trusted_proxies: ['127.0.0.1'] },
    }),
    { provisionTimeoutMs: 5_000 },
  );
  base = service.app.web.url;
  const login = (u: string) => TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: u, password: `${u}-password` });
  [alice, admin] = await Promise.all([login('alice'), login('admin')]);
});

afterAll(async () => {
  for (const c of [alice, admin, ...clients]) await c?.stop();
  await service?.stop();
  await prosody?.stop();
});

/** The next sign-in message at a session: its link (as this test server serves it) and phrase. */
async function loginMessage(client: TestClient): Promise<{ message: XmlElement; path: string; phrase: string }> {
  const message = await client.waitFor((s) => s.name === 'message' && s.getChildren('notification', NS).some((n) => n.attrs.kind === 'login'), 15_000);
  const body = message.getChildText('body') ?? '';
  const link = /https:\/\/chat\.example\.org(\/login\/\S+)/.exec(body);
  const phrase = /“([a-z]+ [a-z]+ [a-z]+)”/.exec(body);
  if (!link || !phrase) throw new Error(`no link or phrase in: ${body}`);
  return { message, path: link[1], phrase: phrase[1] };
}

const phraseOf = (page: Page) => /id="phrase">([^<]+)</.exec(page.html)?.[1];

/** Asks for a sign-in link for `jid` from a fresh address; the page and its CSRF cookie. */
async function ask(jid: string, ip = newIp()): Promise<Page> {
  const form = await get(`${base}/login`, { ip });
  return post(`${base}/login`, { csrf: form.csrf!, jid }, { ip, cookie: form.cookie });
}

let users = 0;
/** A new account of the test server with a connected session (each test its own: the limits count per JID). */
async function newUser(): Promise<{ jid: string; client: TestClient }> {
  const name = `user${++users}`;
  await prosody.register(name, `${name}-password`);
  const client = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: name, password: `${name}-password` });
  clients.push(client);
  return { jid: `${name}@localhost`, client };
}
const clients: TestClient[] = [];

/** Signs in through the real message: the cookies to send afterwards (CSRF and session). */
async function signIn(client: TestClient, jid: string): Promise<{ cookie: string; csrf: string; ip: string }> {
  const ip = newIp();
  const asked = await ask(jid, ip);
  expect(asked.status).toBe(200);
  const { path } = await loginMessage(client);
  const confirm = await get(`${base}${path}`, { ip, cookie: asked.cookie });
  const done = await post(`${base}${path}`, { csrf: confirm.csrf! }, { ip, cookie: asked.cookie });
  expect(done.status).toBe(303);
  const session = /xi_session=[^;]+/.exec(done.headers.get('set-cookie') ?? '')![0];
  return { cookie: `${asked.cookie}; ${session}`, csrf: confirm.csrf!, ip };
}

/** The admin's session, signed in once (the limits allow 3 links per JID in 15 minutes). */
let adminSession: Promise<{ cookie: string; csrf: string; ip: string }> | undefined;
const signInAdmin = () => (adminSession ??= signIn(admin, 'admin@localhost'));

const rows = (sql: string, ...params: unknown[]) => {
  const db = openStoreOf(service.config.database);
  try {
    return db.prepare(sql).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
};

describe('signing in', () => {
  it('sends a local account a chat message with a one-time link and the phrase the page shows; confirming sets an HttpOnly, SameSite=Lax session cookie', async () => {
    const ip = newIp();
    const asked = await ask('Alice@localhost', ip);
    expect(asked.status).toBe(200);
    expect(asked.html).toContain('Check your XMPP app');
    const { message, path, phrase } = await loginMessage(alice);
    expect(message.attrs).toMatchObject({ type: 'chat', to: 'alice@localhost', from: COMPONENT });
    expect(message.getChild('notification', NS)!.attrs).toEqual({ xmlns: NS, kind: 'login' });
    expect(phraseOf(asked)).toBe(phrase);

    const before = snapshot(service.config.database);
    const confirm = await get(`${base}${path}`, { ip, cookie: asked.cookie });
    expect(confirm.status).toBe(200);
    expect(phraseOf(confirm)).toBe(phrase);
    expect(snapshot(service.config.database)).toBe(before);
    expect(rows('SELECT used_at FROM console_logins ORDER BY created_at DESC LIMIT 1')[0].used_at).toBeNull();

    const done = await post(`${base}${path}`, { csrf: confirm.csrf! }, { ip, cookie: asked.cookie });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/my/invites');
    const setCookie = done.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/xi_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=43200; Secure/);
    const session = /xi_session=([^;]+)/.exec(setCookie)![1];
    const page = await get(`${base}/my/invites`, { ip, cookie: `${asked.cookie}; xi_session=${session}` });
    expect(page.status).toBe(200);
    expect(page.html).toContain('alice@localhost');
    // The landing page's security headers, on the console's pages too.
    for (const p of [asked, confirm, page, done]) {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect([name, p.headers.get(name)]).toEqual([name, value]);
    }

    // The link works once.
    const again = await post(`${base}${path}`, { csrf: confirm.csrf! }, { ip, cookie: asked.cookie });
    expect(again.status).toBe(410);
    expect(again.html).toContain('already been used');
    expect((await get(`${base}${path}`, { ip })).status).toBe(410);

    // Neither the code nor the session id is stored or logged.
    const code = path.split('/').pop()!;
    // SQLite: the file's bytes (freed pages and indexes included); PostgreSQL: every row.
    const stored = TEST_ENGINE === 'sqlite' ? require('node:fs').readFileSync(service.config.database).toString('latin1') : everyRow(service.config.database);
    expect(stored.includes(session)).toBe(false);
    expect(stored.includes(code)).toBe(false);
    expect(service.logs.text()).not.toContain(session);
    expect(service.logs.text()).not.toContain(code);
    expect(service.logs.text()).toContain('/login/[redacted]');
  });

  it('answers the same page for an account that does not exist and for another domain, and sends nothing to another domain', async () => {
    const outboxBefore = rows("SELECT count(*) AS n FROM outbox WHERE kind = 'login'")[0].n as number;
    const nobody = await ask('nobody@localhost');
    const elsewhere = await ask('alice@elsewhere.example');
    const strip = (p: Page) => p.html.replace(/id="phrase">[^<]+</, '').replace(/<strong>[^<]+<\/strong>/g, '').replace(/datetime="[^"]+">[^<]+</g, '').replace(/value="[^"]+"/g, '');
    expect(nobody.status).toBe(200);
    expect(elsewhere.status).toBe(200);
    expect(strip(nobody)).toBe(strip(elsewhere));
    expect(rows("SELECT recipient FROM outbox WHERE kind = 'login' ORDER BY id").slice(outboxBefore as number).map((r) => r.recipient)).toEqual(['nobody@localhost']);
  });

  it('refuses text that is not a JID with 400 and the form, recording nothing', async () => {
    const before = snapshot(service.config.database);
    const count = rows('SELECT count(*) AS n FROM console_logins')[0].n;
    const page = await ask('not a jid@@');
    expect(page.status).toBe(400);
    expect(page.html).toContain('role="alert"');
    expect(rows('SELECT count(*) AS n FROM console_logins')[0].n).toBe(count);
    expect(snapshot(service.config.database)).toBe(before);
  });

  it('limits sign-in links per JID (429 with Retry-After), the same for an account and for nobody', async () => {
    for (const jid of ['carol@localhost', 'ghost@localhost']) {
      for (let i = 0; i < 3; i++) expect((await ask(jid)).status).toBe(200);
      const limited = await ask(jid);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it('limits sign-in links per client address', async () => {
    const ip = newIp();
    for (let i = 0; i < 10; i++) expect((await ask(`someone${i}@localhost`, ip)).status).toBe(200);
    expect((await ask('someone-else@localhost', ip)).status).toBe(429);
  });

  it('refuses a confirmation without its CSRF token (403) and an unknown code (404), changing nothing', async () => {
    const ip = newIp();
    const asked = await ask('alice@localhost', ip);
    const { path } = await loginMessage(alice);
    const before = snapshot(service.config.database);
    const sessions = rows('SELECT count(*) AS n FROM console_sessions')[0].n;
    expect((await post(`${base}${path}`, {}, { ip, cookie: asked.cookie })).status).toBe(403);
    expect((await post(`${base}${path}`, { csrf: 'forged' }, { ip, cookie: asked.cookie })).status).toBe(403);
    const forged = path.slice(0, -4) + 'AAAA';
    const { csrf } = await get(`${base}/login`, { ip, cookie: asked.cookie });
    expect((await post(`${base}${forged}`, { csrf: csrf! }, { ip, cookie: asked.cookie })).status).toBe(404);
    expect(rows('SELECT count(*) AS n FROM console_sessions')[0].n).toBe(sessions);
    expect(snapshot(service.config.database)).toBe(before);
  });

  it('signs out: the session cookie from before no longer opens a page or changes anything', async () => {
    const u = await newUser();
    const s = await signIn(u.client, u.jid);
    expect((await get(`${base}/my/invites`, { ip: s.ip, cookie: s.cookie })).status).toBe(200);
    const out = await post(`${base}/logout`, { csrf: s.csrf }, { ip: s.ip, cookie: s.cookie });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toContain('xi_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0');
    const after = await get(`${base}/my/invites`, { ip: s.ip, cookie: s.cookie });
    expect(after.status).toBe(303);
    expect(after.headers.get('location')).toBe('/login');
    const before = snapshot(service.config.database);
    expect((await post(`${base}/my/invites/new`, { csrf: s.csrf }, { ip: s.ip, cookie: s.cookie })).status).toBe(401);
    expect(snapshot(service.config.database)).toBe(before);
    expect(rows("SELECT ended_why FROM console_sessions WHERE jid = ? ORDER BY created_at DESC LIMIT 1", u.jid)[0].ended_why).toBe('logout');
  });

  it('gives a new session id at each sign-in and ends the previous one of the same browser', async () => {
    const u = await newUser();
    const first = await signIn(u.client, u.jid);
    const ip = first.ip;
    const asked = await post(`${base}/login`, { csrf: first.csrf, jid: u.jid }, { ip, cookie: first.cookie });
    const { path } = await loginMessage(u.client);
    const done = await post(`${base}${path}`, { csrf: first.csrf }, { ip, cookie: first.cookie });
    expect(asked.status).toBe(200);
    const second = /xi_session=[^;]+/.exec(done.headers.get('set-cookie')!)![0];
    expect(first.cookie).not.toContain(second);
    expect((await get(`${base}/my/invites`, { ip, cookie: first.cookie })).status).toBe(303);
    expect((await get(`${base}/my/invites`, { ip, cookie: `${first.cookie.split(';')[0]}; ${second}` })).status).toBe(200);
  });
});

describe('rights and changes', () => {
  it('answers 403 on every admin page and action to a user who is not an admin, changing nothing', async () => {
    const u = await newUser();
    const s = await signIn(u.client, u.jid);
    const { invite } = service.app.invites.create({ kind: 'user', jid: 'carol@localhost', isAdmin: false }, { kind: 'contact-account', source: 'command' });
    const before = snapshot(service.config.database);
    for (const path of ['/admin', '/admin/invites', `/admin/invites/${invite.id}`, '/admin/stats']) {
      expect([path, (await get(`${base}${path}`, { ip: s.ip, cookie: s.cookie })).status]).toEqual([path, 403]);
    }
    for (const path of ['/admin/decide', `/admin/invites/${invite.id}/decide`, `/admin/invites/${invite.id}/revoke`, `/admin/invites/${invite.id}/extend`]) {
      const res = await post(`${base}${path}`, { csrf: s.csrf, id: invite.id, decision: 'approve' }, { ip: s.ip, cookie: s.cookie });
      expect([path, res.status]).toEqual([path, 403]);
    }
    // Someone else's invite is not found under /my.
    expect((await get(`${base}/my/invites/${invite.id}`, { ip: s.ip, cookie: s.cookie })).status).toBe(404);
    expect((await post(`${base}/my/invites/${invite.id}/revoke`, { csrf: s.csrf }, { ip: s.ip, cookie: s.cookie })).status).toBe(404);
    expect(snapshot(service.config.database)).toBe(before);
  });

  it('offers no room invitations without rooms.service: no link, and /my/invitations is 404 to GET and POST, changing nothing', async () => {
    const u = await newUser();
    const s = await signIn(u.client, u.jid);
    const mine = await get(`${base}/my/invites`, { ip: s.ip, cookie: s.cookie });
    expect(mine.html).not.toContain('/my/invitations');
    expect(mine.html).not.toContain('/admin/tree');
    const stats = await get(`${base}/admin/stats`, { ip: (await signInAdmin()).ip, cookie: (await signInAdmin()).cookie });
    expect(stats.status).toBe(200);
    // registration.requests is off and nobody asked: no requests on the statistics, nor in the navigation
    expect(stats.html).not.toContain('Membership requests');
    expect(stats.html).not.toContain('/admin/requests');
    const before = snapshot(service.config.database);
    expect((await get(`${base}/my/invitations`, { ip: s.ip, cookie: s.cookie })).status).toBe(404);
    expect((await post(`${base}/my/invitations`, { csrf: s.csrf, 'room-abcdefghij/team@conference.localhost': 'accept' }, { ip: s.ip, cookie: s.cookie })).status).toBe(404);
    expect(snapshot(service.config.database)).toBe(before);
  });

  it('records every change made in the console with the actor and via: web', async () => {
    const s = await signInAdmin();
    const created = await post(`${base}/my/invites/new`, { csrf: s.csrf }, { ip: s.ip, cookie: s.cookie });
    expect(created.status).toBe(303);
    const id = /\/my\/invites\/([a-z0-9]{10})\?done=created/.exec(created.headers.get('location')!)![1];
    const page = await get(`${base}${created.headers.get('location')}`, { ip: s.ip, cookie: s.cookie });
    expect(page.html).toContain('The invitation link is ready.');
    expect(page.html).toMatch(/<svg class="qr" role="img"/);
    const extended = await post(`${base}/admin/invites/${id}/extend`, { csrf: s.csrf, expire: '7d', uses: '3' }, { ip: s.ip, cookie: s.cookie });
    expect(extended.status).toBe(303);
    expect(service.app.invites.get(id)!.maxUses).toBe(3);
    expect((await post(`${base}/admin/invites/${id}/revoke`, { csrf: s.csrf }, { ip: s.ip, cookie: s.cookie })).status).toBe(303);
    const events = service.app.invites.events(id);
    expect(events.map((e) => [e.type, e.actor, e.data?.via])).toEqual([
      ['created', 'admin@localhost', 'web'],
      ['extended', 'admin@localhost', 'web'],
      ['revoked', 'admin@localhost', 'web'],
    ]);
  });

  it('refuses to lower uses or to extend past invites.expiry for a user, with the reason on the page, changing nothing', async () => {
    const u = await newUser();
    const s = await signIn(u.client, u.jid);
    const { invite } = service.app.invites.create({ kind: 'user', jid: u.jid, isAdmin: false }, { kind: 'contact', source: 'command' });
    const before = snapshot(service.config.database);
    const more = await post(`${base}/my/invites/${invite.id}/extend`, { csrf: s.csrf, uses: '5' }, { ip: s.ip, cookie: s.cookie });
    expect(more.status).toBe(403);
    expect(more.html).toContain('at most 1 use');
    const bad = await post(`${base}/my/invites/${invite.id}/extend`, { csrf: s.csrf, expire: '99d' }, { ip: s.ip, cookie: s.cookie });
    expect(bad.status).toBe(400);
    const notNumber = await post(`${base}/my/invites/${invite.id}/extend`, { csrf: s.csrf, uses: 'many' }, { ip: s.ip, cookie: s.cookie });
    expect(notNumber.status).toBe(400);
    expect(snapshot(service.config.database)).toBe(before);
    service.app.invites.revoke(OPERATOR, invite.id);
  });

  it('shows a form with a malformed address again with nothing created when every line is refused', async () => {
    const u = await newUser();
    const s = await signIn(u.client, u.jid);
    const before = snapshot(service.config.database);
    const page = await post(`${base}/my/invites/email`, { csrf: s.csrf, emails: 'not-an-address\nalso, wrong', message: '', expire: '7d' }, { ip: s.ip, cookie: s.cookie });
    expect(page.status).toBe(400);
    expect(page.html).toContain('Nobody was invited.');
    expect(page.html).toContain('not-an-address: not a single e-mail address');
    expect(page.html).toContain('also, wrong: not a single e-mail address (one address per line)');
    expect(snapshot(service.config.database)).toBe(before);
  });
});

describe('account invites', () => {
  it('lets an admin create an account invite with a reserved username, as the command does; a bad or taken username is 400 with the form, nothing made', async () => {
    const s = await signInAdmin();
    const opts = { ip: s.ip, cookie: s.cookie };
    const made = await post(`${base}/admin/invites/new`, { csrf: s.csrf, username: 'Newcomer', 'roster-subscription': '1' }, opts);
    expect(made.status).toBe(303);
    const id = /\/admin\/invites\/([a-z0-9]{10})\?done=created$/.exec(made.headers.get('location')!)![1];
    expect(service.app.invites.get(id)).toMatchObject({ kind: 'account-locked', username: 'newcomer', rosterSubscription: true, state: 'open', inviter: 'admin@localhost', source: 'web' });
    const page = await get(`${base}/admin/invites/${id}?done=created`, opts);
    expect(page.html).toContain('The invitation link is ready.');
    expect(page.html).toMatch(/xmpp:newcomer@localhost\?register;preauth=/);

    const u = await newUser();
    const user = await signIn(u.client, u.jid);
    const before = snapshot(service.config.database);
    const taken = await post(`${base}/admin/invites/new`, { csrf: s.csrf, username: 'newcomer' }, opts);
    expect(taken.status).toBe(400);
    expect(taken.html).toContain('No invite was created: The username newcomer is reserved by another invite');
    expect(taken.html).toContain('value="newcomer"');
    const bad = await post(`${base}/admin/invites/new`, { csrf: s.csrf, username: '.bad name' }, opts);
    expect(bad.status).toBe(400);
    expect(snapshot(service.config.database)).toBe(before);

    expect((await post(`${base}/admin/invites/new`, { csrf: user.csrf }, { ip: user.ip, cookie: user.cookie })).status).toBe(403);
    expect(snapshot(service.config.database)).toBe(before);
    service.app.invites.revoke(OPERATOR, id);
  });
});

describe('escaping', () => {
  it('escapes a hostile note and invitee on the queue, the invite page and the statistics', async () => {
    const s = await signInAdmin();
    const hostile = { kind: 'user' as const, jid: 'mallory@localhost', isAdmin: false };
    const { invite } = service.app.invites.create(hostile, { kind: 'contact-account', source: 'command', note: '<script>alert(1)</script>"\'' });
    for (const path of ['/admin', `/admin/invites/${invite.id}`, '/admin/stats', '/admin/invites?q=<b>']) {
      const page = await get(`${base}${path}`, { ip: s.ip, cookie: s.cookie });
      expect([path, page.status]).toEqual([path, 200]);
      expect(page.html).not.toMatch(/<script>|<b>/);
    }
    const page = await get(`${base}/admin/invites/${invite.id}`, { ip: s.ip, cookie: s.cookie });
    expect(page.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;');
    service.app.invites.reject(OPERATOR, invite.id, null);
  });
});

describe('admin lists', () => {
  it('pages all invites 50 at a time, filters by state and inviter, searches, and renders the queue ticked with Select all', async () => {
    const s = await signInAdmin();
    // Two inviters (one may make 50 a day by default), all pending.
    const inviter = (i: number) => ({ kind: 'user' as const, jid: i < 30 ? 'pager1@localhost' : 'pager2@localhost', isAdmin: false });
    const made = Array.from({ length: 55 }, (_, i) => service.app.invites.create(inviter(i), { kind: 'contact-account', source: 'send', email: `p${i}@example.net` }).invite);
    const before = snapshot(service.config.database);
    const opts = { ip: s.ip, cookie: s.cookie };
    const rowsOf = (p: Page) => [...p.html.matchAll(/<tr data-invite="([a-z0-9]{10})">/g)].map((m) => m[1]);

    const first = await get(`${base}/admin/invites?q=PAGER`, opts);
    expect(first.status).toBe(200);
    expect(first.html).toContain('55 invites, page 1 of 2');
    expect(rowsOf(first)).toHaveLength(50);
    const second = await get(`${base}/admin/invites?q=pager&page=2`, opts);
    expect(rowsOf(second)).toHaveLength(5);
    expect(new Set([...rowsOf(first), ...rowsOf(second)])).toEqual(new Set(made.map((i) => i.id)));
    const one = await get(`${base}/admin/invites?inviter=Pager2@localhost&state=pending`, opts);
    expect(one.html).toContain('25 invites');
    expect(rowsOf(one).sort()).toEqual(made.slice(30).map((i) => i.id).sort());

    const found = await get(`${base}/admin/invites?q=P54@EXAMPLE`, opts);
    expect(rowsOf(found)).toEqual([made[54].id]);
    // LIKE's wildcards are searched for as text
    expect(rowsOf(await get(`${base}/admin/invites?q=p_4%25`, opts))).toEqual([]);
    expect(rowsOf(await get(`${base}/admin/invites?state=rejected&inviter=pager@localhost`, opts))).toEqual([]);

    const queue = await get(`${base}/admin?select=all`, opts);
    expect(queue.html).toMatch(/\d+ invites wait for approval, oldest first/);
    const boxes = [...queue.html.matchAll(/<input type="checkbox" name="id" value="([a-z0-9]{10})"[^>]*>/g)];
    expect(boxes).toHaveLength(50);
    expect(boxes.every((b) => b[0].includes(' checked'))).toBe(true);
    expect(rowsOf(await get(`${base}/admin`, opts)).length).toBe(50);
    expect(snapshot(service.config.database)).toBe(before);

    // Deciding nothing, or an unknown decision, is refused and changes nothing.
    expect((await post(`${base}/admin/decide`, { csrf: s.csrf, decision: 'approve' }, opts)).status).toBe(400);
    expect((await post(`${base}/admin/decide`, { csrf: s.csrf, id: made[0].id, decision: 'maybe' }, opts)).status).toBe(400);
    expect((await post(`${base}/admin/decide`, { csrf: s.csrf, id: 'nosuchinvt', decision: 'approve' }, opts)).status).toBe(409);
    expect(snapshot(service.config.database)).toBe(before);
    for (const i of made) service.app.invites.reject(OPERATOR, i.id, null);
  });
});
