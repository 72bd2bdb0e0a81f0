/**
 * The CLI and rooms: `invite create --room` (any account-capable kind) and `--kind room --jid`;
 * `invite list` and `invite show` show the rooms and their answers; `stats` counts per room. The
 * operator may name any room of rooms.service; refusals leave the database unchanged.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { rawTestConfig } from '../support/fixtures';

let dir: string;
let configFile: string;

function writeConfig(extra: Record<string, unknown>): void {
  writeFileSync(configFile, stringify(rawTestConfig({ database: './invites.sqlite', ...extra })));
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-cli-rooms-'));
  configFile = join(dir, 'config.yaml');
  writeConfig({ rooms: { service: 'conference.localhost', max_per_invite: 2 } });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run([...argv, '--config', configFile], { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function dump(): string {
  const db = new Database(join(dir, 'invites.sqlite'), { readonly: true });
  try {
    const all = (sql: string) => JSON.stringify(db.prepare(sql).all());
    return all('SELECT * FROM invites ORDER BY id') + all('SELECT * FROM events ORDER BY id') + all('SELECT * FROM room_invitations ORDER BY invite_id, room');
  } finally {
    db.close();
  }
}

it('creates a room invitation for a JID and prints its rooms, a join URI and the landing URL', async () => {
  const r = await cli('invite', 'create', '--kind', 'room', '--jid', 'Bob@Example.org', '--room', 'team@conference.localhost', '--room', 'garden@conference.localhost');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^kind: +room$/m);
  expect(r.out).toMatch(/^uri: +xmpp:garden@conference\.localhost\?join$/m);
  expect(r.out).toMatch(/^landing: +https:\/\/invites\.example\.org\/i\/[A-Za-z0-9_-]{34}$/m);
  expect(r.out).toMatch(/^room: +garden@conference\.localhost: open$/m);
  expect(r.out).toMatch(/^room: +team@conference\.localhost: open$/m);
});

it('attaches rooms to an account invite, and shows them in list, show, --json and stats', async () => {
  const made = await cli('invite', 'create', '--kind', 'account', '--email', 'new@example.org', '--room', 'team@conference.localhost');
  expect(made.code).toBe(0);
  const id = /^id: +(\w+)$/m.exec(made.out)![1];
  const list = (await cli('invite', 'list')).out.split('\n');
  expect(list[0].split(/ {2,}/)).toContain('ROOMS');
  expect(list[1]).toMatch(/team:open$/);
  const json = JSON.parse((await cli('invite', 'list', '--json')).out);
  expect(json[0].rooms).toEqual([{ room: 'team@conference.localhost', name: null, state: 'open', member: null }]);
  expect((await cli('invite', 'show', id)).out).toMatch(/^room: +team@conference\.localhost: open$/m);
  const stats = await cli('stats');
  expect(stats.out).toContain('team@conference.localhost: invited 1, accepted 0, declined 0, failed 0, no answer 1');
});

it('ends the open answers when the invite is revoked', async () => {
  const made = await cli('invite', 'create', '--kind', 'room', '--jid', 'bob@example.org', '--room', 'team@conference.localhost');
  const id = /^id: +(\w+)$/m.exec(made.out)![1];
  expect((await cli('invite', 'revoke', id)).code).toBe(0);
  expect((await cli('invite', 'show', id)).out).toMatch(/^room: +team@conference\.localhost: revoked$/m);
  // the pair is free again
  expect((await cli('invite', 'create', '--kind', 'room', '--jid', 'bob@example.org', '--room', 'team@conference.localhost')).code).toBe(0);
});

it('refuses a second open invitation to the same room for the same person, whoever invites', async () => {
  expect((await cli('invite', 'create', '--kind', 'room', '--jid', 'bob@example.org', '--room', 'team@conference.localhost')).code).toBe(0);
  const before = dump();
  const again = await cli('invite', 'create', '--kind', 'room', '--jid', 'BOB@example.org', '--inviter', 'carol@localhost', '--room', 'team@conference.localhost');
  expect(again.code).toBe(1);
  expect(again.err).toContain('already an open invitation to team@conference.localhost for bob@example.org');
  expect(dump()).toBe(before);
});

it.each([
  [['--kind', 'room', '--room', 'team@conference.localhost'], 2, '--kind room needs --jid'],
  [['--kind', 'room', '--jid', 'bob@example.org'], 2, '--kind room needs --jid'],
  [['--kind', 'room', '--jid', 'not a jid', '--room', 'team@conference.localhost'], 2, '--jid: not a user JID'],
  [['--kind', 'room', '--jid', 'bob@example.org', '--room', 'team@elsewhere.org'], 1, 'team@elsewhere.org is not a room of conference.localhost'],
  [['--kind', 'contact', '--inviter', 'a@localhost', '--room', 'team@conference.localhost'], 1, 'Rooms go with an invite that creates an account'],
  [['--kind', 'room', '--jid', 'bob@example.org', '--room', 'a@conference.localhost', '--room', 'b@conference.localhost', '--room', 'c@conference.localhost'], 1, 'At most 2 rooms'],
  [['--kind', 'room', '--jid', 'bob@example.org', '--email', 'bob@example.org', '--room', 'team@conference.localhost'], 1, 'give its JID (and no e-mail address)'],
])('refuses %j (exit %i) and changes nothing', async (args, code, message) => {
  await cli('invite', 'list');
  const before = dump();
  const r = await cli('invite', 'create', ...args);
  expect(r.code).toBe(code);
  expect(r.err).toContain(message);
  expect(dump()).toBe(before);
});

it('refuses --room when rooms.service is not set', async () => {
  writeConfig({});
  await cli('invite', 'list');
  const before = dump();
  const r = await cli('invite', 'create', '--kind', 'account', '--room', 'team@conference.localhost');
  expect(r.code).toBe(2);
  expect(r.err).toContain('rooms.service is not set');
  expect(dump()).toBe(before);
});
