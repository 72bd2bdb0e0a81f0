/**
 * The service as the benchmarks run it, whatever the server and the store: its config file, the
 * compiled build under bin/xmpp-invites' Node flags, the `serve` processes (with the memory probe),
 * and the pool of pre-made account invites that registration rounds hand out. Shared by the rounds
 * on Prosody and SQLite (bench/run.ts) and those on ejabberd and PostgreSQL (bench/postgresql.ts).
 */
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config';
import { databaseFor, inviteServiceFor } from '../src/services';
import { isPostgres, type Db, type SqliteDb } from '../src/store/database';
import type { InviteService } from '../src/domain/invites';
import { OPERATOR } from '../src/domain/types';
import { freePorts } from '../test/support/prosody';
import { Child, PROJECT_ROOT, memoryOf, percentile, sleep, type RoundResult } from './support';
import type { Memory } from './report';

// ---------------------------------------------------------------------------------------------
// Fixed names, the same on every server

export const HOST = 'localhost';
export const ANON = 'anon.localhost';
export const ADMIN = 'admin';
export const USER_PASSWORD = 'bench-user-password';
export const ACCOUNT_PASSWORD = 'bench-account-password';
export const TOKEN_KEY = 'bench-token-key-' + 'x'.repeat(32);
export const USERS = Array.from({ length: 8 }, (_, i) => `bench${i + 1}`);

export const say = (s: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`);

export interface ServiceSetup {
  /** the server's component URL, xmpp://127.0.0.1:PORT */
  server: string;
  domain: string;
  secret: string;
  smtpPort: number;
  /** a PostgreSQL URL; a SQLite file in the instance's directory when absent */
  database?: string;
  /** for a build from before the shipped per-user limits (bench/baseline.ts): no `limits` section (absent then meant none, and `off` was unknown) */
  earlier?: boolean;
  /** registration.provisioner (XEP-0133 on the server when absent) */
  provisioner?: { type: 'ejabberd-api'; url: string };
}

/** The service's config file for one instance (its own directory, database, web port). */
export async function writeServiceConfig(dir: string, setup: ServiceSetup): Promise<string> {
  const file = join(dir, 'xmpp-invites.yaml');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    stringify({
      component: { server: setup.server, domain: setup.domain, secret: setup.secret },
      host: HOST,
      admins: [`${ADMIN}@${HOST}`],
      database: setup.database ?? './invites.sqlite',
      token_key: TOKEN_KEY,
      registration: { requester_domains: [ANON], ...(setup.provisioner ? { provisioner: setup.provisioner } : {}) },
      mail: { transport: `smtp://127.0.0.1:${setup.smtpPort}?tls=none`, from: 'Bench <invites@example.org>' },
      web: { public_url: 'https://invites.example.org', listen: `127.0.0.1:${(await freePorts(1))[0]}` },
      // A load test is a flood by design: the shipped per-user limits would stop it at once.
      ...(setup.earlier ? {} : { limits: { per_user_open: 'off', per_user_per_day: 'off', invite_requests_per_minute: 'off' } }),
    }),
  );
  return file;
}

const MEMORY_PROBE = join(PROJECT_ROOT, 'bench', 'memory-probe.cjs');

/** `xmpp-invites serve` (src/cli.ts under tsx, or the compiled cli.js), with the memory probe preloaded. */
export async function startService(configFile: string, dir: string, name: string, compiled?: { dist: string; flags: string[] }): Promise<Child> {
  const child = Child.start(compiled ? join(compiled.dist, 'cli.js') : 'src/cli.ts', ['serve', '--config', configFile], {
    logFile: join(dir, `${name}.log`),
    tsx: !compiled,
    nodeFlags: [...(compiled?.flags ?? []), ...(process.env.BENCH_SERVICE_FLAGS?.split(' ').filter(Boolean) ?? []), '--require', MEMORY_PROBE],
    env: { ...process.env, XMPP_INVITES_CONFIG: '', BENCH_MEMORY_FILE: join(dir, `${name}.memory.json`) },
  });
  await child.waitForLog(/"online as /, 60_000);
  return child;
}

/** VmHWM and VmRSS from /proc, and the probe's breakdown of its highest sample. */
export function memoryReport(child: Child, dir: string, name: string): Memory {
  let breakdown: Memory['breakdown'];
  try {
    breakdown = JSON.parse(readFileSync(join(dir, `${name}.memory.json`), 'utf8')) as Memory['breakdown'];
  } catch {
    breakdown = undefined;
  }
  return { ...memoryOf(child.pid), breakdown };
}

/** `tsc -p tsconfig.build.json` into DIR/build/dist, laid out as the checkout is (schema files, node_modules). */
export function buildService(dir: string): string {
  const root = join(dir, 'build');
  mkdirSync(root, { recursive: true });
  execFileSync(process.execPath, [join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(PROJECT_ROOT, 'tsconfig.build.json'), '--outDir', join(root, 'dist')], { stdio: 'inherit' });
  for (const schema of ['schema.sql', 'schema.pg.sql']) copyFileSync(join(PROJECT_ROOT, schema), join(root, schema));
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(root, 'node_modules'));
  return join(root, 'dist');
}

