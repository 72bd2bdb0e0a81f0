/**
 * Makes sure the XMPP servers are installed: Prosody for `npm start`, Prosody and ejabberd (and
 * Debian's Chromium, for the browser tests of the landing page, and PostgreSQL, for the store's
 * tests on that engine) for `npm test` (the integration tests run against both servers), and for
 * `npm test` also Prosody 13 and ejabberd 24.12 from bookworm-backports, unpacked into a cache
 * beside the system's packages (scripts/backports.ts: fetched as root, never installed).
 *
 * Installed → nothing happens. Missing and running as root on a Debian-like system → says so,
 * installs the missing packages in one `apt-get install` (running `apt-get update` first only when
 * apt knows no candidate), then stops and disables the system services the packages may have
 * started (`prosody`, `ejabberd`, `postgresql`, and Erlang's `epmd` when the install brought
 * Erlang): the tests and the development setup run their own servers, by PID, on loopback.
 * Missing and not root → throws an Error whose message is the command to run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureBackports } from './backports';

/** The command a non-root user is told to run when Prosody is missing. */
export const INSTALL_COMMAND = 'sudo apt-get install -y prosody';
/** The command a non-root user is told to run when ejabberd is missing. */
export const EJABBERD_INSTALL_COMMAND = 'sudo apt-get install -y ejabberd';

/** Where Debian's package puts what test/support/ejabberd.ts uses (/usr/sbin is not on every PATH). */
const EJABBERDCTL = '/usr/sbin/ejabberdctl';
const EJABBERD_INETRC = '/etc/ejabberd/inetrc';

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

export function ejabberdInstalled(): boolean {
  try {
    fs.accessSync(EJABBERDCTL, fs.constants.X_OK);
    return fs.existsSync(EJABBERD_INETRC) && fs.existsSync('/usr/bin/erl'); // ejabberdctl runs /usr/bin/erl
  } catch {
    return false;
  }
}

/** A server the project needs, as a Debian package. */
export interface ServerPackage {
  /** Debian package name */
  pkg: string;
  /** for messages */
  label: string;
  installed(): boolean;
  /** System services to stop and disable after installing it; `hadErlang`: Erlang was there before. */
  services(hadErlang: boolean): string[];
}

export const PROSODY: ServerPackage = { pkg: 'prosody', label: 'Prosody', installed: prosodyInstalled, services: () => ['prosody'] };
export const EJABBERD: ServerPackage = {
  pkg: 'ejabberd',
  label: 'ejabberd',
  installed: ejabberdInstalled,
  // erlang-base enables epmd.socket (port 4369, every interface) where systemd runs; the tests need
  // no epmd. Left alone when Erlang was installed before: someone else may use it.
  services: (hadErlang) => (hadErlang ? ['ejabberd'] : ['ejabberd', 'epmd.socket', 'epmd']),
};

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

/** The pidfiles of a service that runs: /run/NAME.pid, or any /run/NAME/*.pid. */
function pidFiles(base: string): string[] {
  let inDir: string[] = [];
  try {
    inDir = fs.readdirSync(`/run/${base}`).filter((f) => f.endsWith('.pid'));
  } catch {
    /* no such directory */
  }
  return [...inDir, ...(fs.existsSync(`/run/${base}.pid`) ? [`${base}.pid`] : [])];
}

/** Stops and disables a system service that a package install may have started. Errors are ignored. */
export function stopSystemService(name: string, log: (s: string) => void): void {
  if (fs.existsSync('/run/systemd/system') && onPath('systemctl')) {
    log(`stopping and disabling the system service the install started: systemctl disable --now ${name}`);
    run('systemctl', ['disable', '--now', name], true);
    return;
  }
  // No systemd running (containers, sysvinit).
  const base = name.replace(/\.socket$/, '');
  if (base === 'epmd') {
    // An epmd started by the install stops on request (refused while a node uses it).
    if (fs.existsSync('/usr/bin/epmd')) run('/usr/bin/epmd', ['-kill'], true);
    return;
  }
  // Stop only what runs (it has a pidfile): ejabberd's init script (stop, status) runs ejabberdctl,
  // which starts an epmd listening on every interface just to find out that nothing runs.
  // PostgreSQL's clusters each have one: /run/postgresql/15-main.pid.
  if (pidFiles(base).length > 0) {
    log(`stopping the system service the install started: service ${base} stop`);
    if (onPath('service')) {
      run('service', [base, 'stop'], true);
    } else if (onPath('invoke-rc.d')) {
      run('invoke-rc.d', [base, 'stop'], true);
    }
  }
  if (onPath('update-rc.d')) run('update-rc.d', [base, 'disable'], true);
}

/**
 * Ensures every package of `servers` is installed (see the file comment). `log` receives one line
 * per thing done; nothing is logged when they are all there. Not root and something missing →
 * throws an Error whose message is the command to run (`sudo apt-get install -y …`).
 */
