/**
 * `npm test`: every test, integration tests against a real Prosody and a real ejabberd included.
 *
 * 1. Ensures Prosody, ejabberd, Chromium (for the browser tests) and PostgreSQL are installed
 *    (installs the Debian packages when running as root, saying so; otherwise fails with the
 *    command to run), and that Prosody 13 and ejabberd 24.12 from bookworm-backports are unpacked
 *    in the test cache (fetched as root; jest's project "integration-prosody13-ejabberd24.12" runs
 *    the server-dependent integration files against them). Integration and browser tests are never
 *    skipped.
 * 2. `tsc --noEmit` over the whole project.
 * 3. jest, all projects, in band; extra arguments are passed through (`npm test -- -t name`).
 *
 * With JEST_JSON=FILE, jest's JSON results go to FILE (`--json --outputFile`); a tsc failure is
 * added to them as one failed test named "tsc --noEmit", so the file holds the whole verdict.
 * Exit code: jest's, or 1 when anything failed.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureTestServers } from './ensure-prosody';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'node_modules', '.bin');

function say(s: string): void {
  console.error(`[npm test] ${s}`);
}

function runTsc(): { ok: boolean; output: string } {
  say('tsc --noEmit');
  const r = spawnSync(path.join(BIN, 'tsc'), ['--noEmit', '-p', path.join(ROOT, 'tsconfig.json')], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
  if (output) process.stderr.write(output);
  return { ok: r.status === 0, output };
}

function runJest(args: string[]): Promise<number> {
  const jestArgs = ['--runInBand', ...args];
  const jsonFile = process.env.JEST_JSON;
  if (jsonFile) {
    fs.rmSync(path.resolve(jsonFile), { force: true }); // never total a stale file
    jestArgs.push('--json', `--outputFile=${path.resolve(jsonFile)}`);
  }
  say(`jest ${jestArgs.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(path.join(BIN, 'jest'), jestArgs, { cwd: ROOT, stdio: 'inherit' });
    const forward = (sig: NodeJS.Signals) => () => {
      if (child.pid && child.exitCode === null) child.kill(sig);
    };
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    child.on('error', (err) => {
      say(`could not run jest: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : 15) : 1));
    });
  });
}

/** Adds the tsc failure to jest's JSON results (creating the file if jest wrote none). */
function recordTscFailure(file: string, output: string): void {
  let results: any = {};
  try {
    results = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    results = { numPassedTests: 0, numFailedTests: 0, numTotalTests: 0, testResults: [] };
  }
  results.numFailedTests = (results.numFailedTests ?? 0) + 1;
  results.numTotalTests = (results.numTotalTests ?? 0) + 1;
  results.success = false;
  results.testResults = results.testResults ?? [];
  results.testResults.push({
    name: 'tsc --noEmit',
    status: 'failed',
    message: output,
    assertionResults: [{ fullName: 'tsc --noEmit', title: 'tsc --noEmit', status: 'failed', failureMessages: [output] }],
  });
  fs.writeFileSync(file, JSON.stringify(results));
}

async function main(): Promise<number> {
  try {
    await ensureTestServers(say);
  } catch (err) {
    const msg = (err as Error).message;
    say(
      `The integration and browser tests need Prosody, ejabberd, Chromium, PostgreSQL and Exim, and Prosody 13 and ejabberd 24.12 ` +
        `from bookworm-backports in the test cache; get what is missing:\n\n    ${msg}\n`,
    );
    return 1;
  }
  const tsc = runTsc();
  if (!tsc.ok) say('tsc --noEmit FAILED (running the tests anyway; the run fails)');
  const code = await runJest(process.argv.slice(2));
  if (!tsc.ok && process.env.JEST_JSON) recordTscFailure(path.resolve(process.env.JEST_JSON), tsc.output);
  if (!tsc.ok) {
    say('failed: tsc --noEmit reported errors (see above)');
    return code || 1;
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
