/**
 * A real MTA for the bounce tests: Debian's Exim (exim4-daemon-light), run in the foreground-less
 * daemon mode with a config of its own in a temporary directory, on a free port of 127.0.0.1, and
 * stopped by its PID. It accepts every recipient of `localDomain` at RCPT time (as a relay that
 * checks mailboxes only on delivery does) and fails the delivery of every one of them ("No such
 * user here"), so it sends its own bounce (a DSN, RFC 3464) to the envelope sender. Bounces to
 * `bounceDomain` go by LMTP to the service's listener, or to a command through a pipe.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from './prosody';

const EXIM = '/usr/sbin/exim4';

export interface EximOptions {
  /** the domain whose mailboxes do not exist */
  localDomain: string;
  /** the domain of mail.bounce_address */
  bounceDomain: string;
  /** where bounces go: the service's LMTP listener, or a pipe to this command (run by Exim as its user) */
  bounceTo: { lmtpPort: number } | { pipe: string };
}

export class TestExim {
  #pid: number | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(opts: EximOptions): Promise<TestExim> {
    if (!fs.existsSync(EXIM)) throw new Error('Exim is not installed: run `npm test` as root to install it, or: sudo apt-get install -y exim4-daemon-light');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exim-'));
    // Exim opens its logs and spool as its own user: it must reach them.
    fs.chmodSync(dir, 0o755);
    const [port] = await freePorts(1);
    const exim = new TestExim(dir, port);
    for (const d of ['spool', 'log']) fs.mkdirSync(path.join(dir, d));
    // Exim runs its deliveries as its own user (Debian-exim); root may not own its spool.
    const user = spawnSync('id', ['-u', 'Debian-exim'], { encoding: 'utf8' });
    const group = spawnSync('id', ['-g', 'Debian-exim'], { encoding: 'utf8' });
    if (user.status === 0) for (const d of ['spool', 'log']) fs.chownSync(path.join(dir, d), Number(user.stdout.trim()), Number(group.stdout.trim()));
    fs.writeFileSync(
      path.join(dir, 'exim.conf'),
      `primary_hostname = mta.test
exim_user = Debian-exim
exim_group = Debian-exim
spool_directory = ${dir}/spool
log_file_path = ${dir}/log/%slog
pid_file_path = ${dir}/exim.pid
local_interfaces = 127.0.0.1
daemon_smtp_ports = ${port}
domainlist local_domains = ${opts.localDomain}
acl_smtp_rcpt = acl_rcpt
host_lookup =
rfc1413_hosts =
begin acl
acl_rcpt:
  accept
begin routers
bounces:
  driver = accept
  domains = ${opts.bounceDomain}
  transport = ${'pipe' in opts.bounceTo ? 'pipe_out' : 'lmtp_out'}
no_such_user:
  driver = redirect
  domains = ${opts.localDomain}
  allow_fail
  data = :fail: No such user here
begin transports
${
      'pipe' in opts.bounceTo
        ? `pipe_out:
  driver = pipe
  command = ${opts.bounceTo.pipe}
  envelope_to_add
  return_fail_output
  timeout = 60s
`
        : `lmtp_out:
  driver = smtp
  protocol = lmtp
  hosts = 127.0.0.1
  port = ${opts.bounceTo.lmtpPort}
  allow_localhost
`
    }begin retry
* * F,1m,1s
`,
    );
    // A process group of its own: stop() ends the daemon and the delivery processes it forked.
    const child = spawn(EXIM, ['-C', path.join(dir, 'exim.conf'), '-bdf', '-q2s'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    exim.#pid = child.pid;
    // Ready when the port accepts connections.
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`exim exited: ${stderr}`);
      if (await accepts(port)) break;
      if (Date.now() > deadline) {
        await exim.stop();
        throw new Error(`exim did not listen on ${port}: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return exim;
  }

  /** Exim's main log (what it did with each message). */
  log(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'log', 'mainlog'), 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    const pid = this.#pid;
    this.#pid = undefined;
    if (pid !== undefined) {
      const signal = (sig: NodeJS.Signals | 0) => {
        try {
          process.kill(-pid, sig);
          return true;
        } catch {
          return false;
        }
      };
      signal('SIGTERM');
      for (let i = 0; i < 100 && signal(0); i++) await new Promise((r) => setTimeout(r, 50));
      signal('SIGKILL');
    }
    fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Lets Exim's user (Debian-exim) reach `target` (the checkout, whose code a pipe runs): an ancestor
 * directory it may not enter (a checkout in a `mktemp -d` directory, mode 0700) is given the
 * others' search bit (x: enter, not list). Returns what puts the modes back.
 */
export function letEximReach(target: string): () => void {
  const changed: { dir: string; mode: number }[] = [];
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    const canEnter = spawnSync('runuser', ['-u', 'Debian-exim', '--', 'test', '-x', dir]).status === 0;
    if (!canEnter) {
      const mode = fs.statSync(dir).mode & 0o7777;
      fs.chmodSync(dir, mode | 0o001);
      changed.push({ dir, mode });
    }
    if (dir === path.dirname(dir)) break;
  }
  return () => {
    for (const { dir, mode } of changed.reverse()) fs.chmodSync(dir, mode);
  };
}
