/**
 * A throwaway PostgreSQL cluster for tests: `initdb` into a fresh directory, the server started in
 * the foreground on a free port of 127.0.0.1 (no other interface), stopped by its PID, its
 * directory removed. One cluster per test file (`TestPostgres.start()` in beforeAll); each test
 * takes a database of its own (`createDatabase()`), so tests never see each other's rows.
 *
 * PostgreSQL refuses to run as root: as root the directory is given to the `postgres` user
 * (Debian's package creates it) and the server runs as that user through setpriv. The kernel sends
 * the server SIGQUIT (immediate shutdown) when the process that started it dies
 * (PR_SET_PDEATHSIG), and an exit hook does the same, so a crashed test run leaves no cluster behind.
 * Durability is off (fsync, synchronous_commit, full_page_writes): the data is thrown away anyway.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { postgresBinDir } from '../../scripts/ensure-prosody';
import { pidAlive, sleep } from '../../scripts/net';
import { PortBindError, startOnFreePorts } from './prosody';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const DIR_PREFIX = 'xmpp-invites-pg-';

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      try {
        if (child.pid) process.kill(child.pid, 'SIGQUIT');
      } catch {
        /* already gone */
      }
    }
  });
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** The uid and gid of the `postgres` user (root runs the server as that user). */
function postgresUser(): { uid: number; gid: number } {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) {
    throw new Error('running as root, but there is no `postgres` user to run PostgreSQL as: sudo apt-get install -y postgresql');
  }
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** `cmd args` as the user that owns the cluster (postgres when we are root), dying with us. */
function asOwner(cmd: string, args: string[]): [string, string[]] {
  const setpriv = fs.existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : null;
  if (isRoot()) {
    if (!setpriv) return ['runuser', ['-u', 'postgres', '--', cmd, ...args]];
    return [setpriv, ['--reuid=postgres', '--regid=postgres', '--init-groups', '--pdeathsig=SIGQUIT', cmd, ...args]];
  }
  return setpriv ? [setpriv, ['--pdeathsig=SIGQUIT', cmd, ...args]] : [cmd, args];
}

/** Removes directories of clusters that died with their test process more than an hour ago. */
function sweepStaleDirs(): void {
  const hourAgo = Date.now() - 3600 * 1000;
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const e of entries) {
    const dir = path.join(os.tmpdir(), e);
    try {
      if (fs.statSync(dir).mtimeMs > hourAgo) continue;
      const pidFile = path.join(dir, 'data', 'postmaster.pid');
      const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]) : 0;
      if (pid && pidAlive(pid)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* leave it */
    }
  }
}

export class TestPostgres {
  readonly dir: string;
  readonly dataDir: string;
  readonly port: number;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #output = '';
  #removed = false;
  #admin: Promise<Client> | undefined;

  private constructor(dir: string, port: number, readonly durable: boolean) {
    this.dir = dir;
    this.dataDir = path.join(dir, 'data');
    this.port = port;
  }

  /**
   * initdb, then start on a free port (another on a clash); resolves once it accepts connections.
   * `durable`: PostgreSQL's own defaults for durability and memory (fsync, synchronous_commit,
   * full_page_writes on; shared_buffers 128MB), as a production server runs (the benchmarks).
   */
  static async start(opts: { durable?: boolean } = {}): Promise<TestPostgres> {
    const bin = postgresBinDir();
    if (!bin) throw new Error('PostgreSQL is not installed: run `npm test` as root to install it, or: sudo apt-get install -y postgresql');
    installExitHook();
    sweepStaleDirs();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
    try {
      if (isRoot()) {
        const { uid, gid } = postgresUser();
        fs.chownSync(dir, uid, gid);
      }
      const [cmd, args] = asOwner(path.join(bin, 'initdb'), ['-D', path.join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
      const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: dir });
      if (r.status !== 0) throw new Error(`initdb failed (${r.error?.message ?? `exit ${r.status}`})\n${r.stdout}${r.stderr}`);
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    // Every attempt starts the same cluster on another port; a failed attempt is halted, and the
    // directory goes only when the last one fails.
    try {
      const started = await startOnFreePorts(
        1,
        ([port]) => {
          const pg = new TestPostgres(dir, port, opts.durable ?? false);
          return { pg, stop: () => pg.#halt() };
        },
        ({ pg }) => pg.#launch(bin),
      );
      return started.pg;
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The server's PID (0 when stopped). */
  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  /** `postgresql://postgres@127.0.0.1:PORT/DATABASE` */
  url(database = 'postgres'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Runs SQL on the `postgres` database (one connection kept for the cluster's life). */
  async query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
    this.#admin ??= (async () => {
      const client = new Client({ connectionString: this.url() });
      client.on('error', () => undefined); // the server going away is stop()'s business
      await client.connect();
      return client;
    })();
    return (await (await this.#admin).query<R>(sql, params)).rows;
  }

  /**
   * A new empty database (more CREATE DATABASE options in `options`); resolves with its URL.
   * FILE_COPY: copying the template's few files is faster here than logging each of its pages.
   */
  async createDatabase(name = `t_${randomBytes(6).toString('hex')}`, options = ''): Promise<string> {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
    await this.query(`CREATE DATABASE ${name} STRATEGY FILE_COPY ${options}`);
    return this.url(name);
  }

  /** Immediate shutdown by PID (SIGQUIT); removes the directory unless KEEP_TEST_TMP is set. */
  async stop(): Promise<void> {
    await this.#halt();
    if (!process.env.KEEP_TEST_TMP && !this.#removed) {
      this.#removed = true;
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** What the server printed (its log goes to stderr), for failed tests. */
  log(): string {
    return this.#output;
  }

  async #halt(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    await admin?.then((c) => c.end()).catch(() => undefined);
    const child = this.#child;
    this.#child = null;
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGQUIT');
      } catch {
        /* gone */
      }
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
      if ((await Promise.race([this.#exited, timer])) === 'timeout') {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await this.#exited;
      }
    }
    if (child) running.delete(child);
  }

  async #launch(bin: string): Promise<void> {
    const settings = [
      'listen_addresses=127.0.0.1',
      `port=${this.port}`,
      `unix_socket_directories=${this.dataDir}`,
      // the suite on PostgreSQL opens a connection per store, and a file may hold a few hundred
      'max_connections=300',
      ...(this.durable ? [] : ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'shared_buffers=32MB']),
    ];
    const [cmd, args] = asOwner(path.join(bin, 'postgres'), ['-D', this.dataDir, ...settings.flatMap((s) => ['-c', s])]);
    const child = spawn(cmd, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#output = '';
    const collect = (b: Buffer) => {
      if (this.#output.length < 1_000_000) this.#output += b.toString();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let exitInfo: string | null = null;
    this.#exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        exitInfo = `could not run ${cmd}: ${err.message}`;
        running.delete(child);
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        running.delete(child);
        resolve();
      });
    });
    this.#child = child;
    running.add(child);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exitInfo) {
        if (/could not bind IPv4 address|could not create any TCP\/IP sockets/.test(this.#output)) {
          throw new PortBindError(`postgres could not bind 127.0.0.1:${this.port}\n${this.#output}`);
        }
        throw new Error(`postgres exited during start-up (${exitInfo})\n${this.#output}`);
      }
      if (/ready to accept connections/.test(this.#output)) {
        try {
          await this.query('SELECT 1');
          return;
        } catch {
          this.#admin = undefined; // not yet: the next try connects anew
        }
      }
      if (Date.now() > deadline) throw new Error(`postgres did not come up within ${START_TIMEOUT_MS} ms\n${this.#output}`);
      await sleep(20);
    }
  }
}
