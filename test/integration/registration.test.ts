/**
 * Registration gated on invites, at the component JID, against a real Prosody: accounts are created
 * with XEP-0133 and log in over c2s; every refusal leaves the invites unchanged; claims stay correct
 * under races, refusals, a stalled server and a crash.
 */
import { openStoreOf } from '../support/engine';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { OPERATOR } from '../../src/domain/types';
import { inviteServiceFor } from '../../src/services';
import { errorCondition, errorText, TestClient, xml, type XmlElement, canLogIn as canLogInAt } from '../support/client';
import { TestProsody, PROJECT_ROOT } from '../support/prosody';
import { rawTestConfig } from '../support/fixtures';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { ComponentConnection, NotConnectedError } from '../../src/xmpp/connection';
import type { Element } from '../../src/xmpp/xml';
import { Xep0133Provisioner } from '../../src/provisioners/xep0133';
import { get, post } from '../support/web';

const REGISTER = 'jabber:iq:register';

let prosody: TestProsody;
let service: RunningService;

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }],
    hostAdmins: [COMPONENT],
    anonymousHost: 'anon.localhost',
  });
  await prosody.register('alice', 'alice-password');
  service = await startService(
    serviceConfig(prosody, { admins: ['admin@localhost'], registration: { requester_domains: ['anon.localhost'] } }),
    { provisionTimeoutMs: 3_000 },
  );
});

afterAll(async () => {
  await service?.stop();
  await prosody?.stop();
});

const anonymous = () => TestClient.connect({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });

function createInvite(opts: { kind?: 'account' | 'account-locked' | 'contact-account'; username?: string; maxUses?: number; expiresIn?: number } = {}) {
  return service.app.invites.create(OPERATOR, {
    kind: opts.kind ?? 'account',
    source: 'cli',
    username: opts.username,
    maxUses: opts.maxUses,
    expiresIn: opts.expiresIn,
    inviter: opts.kind === 'contact-account' ? 'alice@localhost' : undefined,
  });
}

const preauth = (client: TestClient, token: string) =>
  client.iq(xml('iq', { type: 'set', to: COMPONENT }, xml('preauth', { xmlns: 'urn:xmpp:pars:0', token })));

function registerIq(client: TestClient, username: string, password: string, token?: string): Promise<XmlElement> {
  return client.iq(
    xml('iq', { type: 'set', to: COMPONENT }, xml('query', { xmlns: REGISTER }, xml('username', {}, username), xml('password', {}, password), token ? xml('token', {}, token) : null)),
    20_000,
  );
}

/** The invites and events tables as text: refusals must leave them as they were. */
function snapshot(): string {
  const db = openStoreOf(service.config.database);
  try {
    return JSON.stringify(db.prepare('SELECT * FROM invites ORDER BY id').all()) + JSON.stringify(db.prepare('SELECT * FROM events ORDER BY id').all());
  } finally {
    db.close();
  }
}

const canLogIn = (username: string, password: string) => canLogInAt(prosody.ports.c2s, username, password);

/** An XEP-0133 command the component sends to the server. */
const isCommand = (name: string) => (el: Element) =>
  el.getChild('command', 'http://jabber.org/protocol/commands')?.attrs.node === `http://jabber.org/protocol/admin#${name}`;

/**
 * Runs `act` just before the component writes a stanza that `match`es (the connection's requests
 * go through send()); `act` may throw to make the write fail as a lost link would. Returns undo.
 */
function beforeSend(match: (el: Element) => boolean, act: (el: Element) => void): () => void {
  const conn = service.app.connection;
  const send = ComponentConnection.prototype.send;
  conn.send = async function (this: ComponentConnection, el: Element) {
    if (match(el)) act(el);
    return send.call(this, el);
  };
  return () => {
    delete (conn as { send?: unknown }).send;
  };
}

