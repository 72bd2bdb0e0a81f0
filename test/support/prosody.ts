/**
 * A real Prosody for integration tests: its own directory under test/.tmp/, its own free ports on
 * 127.0.0.1, started in the foreground and stopped by its PID. The system's 0.12 by default, or the
 * backported 13 with PROSODY_VERSION=13 (test/support/servers.ts).
 *
 * Several instances may run at once (one per test file, or per jest worker). Every started
 * instance is killed when the test process exits (exit hook), and, where `setpriv` exists, the
 * kernel sends it SIGTERM when the process that started it dies (PR_SET_PDEATHSIG), so a crashed
 * or killed test run never leaves a Prosody behind.
 */
import { spawn, execFile, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { canConnect, portFree, sleep } from '../../scripts/net';
import { prosodyBinaries, type ProsodyBinaries } from './servers';

export interface ProsodyOptions {
  /** The main VirtualHost. Default 'localhost'. */
  host?: string;
  /** `Component "domain"` entries with `component_secret`. */
  components?: { domain: string; secret: string }[];
  /** `admins` under the main VirtualHost (e.g. ['invites.localhost'] to allow XEP-0133 add-user). */
  hostAdmins?: string[];
  /** e.g. 'anon.localhost': a VirtualHost with authentication = "anonymous". */
  anonymousHost?: string;
  /** Extra Lua lines under the anonymous VirtualHost. */
  anonymousHostConfig?: string;
  /**
   * MUC services: `Component "domain" "muc"` each; with `admins` (e.g. the invites component), also
   * `component_admins_as_room_owners = true` (needed on 13).
   */
  muc?: { domain: string; admins?: string[] }[];
  /** Extra Lua lines under the main VirtualHost. */
  hostConfig?: string;
  /** Extra Lua lines in the global section. */
  globalConfig?: string;
  /** Extra modules_enabled (global). */
  modules?: string[];
  /** Extra plugin_paths (absolute, or relative to the project root). */
  pluginPaths?: string[];
  /** The lowest level written to prosody.log (default 'debug'; a load test may want 'info'). */
  logLevel?: 'debug' | 'info' | 'warn';
}

export interface ProsodyPorts {
  c2s: number;
  component: number;
  http: number;
}

/** The project root (test/support/ → ../..). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
/** Where every test instance gets its directory. */
export const TMP_ROOT = path.join(PROJECT_ROOT, 'test', '.tmp');

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** Modules every test instance loads (besides Prosody's autoloaded ones). */
const BASE_MODULES = [
  'roster',
  'saslauth',
  'disco',
  'carbons',
  'private',
  'vcard',
  'version',
  'uptime',
  'time',
  'ping',
  'blocklist',
  'offline',
  'adhoc',
  'admin_adhoc',
  'posix',
  'http',
];

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      try {
        if (child.pid) {
          process.kill(child.pid, 'SIGCONT');
          process.kill(child.pid, 'SIGTERM');
        }
      } catch {
        /* already gone */
      }
    }
  });
}

function lua(s: string): string {
  return JSON.stringify(s); // a JSON string is a valid Lua string literal for what we put there
}

function luaList(items: string[]): string {
  return `{ ${items.map(lua).join(', ')} }`;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

let setprivPath: string | null | undefined;
function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) {
    if (fs.existsSync(p)) {
      setprivPath = p;
      break;
    }
  }
  return setprivPath;
}

/** Is this TCP port free on 127.0.0.1 (can we bind it right now)? */

/** A port the OS assigns (from the ephemeral range). */
function osPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

/**
 * `n` distinct ports that the OS lets us bind on 127.0.0.1 now. They are taken below the kernel's
 * ephemeral range when there is room, so that an outgoing connection cannot grab one of them while
 * an instance is stopped for a restart.
 */
export async function freePorts(n: number): Promise<number[]> {
  let low = 32768;
  try {
    const range = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    low = Number(range[0]) || low;
  } catch {
    /* not Linux */
  }
  const min = 10000;
  const max = low - 1;
  const out: number[] = [];
  for (let attempt = 0; out.length < n && attempt < 200; attempt++) {
    const port = max - min > 1000 ? min + Math.floor(Math.random() * (max - min)) : await osPort();
    if (out.includes(port)) continue;
    if (await portFree(port)) out.push(port);
  }
  if (out.length < n) throw new Error('could not find free ports on 127.0.0.1');
  return out;
}



