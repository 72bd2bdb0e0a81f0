/**
 * Two instances of the service on one store: each with its own connection to one SQLite file, its
 * own router and its own AdhocCommands, as two `serve` processes have them. A command's stages may
 * land on either (contract, "Several instances"): the session is the store's, not the process's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { listCommand } from '../../src/handlers/commands/list';
import { newInviteCommand } from '../../src/handlers/commands/new-invite';
import { pendingCommand } from '../../src/handlers/commands/pending';
import { MemorySessions } from '../../src/domain/command-sessions';
import { inviteServiceFor, limitsFor } from '../../src/services';
import { SqliteCommandSessions } from '../../src/store/command-sessions-repo';
import { openDatabase, type Db } from '../../src/store/database';
import { openTestStore } from '../support/engine';
import { GroupCommit } from '../../src/store/group-commit';
import { AdhocCommands } from '../../src/xmpp/adhoc';
import { NS, NODES } from '../../src/xmpp/ns';
import { Router } from '../../src/xmpp/router';
import { xml, type Element } from '../../src/xmpp/xml';
import { testConfig } from '../support/fixtures';
import { gajim17Submit } from '../support/gajim';

const COMPONENT = 'invites.localhost';
const ADMIN = 'admin@localhost/gajim';
const ALICE = 'alice@localhost/gajim';
const alice = { kind: 'user' as const, jid: 'alice@localhost', isAdmin: false };

let dir: string;
let file: string;
const dbs: Db[] = [];
let now = Date.UTC(2026, 10, 21, 12);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'adhoc-instances-'));
  file = join(dir, 'store.sqlite');
});
afterEach(() => {
  while (dbs.length) dbs.pop()!.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One instance: its own connection to the shared file. */
function instance(overrides: Record<string, unknown> = {}) {
  const config = testConfig(overrides);
  const db = openDatabase(file);
  dbs.push(db);
  const invites = inviteServiceFor(config, db, { clock: () => now });
  const sent: Element[] = [];
  const logger = pino({ level: 'silent' });
  const router = new Router({ send: async (el) => void sent.push(el), logger, host: config.host, admins: config.admins });
  let store: SqliteCommandSessions | undefined;
  const adhoc = new AdhocCommands({
    jid: COMPONENT,
    now: () => now,
    sessions: (limits) => (store = new SqliteCommandSessions(db, limits)),
    // As the service does: the key of one-stage session ids comes from token_key, shared by all.
    sessionIdMac: (data) => invites.tokens.sessionIdMac(data),
  });
  const services = { config, invites, logger, limits: limitsFor(config, db), commit: new GroupCommit(db) };
  adhoc.add(newInviteCommand(services)).add(pendingCommand(services)).add(listCommand(services));
  router.iq('set', 'command', NS.commands, (ctx, c) => adhoc.execute(ctx.requester, c));
  let n = 0;
  const command = async (from: string, node: string, attrs: Record<string, string> = {}, form?: Element): Promise<Element> => {
    const id = `q${++n}`;
    await router.handle(xml('iq', { type: 'set', from, to: COMPONENT, id }, xml('command', { xmlns: NS.commands, node, ...attrs }, ...(form ? [form] : []))));
    return sent.find((s) => s.attrs.id === id)!;
  };
  return { db, invites, adhoc, command, sessions: store! };
}

const cmd = (reply: Element) => reply.getChild('command', NS.commands)!;
const form = (reply: Element) => cmd(reply).getChild('x', NS.dataForms)!;
const notes = (reply: Element) => cmd(reply).getChildren('note').map((n) => n.text());
function condition(reply: Element): string[] {
  const error = reply.getChild('error');
  return (error?.children ?? []).filter((c): c is Element => typeof c !== 'string' && c.name !== 'text').map((c) => c.name);
}
const label = (f: Element, field: string, value: string) =>
  f.getChildren('field').find((x) => x.attrs.var === field)!.getChildren('option').find((o) => o.getChildText('value') === value)!.attrs.label!;

/** Two pending invites by alice, made through the first instance. */
function twoPending(a: ReturnType<typeof instance>) {
  const first = a.invites.create(alice, { kind: 'contact-account', source: 'command' }).invite;
  now += 60_000;
  const second = a.invites.create(alice, { kind: 'contact-account', source: 'send', email: 'carol@example.org' }).invite;
  return [first, second];
}

