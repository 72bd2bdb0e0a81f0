/**
 * The console's later pages over plain HTTP against the real service, a real Prosody with a real
 * MUC service, and real client sessions receiving the sign-in messages: the invitation tree
 * (`/admin/tree`, the lines of `xmpp-invites tree`), membership requests decided in the admin queue
 * beside invites, and answering room invitations (`/my/invitations`). Every refusal is checked to
 * change nothing in the database.
 */
import { OPERATOR, type Actor } from '../../src/domain/types';
import { treeLines } from '../../src/present/tree';
import { TestClient, type XmlElement } from '../support/client';
import { openStoreOf } from '../support/engine';
import { createRoom } from '../support/muc';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { get, post, snapshot, type Page } from '../support/web';

const NS = 'urn:xmpp-invites:0';
const MUC = 'conference.localhost';
const TEAM = `team@${MUC}`;
const GARDEN = `garden@${MUC}`;
const KITCHEN = `kitchen@${MUC}`;
const ATTIC = `attic@${MUC}`;
const PASSWORD = 'password-123';

let prosody: TestProsody;
let service: RunningService;
let base: string;
const clients: TestClient[] = [];
let nextIp = 1;
/** A fresh client address per sign-in (X-Forwarded-For from the trusted loopback proxy): own rate limits. */
const newIp = () => `198.51.100.${nextIp++}`;

const connect = async (u: string) => {
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: u, password: `${u}-password` });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    hostAdmins: [COMPONENT],
    muc: [{ domain: MUC, admins: [COMPONENT] }],
  });
  for (const u of ['alice', 'bob', 'carol', 'admin']) await prosody.register(u, `${u}-password`);
  const alice = await connect('alice');
  await createRoom(alice, TEAM, 'The Team');
  await createRoom(alice, GARDEN, 'Garden');
  await createRoom(alice, KITCHEN, 'Kitchen');
  await createRoom(alice, ATTIC, 'Attic');
  service = await startService(
    serviceConfig(prosody, {
      site_name: 'Example Chat',
      admins: ['admin@localhost'],
      rooms: { service: MUC },
      registration: { requests: 'approval' },
      web: { public_url: 'https://chat.example.org', trusted_proxies: ['127.0.0.1'] },
    }),
    { provisionTimeoutMs: 5_000 },
  );
  base = service.app.web.url;
});

afterAll(async () => {
  for (const c of clients) await c.stop();
  await service?.stop();
  await prosody?.stop();
});

/** The next sign-in message at a session: its link as this test server serves it. */
async function loginPath(client: TestClient): Promise<string> {
  const message: XmlElement = await client.waitFor((s) => s.name === 'message' && s.getChildren('notification', NS).some((n) => n.attrs.kind === 'login'), 15_000);
  const link = /https:\/\/chat\.example\.org(\/login\/\S+)/.exec(message.getChildText('body') ?? '');
  if (!link) throw new Error(`no link in: ${message.toString()}`);
  return link[1];
}

interface Signed {
  cookie: string;
  csrf: string;
  ip: string;
}

/** Signs in through the real message: the cookies to send afterwards (CSRF and session). */
const sessionsOf = new Map<string, TestClient>();
async function signIn(user: string): Promise<Signed> {
  const client = await connect(user);
  sessionsOf.set(user, client);
  const ip = newIp();
  const form = await get(`${base}/login`, { ip });
  const asked = await post(`${base}/login`, { csrf: form.csrf!, jid: `${user}@localhost` }, { ip, cookie: form.cookie });
  expect(asked.status).toBe(200);
  const path = await loginPath(client);
  const confirm = await get(`${base}${path}`, { ip, cookie: asked.cookie });
  const done = await post(`${base}${path}`, { csrf: confirm.csrf! }, { ip, cookie: asked.cookie });
  expect(done.status).toBe(303);
  const session = /xi_session=[^;]+/.exec(done.headers.get('set-cookie') ?? '')![0];
  return { cookie: `${asked.cookie}; ${session}`, csrf: confirm.csrf!, ip };
}

