/**
 * The landing page over plain HTTP against the real service and a real Prosody: the contract's
 * routes and status codes for every bad input, security headers, escaping, and that GETs and
 * refusals leave the database exactly as it was.
 */
import { openStoreOf } from '../support/engine';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { canLogIn as canLogInAt, TestClient } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { get, notices, post, snapshot } from '../support/web';

let prosody: TestProsody;
let service: RunningService;
let base: string;
let nextIp = 1;
/** A fresh client address per test (X-Forwarded-For from the trusted loopback proxy): own rate limit. */
const newIp = () => `192.0.2.${nextIp++}`;

const ALICE: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
const BOB: Actor = { kind: 'user', jid: 'bob@localhost', isAdmin: false };

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  await prosody.register('alice', 'alice-password');
  await prosody.register('bob', 'bob-password');
  service = await startService(
    serviceConfig(prosody, { site_name: 'Example Chat', web: { public_url: 'https://chat.example.org', trusted_proxies: ['127.0.0.1'] } }),
    { provisionTimeoutMs: 5_000 },
  );
  base = service.app.web.url;
});

afterAll(async () => {
  await service?.stop();
  await prosody?.stop();
});

const invites = () => service.app.invites;
const url = (token: string, action?: string) => `${base}/i/${token}${action ? `/${action}` : ''}`;
let emails = 0;
const newEmail = () => `invitee${++emails}@example.net`;

/** An open account invite by the operator (optionally for an e-mail address). */
function accountInvite(opts: { email?: string; note?: string; name?: string; maxUses?: number; expiresIn?: number } = {}) {
  return invites().create(OPERATOR, { kind: 'account', source: 'cli', ...opts });
}

/** An approved contact-account invite by a user, to an e-mail address. */
function userInvite(actor: Actor, email: string, note?: string) {
  const { invite } = invites().create(actor, { kind: 'contact-account', source: 'send', email, note });
  const approved = invites().approve(OPERATOR, invite.id).invite;
  return { invite: approved, links: invites().links(approved) };
}

