/**
 * The HTTP API against the real service and a real Prosody: every endpoint with a key that has the
 * scope, one without it (403), none (401), bad input (400 naming the field), the domain's refusals
 * (404, 409, 429), and the database unchanged by every refusal. The OpenAPI document is validated
 * by a maintained validator and matches the routes served.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { apiRoutes } from '../../src/web/api/routes';
import { AcceptedOut, CreatedOut, InviteOut, PageOut, ErrorOut, RequestOut, RequestPageOut } from '../../src/web/api/schemas';
import { inviteServiceFor, membershipFor } from '../../src/services';
import { openTestStore } from '../support/engine';
import { testConfig } from '../support/fixtures';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';

const KEYS = {
  admin: 'admin-key-0123456789abcdef0123456789abcdef',
  writer: 'writer-key-0123456789abcdef0123456789abcdef',
  reader: 'reader-key-0123456789abcdef0123456789abcdef',
  requests: 'requests-key-0123456789abcdef0123456789abcd',
};
type KeyName = keyof typeof KEYS;

let prosody: TestProsody;
let service: RunningService;
let base: string;

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  service = await startService(
    serviceConfig(prosody, {
      admins: ['admin@localhost'],
      api: {
        keys: [
          { name: 'ops', key: KEYS.admin, scopes: ['admin'] },
          { name: 'site', key: KEYS.writer, scopes: ['invites:write', 'invites:read'] },
          { name: 'dashboard', key: KEYS.reader, scopes: ['invites:read'] },
          { name: 'requests', key: KEYS.requests, scopes: ['requests:write'] },
        ],
      },
      limits: { per_user_per_day: 3, requests_per_hour: 5 },
      registration: { requests: 'approval', request_reason: 'optional' },
    }),
  );
  base = service.app.web.url;
});

afterAll(async () => {
  await service?.stop();
  await prosody?.stop();
});

interface Answer {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(method: string, path: string, opts: { key?: KeyName | string; body?: unknown; raw?: string; type?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.key) headers.Authorization = `Bearer ${opts.key in KEYS ? KEYS[opts.key as KeyName] : opts.key}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['Content-Type'] = opts.type ?? 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}


/** Every table of record, read through the service's own connection (SQLite or PostgreSQL alike). */
function snapshot(): string {
  const all = (sql: string) => JSON.stringify(service.app.db.prepare(sql).all());
  return [
    all('SELECT * FROM invites ORDER BY id'),
    all('SELECT * FROM events ORDER BY id'),
    all('SELECT * FROM claims ORDER BY id'),
    all('SELECT id, channel, kind, recipient, invite_ids, params FROM outbox ORDER BY id'),
    all('SELECT * FROM opt_outs ORDER BY address_hash'),
    all('SELECT * FROM membership_requests ORDER BY id'),
    all('SELECT * FROM membership_events ORDER BY id'),
  ].join('\n');
}

/** Waits until the outbox has delivered what is due (delivery changes invites and events on its own). */
async function quiet(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { n } = service.app.db.prepare(`SELECT count(*) AS n FROM outbox WHERE state IN ('queued', 'sending') AND not_before <= ?`).get(Date.now()) as { n: number };
    if (Number(n) === 0) return;
    service.app.worker.poke();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the outbox did not empty');
}

/** The call changes nothing in the database; returns its answer. */
async function refused(method: string, path: string, opts: Parameters<typeof call>[2], status: number): Promise<Answer> {
  await quiet();
  const before = snapshot();
  const answer = await call(method, path, opts);
  expect(answer.status).toBe(status);
  expect(ErrorOut.safeParse(answer.body).success).toBe(true);
  await quiet();
  expect(snapshot() === before).toBe(true);
  return answer;
}

let users = 0;
const newUser = () => `user${++users}@localhost`;
let mails = 0;
const newEmail = () => `friend${++mails}@example.net`;