describe('a command whose stages land on two instances', () => {
  it('is started on one and completed on the other, Gajim’s labels read against the form the first sent', async () => {
    const a = instance();
    const b = instance();
    const [x, y] = twoPending(a);
    const first = await a.command(ADMIN, NODES.pending);
    expect(cmd(first).attrs.status).toBe('executing');
    const submitted = gajim17Submit(form(first), { approve: [y.id] });
    // What Gajim sends back is the label, which only the form sent by the first instance explains.
    const approve = submitted.getChildren('field').find((f) => f.attrs.var === 'approve')!;
    expect(approve.getChildren('value').map((v) => v.text())).toEqual([label(form(first), 'approve', y.id)]);
    expect(label(form(first), 'approve', y.id)).not.toBe(y.id);
    const done = await b.command(ADMIN, NODES.pending, { sessionid: cmd(first).attrs.sessionid!, action: 'complete' }, submitted);
    expect(cmd(done).attrs.status).toBe('completed');
    expect(notes(done)).toEqual(['1 invite approved.']);
    expect([a.invites.get(x.id)?.state, a.invites.get(y.id)?.state]).toEqual(['pending', 'open']);
    expect(await a.adhoc.openSessions()).toBe(0);
  });

  it('goes back and forth over three stages, carrying its state from one instance to the other', async () => {
    const a = instance();
    const b = instance();
    const [, y] = twoPending(a);
    const filter = await a.command(ADMIN, NODES.list);
    const sessionid = cmd(filter).attrs.sessionid!;
    const results = await b.command(ADMIN, NODES.list, { sessionid, action: 'next' }, gajim17Submit(form(filter), {}, { inviter: 'Alice@localhost' }));
    expect(cmd(results).attrs.status).toBe('executing');
    // The filter travelled as the session's state: "prev" on the first instance shows it again.
    const back = await a.command(ADMIN, NODES.list, { sessionid, action: 'prev' });
    expect(form(back).getChildren('field').find((f) => f.attrs.var === 'inviter')?.getChildText('value')).toBe('alice@localhost');
    const again = await b.command(ADMIN, NODES.list, { sessionid, action: 'next' }, gajim17Submit(form(back), {}));
    const done = await a.command(ADMIN, NODES.list, { sessionid, action: 'complete' }, gajim17Submit(form(again), { revoke: [y.id] }, { reason: 'wrong address' }));
    expect(notes(done)).toEqual(['1 invite revoked.']);
    expect(b.invites.get(y.id)?.state).toBe('revoked');
  });

  it('checks permission again at every stage, on the instance that answers it', async () => {
    const a = instance();
    // This instance's configuration no longer names admin@localhost an admin.
    const b = instance({ admins: ['root@localhost'] });
    twoPending(a);
    const first = await a.command(ADMIN, NODES.pending);
    const sessionid = cmd(first).attrs.sessionid!;
    const before = JSON.stringify(a.db.prepare('SELECT * FROM invites').all());
    expect(condition(await b.command(ADMIN, NODES.pending, { sessionid }, gajim17Submit(form(first), { approve: [] })))).toEqual(['forbidden']);
    expect(condition(await a.command(ALICE, NODES.pending, { sessionid }, gajim17Submit(form(first), { approve: [] })))).toEqual(['forbidden']);
    expect(JSON.stringify(a.db.prepare('SELECT * FROM invites').all())).toBe(before);
    // Still open for the admin where they are one.
    expect(cmd(await a.command(ADMIN, NODES.pending, { sessionid, action: 'cancel' })).attrs.status).toBe('canceled');
  });

  it('answers session-expired for a session ended on the other instance, and bad-sessionid for one it never had', async () => {
    const a = instance();
    const b = instance();
    twoPending(a);
    expect(condition(await b.command(ADMIN, NODES.pending, { sessionid: 'nope' }))).toEqual(['bad-request', 'bad-sessionid']);
    // Completed on one, answered on the other.
    const done = await a.command(ADMIN, NODES.pending);
    await b.command(ADMIN, NODES.pending, { sessionid: cmd(done).attrs.sessionid!, action: 'complete' }, gajim17Submit(form(done), {}));
    expect(condition(await a.command(ADMIN, NODES.pending, { sessionid: cmd(done).attrs.sessionid! }))).toEqual(['not-allowed', 'session-expired']);
    // Cancelled on one.
    const cancelled = await b.command(ADMIN, NODES.pending);
    await b.command(ADMIN, NODES.pending, { sessionid: cmd(cancelled).attrs.sessionid!, action: 'cancel' });
    expect(condition(await a.command(ADMIN, NODES.pending, { sessionid: cmd(cancelled).attrs.sessionid! }))).toEqual(['not-allowed', 'session-expired']);
    // Bound to the full JID that started it, whichever instance is asked.
    const open = await a.command(ADMIN, NODES.pending);
    expect(condition(await b.command('admin@localhost/other', NODES.pending, { sessionid: cmd(open).attrs.sessionid! }))).toEqual(['bad-request', 'bad-sessionid']);
    // Timed out while nobody asked: the other instance ends it.
    now += 10 * 60_000;
    expect(condition(await b.command(ADMIN, NODES.pending, { sessionid: cmd(open).attrs.sessionid! }))).toEqual(['not-allowed', 'session-expired']);
    expect(await a.adhoc.openSessions()).toBe(0);
  });

  it('answers session-expired on the other instance for a one-stage command, and writes nothing for it', async () => {
    const a = instance({ invites: { approval: 'none' } });
    const b = instance({ invites: { approval: 'none' } });
    const made = await a.command(ALICE, NODES.newInvite);
    expect(cmd(made).attrs.status).toBe('completed');
    const sessionid = cmd(made).attrs.sessionid!;
    expect(sessionid).toMatch(/^[A-Za-z0-9_-]{32}$/);
    for (const on of [a, b]) expect(condition(await on.command(ALICE, NODES.newInvite, { sessionid }))).toEqual(['not-allowed', 'session-expired']);
    expect(a.db.prepare('SELECT count(*) AS n FROM command_sessions').get()).toEqual({ n: 0 });
    // Bound to its owner and its command: to anyone else, or for another command, it is unknown.
    expect(condition(await b.command('alice@localhost/phone', NODES.newInvite, { sessionid }))).toEqual(['bad-request', 'bad-sessionid']);
    expect(condition(await b.command(ADMIN, NODES.newInvite, { sessionid }))).toEqual(['bad-request', 'bad-sessionid']);
    const admins = cmd(await a.command(ADMIN, NODES.newInvite)).attrs.sessionid!;
    expect(condition(await b.command(ADMIN, NODES.list, { sessionid: admins }))).toEqual(['bad-request', 'bad-sessionid']);
    expect(condition(await b.command(ADMIN, NODES.newInvite, { sessionid: admins }))).toEqual(['not-allowed', 'session-expired']);
  });

  it('caps a user’s open sessions across instances: the oldest, wherever it was opened, is ended', async () => {
    const a = instance();
    const b = instance();
    const sessions: string[] = [];
    for (let i = 0; i < 12; i++) {
      const on = i % 2 ? b : a;
      sessions.push(cmd(await on.command(ADMIN, NODES.list)).attrs.sessionid!);
    }
    expect([await a.adhoc.openSessions(), await b.adhoc.openSessions()]).toEqual([10, 10]);
    expect(condition(await b.command(ADMIN, NODES.list, { sessionid: sessions[0] }))).toEqual(['not-allowed', 'session-expired']);
    expect(condition(await a.command(ADMIN, NODES.list, { sessionid: sessions[1], action: 'cancel' }))).toEqual(['not-allowed', 'session-expired']);
    expect(cmd(await a.command(ADMIN, NODES.list, { sessionid: sessions[2], action: 'cancel' })).attrs.status).toBe('canceled');
  });
});

describe('the session record', () => {
  it('refuses a state that is not plain data, in the store as in memory', async () => {
    const db = openTestStore();
    dbs.push(db);
    const store = new SqliteCommandSessions(db, { perJid: 10, max: 100 });
    const session = {
      id: 's1',
      node: 'urn:test',
      owner: ADMIN,
      bare: 'admin@localhost',
      state: new Map([['a', 1]]) as never,
      actions: { allowed: ['complete' as const], execute: 'complete' as const },
      expiresAt: now + 1000,
      offered: [],
    };
    expect(() => store.save(session)).toThrow('the state of command urn:test is not plain data (JSON)');
    expect(() => new MemorySessions({ perJid: 10, max: 100 }).save(session)).toThrow('the state of command urn:test is not plain data (JSON)');
    expect(db.prepare('SELECT count(*) AS n FROM command_sessions').get()).toEqual({ n: 0 });
    store.save({ ...session, state: { page: { after: { createdAt: 1, id: 'x' } }, approved: 2, none: null } });
    expect(store.find('s1')).toMatchObject({ state: { page: { after: { createdAt: 1, id: 'x' } }, approved: 2, none: null } });
  });
});