/** Waits until the outbox has delivered what it had (delivery changes invites and events on its own). */
async function quiet(): Promise<void> {
  await service.app.jobs.run('expiry');
  const db = openStoreOf(service.config.database);
  try {
    for (let i = 0; i < 200; i++) {
      // due rows only: folded `pending` notices to admins wait up to 30 s by design
      const { n } = db.prepare(`SELECT count(*) AS n FROM outbox WHERE state IN ('queued', 'sending') AND not_before <= ?`).get(Date.now()) as { n: number };
      if (n === 0) return;
      service.app.worker.poke();
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the outbox did not empty');
  } finally {
    db.close();
  }
}

async function unchangedBy(action: () => Promise<void>): Promise<void> {
  await quiet();
  const before = snapshot(service.config.database);
  await action();
  await quiet();
  expect(snapshot(service.config.database)).toBe(before);
}

const canLogIn = (username: string, password: string) => canLogInAt(prosody.ports.c2s, username, password);

describe('pages', () => {
  it('shows who invites, to which site, until when, the message, the account form and the QR code', async () => {
    const { links } = userInvite(ALICE, newEmail(), 'Come and chat with us');
    const page = await get(url(links.token), { ip: newIp() });
    expect(page.status).toBe(200);
    expect(page.html).toContain('alice@localhost invites you to Example Chat');
    expect(page.html).toContain('Come and chat with us');
    expect(page.html).toMatch(/valid until <time datetime="\d{4}-\d\d-\d\dT/);
    expect(page.html).toContain(`action="/i/${links.token}/register"`);
    expect(page.html).toContain('name="username"');
    expect(page.html).toMatch(/<svg class="qr" role="img"/);
    expect(page.html).toContain(`href="${links.uri}"`);
    expect(page.html).toContain('https://conversations.im/');
    // a personal invite (known invitee, one use) may be declined
    expect(page.html).toContain(`action="/i/${links.token}/decline"`);
    expect(page.html).toContain(`formaction="/i/${links.token}/opt-out"`);
    expect(page.cookie).toMatch(/^xi_csrf=[A-Za-z0-9_-]{24}$/);
    expect(page.csrf).toBeDefined();
  });

  it('sets the security headers on every response', async () => {
    const { links } = accountInvite();
    for (const path of [`/i/${links.token}`, '/i/nothing-here', '/healthz', '/nowhere']) {
      const res = await fetch(`${base}${path}`);
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('script-src');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('sets the CSRF cookie HttpOnly, SameSite=Strict and Secure (the public URL is https)', async () => {
    const { links } = accountInvite();
    const res = await fetch(url(links.token));
    expect(res.headers.get('set-cookie')).toMatch(/^xi_csrf=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
  });

  it('escapes a hostile invitee name and message', async () => {
    const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted" 'single'`;
    const { links } = accountInvite({ email: newEmail(), name: hostile, note: hostile });
    const page = await get(url(links.token), { ip: newIp() });
    expect(page.status).toBe(200);
    expect(page.html).not.toContain('<script>');
    expect(page.html).not.toContain('<img src=x');
    expect(page.html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot; &#39;single&#39;');
  });

  it('says that a pending invite waits for approval, without an account form', async () => {
    const { links } = invites().create(BOB, { kind: 'contact-account', source: 'send', email: newEmail() });
    const page = await get(url(links.token), { ip: newIp() });
    expect(page.status).toBe(200);
    expect(page.html).toContain('waits for an admin’s approval');
    expect(page.html).not.toContain('name="username"');
  });

  it('answers 404 for unknown and malformed tokens, with a friendly page', async () => {
    const { links } = accountInvite();
    const forged = links.token.slice(0, 10) + 'A'.repeat(24);
    for (const token of ['nothing-here', forged, 'abcdefghij' + 'x'.repeat(24)]) {
      const page = await get(url(token));
      expect(page.status).toBe(404);
      expect(page.html).toContain('This invitation link is not valid');
    }
    expect((await get(url('%E0%A4%A'))).status).toBe(404);
  });

  it('answers 410 for expired, used, revoked, rejected and declined invites, with a friendly page', async () => {
    const expired = accountInvite({ expiresIn: 1 });
    const revoked = accountInvite();
    invites().revoke(OPERATOR, revoked.invite.id);
    const rejected = invites().create(BOB, { kind: 'contact-account', source: 'send', email: newEmail() });
    invites().reject(OPERATOR, rejected.invite.id, 'no');
    const declined = accountInvite({ email: newEmail() });
    invites().decline(declined.links.token, null);
    const used = accountInvite();
    const ip = newIp();
    const s = await get(url(used.links.token), { ip });
    expect((await post(url(used.links.token, 'register'), { csrf: s.csrf!, username: 'used1', password: 'password-1' }, { ip, cookie: s.cookie })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 5));
    const cases: [string, string][] = [
      [expired.links.token, 'It has expired.'],
      [used.links.token, 'It has already been used.'],
      [revoked.links.token, 'It was withdrawn.'],
      [rejected.links.token, 'An admin did not approve it.'],
      [declined.links.token, 'It was declined.'],
    ];
    for (const [token, why] of cases) {
      const page = await get(url(token));
      expect(page.status).toBe(410);
      expect(page.html).toContain('This invitation can no longer be used');
      expect(page.html).toContain(why);
    }
  });

  it('answers /healthz with the state of the service', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({
      status: 'ok',
      xmpp: 'online',
      database: 'writable',
      held_claims: 0,
      oldest_held_claim_age_s: null,
      outbox: { xmpp: expect.objectContaining({ depth: expect.any(Number) }), email: expect.objectContaining({ depth: expect.any(Number) }), webhook: { depth: 0, oldest_age_s: null } },
    });
  });

  it('answers 405 with Allow for another method on a route, and 404 elsewhere', async () => {
    const { links } = accountInvite();
    const res = await fetch(url(links.token), { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET');
    expect((await fetch(`${base}/i/${links.token}/register`)).status).toBe(405);
    expect((await fetch(`${base}/nothing-here`)).status).toBe(404);
  });

  it('never changes the database on GET', async () => {
    const open = userInvite(ALICE, newEmail(), 'hello');
    const pending = invites().create(BOB, { kind: 'contact-account', source: 'send', email: newEmail() });
    const expired = accountInvite({ expiresIn: 1 });
    await new Promise((r) => setTimeout(r, 5));
    await unchangedBy(async () => {
      for (const token of [open.links.token, pending.links.token, expired.links.token, 'unknown']) {
        await get(url(token));
        for (const action of ['register', 'decline', 'opt-out']) await get(url(token, action));
        await fetch(url(token), { method: 'HEAD' });
      }
      await get(`${base}/healthz`);
    });
  });
});

describe('creating an account', () => {
  it('creates the account with the one redemption rule; the success page is no-store and names the JID', async () => {
    const { invite, links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    const done = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'Webuser', password: 'web-password' }, { ip, cookie: s.cookie });
    expect(done.status).toBe(200);
    expect(done.headers.get('cache-control')).toBe('no-store');
    expect(done.html).toContain('webuser@localhost');
    expect(done.html).toContain('Your account is ready');
    expect(await canLogIn('webuser', 'web-password')).toBe(true);
    expect(invites().get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
    const db = openStoreOf(service.config.database);
    try {
      expect(db.prepare('SELECT door, ip, state FROM claims WHERE invite_id = ?').all(invite.id)).toEqual([{ door: 'web', ip, state: 'spent' }]);
    } finally {
      db.close();
    }
  });

  it('answers 410 to a second use of a used token, and changes nothing', async () => {
    const { links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    expect((await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'reuse1', password: 'password-1' }, { ip, cookie: s.cookie })).status).toBe(200);
    await unchangedBy(async () => {
      const again = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'reuse2', password: 'password-2' }, { ip, cookie: s.cookie });
      expect(again.status).toBe(410);
      expect(again.html).toContain('It has already been used.');
    });
    expect(await prosody.userExists('reuse2@localhost')).toBe(false);
  });

  it('shows the form again with 400 for a hostile username, escaped, keeping the username and never the password', async () => {
    const { links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    const hostile = '"><script>alert(1)</script>';
    await unchangedBy(async () => {
      const page = await post(url(links.token, 'register'), { csrf: s.csrf!, username: hostile, password: 'secret-password-77' }, { ip, cookie: s.cookie });
      expect(page.status).toBe(400);
      expect(page.html).toContain('A username is 1 to 64 characters');
      expect(page.html).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
      expect(page.html).not.toContain('<script>');
      expect(page.html).not.toContain('secret-password-77');
      expect(page.html).toContain('name="password"');
    });
  });

  it('answers 400 with the form for a short password and for a taken username, and burns no use', async () => {
    const { invite, links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    await unchangedBy(async () => {
      const short = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'shorty', password: 'short' }, { ip, cookie: s.cookie });
      expect(short.status).toBe(400);
      expect(short.html).toContain('at least 8 characters');
      expect(short.html).toContain('value="shorty"');
    });
    const taken = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'alice', password: 'password-123' }, { ip, cookie: s.cookie });
    expect(taken.status).toBe(400);
    expect(taken.html).toContain('The username alice is taken');
    expect(invites().get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
  });

  it('answers 409 to a registration with a pending invite, and changes nothing', async () => {
    const { links } = invites().create(BOB, { kind: 'contact-account', source: 'send', email: newEmail() });
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    await unchangedBy(async () => {
      const page = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'toosoon', password: 'password-123' }, { ip, cookie: s.cookie });
      expect(page.status).toBe(409);
      expect(page.html).toContain('waits for an admin’s approval');
    });
  });
});

describe('refusals', () => {
  it('answers 403 to a POST without the CSRF cookie, and changes nothing', async () => {
    const { links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    await unchangedBy(async () => {
      const page = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'nocookie', password: 'password-123' }, { ip });
      expect(page.status).toBe(403);
    });
  });

  it('answers 403 to a missing or wrong CSRF token, and to a token from another cookie', async () => {
    const { links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    const other = await get(url(links.token), { ip });
    await unchangedBy(async () => {
      for (const csrf of [undefined, 'wrong', other.csrf!]) {
        const fields: Record<string, string> = { username: 'badcsrf', password: 'password-123', ...(csrf ? { csrf } : {}) };
        expect((await post(url(links.token, 'register'), fields, { ip, cookie: s.cookie })).status).toBe(403);
      }
      expect((await post(url(links.token, 'decline'), { csrf: 'x' }, { ip, cookie: s.cookie })).status).toBe(403);
      expect((await post(url(links.token, 'opt-out'), {}, { ip, cookie: s.cookie })).status).toBe(403);
    });
  });

  it('answers 413 to an oversized body, and changes nothing', async () => {
    const { links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    await unchangedBy(async () => {
      const page = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'big', password: 'x'.repeat(100_000) }, { ip, cookie: s.cookie });
      expect(page.status).toBe(413);
    });
  });

  it('answers 400 to a body that is not a urlencoded form', async () => {
    const { links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    const res = await fetch(url(links.token, 'register'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Cookie: s.cookie!, 'X-Forwarded-For': ip },
      body: JSON.stringify({ csrf: s.csrf, username: 'json', password: 'password-123' }),
    });
    expect(res.status).toBe(400);
  });

  it('limits POSTs per client address with 429 and Retry-After, other addresses unaffected, and changes nothing', async () => {
    const { links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    await unchangedBy(async () => {
      for (let i = 0; i < 10; i++) {
        expect((await post(url(links.token, 'register'), { csrf: s.csrf!, username: '.bad', password: 'password-123' }, { ip, cookie: s.cookie })).status).toBe(400);
      }
      const limited = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'limited', password: 'password-123' }, { ip, cookie: s.cookie });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await post(url(links.token, 'register'), { csrf: s.csrf!, username: '.bad', password: 'password-123' }, { ip: newIp(), cookie: s.cookie })).status).toBe(400);
    });
  });

  it('answers 404 to a POST with an unknown token, and 400 to a note that is too long', async () => {
    const { links } = accountInvite({ email: newEmail() });
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    await unchangedBy(async () => {
      expect((await post(url('unknown-token', 'register'), { csrf: s.csrf!, username: 'x', password: 'password-123' }, { ip, cookie: s.cookie })).status).toBe(404);
      expect((await post(url(links.token, 'decline'), { csrf: s.csrf!, reason: 'x'.repeat(1001) }, { ip, cookie: s.cookie })).status).toBe(400);
    });
  });

  it('refuses to decline a shared link (no known invitee, or several uses) with 403, and offers no decline form', async () => {
    const ip = newIp();
    for (const { links } of [accountInvite(), accountInvite({ email: newEmail(), maxUses: 3 })]) {
      const s = await get(url(links.token), { ip });
      expect(s.html).not.toContain('/decline"');
      await unchangedBy(async () => {
        expect((await post(url(links.token, 'decline'), { csrf: s.csrf! }, { ip, cookie: s.cookie })).status).toBe(403);
        expect((await post(url(links.token, 'opt-out'), { csrf: s.csrf! }, { ip, cookie: s.cookie })).status).toBe(403);
      });
    }
  });
});