/** Outbox rows of a kind (what the component has told or will tell). */
function outboxKinds(...kinds: string[]): { kind: string; recipient: string; invite_ids: string }[] {
  const db = openStoreOf(service.config.database);
  try {
    return db
      .prepare(`SELECT kind, recipient, invite_ids FROM outbox WHERE kind IN (${kinds.map(() => '?').join(', ')}) ORDER BY id`)
      .all(...kinds) as { kind: string; recipient: string; invite_ids: string }[];
  } finally {
    db.close();
  }
}

function claimsOf(username: string): { state: string; outcome: string | null; absent_at_claim: number | null }[] {
  const db = openStoreOf(service.config.database);
  try {
    return db.prepare('SELECT state, outcome, absent_at_claim FROM claims WHERE username = ? ORDER BY created_at').all(username) as {
      state: string;
      outcome: string | null;
      absent_at_claim: number | null;
    }[];
  } finally {
    db.close();
  }
}

it('registers an anonymous session with preauth; the account logs in over c2s', async () => {
  const { invite, links } = createInvite();
  const client = await anonymous();
  try {
    expect((await preauth(client, links.token)).attrs.type).toBe('result');
    const form = await client.iq(xml('iq', { type: 'get', to: COMPONENT }, xml('query', { xmlns: REGISTER })));
    expect(form.getChild('query', REGISTER)?.getChild('username')).toBeDefined();
    const reply = await registerIq(client, 'Bob', 'bob-password');
    expect(reply.attrs.type).toBe('result');
  } finally {
    await client.stop();
  }
  expect(await canLogIn('bob', 'bob-password')).toBe(true);
  expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
  expect(service.app.invites.events(invite.id).map((e) => e.type)).toEqual(['created', 'redeemed']);
});

it('accepts the token as a field of the XEP-0004 form', async () => {
  const { links } = createInvite();
  const client = await anonymous();
  try {
    const form = xml(
      'x',
      { xmlns: 'jabber:x:data', type: 'submit' },
      xml('field', { var: 'FORM_TYPE' }, xml('value', {}, REGISTER)),
      xml('field', { var: 'username' }, xml('value', {}, 'formuser')),
      xml('field', { var: 'password' }, xml('value', {}, 'form-password')),
      xml('field', { var: 'token' }, xml('value', {}, links.token)),
    );
    const reply = await client.iq(xml('iq', { type: 'set', to: COMPONENT }, xml('query', { xmlns: REGISTER }, form)), 20_000);
    expect(reply.attrs.type).toBe('result');
  } finally {
    await client.stop();
  }
  expect(await canLogIn('formuser', 'form-password')).toBe(true);
});

it('logs the XEP-0133 add-user form at debug with both passwords masked', async () => {
  const { links } = createInvite();
  const client = await anonymous();
  try {
    expect((await registerIq(client, 'logged', 'logged-Secret-pw', links.token)).attrs.type).toBe('result');
  } finally {
    await client.stop();
  }
  const addUser = service.logs.lines.filter((l) => l.includes('#add-user') && l.includes('logged@localhost'));
  expect(addUser.length).toBeGreaterThan(0);
  expect(addUser.join('\n').match(/<value>\[redacted\]<\/value>/g)?.length).toBeGreaterThanOrEqual(2);
  expect(service.logs.text()).not.toContain('logged-Secret-pw');
});

