/**
 * A real ejabberd for integration tests: its own directory under the system temp directory, its own
 * free ports on 127.0.0.1, started in the foreground and stopped by its PID. The system's 23.01 by
 * default, or the backported 24.12 with EJABBERD_VERSION=24.12 (test/support/servers.ts).
 *
 * - No epmd: the node listens for distribution on a free loopback port of its own
 *   (`ERL_DIST_PORT`, and `-kernel inet_dist_use_interface {127,0,0,1}` in the instance's
 *   ejabberdctl.cfg; ejabberdctl reaches the node that way, on 23.01 and 24.12 alike), and has a
 *   node name and an Erlang cookie (HOME = the instance's directory) of its own, so several
 *   instances can run at once, beside other people's.
 * - As root it runs as the `ejabberd` user (setpriv), in a directory owned by that user; as any
 *   other user it runs as that user, with a copy of ejabberdctl that does not insist on `ejabberd`.
 * - ejabberdctl, beam.smp and its helpers (erl_child_setup, eimp) run in a process group of their
 *   own, stopped with SIGTERM to that group (SIGKILL after a while). An exit hook kills every
 *   group still running when the test process exits, and the node halts by itself when the test
 *   process dies without running it (SIGKILL, crash): it watches its stdin, a pipe only the test
 *   process holds open. Directories whose test process is gone are removed at the next start.
 */
import { spawn, execFile, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { PortBindError, startOnFreePorts } from './prosody';
import { ejabberdBinaries, type EjabberdBinaries } from './servers';

/**
 * Where instances get their directories. Not under the project: ejabberd runs as its own user,
 * which must be able to reach the directory, and a checkout may sit below a directory only its
 * owner can enter (a `mktemp -d` clone is mode 0700). The system temp directory (1777) is reachable.
 */
const EJABBERD_ROOT = path.join(os.tmpdir(), 'xmpp-invites-ejabberd');
import { canConnect, sleep } from '../../scripts/net';

export interface EjabberdOptions {
  /** The main virtual host. Default 'localhost'. */
  host?: string;
  /** `ejabberd_service` listener entries: component domain and its password. */
  components?: { domain: string; secret: string }[];
  /**
   * The components are admins (`acl: admin: server: <component>` and `access_rules: configure:
   * allow: admin`), so that they may run XEP-0133 commands (add-user, user-stats) on the host.
   */
  componentAdmin?: boolean;
  /**
   * mod_http_api at `/api` on the http port, restricted with `api_permissions` to 127.0.0.1 and the
   * commands the component uses: register, check_account, add_rosteritem, change_password.
   */
  httpApi?: boolean;
  /** e.g. 'anon.localhost': a second host with SASL ANONYMOUS (`auth_method: anonymous`). */
  anonymousHost?: string;
  /**
   * MUC services (mod_muc). The first is the main host's (global `modules`); each further one gets
   * a host of its own (`mucN.<host>`, no users) whose `host_config` holds only its mod_muc (a
   * host's `modules` there replace the global ones). `componentAdmin`: the components are admins
   * of the service (`acl: muc_admin: server: <component>`, `access_admin: - allow: muc_admin`).
   * Not with `anonymousHost`: that host would serve the first MUC domain a second time.
   */
  muc?: { domain: string; componentAdmin?: boolean }[];
  /**
   * `domain_balancing`: how stanzas to a component connected several times (several `serve`
   * processes) are shared among its connections, per component domain: by what, among how many
   * (23.01 needs `component_number`: without it the component's handshake crashes the listener).
   */
  domainBalancing?: Record<string, { type: 'random' | 'source' | 'destination' | 'bare_source' | 'bare_destination'; components: number }>;
  /**
   * `global_routes: false` on the component listener: each component connection gets the route of
   * the domain it authenticated for only. By default (true) ejabberd routes every domain of the
   * listener to every connection that authenticated for any of them, so several components with
   * domains of their own would receive each other's stanzas.
   */
  ownRoutes?: boolean;
  /**
   * mod_offline: messages to offline accounts are kept (as Prosody keeps them) rather than bounced
   * back to the sender with an error.
   */
  offline?: boolean;
  /** `loglevel` (default 'info'; 'debug' logs every stanza). */
  logLevel?: 'none' | 'emergency' | 'alert' | 'critical' | 'error' | 'warning' | 'notice' | 'info' | 'debug';
}

export interface EjabberdPorts {
  c2s: number;
  component: number;
  http: number;
  /** Erlang distribution (ejabberdctl talks to the node through it). */
  dist: number;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const CTL_TIMEOUT_MS = 30_000;
const OUTPUT_LIMIT = 256 * 1024;

/** Process groups (leader PIDs) of running instances. */
const running = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of running) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}



