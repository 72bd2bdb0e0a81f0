/**
 * `xmpp-invites serve` as an operator runs it: a separate process, its exit codes and messages.
 */
import { openStoreOf } from '../support/engine';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { TestProsody, PROJECT_ROOT } from '../support/prosody';
import { rawTestConfig, testConfig } from '../support/fixtures';
import { COMPONENT, COMPONENT_SECRET } from '../support/service';
import { openDatabase } from '../../src/store/database';
import { inviteServiceFor, outboxFor } from '../../src/services';

/** A second component of the same server: Prosody takes one connection per component. */
const SECOND = 'invites2.localhost';

let prosody: TestProsody;

beforeAll(async () => {
  prosody = await TestProsody.start({
    components: [
      { domain: COMPONENT, secret: COMPONENT_SECRET },
      { domain: SECOND, secret: COMPONENT_SECRET },
    ],
  });
});
afterAll(async () => {
  await prosody?.stop();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** the process's command line when `until` held */
  cmdline?: string[];
}

interface CliOptions {
  until?: (out: string) => boolean;
  timeoutMs?: number;
  /** run bin/xmpp-invites (as an operator does) rather than src/cli.ts under tsx; a path runs that copy of it */
  bin?: boolean | string;
  env?: NodeJS.ProcessEnv;
}

/** Runs the CLI; `until` decides when to send SIGTERM (checked on every output chunk). */
function cli(args: string[], opts: CliOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const [command, ...argv] = opts.bin
      ? [typeof opts.bin === 'string' ? opts.bin : join(PROJECT_ROOT, 'bin/xmpp-invites'), ...args]
      : [process.execPath, '--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), ...args];
    const child = spawn(command, argv, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, XMPP_INVITES_CONFIG: '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    let cmdline: string[] | undefined;
    const check = () => {
      if (!signalled && opts.until?.(stdout + stderr)) {
        signalled = true;
        cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      check();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      check();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out: ${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, cmdline });
    });
  });
}

function writeConfig(overrides: { component?: Record<string, string>; [key: string]: unknown }): string {
  const dir = mkdtempSync(join(prosody.dir, 'serve-'));
  const file = join(dir, 'config.yaml');
  const { component, ...rest } = overrides;
  writeFileSync(
    file,
    stringify(
      rawTestConfig({
        component: { server: prosody.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET, ...component },
        host: prosody.host,
        database: './invites.sqlite',
        ...rest,
      }),
    ),
  );
  return file;
}

it('exits 1 with a message naming component.secret when the server refuses the secret', async () => {
  const file = writeConfig({ component: { secret: 'not-the-secret' } });
  const run = await cli(['serve', '--config', file]);
  expect(run.code).toBe(1);
  expect(run.stdout + run.stderr).toMatch(/component\.secret/);
  expect(run.stdout + run.stderr).not.toContain('not-the-secret');
});

it('exits 1 naming component.domain when the server does not know the component', async () => {
  const file = writeConfig({ component: { domain: 'unknown.localhost' } });
  const run = await cli(['serve', '--config', file]);
  expect(run.code).toBe(1);
  expect(run.stdout + run.stderr).toMatch(/component\.domain/);
});

it('exits 2 on a config that does not validate, listing every error', async () => {
  const file = writeConfig({ token_key: 'short', bogus: true });
  const run = await cli(['serve', '--config', file]);
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/token_key/);
  expect(run.stderr).toMatch(/bogus/);
});

it('exits 2 without a config', async () => {
  const run = await cli(['serve']);
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/XMPP_INVITES_CONFIG/);
});

it('goes online, then stops cleanly with exit 0 on SIGTERM', async () => {
  const file = writeConfig({});
  const run = await cli(['serve', '--config', file], { until: (out) => out.includes('online as') });
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/stopped/);
  expect(run.stdout).not.toContain(COMPONENT_SECRET);
});