const sessions = new Map<string, Promise<Signed>>();
/** One session per user for the whole file (the limits allow 3 links per JID in 15 minutes). */
const session = (user: string) => {
  if (!sessions.has(user)) sessions.set(user, signIn(user));
  return sessions.get(user)!;
};
const as = (s: Signed) => ({ ip: s.ip, cookie: s.cookie });

const db = () => service.config.database;
const rows = (sql: string, ...params: unknown[]) => {
  const d = openStoreOf(db());
  try {
    return d.prepare(sql).all(...params) as Record<string, unknown>[];
  } finally {
    d.close();
  }
};

const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
/** The tree's lines as the page shows them, in order. */
const treeOf = (page: Page) => [...page.html.matchAll(/<span class="line">([^<]*)<\/span>/g)].map((m) => unescape(m[1]));

/** Registers on the landing page from its own client address. */
async function registerOnWeb(token: string, username: string): Promise<void> {
  const ip = newIp();
  const page = await get(`${base}/i/${token}`, { ip });
  const done = await post(`${base}/i/${token}/register`, { csrf: page.csrf!, username, password: PASSWORD }, { ip, cookie: page.cookie! });
  if (done.status !== 200) throw new Error(`registration of ${username} failed: ${done.status} ${done.html.slice(0, 500)}`);
}

const tokenOf = (landingUrl: string) => landingUrl.split('/i/')[1];