describe('refusals leave the invites unchanged', () => {
  let client: TestClient;
  beforeEach(async () => {
    client = await anonymous();
  });
  afterEach(async () => {
    await client.stop();
  });

  it('answers no token with not-acceptable', async () => {
    const before = snapshot();
    const reply = await registerIq(client, 'notoken', 'password-123');
    expect(errorCondition(reply)).toBe('not-acceptable');
    expect(errorText(reply)).toBe('Registration on this server is through invitation only');
    expect(snapshot()).toBe(before);
  });

  it('answers bad, expired, revoked and used tokens with item-not-found', async () => {
    const used = createInvite();
    const revoked = createInvite();
    service.app.invites.revoke(OPERATOR, revoked.invite.id);
    const expired = createInvite({ expiresIn: 1 });
    const first = await anonymous();
    expect((await registerIq(first, 'usedonce', 'password-123', used.links.token)).attrs.type).toBe('result');
    await first.stop();
    await new Promise((r) => setTimeout(r, 5));
    const before = snapshot();
    for (const token of ['bogus-token', `${used.links.token.slice(0, 10)}${'A'.repeat(24)}`, expired.links.token, revoked.links.token, used.links.token]) {
      expect(errorCondition(await preauth(client, token))).toBe('item-not-found');
      expect(errorCondition(await registerIq(client, 'someone', 'password-123', token))).toBe('item-not-found');
    }
    expect(snapshot()).toBe(before);
    expect(await prosody.userExists('someone')).toBe(false);
  });

  it('answers a taken username with conflict, releasing the use', async () => {
    const { invite, links } = createInvite();
    const reply = await registerIq(client, 'alice', 'password-123', links.token);
    expect(errorCondition(reply)).toBe('conflict');
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
  });

  it('answers another username on a locked invite with forbidden', async () => {
    const { links } = createInvite({ kind: 'account-locked', username: 'locked' });
    const before = snapshot();
    expect(errorCondition(await registerIq(client, 'notlocked', 'password-123', links.token))).toBe('forbidden');
    expect(snapshot()).toBe(before);
  });

  it('answers a bad username or a short password with not-acceptable and the rule', async () => {
    const { links } = createInvite();
    const before = snapshot();
    const bad = await registerIq(client, 'bad name', 'password-123', links.token);
    expect(errorCondition(bad)).toBe('not-acceptable');
    expect(errorText(bad)).toMatch(/1 to 64 characters/);
    const short = await registerIq(client, 'goodname', 'short', links.token);
    expect(errorCondition(short)).toBe('not-acceptable');
    expect(errorText(short)).toMatch(/at least 8 characters/);
    expect(snapshot()).toBe(before);
  });

  it('answers a declined token with item-not-found', async () => {
    const { links } = service.app.invites.create(OPERATOR, { kind: 'account', source: 'cli', email: 'decliner@example.org' });
    service.app.invites.decline(links.token, 'no thanks');
    const before = snapshot();
    expect(errorCondition(await preauth(client, links.token))).toBe('item-not-found');
    expect(errorCondition(await registerIq(client, 'decliner', 'password-123', links.token))).toBe('item-not-found');
    expect(snapshot()).toBe(before);
  });

  it('answers a pending token with not-allowed', async () => {
    const { links } = service.app.invites.create({ kind: 'user', jid: 'alice@localhost', isAdmin: false }, { kind: 'contact-account', source: 'command' });
    const before = snapshot();
    const reply = await registerIq(client, 'waiting', 'password-123', links.token);
    expect(errorCondition(reply)).toBe('not-allowed');
    expect(errorText(reply)).toMatch(/approval/);
    expect(snapshot()).toBe(before);
  });

  it('answers a malformed request with bad-request', async () => {
    const before = snapshot();
    const reply = await client.iq(xml('iq', { type: 'set', to: COMPONENT }, xml('query', { xmlns: REGISTER }, xml('username', {}, 'x'))));
    expect(errorCondition(reply)).toBe('bad-request');
    expect(snapshot()).toBe(before);
  });
});

it('refuses requesters from another domain with forbidden', async () => {
  const { links } = createInvite();
  const alice = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
  try {
    const before = snapshot();
    expect(errorCondition(await preauth(alice, links.token))).toBe('forbidden');
    expect(errorCondition(await registerIq(alice, 'fromalice', 'password-123', links.token))).toBe('forbidden');
    expect(snapshot()).toBe(before);
  } finally {
    await alice.stop();
  }
});