describe('characters XML does not allow', () => {
  it('answers 400 with the form to a password holding U+0001 or ESC, claims nothing, and the stream stays up', async () => {
    const { invite, links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    let dropped = 0;
    const onOffline = () => dropped++;
    service.app.connection.on('offline', onOffline);
    try {
      for (const password of ['pass\u0001word-long', 'pass\u001b[31mword-long']) {
        await unchangedBy(async () => {
          const page = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'ctrlchar', password }, { ip, cookie: s.cookie });
          expect(page.status).toBe(400);
          expect(page.html).toContain('A password may not hold control characters');
          expect(page.html).toContain('value="ctrlchar"');
          expect(page.html).toContain('name="password"');
        });
      }
      expect(await prosody.userExists('ctrlchar@localhost')).toBe(false);
      // The component kept its stream: the same invite still makes an account at once.
      const done = await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'ctrlchar', password: 'a fine password' }, { ip, cookie: s.cookie });
      expect(done.status).toBe(200);
      expect(await canLogIn('ctrlchar', 'a fine password')).toBe(true);
      expect(invites().get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
      expect(dropped).toBe(0);
      expect(service.app.connection.online).toBe(true);
    } finally {
      service.app.connection.off('offline', onOffline);
    }
  });

  it('stores a decline note with control characters cleaned, and the inviter receives the declined message', async () => {
    const alice = await TestClient.connect({ port: prosody.ports.c2s, domain: prosody.host, username: 'alice', password: 'alice-password' });
    try {
      const { invite, links } = userInvite(ALICE, newEmail());
      const ip = newIp();
      const s = await get(url(links.token), { ip });
      const reason = 'No\u0001 thanks\u001b[31m, \u009bbye\uFFFF';
      const page = await post(url(links.token, 'decline'), { csrf: s.csrf!, reason }, { ip, cookie: s.cookie });
      expect(page.status).toBe(200);
      const cleaned = 'No thanks[31m, bye';
      expect(invites().events(invite.id).find((e) => e.type === 'declined')?.reason).toBe(cleaned);
      const told = notices(service.config.database, 'declined', 'alice@localhost').filter((n) => JSON.parse(n.invite_ids).includes(invite.id));
      expect(told.map((n) => JSON.parse(n.params))).toEqual([{ reason: cleaned }]);
      const message = await alice.waitFor(
        (m) => m.name === 'message' && m.getChildren('notification', 'urn:xmpp-invites:0').some((n) => n.attrs.kind === 'declined' && n.attrs.invite === invite.id),
      );
      expect(message.getChildText('body')).toContain(cleaned);
      expect(service.app.connection.online).toBe(true);
    } finally {
      await alice.stop();
    }
  });
});