describe('the invitation tree', () => {
  it('shows admins the lines of `xmpp-invites tree`, linked from their navigation, and the subtree below one account', async () => {
    const admin: Actor = { kind: 'user', jid: 'admin@localhost', isAdmin: true };
    const first = service.app.invites.create(admin, { kind: 'account', source: 'command' });
    await registerOnWeb(tokenOf(first.links.landingUrl), 'dana');
    // dana's invite, made by the operator in her name (no approval, no account age to wait)
    const second = service.app.invites.create(OPERATOR, { kind: 'account', source: 'cli', inviter: 'dana@localhost', email: 'eve@example.net' });
    await registerOnWeb(tokenOf(second.links.landingUrl), 'eve');

    const s = await session('admin');
    const before = snapshot(db());
    const page = await get(`${base}/admin/tree`, as(s));
    expect(page.status).toBe(200);
    expect(page.html).toContain('<a href="/admin/tree">Invitation tree</a>');
    const expected = treeLines(service.app.services.trust!.tree()).map((l) => l.trim());
    expect(treeOf(page)).toEqual(expected);
    // three generations: admin, then dana below, then eve below dana
    expect(page.html).toMatch(/<li data-jid="admin@localhost">[\s\S]*<li data-jid="dana@localhost">[\s\S]*<li data-jid="eve@localhost">/);
    expect(expected.find((l) => l.startsWith(`- invite ${second.invite.id} (account)`))).toMatch(/to eve@example\.net, created .* → eve@localhost$/);

    const below = await get(`${base}/admin/tree?jid=Dana@localhost`, as(s));
    expect(below.status).toBe(200);
    expect(treeOf(below)).toEqual(treeLines(service.app.services.trust!.tree('dana@localhost')).map((l) => l.trim()));
    expect(below.html).not.toContain('data-jid="admin@localhost"');
    expect(below.html).toContain('value="Dana@localhost"');
    expect(snapshot(db())).toBe(before);
  });

  it('refuses a text that is not a user JID with 400 and the reason, escaped', async () => {
    const s = await session('admin');
    const page = await get(`${base}/admin/tree?jid=${encodeURIComponent('<b>not a jid')}`, as(s));
    expect(page.status).toBe(400);
    expect(page.html).toContain('Not a user JID: &lt;b&gt;not a jid');
    expect(page.html).not.toContain('<b>not');
  });

  it('blocks and unblocks a user and revokes a subtree’s open invites, as the CLI does, recording the admin and via: web', async () => {
    const s = await session('admin');
    const carol: Actor = { kind: 'user', jid: 'carol@localhost', isAdmin: false };
    const blocked = await post(`${base}/admin/tree/act`, { csrf: s.csrf, jid: 'Carol@localhost', reason: 'Too many <b>spam</b> invites', action: 'block' }, as(s));
    expect(blocked.status).toBe(303);
    expect(blocked.headers.get('location')).toBe('/admin/tree?jid=carol%40localhost&done=blocked');
    expect(service.app.services.trust!.blockOf('carol@localhost')).toMatchObject({ reason: 'Too many <b>spam</b> invites', actor: 'admin@localhost' });
    expect(() => service.app.invites.create(carol, { kind: 'contact', source: 'command' })).toThrow(/Too many <b>spam<\/b> invites/);
    const shown = await get(`${base}${blocked.headers.get('location')}`, as(s));
    expect(shown.html).toContain('The user is blocked from inviting');
    expect(shown.html).toContain('BLOCKED: Too many &lt;b&gt;spam&lt;/b&gt; invites');
    const unblocked = await post(`${base}/admin/tree/act`, { csrf: s.csrf, jid: 'carol@localhost', action: 'unblock' }, as(s));
    expect(unblocked.headers.get('location')).toBe('/admin/tree?jid=carol%40localhost&done=unblocked');
    expect(service.app.services.trust!.blockOf('carol@localhost')).toBeUndefined();
    expect((await post(`${base}/admin/tree/act`, { csrf: s.csrf, jid: 'carol@localhost', action: 'unblock' }, as(s))).headers.get('location')).toContain('done=not-blocked');

    // dana's subtree: her own open invite and eve's, revoked at once; alice's stays.
    const own = service.app.invites.create(OPERATOR, { kind: 'contact', source: 'cli', inviter: 'dana@localhost' }).invite;
    const below = service.app.invites.create(OPERATOR, { kind: 'contact', source: 'cli', inviter: 'eve@localhost' }).invite;
    const outside = service.app.invites.create(OPERATOR, { kind: 'contact', source: 'cli', inviter: 'alice@localhost' }).invite;
    const revoked = await post(`${base}/admin/tree/act`, { csrf: s.csrf, jid: 'dana@localhost', reason: 'one bad invitation', action: 'revoke-tree' }, as(s));
    expect(revoked.headers.get('location')).toBe('/admin/tree?jid=dana%40localhost&done=revoked');
    for (const i of [own, below]) {
      expect(service.app.invites.get(i.id)!.state).toBe('revoked');
      expect(service.app.invites.events(i.id).at(-1)).toMatchObject({ type: 'revoked', actor: 'admin@localhost', reason: 'one bad invitation', data: expect.objectContaining({ via: 'web' }) });
    }
    expect(service.app.invites.get(outside.id)!.state).toBe('open');
    service.app.invites.revoke(OPERATOR, outside.id);
  });

  it('refuses an action, changing nothing: no session (401), a user (403), a forged CSRF token (403), not a user JID (400), a block without a reason (400), no action (400), a reason too long (400)', async () => {
    const s = await session('admin');
    const user = await session('carol');
    const blocks = () => JSON.stringify(rows('SELECT * FROM user_blocks ORDER BY id'));
    const before = snapshot(db());
    const blocksBefore = blocks();
    const act = (fields: Record<string, string>, who: { ip: string; cookie?: string } = as(s)) => post(`${base}/admin/tree/act`, fields, who);
    const cases: [string, Promise<Page>, number][] = [
      ['no session', act({ csrf: s.csrf, jid: 'alice@localhost', reason: 'x', action: 'block' }, { ip: s.ip, cookie: s.cookie.split('; ')[0] }), 401],
      ['a user', act({ csrf: user.csrf, jid: 'alice@localhost', reason: 'x', action: 'block' }, as(user)), 403],
      ['a forged CSRF token', act({ csrf: 'forged', jid: 'alice@localhost', reason: 'x', action: 'block' }), 403],
      ['not a user JID', act({ csrf: s.csrf, jid: 'localhost', reason: 'x', action: 'block' }), 400],
      ['not a JID to revoke', act({ csrf: s.csrf, jid: '@@', action: 'revoke-tree' }), 400],
      ['a block without a reason', act({ csrf: s.csrf, jid: 'alice@localhost', reason: '  ', action: 'block' }), 400],
      ['no action', act({ csrf: s.csrf, jid: 'alice@localhost', reason: 'x', action: 'ban' }), 400],
      ['a reason too long', act({ csrf: s.csrf, jid: 'alice@localhost', reason: 'x'.repeat(1001), action: 'block' }), 400],
    ];
    for (const [what, res, status] of cases) expect([what, (await res).status]).toEqual([what, status]);
    expect(snapshot(db())).toBe(before);
    expect(blocks()).toBe(blocksBefore);
    const page = await act({ csrf: s.csrf, jid: 'alice@localhost', reason: '', action: 'block' });
    expect(page.html).toContain('A block needs a reason');
    expect(page.html).toContain('value="alice@localhost"');
  });

  it('is for admins only: 403 to a signed-in user, the sign-in page without a session', async () => {
    const s = await session('carol');
    const page = await get(`${base}/admin/tree`, as(s));
    expect(page.status).toBe(403);
    expect(page.html).not.toContain('Invitation tree</a>');
    const anonymous = await get(`${base}/admin/tree`, { ip: newIp() });
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get('location')).toBe('/login');
  });
});

