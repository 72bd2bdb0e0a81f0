/**
 * Makes sure Prosody is installed, for `npm test` and `npm start`.
 *
 * Installed → nothing happens. Missing and running as root on a Debian-like system → says so,
 * installs the `prosody` package (running `apt-get update` first only when apt knows no candidate),
 * then stops and disables the system service the package may have started: the tests and the
 * development setup run their own Prosody, by PID, on loopback. Missing and not root → throws an
 * Error whose message is the command to run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The command a non-root user is told to run. */
export const INSTALL_COMMAND = 'sudo apt-get install -y prosody';

export function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH || '/usr/local/bin:/usr/bin:/bin').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export function prosodyInstalled(): boolean {
  return onPath('prosody') !== null && onPath('prosodyctl') !== null;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

interface RunResult {
  status: number | null;
  stdout: string;
}

/** Runs a command; its stderr (and stdout unless captured) goes to our stderr. */
function run(cmd: string, args: string[], capture = false): RunResult {
  const r = spawnSync(cmd, args, {
    stdio: ['ignore', capture ? 'pipe' : process.stderr, process.stderr],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
  });
  if (r.error) return { status: null, stdout: '' };
  return { status: r.status, stdout: r.stdout ?? '' };
}

/** Does apt know a candidate version of the package (is an `apt-get update` unnecessary)? */
function aptHasCandidate(pkg: string): boolean {
  const r = run('apt-cache', ['policy', pkg], true);
  if (r.status !== 0) return false;
  const m = /Candidate:\s*(\S+)/.exec(r.stdout);
  return !!m && m[1] !== '(none)';
}

/**
 * Installs Debian packages as root (apt-get update only when a package has no candidate, or when
 * the install fails on stale lists). Throws with a readable message on failure.
 */
export function aptInstall(packages: string[], log: (s: string) => void): void {
  if (!onPath('apt-get')) {
    throw new Error(`apt-get is not available: install ${packages.join(', ')} with your system's package manager`);
  }
  let updated = false;
  const update = () => {
    log('running apt-get update');
    if (run('apt-get', ['update']).status !== 0) throw new Error('apt-get update failed');
    updated = true;
  };
  if (!packages.every(aptHasCandidate)) update();
  const install = () => run('apt-get', ['install', '-y', ...packages]).status === 0;
  if (!install()) {
    if (updated) throw new Error(`apt-get install -y ${packages.join(' ')} failed`);
    update();
    if (!install()) throw new Error(`apt-get install -y ${packages.join(' ')} failed`);
  }
}

/** Stops and disables a system service that a package install may have started. Errors are ignored. */
export function stopSystemService(name: string, log: (s: string) => void): void {
  if (fs.existsSync('/run/systemd/system') && onPath('systemctl')) {
    log(`stopping and disabling the system service the install started: systemctl disable --now ${name}`);
    run('systemctl', ['disable', '--now', name], true);
    return;
  }
  // No systemd running (containers, sysvinit): stop whatever the init script started.
  if (onPath('service')) {
    run('service', [name, 'stop'], true);
  } else if (onPath('invoke-rc.d')) {
    run('invoke-rc.d', [name, 'stop'], true);
  }
  if (onPath('update-rc.d')) run('update-rc.d', [name, 'disable'], true);
}

/**
 * Ensures `prosody` and `prosodyctl` are installed (see the file comment). `log` receives one line
 * per thing done; nothing is logged when Prosody is already there.
 */
export async function ensureProsody(log: (s: string) => void): Promise<void> {
  if (prosodyInstalled()) return;
  if (!isRoot()) {
    throw new Error(INSTALL_COMMAND);
  }
  log('Prosody is not installed: installing the Debian package (apt-get install -y prosody)');
  aptInstall(['prosody'], log);
  stopSystemService('prosody', log);
  if (!prosodyInstalled()) {
    throw new Error('apt-get installed prosody, but `prosody`/`prosodyctl` are still not on PATH');
  }
  log('Prosody installed');
}

if (require.main === module) {
  ensureProsody((s) => console.error(`[ensure-prosody] ${s}`)).catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