async function created(body: Record<string, unknown>, key: KeyName = 'admin') {
  const answer = await call('POST', '/api/v1/invites', { key, body });
  expect(answer.status).toBe(201);
  return CreatedOut.parse(answer.body);
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document (checked by @seriousme/openapi-schema-validator)', async () => {
    const res = await fetch(`${base}/api/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = await res.text();
    const out = execFileSync(process.execPath, [join(__dirname, '..', 'support', 'openapi-validate.mjs')], { input: doc, encoding: 'utf8' });
    const result = JSON.parse(out) as { valid: boolean; errors: unknown; version: string };
    expect(result.errors).toBeNull();
    expect(result).toMatchObject({ valid: true, version: '3.1' });
  });

  it('documents exactly the routes served, each answering 401 without a key', async () => {
    const doc = (await (await fetch(`${base}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>>; servers: { url: string }[] };
    expect(doc.servers[0].url).toBe('https://invites.example.org/api/v1');
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const routes = apiRoutes({ config: service.config, invites: service.app.invites, membership: service.app.membership }).map((r) => `${r.method} ${r.path}`);
    expect(documented.sort()).toEqual(routes.sort());
    for (const op of documented) {
      const [method, path] = op.split(' ');
      const answer = await call(method, `/api/v1${path.replace('{id}', 'abcdefghjk')}`);
      expect([op, answer.status]).toEqual([op, 401]);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="xmpp-invites"');
    }
    expect((await call('GET', '/api/v1/nothing', { key: 'admin' })).status).toBe(404);
    expect((await call('DELETE', '/api/v1/invites', { key: 'admin' })).status).toBe(405);
  });
});

describe('keys', () => {
  it('refuses an unknown key, a malformed header and a key of another site with 401', async () => {
    await refused('GET', '/api/v1/invites', { key: 'x'.repeat(44) }, 401);
    await refused('GET', '/api/v1/invites', { key: `${KEYS.admin}x` }, 401);
    const res = await fetch(`${base}/api/v1/invites`, { headers: { Authorization: `Basic ${KEYS.admin}` } });
    expect(res.status).toBe(401);
  });

  it('never writes a key to the logs', () => {
    for (const key of Object.values(KEYS)) expect(service.logs.text()).not.toContain(key);
  });
});

