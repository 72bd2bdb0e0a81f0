/**
 * `xmpp-invites backup FILE` while another process keeps writing (new invites arriving): the copy
 * opens as a valid database holding every invite acknowledged before the backup began, and the
 * writer was not stopped meanwhile. Refusals leave everything as it was.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { rawTestConfig } from '../support/fixtures';

const PROJECT_ROOT = join(__dirname, '..', '..');
let dir: string;
let configFile: string;
let writer: ChildProcess | undefined;
const acknowledged: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xi-backup-'));
  configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, stringify(rawTestConfig({ database: join(dir, 'invites.sqlite') })));
});

afterAll(async () => {
  if (writer?.pid && writer.exitCode === null) {
    const exited = new Promise((r) => writer!.once('exit', r));
    process.kill(writer.pid, 'SIGTERM');
    await exited;
  }
});

async function cli(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run([...args, '--config', configFile], { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out, err };
}

async function until(what: string, fn: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('copies the store while invites keep arriving: valid, and holding every invite acknowledged before it began', async () => {
  writer = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'test/support/invite-writer.ts'), configFile], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let rest = '';
  writer.stdout!.on('data', (d: Buffer) => {
    const lines = (rest + d.toString('utf8')).split('\n');
    rest = lines.pop()!;
    acknowledged.push(...lines);
  });
  await until('2,000 invites', () => acknowledged.length >= 2_000);
  const before = [...acknowledged];
  const file = join(dir, 'backup.sqlite');
  const { code, out, err } = await cli('backup', file);
  const after = acknowledged.length;
  expect(err).toEqual([]);
  expect(code).toBe(0);
  expect(out[0]).toMatch(/^Backed up .*invites\.sqlite to .*backup\.sqlite: \d+ invites, \d+ events, schema version \d+, [\d.]+ MB, in [\d.]+ s$/);
  // the writer went on meanwhile
  await until('more invites after the backup', () => acknowledged.length > after + 100);

  const copy = new Database(file, { readonly: true });
  try {
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    const ids = new Set((copy.prepare('SELECT id FROM invites').all() as { id: string }[]).map((r) => r.id));
    expect(before.filter((id) => !ids.has(id))).toEqual([]);
    expect(ids.size).toBeGreaterThanOrEqual(before.length);
    // consistent: each invite in the copy has its created event, and nothing is half there
    const orphans = copy.prepare(`SELECT count(*) AS n FROM invites WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.invite_id = invites.id AND type = 'created')`).get() as { n: number };
    expect(orphans.n).toBe(0);
    const source = new Database(join(dir, 'invites.sqlite'), { readonly: true });
    try {
      expect(copy.pragma('user_version', { simple: true })).toBe(source.pragma('user_version', { simple: true }));
    } finally {
      source.close();
    }
  } finally {
    copy.close();
  }
  expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
});

it('never overwrites a file, and refuses bad usage with exit 2', async () => {
  const file = join(dir, 'backup.sqlite');
  expect(existsSync(file)).toBe(true);
  const exists = await cli('backup', file);
  expect(exists.code).toBe(2);
  expect(exists.err[0]).toMatch(/exists: give a new file/);
  expect((await cli('backup')).code).toBe(2);
  expect((await cli('backup', 'a', 'b')).code).toBe(2);
  expect((await cli('backup', join(dir, 'invites.sqlite'))).code).toBe(2);
  const noDir = await cli('backup', join(dir, 'no-such-dir', 'x.sqlite'));
  expect(noDir.code).toBe(1);
  expect(existsSync(join(dir, 'no-such-dir'))).toBe(false);
});