it('makes exactly one account from 20 parallel registrations with a single-use invite, and three with a 3-use one', async () => {
  for (const uses of [1, 3]) {
    const { invite, links } = createInvite({ maxUses: uses });
    const clients = await Promise.all(Array.from({ length: 20 }, () => anonymous()));
    const started = Date.now();
    const replies = await Promise.all(clients.map((c, i) => registerIq(c, `race${uses}x${i}`, 'password-123', links.token)));
    console.log(`20 parallel registrations on a ${uses}-use invite answered in ${Date.now() - started} ms`);
    await Promise.all(clients.map((c) => c.stop()));
    expect(replies.filter((r) => r.attrs.type === 'result')).toHaveLength(uses);
    const created = await Promise.all(Array.from({ length: 20 }, (_, i) => prosody.userExists(`race${uses}x${i}`)));
    expect(created.filter(Boolean)).toHaveLength(uses);
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses, held: 0 });
  }
});

it('keeps the claim held while the server stalls, and settles it once the server resumes', async () => {
  const { invite, links } = createInvite();
  // The server answers whether the account exists, then stalls as the add-user is written.
  const restore = beforeSend(isCommand('add-user'), () => prosody.pause());
  let result: Promise<unknown>;
  try {
    result = service.app.registration.register({ token: links.token, username: 'stalled', password: 'password-123', door: 'component' });
    await expect(result).rejects.toMatchObject({ code: 'unavailable' });
    expect(service.app.invites.get(invite.id)).toMatchObject({ uses: 0, held: 1 });
  } finally {
    restore();
    prosody.resume();
  }
  // The add-user queued in the stalled server runs now; reconciliation sees the account.
  for (let i = 0; i < 50 && service.app.registration.heldClaims().length > 0; i++) {
    await service.app.registration.reconcileAll();
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(await prosody.userExists('stalled')).toBe(true);
  expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
});

it('settles a claim left by a component killed with SIGKILL, after restart, never making two accounts', async () => {
  const dir = join(prosody.dir, 'crash');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'config.yaml');
  // The in-process service steps aside; a separate `serve` process takes its component and database.
  await service.stop();
  writeFileSync(
    file,
    stringify(
      rawTestConfig({
        component: { server: prosody.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET },
        host: prosody.host,
        database: service.config.database,
        registration: { requester_domains: ['anon.localhost'] },
      }),
    ),
  );
  // `node --import tsx` runs the CLI in this very process, so SIGKILL hits the service itself.
  const serve = () =>
    spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), 'serve', '--config', file], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const waitOnline = (child: ReturnType<typeof serve>) =>
    new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('online as')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
    });
  /** Starts serve; the server may still hold a stream of the process it just lost (conflict). */
  const serveOnline = async () => {
    for (let attempt = 1; ; attempt++) {
      const child = serve();
      try {
        await waitOnline(child);
        return child;
      } catch (err) {
        if (attempt >= 10 || !String(err).includes('(conflict)')) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };

  const db = openStoreOf(service.config.database, { write: true });
  const invites = inviteServiceFor(service.config, db);
  const { invite, links } = invites.create(OPERATOR, { kind: 'account', source: 'cli' });

  const first = await serveOnline();
  const client = await anonymous();
  const pending = registerIq(client, 'crashy', 'password-123', links.token).catch(() => undefined);
  // Kill the component as soon as the claim is recorded, before it can settle.
  const heldClaim = db.prepare(`SELECT state FROM claims WHERE username = 'crashy'`);
  const deadline = Date.now() + 15_000;
  while (!heldClaim.get() && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  // Freeze the server too, so that the component cannot learn the outcome before it dies.
  prosody.pause();
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  prosody.resume();
  await client.stop();
  await pending;
  const afterCrash = heldClaim.get() as { state: string } | undefined;
  console.log(`claim state right after SIGKILL: ${afterCrash?.state}`);

  const second = await serveOnline();
  for (let i = 0; i < 100 && (heldClaim.get() as { state: string } | undefined)?.state === 'held'; i++) await new Promise((r) => setTimeout(r, 100));
  second.kill('SIGTERM');
  await new Promise((r) => second.once('exit', r));

  const exists = await prosody.userExists('crashy');
  const claim = heldClaim.get() as { state: string };
  const row = db.prepare('SELECT uses, held, state FROM invites WHERE id = ?').get(invite.id) as { uses: number; held: number; state: string };
  db.close();
  expect(claim.state).toBe(exists ? 'spent' : 'released');
  expect(row).toEqual(exists ? { uses: 1, held: 0, state: 'exhausted' } : { uses: 0, held: 0, state: 'open' });

  // Bring the in-process service back for any later test.
  service = await startService(service.config, { provisionTimeoutMs: 3_000 });
});

it('tells the inviter that the invitee joined, and welcomes the new account with a link to the inviter', async () => {
  const alice = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
  try {
    const { invite, links } = service.app.invites.create(
      { kind: 'user', jid: 'alice@localhost', isAdmin: false },
      { kind: 'contact-account', source: 'command' },
    );
    service.app.invites.approve(OPERATOR, invite.id);
    const client = await anonymous();
    expect((await registerIq(client, 'newbie', 'password-123', links.token)).attrs.type).toBe('result');
    await client.stop();

    const joined = await alice.waitFor((s) => s.name === 'message' && s.getChild('notification', 'urn:xmpp-invites:0')?.attrs.kind === 'joined', 20_000);
    expect(joined.attrs).toMatchObject({ type: 'chat', from: COMPONENT });
    expect(joined.getChild('notification', 'urn:xmpp-invites:0')?.attrs).toMatchObject({ kind: 'joined', invite: invite.id });
    expect(joined.getChildText('body')).toMatch(/newbie@localhost has joined/);

    const newbie = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'newbie', password: 'password-123' });
    try {
      const welcome = await newbie.waitFor((s) => s.name === 'message' && s.getChild('notification', 'urn:xmpp-invites:0')?.attrs.kind === 'welcome', 20_000);
      expect(welcome.getChildText('body')).toMatch(/alice@localhost invited you/);
      expect(welcome.getChildText('body')).toMatch(/xmpp:alice@localhost\?roster;preauth=/);
    } finally {
      await newbie.stop();
    }
  } finally {
    await alice.stop();
  }
});