/** `serve` left running: its output so far, a wait for a line, and SIGTERM. */
function serving(file: string) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), 'serve', '--config', file], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, XMPP_INVITES_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: (() => void)[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const add = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', add);
  child.stderr!.on('data', add);
  return {
    output: () => out,
    async waitFor(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${re} in: ${out}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
    stop(): Promise<number | null> {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

it('runs each periodic job on one of two instances sharing one store: one expiry recorded, one notice, the lease handed back on stop', async () => {
  const dir = mkdtempSync(join(prosody.dir, 'shared-'));
  const database = join(dir, 'invites.sqlite');
  // An invite that has expired, its expiry not recorded yet.
  const db = openDatabase(database);
  const config = testConfig({ database, host: prosody.host });
  const { invite } = inviteServiceFor(config, db, { outbox: outboxFor(config, db) }).create(
    { kind: 'user', jid: 'admin@localhost', isAdmin: true },
    { kind: 'account', source: 'command' },
  );
  db.prepare('UPDATE invites SET expires_at = ? WHERE id = ?').run(Date.now() - 1_000, invite.id);
  db.close();

  // The second starts once the first has run its jobs at start (and so holds their leases).
  const first = serving(writeConfig({ database }));
  let second: ReturnType<typeof serving> | undefined;
  try {
    const [, a] = await first.waitFor(/instance ([0-9a-f]{16}) starting/);
    await first.waitFor(/1 invite\(s\) expired/);
    second = serving(writeConfig({ database, component: { domain: SECOND } }));
    const [, b] = await second.waitFor(/instance ([0-9a-f]{16}) starting/);
    await Promise.all([first.waitFor(/online as/), second.waitFor(/online as/)]);
    expect(a).not.toBe(b);
    // The second's run of expiry at start asked for its lease and was refused: the job is the
    // first's. Both are present (reconciliation's runs at start are each instance's own).
    const lite = openStoreOf(database);
    try {
      expect(lite.prepare('SELECT job, holder FROM job_leases ORDER BY job').all()).toEqual(
        [
          { job: 'expiry', holder: a },
          { job: `instance:${a}`, holder: a },
          { job: `instance:${b}`, holder: b },
        ].sort((x, y) => (x.job < y.job ? -1 : 1)),
      );
    } finally {
      lite.close();
    }
  } finally {
    expect(await Promise.all([first.stop(), second?.stop() ?? 0])).toEqual([0, 0]);
  }
  expect(second.output()).not.toMatch(/invite\(s\) expired/);
  const lite = openStoreOf(database);
  try {
    expect(lite.prepare(`SELECT count(*) AS n FROM events WHERE invite_id = ? AND type = 'expired'`).get(invite.id)).toEqual({ n: 1 });
    expect(lite.prepare(`SELECT recipient FROM outbox WHERE kind = 'expired'`).all()).toEqual([{ recipient: 'admin@localhost' }]);
    // A clean stop ends the leases (the next instance to start takes the jobs at once) and the presence.
    expect(lite.prepare('SELECT job, held_until <= ? AS ended FROM job_leases').all(Date.now())).toEqual([{ job: 'expiry', ended: 1 }]);
  } finally {
    lite.close();
  }
});

describe('bin/xmpp-invites', () => {
  /** The newest modification time under a directory. */
  const newest = (dir: string): number =>
    Math.max(...execFileSync('find', [dir, '-type', 'f', '-printf', '%T@\\n'], { encoding: 'utf8' }).trim().split('\n').map(Number));

  beforeAll(() => {
    // `npm ci` builds dist/ (the prepare script); a checkout edited since then builds it again here.
    const built = join(PROJECT_ROOT, 'dist/cli.js');
    if (!existsSync(built) || statSync(built).mtimeMs / 1000 < newest(join(PROJECT_ROOT, 'src'))) {
      execFileSync('npm', ['run', '--silent', 'build'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
    }
  }, 120_000);

  it('serves from the compiled build, with the flags that keep the process small, and stops on SIGTERM', async () => {
    const run = await cli(['serve', '--config', writeConfig({})], { bin: true, until: (out) => out.includes('online as') });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/stopped/);
    // exec'd: the process is node itself, running dist/cli.js
    expect(run.cmdline?.[0]).toMatch(/node$/);
    expect(run.cmdline).toEqual(expect.arrayContaining(['--max-semi-space-size=4', '--max-old-space-size=64', join(PROJECT_ROOT, 'dist/cli.js'), 'serve']));
  });

  it('takes the operator’s Node flags from XMPP_INVITES_NODE_FLAGS; other commands run from the build too', async () => {
    const run = await cli(['serve', '--config', writeConfig({})], {
      bin: true,
      env: { XMPP_INVITES_NODE_FLAGS: '--max-old-space-size=200' },
      until: (out) => out.includes('online as'),
    });
    expect(run.code).toBe(0);
    expect(run.cmdline?.slice(1, 3)).toEqual(['--max-old-space-size=200', join(PROJECT_ROOT, 'dist/cli.js')]);
    const check = await cli(['config', 'check', '--config', writeConfig({})], { bin: true });
    expect(check.code).toBe(0);
  });

  it('runs the TypeScript sources through tsx when they are newer than the build', async () => {
    // A checkout of its own: this bin/, the same sources and packages, and a build older than them.
    const root = mkdtempSync(join(prosody.dir, 'checkout-'));
    mkdirSync(join(root, 'bin'));
    copyFileSync(join(PROJECT_ROOT, 'bin/xmpp-invites'), join(root, 'bin/xmpp-invites'));
    for (const entry of ['src', 'node_modules', 'schema.sql']) symlinkSync(join(PROJECT_ROOT, entry), join(root, entry));
    mkdirSync(join(root, 'dist'));
    writeFileSync(join(root, 'dist/cli.js'), 'process.exit(42);\n');
    utimesSync(join(root, 'dist/cli.js'), new Date('2001-01-01'), new Date('2001-01-01'));
    const run = await cli(['serve', '--config', writeConfig({})], { bin: join(root, 'bin/xmpp-invites'), until: (out) => out.includes('online as') });
    expect(run.code).toBe(0);
    expect(run.cmdline).toEqual(expect.arrayContaining(['--max-old-space-size=64', `file://${root}/node_modules/tsx/dist/loader.mjs`, `${root}/src/cli.ts`]));
  });
});
