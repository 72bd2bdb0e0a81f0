/**
 * Password reset invites on a real Prosody, the password set with XEP-0133 change-user-password:
 * an admin makes the link with #reset; the holder sets a new password on the landing page; the old
 * password stops working and the new one logs in; the link is used up; the owner is told; every
 * step is in the reset's log. And every bad input refused with nothing changed.
 * The command line makes links too: it asks the running service (through the store) whether the
 * account exists, and makes none for a missing account, or when no service answers.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { loadConfig } from '../../src/config';
import { adhoc, canLogIn, commandNotes, commandOf, errorCondition, formFields, TestClient } from '../support/client';
import { rawTestConfig } from '../support/fixtures';
import { openStoreOf, testDatabase } from '../support/engine';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, startService, type RunningService } from '../support/service';
import { get, post, snapshot } from '../support/web';

const NS_NOTIFY = 'urn:xmpp-invites:0';
const PUBLIC_URL = 'https://chat.example.org';
let prosody: TestProsody;
let service: RunningService;
let configFile: string;
/** a store no service runs on */
let idleConfigFile: string;
let admin: TestClient;
let alice: TestClient;

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  for (const u of ['admin', 'alice', 'bob', 'carol', 'dave', 'erin']) await prosody.register(u, `${u}-password`);
  const dir = mkdtempSync(join(prosody.dir, 'reset-'));
  configFile = join(dir, 'config.yaml');
  idleConfigFile = join(dir, 'idle.yaml');
  const raw = (database: string) =>
    stringify(
      rawTestConfig({
        component: { server: prosody.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET },
        host: prosody.host,
        database,
        admins: ['admin@localhost'],
        web: { public_url: PUBLIC_URL },
      }),
    );
  writeFileSync(configFile, raw(testDatabase(join(dir, 'invites.sqlite'))));
  writeFileSync(idleConfigFile, raw(testDatabase(join(dir, 'idle.sqlite'))));
  service = await startService(loadConfig(configFile), { provisionTimeoutMs: 5_000, webRateLimit: { capacity: 1000, refillMs: 1_000 } });
  const login = (u: string) => TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: u, password: `${u}-password` });
  [admin, alice] = await Promise.all([login('admin'), login('alice')]);
});

afterAll(async () => {
  for (const c of [admin, alice]) await c?.stop();
  await service?.stop();
  await prosody?.stop();
});

const local = (landing: string) => landing.replace(PUBLIC_URL, service.app.web.url);
const db = () => service.config.database;

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv.includes('--config') ? argv : [...argv, '--config', configFile], { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The questions the command line asked whether an account exists (account_checks). */
function accountChecks(database = db()): Record<string, unknown>[] {
  const store = openStoreOf(database);
  try {
    return store.prepare('SELECT * FROM account_checks ORDER BY id').all() as Record<string, unknown>[];
  } finally {
    store.close();
  }
}

async function makeReset(username: string) {
  const first = await adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#reset');
  expect(commandOf(first)?.attrs.status).toBe('executing');
  return adhoc(admin, COMPONENT, 'urn:xmpp-invites:0#reset', { sessionid: commandOf(first)!.attrs.sessionid, action: 'complete', fields: { username } });
}

it('a reset link sets a new password on the real server: the old one stops working, the new one logs in, the link is used up', async () => {
  const done = await makeReset('Bob');
  expect(commandOf(done)?.attrs.status).toBe('completed');
  const landing = formFields(done)['landing-url'][0];
  expect(landing).toMatch(new RegExp(`^${PUBLIC_URL}/i/[a-z0-9]{10}[A-Za-z0-9_-]{24}$`));
  const expire = Date.parse(formFields(done).expire[0]);
  expect(Math.abs(expire - (Date.now() + 86_400_000))).toBeLessThan(120_000);

  const page = await get(local(landing));
  expect(page.status).toBe(200);
  expect(page.html).toContain('bob@localhost');
  const set = await post(`${local(landing)}/reset`, { csrf: page.csrf!, password: 'bobs-new-password', 'password-again': 'bobs-new-password' }, { cookie: page.cookie });
  expect(set.status).toBe(200);
  expect(set.html).toContain('Your new password is set');

  expect(await canLogIn(prosody.ports.c2s, 'bob', 'bob-password')).toBe(false);
  expect(await canLogIn(prosody.ports.c2s, 'bob', 'bobs-new-password')).toBe(true);

  // Used up: the page and a second use both say so (410), and the password stays.
  expect((await get(local(landing))).status).toBe(410);
  const again = await post(`${local(landing)}/reset`, { csrf: page.csrf!, password: 'another-password', 'password-again': 'another-password' }, { cookie: page.cookie });
  expect(again.status).toBe(410);
  expect(await canLogIn(prosody.ports.c2s, 'bob', 'bobs-new-password')).toBe(true);

  // The owner is told by message; every step is in the log.
  const bob = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'bob', password: 'bobs-new-password' });
  try {
    const told = await bob.waitFor((m) => m.name === 'message' && m.getChildren('notification', NS_NOTIFY).some((n) => n.attrs.kind === 'password-reset'), 20_000);
    expect(told.getChildText('body')).toContain('The password of bob@localhost was changed');
  } finally {
    await bob.stop();
  }
  const id = landing.slice(`${PUBLIC_URL}/i/`.length, `${PUBLIC_URL}/i/`.length + 10);
  expect(service.app.resets.events(id).map((e) => [e.type, e.actor])).toEqual([
    ['created', 'admin@localhost'],
    ['claimed', 'web'],
    ['used', 'web'],
  ]);
  const log = await cli('invite', 'log', id);
  expect(log.code).toBe(0);
  expect(log.out).toMatch(/used +web/);
});