/** uid and gid of a system user, from /etc/passwd. */
function systemUser(name: string): { uid: number; gid: number } | null {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    /* no passwd */
  }
  return null;
}

/** The start time of a process (field 22 of /proc/PID/stat), to tell a PID from a reused one. */
function startTimeOf(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** `${pid} ${starttime}` of this process: who owns an instance directory. */
function ownerTag(): string {
  return `${process.pid} ${startTimeOf(process.pid) ?? ''}`;
}

function ownerAlive(tag: string): boolean {
  const [pid, start] = tag.trim().split(' ');
  if (!Number(pid)) return false;
  const now = startTimeOf(Number(pid));
  return now !== null && (!start || now === start);
}

/** PIDs of the processes in a process group whose command line mentions `needle`. */
function groupMembers(pgid: number, needle: string): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return out;
  }
  for (const e of entries) {
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgrp !== pgid) continue;
      const cmdline = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(needle)) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Is any process of the group still running? Zombies do not count: once ejabberdctl is gone,
 * beam.smp's parent is whatever reaps orphans, which in a container may never do it.
 */
function groupLive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return true; // no /proc: trust kill(0)
  }
  for (const e of entries) {
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') return true;
    } catch {
      /* gone */
    }
  }
  return false;
}

/**
 * Removes the directories of instances whose test process is gone, killing (by PID, after checking
 * that they run from that directory) any of their processes still alive.
 */