describe('POST /invites', () => {
  it('creates an approved invite for a key with the admin scope, recording the key as the actor', async () => {
    const email = newEmail();
    const invite = await created({ kind: 'account', email, note: 'Welcome', uses: 1 });
    expect(invite).toMatchObject({ kind: 'account', state: 'open', invitee_email: email, inviter: null, uses: 0, max_uses: 1 });
    expect(invite.uri).toMatch(/^xmpp:localhost\?register;preauth=[A-Za-z0-9_-]{22,}$/);
    expect(invite.landing_url).toMatch(/^https:\/\/invites\.example\.org\/i\/[A-Za-z0-9_-]{22,}$/);
    // the same domain service as every door: the invitation e-mail is queued
    expect(service.app.invites.get(invite.id)).toMatchObject({ source: 'api', emailDelivery: 'queued' });
    expect(service.app.invites.events(invite.id)[0]).toMatchObject({ type: 'created', actor: 'api:ops' });
  });

  it('creates an invite on behalf of a user, as --inviter, with the admin scope', async () => {
    const inviter = newUser();
    const invite = await created({ kind: 'contact-account', inviter, jid: 'carol@elsewhere.example', expire: '2d' });
    expect(invite).toMatchObject({ state: 'open', inviter, invitee_jid: 'carol@elsewhere.example' });
    expect(Date.parse(invite.expires) - Date.parse(invite.created)).toBe(2 * 86_400_000);
  });

  it("speaks for the inviter without the admin scope: the user's approval rule applies", async () => {
    const inviter = newUser();
    const invite = await created({ kind: 'contact-account', inviter, email: newEmail() }, 'writer');
    // a non-admin's account-capable invite waits for an admin (invites.approval: non-admins)
    expect(invite).toMatchObject({ state: 'pending', inviter });
    expect(service.app.invites.events(invite.id)[0]).toMatchObject({ type: 'created', actor: inviter });
  });

  it("never lends an admin's rights to a key without the admin scope, even for an admin's JID", async () => {
    const invite = await created({ kind: 'contact-account', inviter: 'admin@localhost', email: newEmail() }, 'writer');
    expect(invite).toMatchObject({ state: 'pending', inviter: 'admin@localhost' });
  });

  it("applies the user's limits and answers 429 with Retry-After, changing nothing", async () => {
    const inviter = newUser();
    for (let i = 0; i < 3; i++) await created({ kind: 'contact', inviter, email: newEmail() }, 'writer');
    const answer = await refused('POST', '/api/v1/invites', { key: 'writer', body: { kind: 'contact', inviter, email: newEmail() } }, 429);
    expect(answer.body.error).toMatchObject({ code: 'limit-reached', detail: { limit: 'per_user_per_day' } });
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(80_000);
  });

  it('answers a duplicate with 409 naming the existing invite', async () => {
    const inviter = newUser();
    const email = newEmail();
    const first = await created({ kind: 'contact', inviter, email }, 'writer');
    const answer = await refused('POST', '/api/v1/invites', { key: 'writer', body: { kind: 'contact', inviter, email: email.toUpperCase() } }, 409);
    expect(answer.body.error).toMatchObject({ code: 'duplicate', detail: { id: first.id } });
  });

  it('answers 403 to a key without invites:write, 401 without a key', async () => {
    const body = { kind: 'account' };
    await refused('POST', '/api/v1/invites', { key: 'reader', body }, 403);
    await refused('POST', '/api/v1/invites', { key: 'requests', body }, 403);
    await refused('POST', '/api/v1/invites', { body }, 401);
  });

  it.each([
    [{}, 'kind'],
    [{ kind: 'friend' }, 'kind'],
    [{ kind: 'account', uses: 0 }, 'uses'],
    [{ kind: 'account', uses: '2' }, 'uses'],
    [{ kind: 'account', expire: 'soon' }, 'expire'],
    [{ kind: 'account', email: 'not an address' }, 'email'],
    [{ kind: 'account', jid: 'a@b@c' }, 'jid'],
    [{ kind: 'account', username: 'Not Valid!' }, 'username'],
    [{ kind: 'account-locked' }, 'username'],
    [{ kind: 'account-locked', username: 'bob', uses: 2 }, 'uses'],
    [{ kind: 'contact' }, 'inviter'],
    [{ kind: 'contact', inviter: 'no-at-sign' }, 'inviter'],
    [{ kind: 'account', colour: 'blue' }, 'colour'],
    [{ kind: 'account', note: 'x'.repeat(1001) }, 'note'],
  ])('refuses %j with 400 naming %s, changing nothing', async (body, field) => {
    const answer = await refused('POST', '/api/v1/invites', { key: 'admin', body }, 400);
    expect(answer.body.error).toMatchObject({ code: 'invalid-input', field });
  });

  it('refuses, without the admin scope, an invite with no inviter or an inviter of another domain (400 naming inviter)', async () => {
    for (const body of [{ kind: 'account' }, { kind: 'contact', inviter: 'mallory@elsewhere.example' }]) {
      const answer = await refused('POST', '/api/v1/invites', { key: 'writer', body }, 400);
      expect(answer.body.error.field).toBe('inviter');
    }
  });

  it('refuses a body that is not JSON (400), not JSON at all (415), not an object (400) or too large (413)', async () => {
    expect((await refused('POST', '/api/v1/invites', { key: 'admin', raw: '{"kind":' }, 400)).body.error.code).toBe('bad-request');
    await refused('POST', '/api/v1/invites', { key: 'admin', raw: 'kind=account', type: 'application/x-www-form-urlencoded' }, 415);
    expect((await refused('POST', '/api/v1/invites', { key: 'admin', body: ['account'] }, 400)).body.error.code).toBe('bad-request');
    await refused('POST', '/api/v1/invites', { key: 'admin', body: { kind: 'account', note: 'x'.repeat(20_000) } }, 413);
  });

  it('refuses a username reserved by another invite with 409', async () => {
    await created({ kind: 'account-locked', username: 'reserved1' });
    const answer = await refused('POST', '/api/v1/invites', { key: 'admin', body: { kind: 'account', username: 'reserved1' } }, 409);
    expect(answer.body.error.code).toBe('conflict');
  });
});