describe('declining', () => {
  it('declines a personal invite and tells the inviter with the reason; a second decline is 410', async () => {
    const { invite, links } = userInvite(ALICE, newEmail());
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    const page = await post(url(links.token, 'decline'), { csrf: s.csrf!, reason: 'Not for me, thanks' }, { ip, cookie: s.cookie });
    expect(page.status).toBe(200);
    expect(page.html).toContain('You declined the invitation');
    expect(invites().get(invite.id)?.state).toBe('declined');
    const told = notices(service.config.database, 'declined', 'alice@localhost').filter((n) => JSON.parse(n.invite_ids).includes(invite.id));
    expect(told).toHaveLength(1);
    expect(JSON.parse(told[0].params)).toEqual({ reason: 'Not for me, thanks' });
    await unchangedBy(async () => {
      expect((await post(url(links.token, 'decline'), { csrf: s.csrf! }, { ip, cookie: s.cookie })).status).toBe(410);
    });
  });

  it('"never invite me again" declines and records a hashed opt-out that refuses new invites to the address', async () => {
    const email = newEmail();
    const { invite, links } = userInvite(ALICE, email);
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    const page = await post(url(links.token, 'opt-out'), { csrf: s.csrf! }, { ip, cookie: s.cookie });
    expect(page.status).toBe(200);
    expect(page.html).toContain('You will not be invited again');
    expect(invites().get(invite.id)?.state).toBe('declined');
    expect(() => invites().create(BOB, { kind: 'contact-account', source: 'send', email: email.toUpperCase() })).toThrow(/asked not to be invited/);
    const db = openStoreOf(service.config.database);
    try {
      const rows = db.prepare('SELECT address_hash FROM opt_outs WHERE invite_id = ?').all(invite.id) as { address_hash: string }[];
      expect(rows).toHaveLength(1);
      expect(rows[0].address_hash).not.toContain(email);
    } finally {
      db.close();
    }
    // the ended invite's page no longer offers the opt-out
    expect((await get(url(links.token))).html).not.toContain('/opt-out"');
  });

  it('offers the opt-out on the page of an expired personal invite', async () => {
    const email = newEmail();
    const { links } = accountInvite({ email, expiresIn: 1 });
    await new Promise((r) => setTimeout(r, 5));
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    expect(s.status).toBe(410);
    expect(s.html).toContain(`action="/i/${links.token}/opt-out"`);
    expect((await post(url(links.token, 'opt-out'), { csrf: s.csrf! }, { ip, cookie: s.cookie })).status).toBe(200);
    expect(invites().isOptedOut(email)).toBe(true);
  });
});