it('refuses a reset link for an account that does not exist, and makes nothing', async () => {
  const before = snapshot(db());
  const reply = await makeReset('nobody');
  expect(commandOf(reply)?.attrs.status).toBe('executing');
  expect(commandNotes(reply).map((n) => n.text).join(' ')).toContain('There is no account nobody@localhost');
  const bad = await makeReset('not valid!');
  expect(commandNotes(bad).map((n) => n.text).join(' ')).toMatch(/is not a valid username/);
  expect(snapshot(db())).toBe(before);
});

it('hides #reset from a non-admin and refuses it with forbidden', async () => {
  expect(errorCondition(await adhoc(alice, COMPONENT, 'urn:xmpp-invites:0#reset'))).toBe('forbidden');
});

it('refuses a short password, two different passwords, a forged token and a missing CSRF token, changing nothing', async () => {
  const done = await makeReset('carol');
  const landing = local(formFields(done)['landing-url'][0]);
  // GET changes nothing (mail scanners follow links).
  const before = snapshot(db());
  const page = await get(landing);
  const short = await post(`${landing}/reset`, { csrf: page.csrf!, password: 'short', 'password-again': 'short' }, { cookie: page.cookie });
  expect(short.status).toBe(400);
  expect(short.html).toMatch(/at least 8/i);
  const differ = await post(`${landing}/reset`, { csrf: page.csrf!, password: 'carol-new-pass', 'password-again': 'carol-other-pass' }, { cookie: page.cookie });
  expect(differ.status).toBe(400);
  expect(differ.html).toContain('The two passwords differ');
  const forged = landing.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
  expect((await get(forged)).status).toBe(404);
  expect((await post(`${forged}/reset`, { csrf: page.csrf!, password: 'carol-new-pass', 'password-again': 'carol-new-pass' }, { cookie: page.cookie })).status).toBe(404);
  expect((await post(`${landing}/reset`, { password: 'carol-new-pass', 'password-again': 'carol-new-pass' })).status).toBe(403);
  expect(snapshot(db())).toBe(before);
  expect(await canLogIn(prosody.ports.c2s, 'carol', 'carol-password')).toBe(true);
});

it('makes a reset link from the CLI, and refuses bad usage', async () => {
  const made = await cli('invite', 'create', '--kind', 'reset', '--username', 'alice', '--expire', '2h');
  expect(made.code).toBe(0);
  expect(made.out).toMatch(/^kind: +reset$/m);
  expect(made.out).toMatch(/^account: +alice@localhost$/m);
  expect(made.out).toMatch(new RegExp(`^landing: +${PUBLIC_URL}/i/[A-Za-z0-9_-]{34}$`, 'm'));
  expect(made.err).toBe('');
  const landing = local(/landing: +(\S+)/.exec(made.out)![1]);
  expect((await get(landing)).status).toBe(200);
  const id = /^id: +(\S+)$/m.exec(made.out)![1];
  const shown = await cli('invite', 'show', id);
  expect(shown.out).toMatch(/^state: +open$/m);
  expect(shown.out).toMatch(/^created: +\S+ by operator$/m);
  // Revoked from the CLI: the page says so, and nothing can be set with it.
  expect(await cli('invite', 'revoke', id, '--reason', 'asked twice')).toMatchObject({ code: 0, out: `${id}: revoked` });
  expect(await cli('invite', 'revoke', id)).toMatchObject({ code: 0, out: `${id}: already revoked` });
  const gone = await get(landing);
  expect(gone.status).toBe(410);
  expect(gone.html).toContain('It was revoked');
  expect(service.app.resets.events(id).map((e) => [e.type, e.reason])).toEqual([
    ['created', null],
    ['revoked', 'asked twice'],
  ]);
  const before = snapshot(db());
  const questions = accountChecks().length;
  expect((await cli('invite', 'create', '--kind', 'reset')).code).toBe(2);
  expect((await cli('invite', 'create', '--kind', 'reset', '--username', 'alice', '--email', 'a@example.org')).code).toBe(2);
  expect((await cli('invite', 'create', '--kind', 'reset', '--username', 'alice', '--expire', 'soon')).code).toBe(2);
  expect(await cli('invite', 'create', '--kind', 'reset', '--username', 'alice', '--wait', 'soon')).toMatchObject({ code: 2, err: 'xmpp-invites invite create: --wait: not a duration: soon (use 15s, 1m)' });
  expect(await cli('invite', 'create', '--kind', 'reset', '--username', 'alice', '--wait', '0s')).toMatchObject({ code: 2, err: 'xmpp-invites invite create: --wait: 0s is not between 1s and 10m' });
  expect(await cli('invite', 'create', '--kind', 'account', '--wait', '5s')).toMatchObject({ code: 2, err: 'xmpp-invites invite create: --wait applies only to --kind reset' });
  expect((await cli('invite', 'create', '--kind', 'reset', '--username', 'not valid!')).code).toBe(1);
  expect(snapshot(db())).toBe(before);
  // A bad username is refused before anyone is asked.
  expect(accountChecks()).toHaveLength(questions);
});