describe('GET /invites and /invites/{id}', () => {
  it('pages through the invites with a cursor, each once, oldest first', async () => {
    const inviter = newUser();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await created({ kind: 'contact', inviter, email: newEmail() })).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q = new URLSearchParams({ inviter, limit: '2', ...(cursor ? { cursor } : {}) });
      const answer = await call('GET', `/api/v1/invites?${q}`, { key: 'reader' });
      expect(answer.status).toBe(200);
      const page = PageOut.parse(answer.body);
      seen.push(...page.invites.map((i) => i.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
  });

  it('filters by state and invitee', async () => {
    const email = newEmail();
    const invite = await created({ kind: 'account', email });
    const answer = await call('GET', `/api/v1/invites?state=open&invitee=${encodeURIComponent(email.toUpperCase())}`, { key: 'reader' });
    expect(PageOut.parse(answer.body).invites.map((i) => i.id)).toEqual([invite.id]);
  });

  it('shows one invite, never with its token', async () => {
    const invite = await created({ kind: 'account', email: newEmail() });
    const answer = await call('GET', `/api/v1/invites/${invite.id}`, { key: 'reader' });
    expect(answer.status).toBe(200);
    const { uri: _u, landing_url: _l, ...rest } = invite;
    expect(InviteOut.parse(answer.body)).toEqual(rest);
    expect(JSON.stringify(answer.body)).not.toContain(invite.landing_url.split('/i/')[1]);
  });

  it('answers 404 for an unknown or impossible id, 400 for a bad query, 403 and 401 without the scope or a key', async () => {
    expect((await call('GET', '/api/v1/invites/abcdefghjk', { key: 'reader' })).status).toBe(404);
    expect((await call('GET', '/api/v1/invites/..%2F', { key: 'reader' })).status).toBe(404);
    for (const [q, field] of [['state=lost', 'state'], ['limit=0', 'limit'], ['limit=201', 'limit'], ['cursor=nonsense', 'cursor'], ['colour=blue', 'colour']]) {
      const answer = await call('GET', `/api/v1/invites?${q}`, { key: 'reader' });
      expect([q, answer.status, answer.body.error.field]).toEqual([q, 400, field]);
    }
    expect((await call('GET', '/api/v1/invites', { key: 'requests' })).status).toBe(403);
    expect((await call('GET', '/api/v1/invites/abcdefghjk', { key: 'requests' })).status).toBe(403);
    expect((await call('GET', '/api/v1/invites')).status).toBe(401);
  });
});

describe('revoke, approve, reject', () => {
  async function pendingInvite() {
    return created({ kind: 'contact-account', inviter: newUser(), email: newEmail() }, 'writer');
  }

  it('approves a pending invite (admin scope), which then goes out; again changes nothing', async () => {
    const invite = await pendingInvite();
    const answer = await call('POST', `/api/v1/invites/${invite.id}/approve`, { key: 'admin' });
    expect(answer.status).toBe(200);
    expect(InviteOut.parse(answer.body)).toMatchObject({ id: invite.id, state: 'open' });
    expect(service.app.invites.events(invite.id).map((e) => [e.type, e.actor])).toContainEqual(['approved', 'api:ops']);
    expect(service.app.invites.get(invite.id)!.emailDelivery).not.toBe('none');
    await quiet();
    const before = snapshot();
    expect((await call('POST', `/api/v1/invites/${invite.id}/approve`, { key: 'admin' })).status).toBe(200);
    await quiet();
    expect(snapshot() === before).toBe(true);
  });

  it('rejects a pending invite with a reason the inviter is told', async () => {
    const invite = await pendingInvite();
    const answer = await call('POST', `/api/v1/invites/${invite.id}/reject`, { key: 'admin', body: { reason: 'not now' } });
    expect(answer.status).toBe(200);
    expect(answer.body.state).toBe('rejected');
    expect(service.app.invites.events(invite.id).at(-1)).toMatchObject({ type: 'rejected', actor: 'api:ops', reason: 'not now' });
  });

  it('refuses approve and reject without the admin scope (403) or a key (401), changing nothing', async () => {
    const invite = await pendingInvite();
    for (const action of ['approve', 'reject']) {
      await refused('POST', `/api/v1/invites/${invite.id}/${action}`, { key: 'writer' }, 403);
      await refused('POST', `/api/v1/invites/${invite.id}/${action}`, { key: 'reader' }, 403);
      await refused('POST', `/api/v1/invites/${invite.id}/${action}`, {}, 401);
    }
  });

  it("revokes with invites:write, for the invite's inviter; a revoked invite cannot be approved (409)", async () => {
    const invite = await pendingInvite();
    await refused('POST', `/api/v1/invites/${invite.id}/revoke`, { key: 'reader' }, 403);
    await refused('POST', `/api/v1/invites/${invite.id}/revoke`, {}, 401);
    const answer = await call('POST', `/api/v1/invites/${invite.id}/revoke`, { key: 'writer', body: { reason: 'sent by mistake' } });
    expect(answer.status).toBe(200);
    expect(answer.body.state).toBe('revoked');
    expect(service.app.invites.events(invite.id).at(-1)).toMatchObject({ type: 'revoked', actor: invite.inviter, reason: 'sent by mistake' });
    const refusal = await refused('POST', `/api/v1/invites/${invite.id}/approve`, { key: 'admin' }, 409);
    expect(refusal.body.error.code).toBe('wrong-state');
  });

  it("refuses, without the admin scope, to revoke an invite that is no local user's (403); with it, the same invite is revoked", async () => {
    const invite = await created({ kind: 'account' }, 'admin');
    const refusal = await refused('POST', `/api/v1/invites/${invite.id}/revoke`, { key: 'writer' }, 403);
    expect(refusal.body.error.message).toBe('A key without the admin scope revokes only invites of local users');
    const answer = await call('POST', `/api/v1/invites/${invite.id}/revoke`, { key: 'admin' });
    expect([answer.status, answer.body.state]).toEqual([200, 'revoked']);
    expect(service.app.invites.events(invite.id).at(-1)).toMatchObject({ type: 'revoked', actor: 'api:ops' });
  });

  it('answers 404 for an unknown invite and 400 for a bad reason, changing nothing', async () => {
    for (const action of ['revoke', 'approve', 'reject']) await refused('POST', `/api/v1/invites/abcdefghjk/${action}`, { key: 'admin' }, 404);
    const invite = await pendingInvite();
    const answer = await refused('POST', `/api/v1/invites/${invite.id}/reject`, { key: 'admin', body: { reason: 42 } }, 400);
    expect(answer.body.error.field).toBe('reason');
  });
});

describe('POST /invites/{id}/extend', () => {
  const DAY = 86_400_000;

  it('extends lifetime and uses with the admin scope, as `invite extend` (the operator: no cap); again changes nothing', async () => {
    const invite = await created({ kind: 'account', uses: 1, expire: '1d' });
    const answer = await call('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'admin', body: { expire: '60d', uses: 5 } });
    expect(answer.status).toBe(200);
    const now = InviteOut.parse(answer.body);
    expect(now).toMatchObject({ id: invite.id, state: 'open', max_uses: 5 });
    // 60 days from now: past invites.expiry (7d), which binds users only
    expect(Math.abs(Date.parse(now.expires) - Date.now() - 60 * DAY)).toBeLessThan(60_000);
    expect(service.app.invites.events(invite.id).at(-1)).toMatchObject({ type: 'extended', actor: 'api:ops', data: { maxUses: 5, wasMaxUses: 1 } });
    await quiet();
    const before = snapshot();
    const again = await call('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'admin', body: { uses: 5 } });
    expect([again.status, again.body.max_uses]).toEqual([200, 5]);
    await quiet();
    expect(snapshot() === before).toBe(true);
  });

  it("speaks for the inviter without the admin scope: the user's limits apply (invites.expiry, invites.max_uses)", async () => {
    const inviter = newUser();
    const invite = await created({ kind: 'contact', inviter, email: newEmail(), expire: '1d' }, 'writer');
    expect(invite.state).toBe('open');
    const answer = await call('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'writer', body: { expire: '5d' } });
    expect(answer.status).toBe(200);
    expect(Math.abs(Date.parse(answer.body.expires) - Date.now() - 5 * DAY)).toBeLessThan(60_000);
    expect(service.app.invites.events(invite.id).at(-1)).toMatchObject({ type: 'extended', actor: inviter });
    const tooLong = await refused('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'writer', body: { expire: '30d' } }, 400);
    expect(tooLong.body.error).toMatchObject({ code: 'invalid-input', field: 'expire' });
    expect(tooLong.body.error.message).toMatch(/at most 7 days/);
    const tooMany = await refused('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'writer', body: { uses: 2 } }, 403);
    expect(tooMany.body.error.message).toMatch(/at most 1 use/);
  });

  it("refuses, without the admin scope, an invite that is no local user's (403); with it, the same invite extends", async () => {
    const invite = await created({ kind: 'account', email: newEmail() });
    await refused('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'writer', body: { uses: 2 } }, 403);
    expect((await call('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'admin', body: { uses: 2 } })).body.max_uses).toBe(2);
  });

  it('answers 403 to a key without invites:write, 401 without a key, 404 for an unknown invite, changing nothing', async () => {
    const invite = await created({ kind: 'account', email: newEmail() });
    await refused('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'reader', body: { uses: 3 } }, 403);
    await refused('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'requests', body: { uses: 3 } }, 403);
    await refused('POST', `/api/v1/invites/${invite.id}/extend`, { body: { uses: 3 } }, 401);
    await refused('POST', '/api/v1/invites/abcdefghjk/extend', { key: 'admin', body: { uses: 3 } }, 404);
    await refused('POST', '/api/v1/invites/..%2F/extend', { key: 'admin', body: { uses: 3 } }, 404);
  });

  it.each([
    [{}, 'expire'],
    [{ expire: 'soon' }, 'expire'],
    [{ expire: 7 }, 'expire'],
    [{ uses: 0 }, 'uses'],
    [{ uses: 1.5 }, 'uses'],
    [{ uses: '3' }, 'uses'],
    [{ uses: 3, colour: 'blue' }, 'colour'],
    // only grows: lowering is revoking
    [{ expire: '1h' }, 'expire'],
  ])('refuses %j with 400 naming %s, changing nothing', async (body, field) => {
    const invite = await created({ kind: 'account', uses: 2, expire: '3d' });
    const answer = await refused('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'admin', body }, 400);
    expect(answer.body.error).toMatchObject({ code: 'invalid-input', field });
  });

  it('refuses fewer uses (400 naming uses), one more use of a username-locked invite, and a revoked invite (409)', async () => {
    const invite = await created({ kind: 'account', uses: 3 });
    expect((await refused('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'admin', body: { uses: 2 } }, 400)).body.error.field).toBe('uses');
    const locked = await created({ kind: 'account-locked', username: 'extendlocked' });
    expect((await refused('POST', `/api/v1/invites/${locked.id}/extend`, { key: 'admin', body: { uses: 2 } }, 400)).body.error.field).toBe('uses');
    expect((await call('POST', `/api/v1/invites/${invite.id}/revoke`, { key: 'admin' })).status).toBe(200);
    const answer = await refused('POST', `/api/v1/invites/${invite.id}/extend`, { key: 'admin', body: { uses: 4 } }, 409);
    expect(answer.body.error.code).toBe('wrong-state');
  });
});

describe('membership requests', () => {
  let asked = 0;
  const newAsker = () => `asker${++asked}@example.org`;
  const membership = () => service.app.membership;
  const requestOf = (email: string) => membership().list({ limit: 100_000 }).find((r) => r.email === email);

  /** A request made through the API, verified as its e-mailed link would: pending. */
  async function pendingRequest(reason = 'I know Alice') {
    const email = newAsker();
    expect((await call('POST', '/api/v1/requests', { key: 'requests', body: { email, reason } })).status).toBe(202);
    const r = requestOf(email)!;
    membership().verify(membership().verifyUrl(r).split('/request/v/')[1]);
    expect(membership().get(r.id)!.state).toBe('pending');
    return r;
  }

  describe('POST /requests (requests:write)', () => {
    it("records a request from the site's form as the /request page does: unverified, its verification e-mail queued", async () => {
      const email = newAsker();
      const answer = await call('POST', '/api/v1/requests', { key: 'requests', body: { email, reason: 'A friend of Bob', ip: '192.0.2.20' } });
      expect(answer.status).toBe(202);
      expect(AcceptedOut.parse(answer.body)).toEqual({ accepted: true });
      const r = requestOf(email)!;
      expect(r).toMatchObject({ state: 'unverified', reason: 'A friend of Bob', ip: '192.0.2.20' });
      expect(membership().events(r.id)[0]).toMatchObject({ type: 'requested', data: { ip: '192.0.2.20' } });
      const mail = service.app.db.prepare(`SELECT count(*) AS n FROM outbox WHERE kind = 'request-verify' AND recipient = ?`).get(email) as { n: number };
      expect(Number(mail.n)).toBe(1);
      // asking again: the same answer, nothing new made
      expect((await call('POST', '/api/v1/requests', { key: 'requests', body: { email } })).body).toEqual({ accepted: true });
      expect(membership().list({ limit: 100_000 }).filter((x) => x.email === email)).toHaveLength(1);
    });

    it('is refused with 403 when registration.requests is off, recording nothing', () => {
      // the store of the engine under test; the configuration names none of its own
      const config = testConfig({ database: ':memory:', api: { keys: [{ name: 'site', key: KEYS.requests, scopes: ['requests:write'] }] } });
      const db = openTestStore();
      try {
        const invites = inviteServiceFor(config, db);
        const route = apiRoutes({ config, invites, membership: membershipFor(config, db, invites) }).find((r) => r.operationId === 'createRequest')!;
        const call = () => route.handle({ key: { name: 'site', scopes: new Set(['requests:write']) }, params: {}, query: undefined, body: { email: 'x@example.org' } });
        expect(call).toThrow(expect.objectContaining({ code: 'forbidden' }));
        expect(Number((db.prepare('SELECT count(*) AS n FROM membership_requests').get() as { n: number }).n)).toBe(0);
      } finally {
        db.close();
      }
    });

    it('answers 403 to keys without requests:write and 401 without a key, changing nothing', async () => {
      const body = { email: newAsker() };
      await refused('POST', '/api/v1/requests', { key: 'reader', body }, 403);
      await refused('POST', '/api/v1/requests', { key: 'writer', body }, 403);
      await refused('POST', '/api/v1/requests', { body }, 401);
    });

    it.each([
      [{}, 'email'],
      [{ email: 'not an address' }, 'email'],
      [{ email: 'a@example.org, b@example.org' }, 'email'],
      [{ email: 42 }, 'email'],
      [{ email: 'x@example.org', reason: 'y'.repeat(1001) }, 'reason'],
      [{ email: 'x@example.org', ip: 'somewhere' }, 'ip'],
      [{ email: 'x@example.org', colour: 'blue' }, 'colour'],
    ])('refuses %j with 400 naming %s, changing nothing', async (body, field) => {
      const answer = await refused('POST', '/api/v1/requests', { key: 'requests', body }, 400);
      expect(answer.body.error).toMatchObject({ code: 'invalid-input', field });
    });

    it('applies limits.requests_per_hour to the address the site names: 429 with Retry-After, changing nothing', async () => {
      const ip = '198.51.100.9';
      for (let i = 0; i < 5; i++) expect((await call('POST', '/api/v1/requests', { key: 'requests', body: { email: newAsker(), ip } })).status).toBe(202);
      const answer = await refused('POST', '/api/v1/requests', { key: 'requests', body: { email: newAsker(), ip } }, 429);
      expect(answer.body.error).toMatchObject({ code: 'limit-reached', detail: { limit: 'requests_per_hour' } });
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(3_000);
      // another person at the same site is not held back
      expect((await call('POST', '/api/v1/requests', { key: 'requests', body: { email: newAsker(), ip: '198.51.100.10' } })).status).toBe(202);
    });
  });

  describe('GET /requests and /requests/{id} (admin)', () => {
    it('pages through the requests by state with a cursor, each once, oldest first', async () => {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await pendingRequest()).id);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const q = new URLSearchParams({ state: 'pending', limit: '2', ...(cursor ? { cursor } : {}) });
        const answer = await call('GET', `/api/v1/requests?${q}`, { key: 'admin' });
        expect(answer.status).toBe(200);
        const page = RequestPageOut.parse(answer.body);
        for (const r of page.requests) expect(r.state).toBe('pending');
        seen.push(...page.requests.map((r) => r.id));
        cursor = page.next_cursor;
      } while (cursor);
      expect(seen.slice(-3)).toEqual(ids);
      expect(new Set(seen).size).toBe(seen.length);
    });

    it('shows one request, never with its verification code', async () => {
      const r = await pendingRequest('Because');
      const answer = await call('GET', `/api/v1/requests/${r.id}`, { key: 'admin' });
      expect(answer.status).toBe(200);
      expect(RequestOut.parse(answer.body)).toMatchObject({ id: r.id, email: r.email, state: 'pending', reason: 'Because', invite: null });
      expect(JSON.stringify(answer.body)).not.toContain(membership().verifyUrl(r).split('/request/v/')[1]);
    });

    it('answers 403 without the admin scope, 401 without a key, 404 for an unknown id, 400 for a bad query', async () => {
      const r = await pendingRequest();
      for (const key of ['requests', 'writer', 'reader'] as const) {
        expect((await call('GET', '/api/v1/requests', { key })).status).toBe(403);
        expect((await call('GET', `/api/v1/requests/${r.id}`, { key })).status).toBe(403);
      }
      expect((await call('GET', '/api/v1/requests')).status).toBe(401);
      expect((await call('GET', '/api/v1/requests/abcdefghjk', { key: 'admin' })).status).toBe(404);
      expect((await call('GET', '/api/v1/requests/x', { key: 'admin' })).status).toBe(404);
      for (const [q, field] of [['state=lost', 'state'], ['limit=0', 'limit'], ['cursor=nonsense', 'cursor'], ['colour=blue', 'colour']]) {
        const answer = await call('GET', `/api/v1/requests?${q}`, { key: 'admin' });
        expect([q, answer.status, answer.body.error.field]).toEqual([q, 400, field]);
      }
    });
  });

  describe('POST /requests/{id}/approve|reject (admin)', () => {
    it('approves a verified request: its account invite is made for the address; again changes nothing', async () => {
      const r = await pendingRequest();
      const answer = await call('POST', `/api/v1/requests/${r.id}/approve`, { key: 'admin' });
      expect(answer.status).toBe(200);
      const shown = RequestOut.parse(answer.body);
      expect(shown).toMatchObject({ id: r.id, state: 'approved', decided_by: 'api:ops' });
      expect(service.app.invites.get(shown.invite!)).toMatchObject({ kind: 'account', source: 'request', inviteeEmail: r.email, maxUses: 1, state: 'open' });
      expect(membership().events(r.id).at(-1)).toMatchObject({ type: 'approved', actor: 'api:ops' });
      await quiet();
      const before = snapshot();
      const again = await call('POST', `/api/v1/requests/${r.id}/approve`, { key: 'admin' });
      expect([again.status, again.body.invite]).toEqual([200, shown.invite]);
      await quiet();
      expect(snapshot() === before).toBe(true);
    });

    it('rejects a verified request with a reason e-mailed to the address; then it cannot be approved (409)', async () => {
      const r = await pendingRequest();
      const answer = await call('POST', `/api/v1/requests/${r.id}/reject`, { key: 'admin', body: { reason: 'members only' } });
      expect(answer.status).toBe(200);
      expect(RequestOut.parse(answer.body)).toMatchObject({ state: 'rejected', decided_by: 'api:ops', decision_reason: 'members only' });
      const mail = service.app.db.prepare(`SELECT params FROM outbox WHERE kind = 'request-rejected' AND recipient = ?`).get(r.email) as { params: string };
      expect(JSON.parse(mail.params)).toMatchObject({ request: r.id, reason: 'members only' });
      expect((await refused('POST', `/api/v1/requests/${r.id}/approve`, { key: 'admin' }, 409)).body.error.code).toBe('wrong-state');
    });

    it('refuses an unverified request (409), an unknown one (404) and a bad reason (400), changing nothing', async () => {
      const email = newAsker();
      await call('POST', '/api/v1/requests', { key: 'requests', body: { email } });
      const r = requestOf(email)!;
      for (const action of ['approve', 'reject']) {
        await refused('POST', `/api/v1/requests/${r.id}/${action}`, { key: 'admin' }, 409);
        await refused('POST', `/api/v1/requests/abcdefghjk/${action}`, { key: 'admin' }, 404);
      }
      const pending = await pendingRequest();
      expect((await refused('POST', `/api/v1/requests/${pending.id}/reject`, { key: 'admin', body: { reason: 7 } }, 400)).body.error.field).toBe('reason');
    });

    it('refuses approve and reject without the admin scope (403) or a key (401), changing nothing', async () => {
      const r = await pendingRequest();
      for (const action of ['approve', 'reject']) {
        for (const key of ['requests', 'writer', 'reader'] as const) await refused('POST', `/api/v1/requests/${r.id}/${action}`, { key }, 403);
        await refused('POST', `/api/v1/requests/${r.id}/${action}`, {}, 401);
      }
    });
  });
});
