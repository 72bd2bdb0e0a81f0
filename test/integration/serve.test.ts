/**
 * `xmpp-invites serve` as an operator runs it: a separate process, its exit codes and messages.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { TestProsody, PROJECT_ROOT } from '../support/prosody';
import { rawTestConfig } from '../support/fixtures';
import { COMPONENT, COMPONENT_SECRET } from '../support/service';

let prosody: TestProsody;

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }] });
});
afterAll(async () => {
  await prosody?.stop();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `until` decides when to send SIGTERM (checked on every output chunk). */
function cli(args: string[], opts: { until?: (out: string) => boolean; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, XMPP_INVITES_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const check = () => {
      if (!signalled && opts.until?.(stdout + stderr)) {
        signalled = true;
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
      resolve({ code, stdout, stderr });
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