function sweepStaleDirs(): void {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(EJABBERD_ROOT).filter((e) => e.startsWith('ejabberd-'));
  } catch {
    return;
  }
  for (const e of entries) {
    const dir = path.join(EJABBERD_ROOT, e);
    try {
      const ownerFile = path.join(dir, 'owner');
      if (!fs.existsSync(ownerFile)) {
        // being created right now, or a very old layout: leave young ones alone
        if (fs.statSync(dir).mtimeMs > Date.now() - 3600_000) continue;
      } else if (ownerAlive(fs.readFileSync(ownerFile, 'utf8'))) {
        continue;
      }
      const pgid = Number(fs.readFileSync(path.join(dir, 'pgid'), 'utf8').trim() || 0);
      if (pgid) {
        for (const pid of groupMembers(pgid, dir)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* leave it */
    }
  }
}

function yamlString(s: string): string {
  return JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
}

export class TestEjabberd {
  readonly host: string;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly ports: EjabberdPorts;
  /** The Erlang node name, unique per instance. */
  readonly node: string;
  /** The ejabberd this instance runs (EJABBERD_VERSION). */
  readonly binaries: EjabberdBinaries;
  /** The version it reported at start-up, e.g. "24.12". */
  reportedVersion = '';
  private readonly opts: EjabberdOptions;
  private readonly ctlPath: string;
  private readonly runAs: { uid: number; gid: number } | null;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private logStart = 0;
  private lastLog = '';
  private removed = false;

  /** How long the last start took, until every port accepted connections (ms). */
  startMs = 0;

  private constructor(opts: EjabberdOptions, dir: string, ports: EjabberdPorts, runAs: { uid: number; gid: number } | null, binaries: EjabberdBinaries) {
    this.opts = opts;
    this.binaries = binaries;
    this.host = opts.host ?? 'localhost';
    this.dir = dir;
    this.ports = ports;
    this.configFile = path.join(dir, 'ejabberd.yml');
    this.logFile = path.join(dir, 'log', 'ejabberd.log');
    this.node = `ej${randomBytes(5).toString('hex')}@localhost`;
    this.runAs = runAs;
    // The package's ejabberdctl refuses anyone but root and `ejabberd`: as anyone else, a copy that
    // runs as us.
    this.ctlPath = runAs ? binaries.ejabberdctl : path.join(dir, 'ejabberdctl');
  }

  /** Starts a fresh instance; resolves once it has started and its c2s, component and http ports accept connections. */
  static async start(opts: EjabberdOptions = {}): Promise<TestEjabberd> {
    const binaries = ejabberdBinaries(); // throws with the command to run when it is missing
    // As root: as the `ejabberd` user, like the packaged service.
    const runAs = isRoot() ? systemUser('ejabberd') : null;
    if (isRoot() && !runAs) throw new Error('ejabberd is installed but there is no `ejabberd` user');
    installExitHook();
    fs.mkdirSync(EJABBERD_ROOT, { recursive: true });
    fs.chmodSync(EJABBERD_ROOT, 0o755);
    sweepStaleDirs();
    return startOnFreePorts(4, ([c2s, component, http, dist]) => {
      const dir = fs.mkdtempSync(path.join(EJABBERD_ROOT, 'ejabberd-'));
      fs.writeFileSync(path.join(dir, 'owner'), ownerTag());
      const e = new TestEjabberd(opts, dir, { c2s, component, http, dist }, runAs, binaries);
      e.writeConfig();
      return e;
    }, (e) => e.launch());
  }

  /** The PID of the ejabberdctl process that leads the instance's process group (0 when stopped). */
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

  /** mod_http_api's base URL (with `httpApi: true`). */
  apiUrl(): string {
    return `http://127.0.0.1:${this.ports.http}/api`;
  }

  /** `ejabberdctl register`. `user` is a localpart (on `host`) or a bare JID. */
  async register(user: string, password: string): Promise<void> {
    const [local, domain] = this.splitUser(user);
    const r = await this.ctl(['register', local, domain, password]);
    if (r.code !== 0) throw new Error(`ejabberdctl register ${local}@${domain} failed (${r.code}): ${r.output}`);
  }

  /** `ejabberdctl check_account`: 0 = exists, 1 = does not. */
  async userExists(user: string): Promise<boolean> {
    const [local, domain] = this.splitUser(user);
    const r = await this.ctl(['check_account', local, domain]);
    if (r.code === 0) return true;
    if (r.code === 1) return false;
    throw new Error(`ejabberdctl check_account ${local}@${domain} failed (${r.code}): ${r.output}`);
  }

  /** Runs ejabberdctl against this node; resolves with its exit code and output (never rejects on a non-zero code). */
  ctl(args: string[]): Promise<{ code: number; output: string }> {
    if (!this.child) return Promise.reject(new Error('TestEjabberd.ctl: not running'));
    const [cmd, cmdArgs] = this.command([...this.ctlDirArgs(), ...args]);
    return new Promise((resolve, reject) => {
      execFile(cmd, cmdArgs, { cwd: this.dir, env: this.env(), timeout: CTL_TIMEOUT_MS }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
        if (code === null) reject(new Error(`ejabberdctl ${args[0]}: ${err!.message}\n${stdout}${stderr}`));
        else resolve({ code, output: `${stdout}${stderr}`.trim() });
      });
    });
  }

  /** Stops it (SIGTERM to its process group, SIGKILL after a while). Removes the directory unless KEEP_TEST_TMP is set. */
  async stop(): Promise<void> {
    await this.halt();
    this.lastLog = this.readLog();
    if (!process.env.KEEP_TEST_TMP && !this.removed) {
      this.removed = true;
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** Its log so far (ejabberd.log and error.log), for debugging failed tests. */
  log(): string {
    if (this.removed) return this.lastLog;
    return this.readLog();
  }

  // ---------------------------------------------------------------------------------------------

  private splitUser(user: string): [string, string] {
    const at = user.indexOf('@');
    return at < 0 ? [user, this.host] : [user.slice(0, at), user.slice(at + 1)];
  }

  private ctlDirArgs(): string[] {
    return ['--config-dir', this.dir, '--spool', path.join(this.dir, 'db'), '--logs', path.join(this.dir, 'log')];
  }

  /** The command line that runs ejabberdctl as the right user. */
  private command(args: string[]): [string, string[]] {
    if (this.runAs) {
      return ['setpriv', ['--reuid', String(this.runAs.uid), '--regid', String(this.runAs.gid), '--init-groups', this.ctlPath, ...args]];
    }
    return [this.ctlPath, args];
  }

  /** HOME is the instance's directory: the Erlang cookie is created there, one per instance. */
  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: this.dir, LANG: 'C.UTF-8' };
    for (const k of Object.keys(env)) if (k.startsWith('ERL_') || k.startsWith('EJABBERD')) delete env[k];
    return env;
  }

  private readLog(): string {
    const parts: string[] = [];
    for (const f of ['ejabberd.log', 'error.log', 'crash.log']) {
      try {
        const text = fs.readFileSync(path.join(this.dir, 'log', f), 'utf8');
        if (text) parts.push(f === 'ejabberd.log' ? text : `--- ${f}\n${text}`);
      } catch {
        /* none */
      }
    }
    return parts.join('\n');
  }

  private newLog(): string {
    try {
      return fs.readFileSync(this.logFile).subarray(this.logStart).toString('utf8');
    } catch {
      return '';
    }
  }

  private writeConfig(): void {
    const o = this.opts;
    const d = this.dir;
    if (/\s/.test(d)) throw new Error(`TestEjabberd: ejabberdctl cannot work in a path with spaces: ${d}`);
    fs.mkdirSync(path.join(d, 'db'), { recursive: true });
    fs.mkdirSync(path.join(d, 'log'), { recursive: true });
    fs.copyFileSync(this.binaries.inetrc, path.join(d, 'inetrc'));
    if (!this.runAs) {
      const ctl = fs.readFileSync(this.binaries.ejabberdctl, 'utf8').replace(/^INSTALLUSER=.*$/m, 'INSTALLUSER=');
      fs.writeFileSync(this.ctlPath, ctl, { mode: 0o755 });
    }
    // The node halts when its stdin (a pipe held by the test process only) reaches EOF, i.e. when
    // the test process is gone. Only for `foreground` (ejabberdctl.cfg is sourced with the command
    // in $1): ejabberdctl's other commands start short-lived nodes of their own.
    fs.writeFileSync(
      path.join(d, 'watchdog.args'),
      '-eval spawn(fun()->P=open_port({fd,0,1},[in,eof,binary]),W=fun\\ L()->receive\\ {P,eof}->erlang:halt(0);_->L()\\ end\\ end,W()end)\n',
    );
    fs.writeFileSync(
      path.join(d, 'ejabberdctl.cfg'),
      [
        '# generated by test/support/ejabberd.ts',
        `ERLANG_NODE=${this.node}`,
        // Distribution on loopback only. Given to the VM directly rather than as INET_DIST_INTERFACE:
        // from 24.12 on, ejabberdctl parses that address with an extra `erl` run that gets
        // ERL_OPTIONS too, watchdog included, and the watchdog's error report spoils its answer.
        `ERL_DIST_PORT=${this.ports.dist}`,
        'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -kernel inet_dist_use_interface {127,0,0,1}"',
        `EJABBERD_PID_PATH=${path.join(d, 'ejabberd.pid')}`,
        `CONTRIB_MODULES_CONF_DIR=${path.join(d, 'modules.d')}`,
        'EJABBERD_BYPASS_WARNINGS=true',
        `[ "$1" = foreground ] && ERL_OPTIONS="$ERL_OPTIONS -args_file ${path.join(d, 'watchdog.args')}"`,
        '',
      ].join('\n'),
    );

    const components = o.components ?? [];
    if (o.muc?.length && o.anonymousHost) throw new Error('TestEjabberd: muc and anonymousHost cannot be combined');
    const mucs = (o.muc ?? []).map((m, i) => ({ ...m, vhost: i === 0 ? this.host : `muc${i}.${this.host}` }));
    const hosts = [this.host, ...(o.anonymousHost ? [o.anonymousHost] : []), ...mucs.slice(1).map((m) => m.vhost)];
    const mucOptions = (m: { domain: string; componentAdmin?: boolean }, indent: string) => [
      `${indent}mod_muc:`,
      `${indent}  host: ${yamlString(m.domain)}`,
      `${indent}  access_create: all`,
      ...(m.componentAdmin && components.length ? [`${indent}  access_admin:`, `${indent}    - allow: muc_admin`] : []),
    ];
    const y: string[] = [
      '# generated by test/support/ejabberd.ts',
      `loglevel: ${o.logLevel ?? 'info'}`,
      'log_rotate_count: 0',
      ...(o.domainBalancing
        ? ['domain_balancing:', ...Object.entries(o.domainBalancing).flatMap(([d, b]) => [`  ${yamlString(d)}:`, `    type: ${b.type}`, `    component_number: ${b.components}`])]
        : []),
      'hosts:',
      ...hosts.map((h) => `  - ${yamlString(h)}`),
      'listen:',
      '  -',
      `    port: ${this.ports.c2s}`,
      '    ip: "127.0.0.1"',
      '    module: ejabberd_c2s',
      '    starttls: false',
      '    starttls_required: false',
      '    max_stanza_size: 262144',
      '  -',
      `    port: ${this.ports.component}`,
      '    ip: "127.0.0.1"',
      '    module: ejabberd_service',
      ...(o.ownRoutes ? ['    global_routes: false'] : []),
      ...(components.length
        ? ['    hosts:', ...components.flatMap((c) => [`      ${yamlString(c.domain)}:`, `        password: ${yamlString(c.secret)}`])]
        : []),
      '  -',
      `    port: ${this.ports.http}`,
      '    ip: "127.0.0.1"',
      '    module: ejabberd_http',
      ...(o.httpApi ? ['    request_handlers:', '      /api: mod_http_api'] : []),
      // @xmpp/client 0.13 gets SCRAM-SHA-1 wrong: leave PLAIN (over loopback, no TLS) to test clients.
      'disable_sasl_mechanisms:',
      '  - "SCRAM-SHA-1"',
      '  - "SCRAM-SHA-256"',
      '  - "SCRAM-SHA-512"',
      '  - "DIGEST-MD5"',
      '  - "X-OAUTH2"',
      'auth_method: [internal]',
      'auth_password_format: scram',
      's2s_access: none',
      'acl:',
      '  loopback:',
      '    ip:',
      '      - 127.0.0.0/8',
      ...(o.componentAdmin && components.length ? ['  admin:', '    server:', ...components.map((c) => `      - ${yamlString(c.domain)}`)] : []),
      ...(mucs.some((m) => m.componentAdmin) && components.length
        ? ['  muc_admin:', '    server:', ...components.map((c) => `      - ${yamlString(c.domain)}`)]
        : []),
      'access_rules:',
      '  local:',
      '    allow: all',
      '  c2s:',
      '    allow: all',
      '  configure:',
      ...(o.componentAdmin && components.length ? ['    allow: admin'] : ['    deny: all']),
      'api_permissions:',
      '  "console commands":',
      '    from:',
      '      - ejabberd_ctl',
      '    who: all',
      '    what: "*"',
      ...(o.httpApi
        ? [
            '  "xmpp-invites":',
            '    from:',
            '      - mod_http_api',
            '    who:',
            '      ip: 127.0.0.1/32',
            '    what:',
            '      - register',
            '      - check_account',
            '      - add_rosteritem',
            '      - change_password',
          ]
        : []),
      'shaper_rules:',
      '  max_user_sessions: 100',
      ...(o.anonymousHost || mucs.length > 1 ? ['host_config:'] : []),
      ...(o.anonymousHost
        ? [
            `  ${yamlString(o.anonymousHost)}:`,
            '    auth_method: [anonymous]',
            '    anonymous_protocol: sasl_anon',
            '    allow_multiple_connections: true',
          ]
        : []),
      ...mucs.slice(1).flatMap((m) => [`  ${yamlString(m.vhost)}:`, '    modules:', ...mucOptions(m, '      ')]),
      'modules:',
      '  mod_adhoc: {}',
      '  mod_admin_extra: {}',
      '  mod_configure: {}',
      '  mod_disco: {}',
      ...(o.httpApi ? ['  mod_http_api: {}'] : []),
      '  mod_last: {}',
      ...(mucs.length ? mucOptions(mucs[0], '  ') : []),
      ...(o.offline ? ['  mod_offline: {}'] : []),
      '  mod_ping: {}',
      '  mod_roster: {}',
      '  mod_version: {}',
      '',
    ];
    fs.writeFileSync(this.configFile, y.join('\n'));

    if (this.runAs) {
      const { uid, gid } = this.runAs;
      const chownAll = (p: string) => {
        fs.chownSync(p, uid, gid);
        if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownAll(path.join(p, e));
      };
      chownAll(d);
    }
  }

  private async launch(): Promise<void> {
    this.logStart = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    const [cmd, args] = this.command([...this.ctlDirArgs(), 'foreground']);
    // detached: a process group of its own (ejabberdctl, beam.smp and its helpers), so that stop()
    // reaches all of them. stdin: the pipe the node's watchdog waits on.
    const child = spawn(cmd, args, { cwd: this.dir, env: this.env(), detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.output = '';
    const collect = (b: Buffer) => {
      this.output += b.toString();
      if (this.output.length > OUTPUT_LIMIT) this.output = this.output.slice(-OUTPUT_LIMIT / 2);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.stdin!.on('error', () => undefined);
    let exitInfo: string | null = null;
    let spawnError: Error | null = null;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        resolve();
      });
    });
    this.child = child;
    if (child.pid) {
      running.add(child.pid);
      fs.writeFileSync(path.join(this.dir, 'pgid'), String(child.pid));
    }

    const started = Date.now();
    const deadline = started + START_TIMEOUT_MS;
    for (;;) {
      if (spawnError) {
        this.child = null;
        throw new Error(`could not start ejabberd: ${(spawnError as Error).message}`);
      }
      const log = this.newLog();
      const bindFailure = /eaddrinuse|Address already in use|Failed to open socket/i;
      if (exitInfo) {
        const text = `${this.output}\n${log}`;
        if (bindFailure.test(text)) throw new PortBindError(`ejabberd could not bind its ports ${JSON.stringify(this.ports)}\n${text}`);
        throw new Error(`ejabberd exited during start-up (${exitInfo})\n${text}`);
      }
      if (bindFailure.test(log)) {
        throw new PortBindError(`ejabberd could not bind its ports ${JSON.stringify(this.ports)}\n${log}`);
      }
      if (
        /is started in the node/.test(log) &&
        (await canConnect(this.ports.c2s)) &&
        (await canConnect(this.ports.component)) &&
        (await canConnect(this.ports.http))
      ) {
        this.startMs = Date.now() - started;
        const v = /ejabberd (\S+) is started in the node/.exec(log)?.[1] ?? '';
        this.reportedVersion = v;
        if (!this.binaries.reports.test(v)) {
          throw new Error(`EJABBERD_VERSION=${this.binaries.version}, but ${this.binaries.ejabberdctl} started ejabberd ${v || '(no version in its log)'}`);
        }
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`ejabberd did not come up within ${START_TIMEOUT_MS} ms\n${this.output}\n${log}`);
      }
      await sleep(100);
    }
  }

  private async halt(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    const pgid = child.pid;
    if (!pgid) return;
    const groupAlive = () => groupLive(pgid);
    try {
      process.kill(-pgid, 'SIGTERM');
    } catch {
      /* gone */
    }
    await this.exited;
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (groupAlive() && Date.now() < deadline) await sleep(100);
    if (groupAlive()) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* gone */
      }
      const killDeadline = Date.now() + STOP_TIMEOUT_MS;
      while (groupAlive() && Date.now() < killDeadline) await sleep(50);
    }
    child.stdin?.destroy();
    running.delete(pgid);
  }
}