export function describeRound(r: RoundResult, cpuMs: Record<string, number>, wallMs: number): string {
  const cpu = Object.entries(cpuMs)
    .map(([k, v]) => `${k} ${((100 * v) / wallMs).toFixed(0)}% ${(v / r.allOps).toFixed(3)} ms/op`)
    .join(', ');
  const errors = r.errors ? ` errors ${r.errors} (${r.firstError})` : '';
  return `${(r.ops / r.seconds).toFixed(0)}/s p50 ${percentile(r.latencies, 50).toFixed(1)} ms p99 ${percentile(r.latencies, 99).toFixed(1)} ms; CPU ${cpu}${errors}`;
}

/**
 * Pre-made account invites in a service's database (written beside the running service, as the
 * CLI does), handed out one per registration.
 */
export class InvitePool {
  readonly #db: Db;
  readonly #invites: InviteService;
  readonly #items: { username: string; token: string }[] = [];

  readonly #operator: typeof OPERATOR;

  /**
   * The pool of the service whose config is `configFile`, written through this checkout's code, or
   * with `dist`, through another build's own (bench/baseline.ts): its config reader, its store and
   * schema and its InviteService, loaded from its compiled modules (SQLite only).
   */
  constructor(configFile: string, private readonly username: () => string, dist?: string) {
    if (dist) {
      const load = createRequire(join(dist, 'cli.js'));
      const theirs = {
        loadConfig: (load('./config.js') as { loadConfig: (file: string, env: object) => { database: string } }).loadConfig,
        openDatabase: (load('./store/database.js') as { openDatabase: (file: string) => Db }).openDatabase,
        inviteServiceFor: (load('./services.js') as { inviteServiceFor: (config: unknown, db: Db) => InviteService }).inviteServiceFor,
        operator: (load('./domain/types.js') as { OPERATOR: typeof OPERATOR }).OPERATOR,
      };
      const config = theirs.loadConfig(configFile, {});
      this.#db = theirs.openDatabase(config.database);
      this.#invites = theirs.inviteServiceFor(config, this.#db);
      this.#operator = theirs.operator;
      return;
    }
    const config = loadConfig(configFile, {});
    this.#db = databaseFor(config);
    this.#invites = inviteServiceFor(config, this.#db);
    this.#operator = OPERATOR;
  }

  topUp(n: number): void {
    this.inOneTransaction((invites) => {
      while (this.#items.length < n) this.#items.push({ username: this.username(), token: invites.create(this.#operator, { kind: 'account', source: 'cli' }).links.token });
    });
  }

  /**
   * Waits until the service has delivered every notice that is due (the welcome messages of the
   * accounts just made), so that its deliveries count in its own round and not in the next one.
   */
  async drainOutbox(timeoutMs = 60_000): Promise<void> {
    const due = this.#db.prepare<[number], { n: number }>(`SELECT count(*) AS n FROM outbox WHERE state IN ('queued', 'sending') AND not_before <= ?`);
    const deadline = Date.now() + timeoutMs;
    while (due.get(Date.now())!.n > 0) {
      if (Date.now() > deadline) throw new Error('the outbox did not drain');
      await sleep(50);
    }
  }

  /** Checkpoints what this connection wrote (SQLite), so that the service does not pay for it during a round. */
  checkpoint(): void {
    if (!isPostgres(this.#db)) (this.#db as SqliteDb).pragma('wal_checkpoint(TRUNCATE)');
  }

  next(): { username: string; token: string } {
    const item = this.#items.shift();
    if (!item) throw new Error('the pool of pre-made invites ran out');
    return item;
  }

  /** `count` account invites sent by e-mail (to `address(i)`), made by the operator in one transaction. */
  queueEmails(count: number, address: (i: number) => string): void {
    this.inOneTransaction((invites) => {
      for (let i = 0; i < count; i++) invites.create(this.#operator, { kind: 'account', source: 'cli', email: address(i) });
    });
  }

  inOneTransaction(fn: (invites: InviteService) => void): void {
    this.#db.transaction(() => fn(this.#invites)).immediate();
  }

  /** Invites in the store. */
  countInvites(): number {
    return this.#db.prepare<[], { n: number }>('SELECT count(*) AS n FROM invites').get()!.n;
  }

  close(): void {
    this.#db.close();
  }
}
