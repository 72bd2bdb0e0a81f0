/**
 * Today's servers for the integration tests, beside the system's packages: Prosody 13 and
 * ejabberd 24.12 from Debian's bookworm-backports, downloaded with `apt-get download` and unpacked
 * with `dpkg -x` into a cache directory outside the checkout. Nothing is installed and the system's
 * apt configuration is not touched: apt runs with a private sources list (bookworm-backports only,
 * checked against Debian's archive key) and private state directories inside the cache.
 *
 * - Prosody 13 runs on bookworm's installed Lua libraries; its launchers (`prosody`, `prosodyctl`)
 *   are copies with the `CFG_*` paths pointing into the unpacked tree.
 * - ejabberd 24.12 runs on bookworm's Erlang 25, with the newer `erlang-p1-*`/`erlang-jose` it needs
 *   (every dependency whose installed version is too old, found from the package's `Depends`)
 *   unpacked beside it and put first on the code path (`-pa`); its `ejabberdctl` is a copy whose
 *   `ERL_LIBS` points into the unpacked tree.
 *
 * Cache: `$XMPP_INVITES_TEST_CACHE`, by default /var/cache/xmpp-invites-test (readable by the
 * `ejabberd` user the tests run ejabberd as). A server is ready when its directory holds a
 * `VERSION` file (written last); a second run fetches nothing.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CACHE_ROOT = process.env.XMPP_INVITES_TEST_CACHE || '/var/cache/xmpp-invites-test';
/** Where bookworm-backports is fetched from (`XMPP_INVITES_BACKPORTS_MIRROR` overrides it). */
export const MIRROR = process.env.XMPP_INVITES_BACKPORTS_MIRROR || 'http://deb.debian.org/debian';
const SUITE = 'bookworm-backports';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface Backport {
  /** directory name under the cache, and what the tests call it */
  id: 'prosody-13' | 'ejabberd-24.12';
  label: string;
  /** the source package's binary package */
  pkg: string;
  /** the versions accepted (the newest one bookworm-backports has is taken) */
  versions: RegExp;
}

export const PROSODY_13: Backport = { id: 'prosody-13', label: 'Prosody 13', pkg: 'prosody', versions: /^13\.0\./ };
export const EJABBERD_24: Backport = { id: 'ejabberd-24.12', label: 'ejabberd 24.12', pkg: 'ejabberd', versions: /^24\.12-/ };
export const BACKPORTS: Backport[] = [PROSODY_13, EJABBERD_24];

/** The command a non-root user is told to run when a backport is missing. */
export const BACKPORTS_COMMAND = 'sudo npx tsx scripts/ensure-prosody.ts --test';

export function backportDir(b: Backport): string {
  return path.join(CACHE_ROOT, b.id);
}