export async function ensurePackages(servers: ServerPackage[], log: (s: string) => void): Promise<void> {
  const missing = servers.filter((s) => !s.installed());
  if (missing.length === 0) return;
  const pkgs = missing.map((s) => s.pkg);
  const labels = missing.map((s) => s.label).join(' and ');
  if (!isRoot()) {
    throw new Error(`sudo apt-get install -y ${pkgs.join(' ')}`);
  }
  const hadErlang = fs.existsSync('/usr/bin/erl') || fs.existsSync('/usr/bin/epmd');
  log(`${labels} ${missing.length > 1 ? 'are' : 'is'} not installed: installing the Debian package${missing.length > 1 ? 's' : ''} (apt-get install -y ${pkgs.join(' ')})`);
  aptInstall(pkgs, log);
  for (const s of missing) for (const svc of s.services(hadErlang)) stopSystemService(svc, log);
  const still = missing.filter((s) => !s.installed());
  if (still.length > 0) {
    throw new Error(`apt-get installed ${pkgs.join(' ')}, but ${still.map((s) => s.label).join(' and ')} still cannot be found`);
  }
  log(`${labels} installed`);
}

/** Ensures `prosody` and `prosodyctl` are installed (`npm start`). */
export async function ensureProsody(log: (s: string) => void): Promise<void> {
  await ensurePackages([PROSODY], log);
}

/** Ensures ejabberd (Debian's package: /usr/sbin/ejabberdctl, Erlang) is installed. */
export async function ensureEjabberd(log: (s: string) => void): Promise<void> {
  await ensurePackages([EJABBERD], log);
}

/** Debian's Chromium, driven by playwright-core in test/browser (it cannot download a browser). */
export const CHROMIUM: ServerPackage = {
  pkg: 'chromium',
  label: 'Chromium',
  installed: () => fs.existsSync('/usr/bin/chromium'),
  services: () => [],
};

/**
 * The directory of the newest PostgreSQL server binaries Debian installed (/usr/lib/postgresql/N/bin:
 * the packages keep initdb and postgres off the PATH), or null.
 */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = fs.readdirSync(root).filter((v) => /^\d+$/.test(v));
  } catch {
    return null;
  }
  for (const v of versions.sort((a, b) => Number(b) - Number(a))) {
    const bin = path.join(root, v, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'postgres'))) return bin;
  }
  return null;
}

/** Debian's PostgreSQL server, for the tests of the store on PostgreSQL (test/support/postgres.ts). */
export const POSTGRESQL: ServerPackage = {
  pkg: 'postgresql',
  label: 'PostgreSQL',
  installed: () => postgresBinDir() !== null,
  // The package creates and starts a cluster on port 5432; the tests run their own.
  services: () => ['postgresql'],
};

/** Debian's Exim, the real MTA of the bounce tests (test/support/exim.ts runs its own, by PID). */
export const EXIM: ServerPackage = {
  pkg: 'exim4-daemon-light',
  label: 'Exim',
  installed: () => fs.existsSync('/usr/sbin/exim4'),
  // The package starts Exim on port 25; the tests run their own on free ports.
  services: () => ['exim4'],
};

/** libpq's headers, against which `npm ci` builds pg-native, the PostgreSQL store's client. */
export const LIBPQ_DEV: ServerPackage = {
  pkg: 'libpq-dev',
  label: "libpq's headers",
  installed: () => fs.existsSync('/usr/bin/pg_config'),
  services: () => [],
};

/**
 * pg-native is an optional dependency: without libpq-dev at `npm ci` it was left out. Once the
 * headers are there, `npm rebuild libpq` builds it in place.
 */
function ensurePgNative(log: (s: string) => void): void {
  const root = path.resolve(__dirname, '..');
  const loads = () => spawnSync(process.execPath, ['-e', "require('pg-native')"], { cwd: root }).status === 0;
  if (loads()) return;
  log("pg-native (the PostgreSQL store's client) is not built: npm rebuild libpq");
  if (spawnSync('npm', ['rebuild', 'libpq'], { cwd: root, stdio: 'inherit' }).status !== 0 || !loads()) {
    throw new Error('cd ' + root + ' && npm rebuild libpq (with libpq-dev installed)');
  }
}

/**
 * Ensures every server the integration tests run against, and the browser, is installed (`npm
 * test`), in one apt-get; that pg-native is built; then that Prosody 13 and ejabberd 24.12 are
 * unpacked in the test cache. Not root and something missing → throws an Error whose message is
 * the command(s) to run.
 */
export async function ensureTestServers(log: (s: string) => void): Promise<void> {
  await ensurePackages([PROSODY, EJABBERD, CHROMIUM, POSTGRESQL, EXIM, LIBPQ_DEV], log);
  ensurePgNative(log);
  ensureBackports(log);
}

if (require.main === module) {
  // `tsx scripts/ensure-prosody.ts` (Prosody); `… --test` (every server the tests need)
  const ensure = process.argv.includes('--test') ? ensureTestServers : ensureProsody;
  ensure((s) => console.error(`[ensure-prosody] ${s}`)).catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