describe('an account that already existed is never credited to an invite', () => {
  let alice: TestClient;
  const seen: XmlElement[] = [];
  beforeAll(async () => {
    await prosody.register('victim', 'victim-password');
    alice = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
  });
  afterAll(async () => {
    await alice?.stop();
  });

  /** An approved contact-account invite from alice: its use would make alice and the new account contacts. */
  function aliceInvite() {
    const { invite } = service.app.invites.create({ kind: 'user', jid: 'alice@localhost', isAdmin: false }, { kind: 'contact-account', source: 'command' });
    const approved = service.app.invites.approve(OPERATOR, invite.id).invite;
    return { invite: approved, links: service.app.invites.links(approved) };
  }

  const credited = (inviteId: string) => outboxKinds('joined', 'welcome').filter((r) => JSON.parse(r.invite_ids).includes(inviteId));

  it('answers conflict for the username of an existing user: nothing claimed, the invite still open, nobody told', async () => {
    const { invite, links } = aliceInvite();
    const before = snapshot();
    const client = await anonymous();
    try {
      // As the attack was shown: an ordinary password, and one holding U+0001 (which used to close the stream).
      const taken = await registerIq(client, 'victim', 'password-123', links.token);
      expect(errorCondition(taken)).toBe('conflict');
      expect(errorText(taken)).toBe('The username victim is taken');
    } finally {
      await client.stop();
    }
    // On the landing page, as the attack was shown (a client could not even send U+0001 to its server).
    const landing = `${service.app.web.url}/i/${links.token}`;
    const page = await get(landing);
    for (const password of ['pass\u0001word-123', 'password-123']) {
      const refused = await post(`${landing}/register`, { csrf: page.csrf!, username: 'victim', password }, { cookie: page.cookie });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain(password === 'password-123' ? 'The username victim is taken' : 'A password may not hold control characters');
    }
    await service.app.registration.reconcileAll();
    expect(snapshot()).toBe(before);
    expect(claimsOf('victim')).toEqual([]);
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
    expect(service.app.registration.redeemedUsernames(invite.id)).toEqual([]);
    expect(credited(invite.id)).toEqual([]);
    expect(await canLogIn('victim', 'victim-password')).toBe(true);
    expect(service.app.connection.online).toBe(true);
    // The invite still works for the person it was meant for.
    const client2 = await anonymous();
    try {
      expect((await registerIq(client2, 'rightful', 'password-123', links.token)).attrs.type).toBe('result');
    } finally {
      await client2.stop();
    }
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1 });
    seen.push(await alice.waitFor((m) => m.getChild('notification', 'urn:xmpp-invites:0')?.attrs.kind === 'joined', 20_000));
    expect(seen[0].getChildText('body')).toMatch(/rightful@localhost has joined/);
  });

  it('claims nothing when the question "does it exist" is lost on its way', async () => {
    const { invite } = aliceInvite();
    const links = service.app.invites.links(invite);
    const before = snapshot();
    const restore = beforeSend(isCommand('user-stats'), () => {
      throw new NotConnectedError('lost on purpose');
    });
    try {
      await expect(
        service.app.registration.register({ token: links.token, username: 'victim', password: 'password-123', door: 'component' }),
      ).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      restore();
    }
    await service.app.registration.reconcileAll();
    expect(snapshot()).toBe(before);
    expect(claimsOf('victim')).toEqual([]);
  });

  it('never credits an existing account to a claim with an unclear outcome that did not show it absent', async () => {
    const { invite, links } = aliceInvite();
    // A claim recorded without the question (as every claim made before this check existed),
    // whose add-user is lost: the outcome is unclear, and the account is there when asked.
    const claim = service.app.registration.claim({ token: links.token, username: 'victim', door: 'component' });
    expect(claimsOf('victim')).toEqual([{ state: 'held', outcome: null, absent_at_claim: 0 }]);
    expect(await service.app.registration.reconcileAll()).toBe(1);
    expect(service.app.registration.getClaim(claim.id)).toMatchObject({
      state: 'released',
      outcome: 'reconciled: the account existed before the claim, not credited',
    });
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
    expect(service.app.invites.events(invite.id).map((e) => e.type)).toEqual(['created', 'approved']);
    expect(credited(invite.id)).toEqual([]);
  });

  it('settles a lost add-user of a username absent when claimed by what the server says', async () => {
    const { invite, links } = aliceInvite();
    // The add-user never leaves: the component cannot know whether it arrived.
    const restore = beforeSend(isCommand('add-user'), () => {
      throw new NotConnectedError('lost on purpose');
    });
    try {
      await expect(
        service.app.registration.register({ token: links.token, username: 'nevermade', password: 'password-123', door: 'component' }),
      ).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      restore();
    }
    for (let i = 0; i < 50 && claimsOf('nevermade')[0]?.state === 'held'; i++) {
      await service.app.registration.reconcileAll();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(claimsOf('nevermade')).toEqual([{ state: 'released', outcome: 'reconciled: no account', absent_at_claim: 1 }]);
    expect(await prosody.userExists('nevermade')).toBe(false);
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
    expect(credited(invite.id)).toEqual([]);
  });

  it('makes a create whose stanza cannot be written a definite refusal, never an unclear outcome', async () => {
    const { invite, links } = aliceInvite();
    // Bypass the password rule to reach the last line of defence: the connection's check.
    const claim = service.app.registration.claim({ token: links.token, username: 'lastline', door: 'component' }, { absentAtClaim: true });
    const provisioner = new Xep0133Provisioner({ request: (iq, timeout) => service.app.connection.request(iq, timeout), host: prosody.host, timeoutMs: 3_000 });
    const outcome = await provisioner.createAccount('lastline', 'pass\u0001word-123');
    expect(outcome).toMatchObject({ kind: 'refused' });
    service.app.registration.release(claim.id, 'refused');
    expect(service.app.connection.online).toBe(true);
    expect(await prosody.userExists('lastline')).toBe(false);
    expect(service.app.invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
    expect(credited(invite.id)).toEqual([]);
    expect(service.logs.text()).not.toContain('word-123');
  });
});