/** The Debian version unpacked for `b` (e.g. "13.0.1-1~bpo12+1"), or null when it is not ready. */
export function backportVersion(b: Backport): string | null {
  try {
    return fs.readFileSync(path.join(backportDir(b), 'VERSION'), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** The unpacked Prosody 13: its launchers. Throws a readable error when it is not there. */
export function prosody13(): { prosody: string; prosodyctl: string; version: string } {
  const version = requireReady(PROSODY_13);
  const d = backportDir(PROSODY_13);
  return { prosody: path.join(d, 'bin', 'prosody'), prosodyctl: path.join(d, 'bin', 'prosodyctl'), version };
}

/** The unpacked ejabberd 24.12: its ejabberdctl and the package's inetrc. Throws when it is not there. */
export function ejabberd24(): { ejabberdctl: string; inetrc: string; version: string } {
  const version = requireReady(EJABBERD_24);
  const d = backportDir(EJABBERD_24);
  return { ejabberdctl: path.join(d, 'ejabberdctl'), inetrc: path.join(d, 'root', 'etc', 'ejabberd', 'inetrc'), version };
}

function requireReady(b: Backport): string {
  const v = backportVersion(b);
  if (!v) {
    throw new Error(
      `${b.label} (Debian's ${SUITE}) is not unpacked in ${backportDir(b)}: run \`npm test\` as root, or: ${BACKPORTS_COMMAND}`,
    );
  }
  return v;
}

// ---- fetching --------------------------------------------------------------------------------

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd?: string): Run {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' } });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function must(r: Run, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stderr.trim().split('\n').slice(-8).join('\n')}`);
  return r.stdout;
}

/** apt-get / apt-cache with the private configuration (bookworm-backports only). */
function aptArgs(): string[] {
  const a = path.join(CACHE_ROOT, 'apt');
  return [
    '-o', `Dir::Etc::SourceList=${path.join(a, 'sources.list')}`,
    '-o', 'Dir::Etc::SourceParts=/nonexistent',
    '-o', `Dir::State::Lists=${path.join(a, 'lists')}`,
    '-o', `Dir::Cache=${path.join(a, 'cache')}`,
    '-o', 'APT::Sandbox::User=root', // the private directories belong to root
    '-q',
  ];
}

function prepareApt(log: (s: string) => void): void {
  const a = path.join(CACHE_ROOT, 'apt');
  for (const d of ['lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(a, d), { recursive: true });
  if (!fs.existsSync(KEYRING)) throw new Error(`${KEYRING} is missing (package debian-archive-keyring): cannot check ${SUITE}`);
  fs.writeFileSync(path.join(a, 'sources.list'), `deb [signed-by=${KEYRING}] ${MIRROR} ${SUITE} main\n`);
  log(`fetching the package list of ${SUITE} from ${MIRROR} (private apt state in ${a}; the system's apt is not changed)`);
  must(run('apt-get', [...aptArgs(), 'update']), `apt-get update (${SUITE}, private sources list)`);
}

/** Versions of `pkg` in bookworm-backports, newest first. */
function backportVersions(pkg: string): string[] {
  const out = run('apt-cache', [...aptArgs(), 'madison', pkg]).stdout;
  const versions = out
    .split('\n')
    .map((l) => l.split('|').map((s) => s.trim()))
    .filter((f) => f.length >= 3 && f[0] === pkg && f[2].includes(SUITE))
    .map((f) => f[1]);
  return versions.sort((x, y) => (dpkgCompare(x, 'gt', y) ? -1 : dpkgCompare(x, 'lt', y) ? 1 : 0));
}

function dpkgCompare(a: string, op: string, b: string): boolean {
  return run('dpkg', ['--compare-versions', a, op, b]).status === 0;
}

function installedVersion(pkg: string): string | null {
  const r = run('dpkg-query', ['-W', '-f=${Status}\t${Version}', pkg]);
  if (r.status !== 0) return null;
  const [status, version] = r.stdout.split('\t');
  return /install ok installed/.test(status) ? version : null;
}

/** The version of a virtual package (e.g. `erlang-abi (= 17.0)`) that an installed package provides. */
function providedVersion(name: string): string | null {
  const r = run('dpkg-query', ['-W', '-f=${Status}\t${Provides}\n']);
  for (const line of r.stdout.split('\n')) {
    const [status, provides] = line.split('\t');
    if (!provides || !/install ok installed/.test(status)) continue;
    for (const p of provides.split(',')) {
      const m = /^\s*(\S+)\s*(?:\(=\s*([^)]+)\))?/.exec(p);
      if (m && m[1] === name && m[2]) return m[2].trim();
    }
  }
  return null;
}

/** `Depends` of pkg=version in bookworm-backports: [name, op, version] (alternatives: the first). */
function dependsOf(pkg: string, version: string): [string, string | null, string | null][] {
  const show = must(run('apt-cache', [...aptArgs(), 'show', `${pkg}=${version}`]), `apt-cache show ${pkg}=${version}`);
  const line = /^Depends: (.*)$/m.exec(show)?.[1] ?? '';
  return line
    .split(',')
    .map((d) => d.split('|')[0].trim())
    .filter(Boolean)
    .map((d) => {
      const m = /^([^\s(:]+)(?::\S+)?\s*(?:\((<<|<=|=|>=|>>)\s*([^)]+)\))?/.exec(d)!;
      return [m[1], m[2] ?? null, m[3]?.trim() ?? null];
    });
}

const APT_OPS: Record<string, string> = { '<<': 'lt', '<=': 'le', '=': 'eq', '>=': 'ge', '>>': 'gt' };

/**
 * The backported dependencies ejabberd needs: every dependency (recursively) whose installed
 * version does not satisfy the backport's `Depends` and that bookworm-backports has in a version
 * that does. A dependency that is neither → an error naming it.
 */
function backportedDeps(pkg: string, version: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (p: string, v: string) => {
    for (const [name, op, want] of dependsOf(p, v)) {
      if (out.has(name) || !op || !want) continue;
      const have = installedVersion(name) ?? providedVersion(name);
      if (have && dpkgCompare(have, APT_OPS[op], want)) continue;
      if (!name.startsWith('erlang-')) {
        throw new Error(`${pkg} ${version} needs ${name} (${op} ${want}); installed: ${have ?? 'none'} (apt-get install -y ${name})`);
      }
      const candidate = backportVersions(name).find((c) => dpkgCompare(c, APT_OPS[op], want));
      if (!candidate) throw new Error(`${pkg} ${version} needs ${name} (${op} ${want}), which neither the system nor ${SUITE} has`);
      out.set(name, candidate);
      visit(name, candidate);
    }
  };
  visit(pkg, version);
  return out;
}

function download(pkgs: Map<string, string>, log: (s: string) => void): string[] {
  const debs = path.join(CACHE_ROOT, 'debs');
  fs.mkdirSync(debs, { recursive: true });
  const specs = [...pkgs].map(([p, v]) => `${p}=${v}`);
  log(`apt-get download ${specs.join(' ')}`);
  must(run('apt-get', [...aptArgs(), 'download', ...specs], debs), `apt-get download ${specs.join(' ')}`);
  return [...pkgs].map(([p, v]) => {
    const file = fs.readdirSync(debs).find((f) => f.startsWith(`${p}_${v.replace(/:/g, '%3a')}_`) && f.endsWith('.deb'));
    if (!file) throw new Error(`apt-get download ${p}=${v} left no .deb in ${debs}`);
    return path.join(debs, file);
  });
}

function unpack(debs: string[], into: string): void {
  fs.mkdirSync(into, { recursive: true });
  for (const deb of debs) must(run('dpkg', ['-x', deb, into]), `dpkg -x ${path.basename(deb)}`);
}

/** Replaces a shell/Lua assignment line `NAME=...` (must exist). */
function setLine(text: string, name: string, value: string, file: string): string {
  const re = new RegExp(`^${name}=.*$`, 'm');
  if (!re.test(text)) throw new Error(`${file}: no ${name}= line to rewrite`);
  return text.replace(re, () => `${name}=${value}`);
}

/** Prosody's launcher (`prosody`, `prosodyctl`) with its CFG_* paths pointing into an unpacked tree. */
export function rewriteProsodyLauncher(text: string, root: string, dataDir: string, file = 'prosody'): string {
  const q = (s: string) => `'${s}';`;
  text = setLine(text, 'CFG_SOURCEDIR', q(path.join(root, 'usr', 'lib', 'prosody')), file);
  text = setLine(text, 'CFG_CONFIGDIR', q(path.join(root, 'etc', 'prosody')), file);
  text = setLine(text, 'CFG_PLUGINDIR', q(path.join(root, 'usr', 'lib', 'prosody', 'modules') + '/'), file);
  return setLine(text, 'CFG_DATADIR', q(dataDir), file);
}

/**
 * ejabberd's ejabberdctl with ERL_LIBS pointing into an unpacked tree and `pa` (ebin directories)
 * put first on the code path of every node it starts.
 */
export function rewriteEjabberdctl(text: string, root: string, pa: string[], file = 'ejabberdctl'): string {
  if ([root, ...pa].some((p) => /\s/.test(p))) throw new Error(`ejabberdctl cannot work in a path with spaces: ${root}`);
  // The package's own value (e.g. '/usr/lib/x86_64-linux-gnu', per architecture), inside `root`.
  const libs = /^ERL_LIBS='?([^'\s]+)'?\s*$/m.exec(text)?.[1];
  if (!libs) throw new Error(`${file}: no ERL_LIBS= line to rewrite`);
  text = setLine(text, 'ERL_LIBS', `'${path.join(root, libs)}'`, file);
  const opts = /^ERLANG_OPTS="(.*)"$/m;
  if (!opts.test(text)) throw new Error(`${file}: no ERLANG_OPTS= line to extend with -pa`);
  return text.replace(opts, (_m, v: string) => `ERLANG_OPTS="${v} -pa ${pa.join(' ')}"`);
}

function finishProsody(dir: string, root: string, version: string): void {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  for (const name of ['prosody', 'prosodyctl']) {
    const src = path.join(root, 'usr', 'bin', name);
    const text = rewriteProsodyLauncher(fs.readFileSync(src, 'utf8'), root, path.join(dir, 'data'), src);
    fs.writeFileSync(path.join(dir, 'bin', name), text, { mode: 0o755 });
  }
  fs.writeFileSync(path.join(dir, 'VERSION'), `${version}\n`);
}

function finishEjabberd(dir: string, root: string, version: string): void {
  const libDir = path.join(root, 'usr', 'lib', 'erlang', 'lib');
  // The real directories (not the name-version symlinks), each one's ebin first on the code path.
  const pa = fs
    .readdirSync(libDir)
    .filter((e) => !fs.lstatSync(path.join(libDir, e)).isSymbolicLink() && fs.existsSync(path.join(libDir, e, 'ebin')))
    .map((e) => path.join(libDir, e, 'ebin'));
  const src = path.join(root, 'usr', 'sbin', 'ejabberdctl');
  fs.writeFileSync(path.join(dir, 'ejabberdctl'), rewriteEjabberdctl(fs.readFileSync(src, 'utf8'), root, pa, src), { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'VERSION'), `${version}\n`);
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Makes sure every backport the tests use is unpacked in the cache (see the file comment). `log`
 * gets one line per thing done; nothing is logged when all are there. Not root and something
 * missing → throws an Error whose message is the command to run. Fetching fails → throws with what
 * failed (the tests are never skipped for it).
 */
export function ensureBackports(log: (s: string) => void): void {
  const missing = BACKPORTS.filter((b) => !backportVersion(b));
  if (missing.length === 0) return;
  const labels = missing.map((b) => b.label).join(' and ');
  if (!isRoot()) throw new Error(BACKPORTS_COMMAND);
  for (const cmd of ['apt-get', 'apt-cache', 'dpkg']) {
    if (run(cmd, ['--version']).status !== 0) throw new Error(`${cmd} is not available: ${labels} come from Debian's ${SUITE}`);
  }
  log(`${labels} (Debian's ${SUITE}) not in ${CACHE_ROOT}: fetching and unpacking them there (nothing is installed)`);
  fs.mkdirSync(CACHE_ROOT, { recursive: true, mode: 0o755 });
  fs.chmodSync(CACHE_ROOT, 0o755);
  prepareApt(log);
  for (const b of missing) {
    const available = backportVersions(b.pkg);
    const version = available.find((v) => b.versions.test(v));
    if (!version) {
      throw new Error(`${SUITE} has no ${b.label} (${b.pkg} ${b.versions.source}); it offers: ${available.join(', ') || 'nothing'}`);
    }
    const pkgs = new Map<string, string>([[b.pkg, version]]);
    if (b === EJABBERD_24) for (const [p, v] of backportedDeps(b.pkg, version)) pkgs.set(p, v);
    const debs = download(pkgs, log);
    const dir = backportDir(b);
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    const root = path.join(dir, 'root'); // the final place: the launchers name it
    unpack(debs, path.join(tmp, 'root'));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    if (b === PROSODY_13) finishProsody(dir, root, version);
    else finishEjabberd(dir, root, version);
    log(`${b.label}: ${b.pkg} ${version}${pkgs.size > 1 ? ` with ${[...pkgs].slice(1).map(([p, v]) => `${p} ${v}`).join(', ')}` : ''} unpacked in ${dir}`);
  }
}

if (require.main === module) {
  try {
    ensureBackports((s) => console.error(`[backports] ${s}`));
    for (const b of BACKPORTS) console.log(`${b.id}\t${backportVersion(b)}\t${backportDir(b)}`);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