/** Internal storage's file-name encoding (util.datamanager): every non-alphanumeric → %xx. */
function dmEncode(s: string): string {
  return s.replace(/[^A-Za-z0-9]/g, (c) => {
    // Lua's %W works on bytes
    return Array.from(Buffer.from(c, 'utf8'))
      .map((b) => '%' + b.toString(16).padStart(2, '0'))
      .join('');
  });
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin')
    .split(path.delimiter)
    .some((d) => d && fs.existsSync(path.join(d, cmd)));
}

/** Removes directories of instances that died with their test process more than a day ago. */
function sweepStaleDirs(): void {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(TMP_ROOT).filter((e) => e.startsWith('prosody-'));
  } catch {
    return;
  }
  for (const e of entries) {
    const dir = path.join(TMP_ROOT, e);
    try {
      if (fs.statSync(dir).mtimeMs > dayAgo) continue;
      const pid = Number(fs.readFileSync(path.join(dir, 'prosody.pid'), 'utf8').trim());
      if (pid) {
        try {
          process.kill(pid, 0);
          continue; // still running
        } catch {
          /* dead */
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* leave it */
    }
  }
}

/** A server could not bind the ports it was given (another process took one since freePorts). */
export class PortBindError extends Error {}

/**
 * Starts a server on fresh ports, up to 5 times: `make` gets `n` free ports and returns an instance;
 * `launch` starts it and fails with PortBindError when another process took one of them meanwhile.
 */
export async function startOnFreePorts<T extends { stop(): Promise<void> }>(n: number, make: (ports: number[]) => T, launch: (server: T) => Promise<void>): Promise<T> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const server = make(await freePorts(n));
    try {
      await launch(server);
      return server;
    } catch (err) {
      lastErr = err;
      await server.stop().catch(() => undefined);
      if (!(err instanceof PortBindError)) throw err;
    }
  }
  throw lastErr;
}

export class TestProsody {
  readonly host: string;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly ports: ProsodyPorts;
  /** The Prosody this instance runs (PROSODY_VERSION). */
  readonly binaries: ProsodyBinaries;
  /** The version it reported at start-up, e.g. "13.0.1". */
  reportedVersion = '';
  private readonly opts: ProsodyOptions;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private logStart = 0;
  private lastLog = '';
  private removed = false;

  private constructor(opts: ProsodyOptions, dir: string, ports: ProsodyPorts, binaries: ProsodyBinaries) {
    this.opts = opts;
    this.binaries = binaries;
    this.host = opts.host ?? 'localhost';
    this.dir = dir;
    this.ports = ports;
    this.configFile = path.join(dir, 'prosody.cfg.lua');
    this.logFile = path.join(dir, 'prosody.log');
  }

  /** Starts a fresh instance and resolves once its c2s and component ports accept connections. */
  static async start(opts: ProsodyOptions = {}): Promise<TestProsody> {
    const binaries = prosodyBinaries();
    installExitHook();
    fs.mkdirSync(TMP_ROOT, { recursive: true });
    sweepStaleDirs();
    return startOnFreePorts(3, ([c2s, component, http]) => {
      const p = new TestProsody(opts, fs.mkdtempSync(path.join(TMP_ROOT, 'prosody-')), { c2s, component, http }, binaries);
      p.writeConfig();
      return p;
    }, (p) => p.launch());
  }

  /** The PID of the running Prosody (0 when stopped). */
  get pid(): number {
    return this.child?.pid ?? 0;
  }

  /** 'xmpp://127.0.0.1:PORT' of the component port. */
  componentUrl(): string {
    return `xmpp://127.0.0.1:${this.ports.component}`;
  }

  /** 'xmpp://127.0.0.1:PORT' of the c2s port. */
  c2sUrl(): string {
    return `xmpp://127.0.0.1:${this.ports.c2s}`;
  }

  /** `prosodyctl register`. `user` is a localpart (on `host`) or a bare JID. */
  async register(user: string, password: string): Promise<void> {
    const [local, domain] = this.splitUser(user);
    await this.prosodyctl(['register', local, domain, password]);
    if (!(await this.userExists(`${local}@${domain}`))) {
      throw new Error(`prosodyctl register ${local}@${domain}: the account was not created\n${this.log()}`);
    }
  }