describe('membership requests in the admin queue', () => {
  /** A verified (pending) membership request of `email`. */
  function pendingRequest(email: string, reason: string | null): string {
    service.app.membership.request({ email, reason, ip: null });
    const r = service.app.membership.list({ state: 'unverified', limit: 1000 }).find((x) => x.email === email)!;
    service.app.membership.verify(service.app.membership.verifyUrl(r).split('/request/v/')[1]);
    return r.id;
  }

  it('lists pending requests beside pending invites with address, reason and when verified, escaped', async () => {
    const s = await session('admin');
    const told = sessionsOf.get('admin')!.waitFor((m) => m.name === 'message' && (m.getChildText('body') ?? '').includes('friend@example.net'), 20_000);
    const id = pendingRequest('friend@example.net', 'I am <b>Alice</b>’s "brother"');
    const { invite } = service.app.invites.create({ kind: 'user', jid: 'carol@localhost', isAdmin: false }, { kind: 'contact-account', source: 'command' });
    expect(invite.state).toBe('pending');
    // The admins' message names the console's queue beside the command.
    expect((await told).getChildText('body')).toContain('or open https://chat.example.org/admin.');
    const page = await get(`${base}/admin`, as(s));
    expect(page.status).toBe(200);
    const row = new RegExp(`<tr data-request="${id}">[\\s\\S]*?</tr>`).exec(page.html)![0];
    expect(row).toContain(`value="request/${id}"`);
    expect(row).toContain('friend@example.net');
    expect(row).toContain('I am &lt;b&gt;Alice&lt;/b&gt;’s &quot;brother&quot;');
    const verifiedAt = service.app.membership.get(id)!.verifiedAt!;
    expect(row).toContain(`datetime="${new Date(verifiedAt).toISOString()}"`);
    expect(page.html).toContain(`<tr data-invite="${invite.id}">`);
    expect(page.html).toMatch(/\d+ membership requests? waits? for approval/);
    service.app.membership.reject(OPERATOR, id, null);
    service.app.invites.reject(OPERATOR, invite.id, null);
  });

  it('approves and rejects requests and invites together through the membership service, recording the admin and via: web', async () => {
    const yes = pendingRequest('yes@example.net', 'hello');
    const no = pendingRequest('no@example.net', null);
    const { invite } = service.app.invites.create({ kind: 'user', jid: 'carol@localhost', isAdmin: false }, { kind: 'contact-account', source: 'command' });
    const s = await session('admin');

    const approved = await post(`${base}/admin/decide`, { csrf: s.csrf, id: [`request/${yes}`, invite.id], decision: 'approve' }, as(s));
    expect(approved.status).toBe(200);
    expect(approved.html).toContain('2 of 2 invites and requests approved.');
    const done = service.app.membership.get(yes)!;
    expect(done).toMatchObject({ state: 'approved', decidedBy: 'admin@localhost' });
    expect(service.app.invites.get(done.inviteId!)).toMatchObject({ kind: 'account', inviteeEmail: 'yes@example.net', approvedBy: 'admin@localhost' });
    expect(service.app.membership.events(yes).at(-1)).toMatchObject({ type: 'approved', actor: 'admin@localhost', data: { invite: done.inviteId, via: 'web' } });
    expect(service.app.invites.get(invite.id)!.state).toBe('open');

    const rejected = await post(`${base}/admin/decide`, { csrf: s.csrf, id: `request/${no}`, decision: 'reject', reason: 'Not this time' }, as(s));
    expect(rejected.status).toBe(200);
    expect(rejected.html).toContain('1 of 1 request rejected.');
    expect(service.app.membership.get(no)).toMatchObject({ state: 'rejected', decidedBy: 'admin@localhost', decisionReason: 'Not this time' });
    expect(service.app.membership.events(no).at(-1)).toMatchObject({ type: 'rejected', actor: 'admin@localhost', reason: 'Not this time', data: { via: 'web' } });
    expect(rows("SELECT params FROM outbox WHERE kind = 'request-rejected' AND recipient = ?", 'no@example.net').map((r) => JSON.parse(String(r.params)))).toEqual([
      { request: no, reason: 'Not this time' },
    ]);

    // Deciding again changes nothing and says so.
    const before = snapshot(db());
    const again = await post(`${base}/admin/decide`, { csrf: s.csrf, id: `request/${no}`, decision: 'reject', reason: 'Still no' }, as(s));
    expect(again.status).toBe(200);
    expect(again.html).toContain('0 of 1 request rejected. 1 had already been rejected.');
    const wrong = await post(`${base}/admin/decide`, { csrf: s.csrf, id: `request/${no}`, decision: 'approve' }, as(s));
    expect(wrong.status).toBe(409);
    expect(wrong.html).toContain(`Request ${no} is rejected and cannot be approved`);
    expect(snapshot(db())).toBe(before);
  });

  it('refuses, changing nothing: no session (401), a user (403), no or a forged CSRF token (403), an unknown request (409), no decision or no selection (400), a reason too long (400)', async () => {
    const id = pendingRequest('wait@example.net', 'please');
    const s = await session('admin');
    const user = await session('carol');
    const before = snapshot(db());
    const decide = (fields: Record<string, string | string[]>, who: { ip: string; cookie?: string }) => post(`${base}/admin/decide`, fields, who);
    const cases: [string, Promise<Page>, number][] = [
      ['no session', decide({ csrf: s.csrf, id: `request/${id}`, decision: 'approve' }, { ip: s.ip, cookie: s.cookie.split('; ')[0] }), 401],
      ['a user', decide({ csrf: user.csrf, id: `request/${id}`, decision: 'approve' }, as(user)), 403],
      ['no CSRF token', decide({ id: `request/${id}`, decision: 'approve' }, as(s)), 403],
      ['a forged CSRF token', decide({ csrf: 'forged', id: `request/${id}`, decision: 'approve' }, as(s)), 403],
      ['an unknown request', decide({ csrf: s.csrf, id: 'request/zzzzzzzzzz', decision: 'approve' }, as(s)), 409],
      ['a request id that is not one', decide({ csrf: s.csrf, id: 'request/', decision: 'reject' }, as(s)), 409],
      ['no decision', decide({ csrf: s.csrf, id: `request/${id}`, decision: 'maybe' }, as(s)), 400],
      ['nothing selected', decide({ csrf: s.csrf, decision: 'reject' }, as(s)), 400],
      ['a reason too long', decide({ csrf: s.csrf, id: `request/${id}`, decision: 'reject', reason: 'x'.repeat(1001) }, as(s)), 400],
    ];
    for (const [what, res, status] of cases) expect([what, (await res).status]).toEqual([what, status]);
    expect(snapshot(db())).toBe(before);
    expect(service.app.membership.get(id)!.state).toBe('pending');
    service.app.membership.reject(OPERATOR, id, null);
  });
});