describe('the command line asks the running service whether the account exists', () => {
  it('makes the link for an existing account, says in the log that it was checked, and the link sets the password', async () => {
    const made = await cli('invite', 'create', '--kind', 'reset', '--username', 'Erin');
    expect(made).toMatchObject({ code: 0, err: '' });
    expect(made.out).toMatch(/^account: +erin@localhost$/m);
    const id = /^id: +(\S+)$/m.exec(made.out)![1];
    // The question, answered by the running service through XEP-0133.
    const question = accountChecks().at(-1)!;
    expect(question).toMatchObject({ username: 'erin', asked_by: 'operator', taken_by: service.app.instanceId, answer: 'exists', answered_by: service.app.instanceId, reason: null });
    expect(Number(question.answered_at) - Number(question.asked_at)).toBeLessThan(5_000);
    expect(service.app.resets.events(id)[0]).toMatchObject({ type: 'created', actor: 'operator', data: { username: 'erin', check: Number(question.id) } });

    const landing = local(/landing: +(\S+)/.exec(made.out)![1]);
    const page = await get(landing);
    const set = await post(`${landing}/reset`, { csrf: page.csrf!, password: 'erin-cli-password', 'password-again': 'erin-cli-password' }, { cookie: page.cookie });
    expect(set.status).toBe(200);
    expect(await canLogIn(prosody.ports.c2s, 'erin', 'erin-cli-password')).toBe(true);
  });

  it('refuses a link for an account that does not exist: exit 1 naming it, no reset made, the question kept', async () => {
    const before = snapshot(db());
    const questions = accountChecks().length;
    const refused = await cli('invite', 'create', '--kind', 'reset', '--username', 'ghost');
    expect(refused).toEqual({ code: 1, out: '', err: 'xmpp-invites invite create: There is no account ghost@localhost; no reset link made' });
    expect(snapshot(db())).toBe(before);
    const asked = accountChecks();
    expect(asked).toHaveLength(questions + 1);
    expect(asked.at(-1)).toMatchObject({ username: 'ghost', taken_by: service.app.instanceId, answer: 'missing', answered_by: service.app.instanceId });
  });

  it('with no service running, refuses once its wait is over and makes nothing', async () => {
    const started = Date.now();
    const refused = await cli('invite', 'create', '--kind', 'reset', '--username', 'alice', '--wait', '1s', '--config', idleConfigFile);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(refused).toEqual({
      code: 1,
      out: '',
      err: 'xmpp-invites invite create: no running service answered within 1 s whether alice@localhost exists: start `xmpp-invites serve` (connected to localhost) and try again; no reset link made',
    });
    const idle = loadConfig(idleConfigFile).database;
    const store = openStoreOf(idle);
    try {
      expect(store.prepare('SELECT count(*) AS n FROM password_resets').get()).toEqual({ n: 0 });
      expect(store.prepare('SELECT count(*) AS n FROM password_reset_events').get()).toEqual({ n: 0 });
    } finally {
      store.close();
    }
    expect(accountChecks(idle)).toEqual([expect.objectContaining({ username: 'alice', taken_by: null, answer: 'unanswered', answered_by: 'operator' })]);
  });
});

it('lets exactly one of two racing uses of a link set the password', async () => {
  const done = await makeReset('dave');
  const landing = local(formFields(done)['landing-url'][0]);
  const page = await get(landing);
  const use = (password: string) => post(`${landing}/reset`, { csrf: page.csrf!, password, 'password-again': password }, { cookie: page.cookie });
  const answers = await Promise.all([use('dave-first-password'), use('dave-second-password')]);
  expect(answers.map((a) => a.status).sort()).toEqual([200, 410]);
  const won = answers[0].status === 200 ? 'dave-first-password' : 'dave-second-password';
  const lost = won === 'dave-first-password' ? 'dave-second-password' : 'dave-first-password';
  expect(await canLogIn(prosody.ports.c2s, 'dave', won)).toBe(true);
  expect(await canLogIn(prosody.ports.c2s, 'dave', lost)).toBe(false);
  const id = formFields(done)['landing-url'][0].slice(`${PUBLIC_URL}/i/`.length, `${PUBLIC_URL}/i/`.length + 10);
  expect(service.app.resets.events(id).map((e) => e.type)).toEqual(['created', 'claimed', 'used']);
});