  /** Does the account exist (internal storage, read from the data directory)? */
  async userExists(user: string): Promise<boolean> {
    const [local, domain] = this.splitUser(user);
    const file = path.join(this.dir, 'data', dmEncode(domain), 'accounts', `${dmEncode(local.toLowerCase())}.dat`);
    return fs.existsSync(file);
  }

  /** Runs prosodyctl with this instance's config; resolves with its stdout. */
  prosodyctl(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        this.binaries.prosodyctl,
        ['--config', this.configFile, ...args],
        { cwd: this.dir, timeout: 30_000 },
        (err, stdout, stderr) => {
          if (err) {
            reject(new Error(`prosodyctl ${args[0]} failed: ${err.message}\n${stdout}${stderr}`));
          } else {
            resolve(stdout);
          }
        },
      );
    });
  }

  /** SIGTERM by PID, waits for the exit (SIGKILL after a while). Removes the directory unless KEEP_TEST_TMP is set. */
  async stop(): Promise<void> {
    await this.halt();
    this.lastLog = this.readLog();
    if (!process.env.KEEP_TEST_TMP && !this.removed) {
      this.removed = true;
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** Stops and starts again on the same ports and data. */
  async restart(): Promise<void> {
    if (this.removed) throw new Error('TestProsody.restart() after stop()');
    await this.halt();
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        await this.launch();
        return;
      } catch (err) {
        if (!(err instanceof PortBindError) || Date.now() > deadline) throw err;
        await this.halt();
        await sleep(250);
      }
    }
  }

  /** SIGSTOP: the server stops answering, connections stay open. */
  pause(): void {
    if (this.child?.pid) process.kill(this.child.pid, 'SIGSTOP');
  }

  /** SIGCONT. */
  resume(): void {
    if (this.child?.pid) process.kill(this.child.pid, 'SIGCONT');
  }

  /** Its log so far (all runs of this instance), for debugging failed tests. */
  log(): string {
    if (this.removed) return this.lastLog;
    return this.readLog();
  }

  // ---------------------------------------------------------------------------------------------

  private splitUser(user: string): [string, string] {
    const at = user.indexOf('@');
    return at < 0 ? [user, this.host] : [user.slice(0, at), user.slice(at + 1)];
  }

  private readLog(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  private writeConfig(): void {
    const o = this.opts;
    const d = this.dir;
    fs.mkdirSync(path.join(d, 'data'), { recursive: true });
    fs.mkdirSync(path.join(d, 'certs'), { recursive: true }); // keeps certmanager quiet
    const pluginPaths = (o.pluginPaths ?? []).map((p) => path.resolve(PROJECT_ROOT, p));
    const modules = [...BASE_MODULES, ...(o.modules ?? [])].filter((m, i, a) => a.indexOf(m) === i);
    const lines: string[] = [
      '-- generated by test/support/prosody.ts',
      isRoot() ? 'run_as_root = true' : '',
      `pidfile = ${lua(path.join(d, 'prosody.pid'))}`,
      `data_path = ${lua(path.join(d, 'data'))}`,
      `certificates = ${lua(path.join(d, 'certs'))}`,
      pluginPaths.length ? `plugin_paths = ${luaList(pluginPaths)}` : '',
      `interfaces = { "127.0.0.1" }`,
      `local_interfaces = { "127.0.0.1" }`,
      `c2s_ports = { ${this.ports.c2s} }`,
      `c2s_interfaces = { "127.0.0.1" }`,
      `c2s_direct_tls_ports = { }`,
      `legacy_ssl_ports = { }`,
      `s2s_ports = { }`,
      `s2s_direct_tls_ports = { }`,
      `component_ports = { ${this.ports.component} }`,
      `component_interfaces = { "127.0.0.1" }`,
      `http_ports = { ${this.ports.http} }`,
      `http_interfaces = { "127.0.0.1" }`,
      `https_ports = { }`,
      `modules_enabled = ${luaList(modules)}`,
      `modules_disabled = { "s2s", "s2s_auth_certs", "dialback" }`,
      `log = { { levels = { min = ${lua(o.logLevel ?? 'debug')} }, to = "file", filename = ${lua(this.logFile)} } }`,
      `c2s_require_encryption = false`,
      `s2s_require_encryption = false`,
      `allow_unencrypted_plain_auth = true`,
      `disable_sasl_mechanisms = { "SCRAM-SHA-1" }`,
      `authentication = "internal_hashed"`,
      `storage = "internal"`,
      o.globalConfig ?? '',
      '',
      `VirtualHost ${lua(this.host)}`,
      o.hostAdmins?.length ? `  admins = ${luaList(o.hostAdmins)}` : '',
      o.hostConfig ?? '',
      '',
    ];
    if (o.anonymousHost) {
      lines.push(`VirtualHost ${lua(o.anonymousHost)}`, '  authentication = "anonymous"', o.anonymousHostConfig ?? '', '');
    }
    for (const c of o.components ?? []) {
      lines.push(`Component ${lua(c.domain)}`, `  component_secret = ${lua(c.secret)}`, '');
    }
    for (const m of o.muc ?? []) {
      // Prosody 13 makes the component admins room owners only with component_admins_as_room_owners.
      lines.push(`Component ${lua(m.domain)} "muc"`, ...(m.admins?.length ? [`  admins = ${luaList(m.admins)}`, '  component_admins_as_room_owners = true'] : []), '');
    }
    fs.writeFileSync(this.configFile, lines.filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n') + '\n');
  }

  private async launch(): Promise<void> {
    const bin = this.binaries.prosody;
    if (!path.isAbsolute(bin) && !onPath(bin)) {
      throw new Error(
        'prosody is not installed: run `npm test` as root to install it, or: sudo apt-get install -y prosody',
      );
    }
    this.logStart = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    const setpriv = findSetpriv();
    const cmd = setpriv ?? bin;
    const args = setpriv
      ? ['--pdeathsig', 'SIGTERM', bin, '--config', this.configFile, '-F']
      : ['--config', this.configFile, '-F'];
    const child = spawn(cmd, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    let exitInfo: string | null = null;
    let spawnError: Error | null = null;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        running.delete(child);
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        running.delete(child);
        resolve();
      });
    });
    this.child = child;
    running.add(child);

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (spawnError) {
        this.child = null;
        const e = spawnError as NodeJS.ErrnoException;
        throw new Error(
          e.code === 'ENOENT'
            ? 'prosody is not installed (run `npm test` as root to install it, or: sudo apt-get install -y prosody)'
            : `could not start prosody: ${e.message}`,
        );
      }
      if (exitInfo) {
        this.child = null;
        throw new Error(`prosody exited during start-up (${exitInfo})\n${output}\n${this.newLog()}`);
      }
      const log = this.newLog();
      if (/Failed to open server port|Failed to activate service/.test(log)) {
        throw new PortBindError(`prosody could not bind its ports ${JSON.stringify(this.ports)}\n${log}`);
      }
      if (
        /Activated service 'c2s'/.test(log) &&
        (!this.opts.components?.length || /Activated service 'component'/.test(log)) &&
        (await canConnect(this.ports.c2s)) &&
        (!this.opts.components?.length || (await canConnect(this.ports.component)))
      ) {
        this.checkVersion(log);
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`prosody did not come up within ${START_TIMEOUT_MS} ms\n${output}\n${log}`);
      }
      await sleep(50);
    }
  }

  /** Fails the start when the server is not the version the tests were asked to run against. */
  private checkVersion(log: string): void {
    const m = /Hello and welcome to Prosody version (\S+)/.exec(log);
    this.reportedVersion = m?.[1] ?? '';
    if (!m || !this.binaries.reports.test(m[1])) {
      throw new Error(
        `PROSODY_VERSION=${this.binaries.version}, but ${this.binaries.prosody} started Prosody ${m?.[1] ?? '(no version in its log)'}`,
      );
    }
  }

  private newLog(): string {
    try {
      const buf = fs.readFileSync(this.logFile);
      return buf.subarray(this.logStart).toString('utf8');
    } catch {
      return '';
    }
  }

  private async halt(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGTERM');
        process.kill(child.pid, 'SIGCONT'); // in case it is paused
      } catch {
        /* gone */
      }
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
      if ((await Promise.race([this.exited, timer])) === 'timeout') {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await this.exited;
      }
    } else {
      await this.exited;
    }
    running.delete(child);
  }
}

/** A random secret (hex). */
export function randomSecret(bytes = 16): string {
  return randomBytes(bytes).toString('hex');
}