describe('all membership requests', () => {
  function pendingRequest(email: string): string {
    service.app.membership.request({ email, reason: 'hi', ip: null });
    const r = service.app.membership.list({ state: 'unverified', limit: 1000 }).find((x) => x.email === email)!;
    service.app.membership.verify(service.app.membership.verifyUrl(r).split('/request/v/')[1]);
    return r.id;
  }

  it('lists requests by state 50 at a time, linked from the admin navigation, each with its log; a decision there records via: web', async () => {
    const made = Array.from({ length: 51 }, (_, i) => {
      service.app.membership.request({ email: `many${i}@example.net`, reason: null, ip: null });
      return `many${i}@example.net`;
    });
    const s = await session('admin');
    const before = snapshot(db());
    const queue = await get(`${base}/admin`, as(s));
    expect(queue.html).toContain('<a href="/admin/requests">Requests</a>');
    const first = await get(`${base}/admin/requests?state=unverified`, as(s));
    expect(first.status).toBe(200);
    expect(first.html).toContain('51 requests, oldest first');
    const ids = (p: Page) => [...p.html.matchAll(/<tr data-request="([a-z0-9]+)">/g)].map((m) => m[1]);
    expect(ids(first)).toHaveLength(50);
    const next = /href="(\/admin\/requests\?state=unverified&amp;after=[^"]+)" rel="next"/.exec(first.html)![1].replace(/&amp;/g, '&');
    const second = await get(`${base}${next}`, as(s));
    expect(ids(second)).toHaveLength(1);
    expect(new Set([...ids(first), ...ids(second)]).size).toBe(51);
    expect(service.app.membership.list({ state: 'unverified', limit: 100 }).map((r) => r.email).sort()).toEqual([...made].sort());
    expect(snapshot(db())).toBe(before);

    const id = pendingRequest('single@example.net');
    const page = await get(`${base}/admin/requests/${id}`, as(s));
    expect(page.status).toBe(200);
    expect(page.html).toContain('<span id="request-state">pending</span>');
    const rejected = await post(`${base}/admin/requests/${id}/decide`, { csrf: s.csrf, decision: 'reject', reason: 'Full <b>up</b>' }, as(s));
    expect(rejected.status).toBe(303);
    expect(rejected.headers.get('location')).toBe(`/admin/requests/${id}?done=rejected`);
    const after = await get(`${base}${rejected.headers.get('location')}`, as(s));
    expect(after.html).toContain('The request was rejected: the address is told, with the reason.');
    expect(after.html).toContain('Full &lt;b&gt;up&lt;/b&gt;');
    expect(after.html).not.toContain('Approve</button>');
    expect(service.app.membership.events(id).map((e) => [e.type, e.actor, e.data?.via ?? null])).toEqual([
      ['requested', 'web', null],
      ['verified', 'web', null],
      ['rejected', 'admin@localhost', 'web'],
    ]);
  });

  it('refuses, changing nothing: no session (401), a user (403), a forged CSRF token (403), an unknown request (404), no decision (400), a reason too long (400), a decided request (409)', async () => {
    const id = pendingRequest('refuse@example.net');
    const done = pendingRequest('done@example.net');
    service.app.membership.reject(OPERATOR, done, null);
    const s = await session('admin');
    const user = await session('carol');
    const before = snapshot(db());
    const decide = (rid: string, fields: Record<string, string>, who: { ip: string; cookie?: string } = as(s)) => post(`${base}/admin/requests/${rid}/decide`, fields, who);
    const cases: [string, Promise<Page>, number][] = [
      ['no session', decide(id, { csrf: s.csrf, decision: 'approve' }, { ip: s.ip, cookie: s.cookie.split('; ')[0] }), 401],
      ['a user', decide(id, { csrf: user.csrf, decision: 'approve' }, as(user)), 403],
      ['a user reading', get(`${base}/admin/requests/${id}`, as(user)), 403],
      ['a user listing', get(`${base}/admin/requests`, as(user)), 403],
      ['a forged CSRF token', decide(id, { csrf: 'forged', decision: 'approve' }), 403],
      ['an unknown request', decide('zzzzzzzzzz', { csrf: s.csrf, decision: 'approve' }), 404],
      ['an unknown request page', get(`${base}/admin/requests/zzzzzzzzzz`, as(s)), 404],
      ['no decision', decide(id, { csrf: s.csrf, decision: 'maybe' }), 400],
      ['a reason too long', decide(id, { csrf: s.csrf, decision: 'reject', reason: 'x'.repeat(1001) }), 400],
      ['a decided request', decide(done, { csrf: s.csrf, decision: 'approve' }), 409],
    ];
    for (const [what, res, status] of cases) expect([what, (await res).status]).toEqual([what, status]);
    expect(snapshot(db())).toBe(before);
    service.app.membership.reject(OPERATOR, id, null);
  });
});