describe('several invitations for one address', () => {
  it('accepts two with one account (one use each, every inviter told) and declines the third', async () => {
    const email = newEmail();
    const first = accountInvite({ email, note: 'From the admins' });
    const fromAlice = userInvite(ALICE, email, 'Alice here');
    const fromBob = userInvite(BOB, email, 'Bob here');
    const ip = newIp();
    const s = await get(url(first.links.token), { ip });
    expect(s.html).toContain('You have 3 invitations');
    expect(s.html).toContain('alice@localhost invites you too');
    expect(s.html).toContain('bob@localhost invites you too');
    const done = await post(
      url(first.links.token, 'register'),
      {
        csrf: s.csrf!,
        username: 'several',
        password: 'several-password',
        [`choice-${fromAlice.invite.id}`]: 'accept',
        [`choice-${fromBob.invite.id}`]: 'decline',
        reason: 'Alice got me first',
      },
      { ip, cookie: s.cookie },
    );
    expect(done.status).toBe(200);
    expect(done.html).toContain('several@localhost');
    expect(done.html).toContain('You declined the invitation from bob@localhost');
    expect(await canLogIn('several', 'several-password')).toBe(true);
    expect(invites().get(first.invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
    expect(invites().get(fromAlice.invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
    expect(invites().get(fromBob.invite.id)).toMatchObject({ state: 'declined', uses: 0 });
    const db = openStoreOf(service.config.database);
    try {
      const claims = db.prepare(`SELECT invite_id, username, state FROM claims WHERE username = 'several' ORDER BY created_at, invite_id`).all();
      expect(claims).toEqual(
        expect.arrayContaining([
          { invite_id: first.invite.id, username: 'several', state: 'spent' },
          { invite_id: fromAlice.invite.id, username: 'several', state: 'spent' },
        ]),
      );
      expect(claims).toHaveLength(2);
      const redeemed = db.prepare(`SELECT invite_id, data FROM events WHERE type = 'redeemed' AND invite_id IN (?, ?)`).all(first.invite.id, fromAlice.invite.id) as { data: string }[];
      expect(redeemed.map((r) => JSON.parse(r.data).jid)).toEqual(['several@localhost', 'several@localhost']);
    } finally {
      db.close();
    }
    const joined = notices(service.config.database, 'joined', 'alice@localhost').filter((n) => JSON.parse(n.invite_ids).includes(fromAlice.invite.id));
    expect(joined).toHaveLength(1);
    const declined = notices(service.config.database, 'declined', 'bob@localhost').filter((n) => JSON.parse(n.invite_ids).includes(fromBob.invite.id));
    expect(JSON.parse(declined[0].params)).toEqual({ reason: 'Alice got me first' });
    const welcome = notices(service.config.database, 'welcome', 'several@localhost');
    expect(JSON.parse(welcome[0].invite_ids)).toEqual([first.invite.id, fromAlice.invite.id]);
  });

  it('never lists the invitations of the address on a shared link', async () => {
    const email = newEmail();
    accountInvite({ email });
    const shared = accountInvite({ email, maxUses: 5 });
    const page = await get(url(shared.links.token), { ip: newIp() });
    expect(page.html).not.toContain('invites you too');
  });

  it('refuses a locked invitation for another username with 400, before anything changes', async () => {
    const email = newEmail();
    const first = accountInvite({ email });
    const locked = invites().create(OPERATOR, { kind: 'account-locked', source: 'cli', username: 'lockedname', email });
    const ip = newIp();
    const s = await get(url(first.links.token), { ip });
    await unchangedBy(async () => {
      const page = await post(
        url(first.links.token, 'register'),
        { csrf: s.csrf!, username: 'othername', password: 'password-123', [`choice-${locked.invite.id}`]: 'accept' },
        { ip, cookie: s.cookie },
      );
      expect(page.status).toBe(400);
      expect(page.html).toContain('is for the username lockedname');
    });
    // with the locked username, both are accepted: the locked invite claims its own username
    const done = await post(
      url(first.links.token, 'register'),
      { csrf: s.csrf!, username: 'lockedname', password: 'password-123', [`choice-${locked.invite.id}`]: 'accept' },
      { ip, cookie: s.cookie },
    );
    expect(done.status).toBe(200);
    expect(invites().get(first.invite.id)?.state).toBe('exhausted');
    expect(invites().get(locked.invite.id)?.state).toBe('exhausted');
  });
});

describe('logs', () => {
  it('never logs a token: access logs show /i/[redacted]', async () => {
    const { links } = accountInvite();
    const ip = newIp();
    const s = await get(url(links.token), { ip });
    await post(url(links.token, 'register'), { csrf: s.csrf!, username: 'logged', password: 'password-123' }, { ip, cookie: s.cookie });
    const text = service.logs.text();
    expect(text).toContain('"path":"/i/[redacted]"');
    expect(text).toContain('"path":"/i/[redacted]/register"');
    expect(text).not.toContain(links.token);
    expect(text).not.toContain(links.token.slice(10));
    expect(text).not.toContain('password-123');
  });
});