describe('statistics', () => {
  it('shows membership requests by state and their funnel, as the store counts them', async () => {
    const s = await session('admin');
    const page = await get(`${base}/admin/stats`, as(s));
    expect(page.status).toBe(200);
    const stats = service.app.membership.stats();
    expect(stats.states.pending + stats.states.rejected + stats.states.approved).toBeGreaterThan(0);
    for (const [state, n] of Object.entries(stats.states)) expect([state, new RegExp(`<td class="n" data-state="${state}">(\\d+)</td>`).exec(page.html.split('id="request-states"')[1])?.[1]]).toEqual([state, String(n)]);
    for (const [step, n] of Object.entries(stats.funnel)) expect([step, new RegExp(`<td class="n" data-series="${step}">(\\d+)</td>`).exec(page.html.split('id="request-funnel"')[1])?.[1]]).toEqual([step, String(n)]);
  });
});

describe('answering room invitations', () => {
  const roomInvite = (inviter: string, to: string, rooms: { jid: string; name: string }[], note?: string) =>
    service.app.invites.create({ kind: 'user', jid: inviter, isAdmin: false }, { kind: 'room', source: 'invite-to-rooms', jid: to, rooms, note }).invite;
  const answerState = (inviteId: string, room: string) => rows('SELECT state FROM room_invitations WHERE invite_id = ? AND room = ?', inviteId, room)[0]?.state;

  it('lists every open room invitation of the signed-in user from every inviter, linked from the navigation, and takes accept, decline and later with one note', async () => {
    const fromAlice = roomInvite('alice@localhost', 'bob@localhost', [
      { jid: TEAM, name: 'The Team' },
      { jid: GARDEN, name: 'Garden' },
    ], 'Come <in>');
    const fromCarol = roomInvite('carol@localhost', 'bob@localhost', [{ jid: KITCHEN, name: 'Kitchen' }]);
    const s = await session('bob');
    const mine = await get(`${base}/my/invites`, as(s));
    expect(mine.html).toContain('<a href="/my/invitations">Room invitations</a>');
    const page = await get(`${base}/my/invitations`, as(s));
    expect(page.status).toBe(200);
    expect([...page.html.matchAll(/<fieldset data-room="([^"]+)">/g)].map((m) => m[1]).sort()).toEqual([`${fromAlice.id}/${GARDEN}`, `${fromAlice.id}/${TEAM}`, `${fromCarol.id}/${KITCHEN}`].sort());
    expect(page.html).toContain('Come &lt;in&gt;');
    expect(page.html).toContain('3 room invitations wait');

    const answered = await post(
      `${base}/my/invitations`,
      { csrf: s.csrf, [`room-${fromAlice.id}/${TEAM}`]: 'accept', [`room-${fromAlice.id}/${GARDEN}`]: 'decline', [`room-${fromCarol.id}/${KITCHEN}`]: 'later', note: 'Thanks, only the team' },
      as(s),
    );
    expect(answered.status).toBe(200);
    expect(answered.html).toContain('<strong>The Team (team@conference.localhost)</strong>: you are a member now.');
    expect(answered.html).toContain('<strong>Garden (garden@conference.localhost)</strong>: declined; alice@localhost has been told.');
    expect(answered.html).toContain('<strong>Kitchen (kitchen@conference.localhost)</strong>: left for later; it is still listed below.');
    // only the one left for later is still asked
    expect([...answered.html.matchAll(/<fieldset data-room="([^"]+)">/g)].map((m) => m[1])).toEqual([`${fromCarol.id}/${KITCHEN}`]);

    expect(await service.app.rooms!.affiliation(TEAM, 'bob@localhost')).toEqual({ ok: true, value: 'member' });
    expect(await service.app.rooms!.affiliation(GARDEN, 'bob@localhost')).toEqual({ ok: true, value: 'none' });
    expect(answerState(fromAlice.id, TEAM)).toBe('accepted');
    expect(answerState(fromAlice.id, GARDEN)).toBe('declined');
    expect(answerState(fromCarol.id, KITCHEN)).toBe('open');
    const declined = service.app.invites.events(fromAlice.id).find((e) => e.type === 'room-declined')!;
    expect(declined).toMatchObject({ actor: 'bob@localhost', reason: 'Thanks, only the team', data: { room: GARDEN, via: 'web' } });
    expect(rows("SELECT recipient, params FROM outbox WHERE kind = 'room-declined' AND invite_ids LIKE ?", `%${fromAlice.id}%`).map((r) => [r.recipient, JSON.parse(String(r.params)).reason])).toEqual([
      ['alice@localhost', 'Thanks, only the team'],
    ]);
    service.app.invites.revoke(OPERATOR, fromCarol.id);
  });

  it('refuses, changing nothing: no session (401), no or a forged CSRF token (403), someone else’s or an unknown invitation (400), a bad choice (400), no answer (400), a note too long (400)', async () => {
    const mine = roomInvite('alice@localhost', 'carol@localhost', [{ jid: TEAM, name: 'The Team' }]);
    const theirs = roomInvite('alice@localhost', 'bob@localhost', [{ jid: ATTIC, name: 'Attic' }]);
    const s = await session('carol');
    const field = `room-${mine.id}/${TEAM}`;
    const before = snapshot(db());
    const answer = (fields: Record<string, string>, who: { ip: string; cookie?: string } = as(s)) => post(`${base}/my/invitations`, fields, who);
    const cases: [string, Promise<Page>, number][] = [
      ['no session', answer({ csrf: s.csrf, [field]: 'accept' }, { ip: s.ip, cookie: s.cookie.split('; ')[0] }), 401],
      ['no CSRF token', answer({ [field]: 'accept' }), 403],
      ['a forged CSRF token', answer({ csrf: 'forged', [field]: 'accept' }), 403],
      ['someone else’s invitation', answer({ csrf: s.csrf, [field]: 'later', [`room-${theirs.id}/${ATTIC}`]: 'decline' }), 400],
      ['an unknown invitation', answer({ csrf: s.csrf, 'room-zzzzzzzzzz/nowhere@conference.localhost': 'accept' }), 400],
      ['a field that is no pair', answer({ csrf: s.csrf, 'room-nonsense': 'accept' }), 400],
      ['a bad choice', answer({ csrf: s.csrf, [field]: 'maybe' }), 400],
      ['no answer', answer({ csrf: s.csrf, note: 'hello' }), 400],
      ['a note too long', answer({ csrf: s.csrf, [field]: 'decline', note: 'x'.repeat(service.config.presence.maxMessageLength + 1) }), 400],
    ];
    for (const [what, res, status] of cases) expect([what, (await res).status]).toEqual([what, status]);
    expect(snapshot(db())).toBe(before);
    const bad = await answer({ csrf: s.csrf, [field]: 'maybe' });
    expect(bad.html).toContain('Nothing was answered: “maybe” is not an answer; choose accept, decline or later.');
    expect(answerState(mine.id, TEAM)).toBe('open');
    expect(answerState(theirs.id, ATTIC)).toBe('open');

    // Without a session the page sends to the sign-in.
    const anonymous = await get(`${base}/my/invitations`, { ip: newIp() });
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get('location')).toBe('/login');
    // An invitation no longer open is refused the same way.
    service.app.invites.revoke(OPERATOR, mine.id);
    const gone = snapshot(db());
    expect((await answer({ csrf: s.csrf, [field]: 'accept' })).status).toBe(400);
    expect(snapshot(db())).toBe(gone);
    service.app.invites.revoke(OPERATOR, theirs.id);
  });
});
