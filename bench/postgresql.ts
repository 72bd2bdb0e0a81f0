/**
 * Part 5 of `npm run bench` (alone: `--only postgresql`): New Invite and registration with the
 * store on PostgreSQL, one instance and two instances sharing the load, each compared with the
 * service on SQLite behind the same server in the same rounds.
 *
 * Two active instances need ejabberd: Prosody holds one connection per component, while ejabberd's
 * `ejabberd_service` with `domain_balancing` shares a component's stanzas among several (by bare
 * sender, as the README advises; 23.01 needs `component_number`). So this part runs on its own
 * ejabberd (the system's, test/support/ejabberd.ts) and its own PostgreSQL cluster
 * (test/support/postgres.ts, PostgreSQL's own durability settings: fsync and synchronous_commit
 * on), both on 127.0.0.1, both stopped by PID at the end, before the rounds on Prosody begin:
 *
 *   sqlite   one `serve` on a SQLite file           (the baseline on this server)
 *   pg1      one `serve` on a PostgreSQL database
 *   pg2      two `serve` on another PostgreSQL database, one component domain, domain_balancing
 *
 * Every round runs sqlite, pg1, pg2, sqlite (backwards in every other round), so that each of the
 * three pairs is measured back to back in every round and each ratio is the median of the rounds'
 * own ratios (bench/paired.ts). Registration goes through mod_http_api (the `ejabberd-api`
 * provisioner) for all three: behind domain_balancing the answer to an IQ one instance sent to the
 * server may reach the other one, so XEP-0133 cannot serve two instances (README), and the
 * baseline takes the same path so that the ratios compare the store and the instances only.
 * ejabberd keeps messages for offline accounts (mod_offline), as Prosody does.
 */
import { join } from 'node:path';
import { TestEjabberd } from '../test/support/ejabberd';
import { TestPostgres } from '../test/support/postgres';
import { randomSecret } from '../test/support/prosody';
import type { TestClient } from '../test/support/client';
import { connectAnonymous, connectUsers, inviteRound, registrationRound, stopAll } from './load';
import { PairedRounds, roundOrder, type Paired } from './paired';
import { PG_RATIOS, PG_SEQUENCE, type PgRatio, type PgSystem, type PostgresFigures } from './report';
import { rate, summarize, withCpu, type Child, type CpuSource, type RoundResult, type Summary } from './support';
import { ACCOUNT_PASSWORD, ADMIN, ANON, HOST, InvitePool, USERS, USER_PASSWORD, describeRound, say, startService, writeServiceConfig } from './services';

export interface PgRoundOptions {
  quick: boolean;
  rounds: number;
  warmupMs: number;
  measureMs: number;
  sessions: number;
  inFlight: number;
}

const DOMAINS: Record<PgSystem, string> = { sqlite: 'sqlite.localhost', pg1: 'pg1.localhost', pg2: 'pg2.localhost' };

/**
 * Starts the cluster, ejabberd and the four `serve` processes (compiled, `service` flags), runs
 * the rounds, and stops everything it started, whatever happens.
 */
export async function postgresqlRounds(opt: PgRoundOptions, tmp: string, service: { dist: string; flags: string[] }, smtpPort: number): Promise<PostgresFigures> {
  const children: Child[] = [];
  const clients: TestClient[] = [];
  const pools: InvitePool[] = [];
  let pg: TestPostgres | undefined;
  let ejabberd: TestEjabberd | undefined;
  try {
    pg = await TestPostgres.start({ durable: true });
    // '15.20 (Debian 15.20-0+deb12u1)': the version alone
    const postgresql = (await pg.query<{ v: string }>(`SELECT current_setting('server_version') AS v`))[0].v.split(' ')[0];
    const secrets = Object.fromEntries(Object.entries(DOMAINS).map(([k]) => [k, randomSecret()])) as Record<PgSystem, string>;
    ejabberd = await TestEjabberd.start({
      components: (Object.keys(DOMAINS) as PgSystem[]).map((k) => ({ domain: DOMAINS[k], secret: secrets[k] })),
      httpApi: true,
      anonymousHost: ANON,
      offline: true,
      ownRoutes: true,
      domainBalancing: { [DOMAINS.pg2]: { type: 'bare_source', components: 2 } },
    });
    say(`PostgreSQL ${postgresql} pid ${pg.pid}, ejabberd ${ejabberd.reportedVersion} pid ${ejabberd.pid}`);
    const api = ejabberd.apiUrl();
    await Promise.all([...USERS, ADMIN].map((user) => registerOnEjabberd(api, user, USER_PASSWORD)));

    const provisioner = { type: 'ejabberd-api' as const, url: api };
    const setup = (k: PgSystem, database?: string) => ({ server: ejabberd!.componentUrl(), domain: DOMAINS[k], secret: secrets[k], smtpPort, database, provisioner });
    const pg1Url = await pg.createDatabase('bench_pg1');
    const pg2Url = await pg.createDatabase('bench_pg2');
    const configs = {
      sqlite: await writeServiceConfig(join(tmp, 'ejabberd-sqlite'), setup('sqlite')),
      pg1: await writeServiceConfig(join(tmp, 'pg1'), setup('pg1', pg1Url)),
      pg2a: await writeServiceConfig(join(tmp, 'pg2a'), setup('pg2', pg2Url)),
      pg2b: await writeServiceConfig(join(tmp, 'pg2b'), setup('pg2', pg2Url)),
    };
    const start = async (config: string, dir: string) => {
      const child = await startService(config, join(tmp, dir), 'service', service);
      children.push(child);
      return child;
    };
    // One after the other: the first of the two on bench_pg2 migrates it.
    const sqlite = await start(configs.sqlite, 'ejabberd-sqlite');
    const pg1 = await start(configs.pg1, 'pg1');
    const pg2a = await start(configs.pg2a, 'pg2a');
    const pg2b = await start(configs.pg2b, 'pg2b');
    say(`service pids: SQLite ${sqlite.pid}, PostgreSQL one instance ${pg1.pid}, two instances ${pg2a.pid} and ${pg2b.pid}`);

    const users = await connectUsers(ejabberd.ports.c2s, HOST, USERS.map((username) => ({ username, password: USER_PASSWORD })));
    clients.push(...users);
    const anonymous = await connectAnonymous(ejabberd.ports.c2s, ANON, opt.sessions);
    clients.push(...anonymous);

    const server = { ejabberd: { tree: ejabberd.pid }, postgresql: { tree: pg.pid } };
    const pids: Record<PgSystem, Record<string, CpuSource>> = {
      sqlite: { ...server, component: sqlite.pid },
      pg1: { ...server, component: pg1.pid },
      pg2: { ...server, instance1: pg2a.pid, instance2: pg2b.pid },
    };

    // ---- New Invite
    for (const k of Object.keys(DOMAINS) as PgSystem[]) await inviteRound(users, DOMAINS[k], opt.inFlight, 0, 300);
    const invites = await pairedRounds(opt.rounds, 'New Invite', pids, (k) => inviteRound(users, DOMAINS[k], opt.inFlight, opt.warmupMs, opt.measureMs));

    // ---- registration
    let accountSeq = 0;
    const pool = (config: string) => {
      const p = new InvitePool(config, () => `pgacct${accountSeq++}`);
      pools.push(p);
      return p;
    };
    const poolOf: Record<PgSystem, InvitePool> = { sqlite: pool(configs.sqlite), pg1: pool(configs.pg1), pg2: pool(configs.pg2a) };
    // Enough pre-made invites for a round at a few hundred accounts a second (each made through
    // the store before the round, which on PostgreSQL takes a few seconds per thousand).
    const poolSize = opt.quick ? 1500 : 4000;
    // The pool is filled before the CPU of a round is counted: on PostgreSQL its inserts are
    // work of the server's processes that the round would otherwise be charged with.
    const fill = (k: PgSystem) => {
      poolOf[k].topUp(poolSize);
      poolOf[k].checkpoint();
    };
    const register = async (k: PgSystem, warm = false) => {
      const p = poolOf[k];
      const result = await registrationRound(anonymous, DOMAINS[k], opt.inFlight, warm ? 0 : opt.warmupMs, warm ? 500 : opt.measureMs, () => p.next(), ACCOUNT_PASSWORD);
      await p.drainOutbox();
      return result;
    };
    for (const k of Object.keys(DOMAINS) as PgSystem[]) {
      fill(k);
      await register(k, true);
    }
    const registration = await pairedRounds(opt.rounds, 'registration', pids, (k) => register(k), fill);

    const ratiosOf = (rounds: PairedRounds<PgSystem, RoundResult>) =>
      Object.fromEntries(Object.entries(PG_RATIOS).map(([name, [a, b]]) => [name, rounds.ratio(a, b, rate)])) as Record<PgRatio, Paired>;
    const summaries = (rounds: PairedRounds<PgSystem, RoundResult>) =>
      Object.fromEntries((Object.keys(DOMAINS) as PgSystem[]).map((k) => [k, summarize(rounds.all(k))])) as Record<PgSystem, Summary>;
    return {
      postgresql,
      ejabberd: ejabberd.reportedVersion,
      invites: summaries(invites),
      registration: summaries(registration),
      ratios: { invites: ratiosOf(invites), registration: ratiosOf(registration) },
    };
  } finally {
    for (const p of pools) p.close();
    await stopAll(clients).catch(() => undefined);
    for (const c of children) await c.stop().catch(() => undefined);
    await ejabberd?.stop().catch(() => undefined);
    await pg?.stop().catch(() => undefined);
  }
}

/**
 * `rounds` rounds in PG_SEQUENCE's order (backwards every other round), each slot measured with the
 * CPU of its processes; `prepare` runs before each slot, outside its measurement.
 */
async function pairedRounds(
  rounds: number,
  what: string,
  pids: Record<PgSystem, Record<string, CpuSource>>,
  measure: (k: PgSystem) => Promise<RoundResult>,
  prepare?: (k: PgSystem) => void,
): Promise<PairedRounds<PgSystem, RoundResult>> {
  const paired = new PairedRounds<PgSystem, RoundResult>();
  for (let r = 0; r < rounds; r++) {
    const order = roundOrder(PG_SEQUENCE, r);
    const results: RoundResult[] = [];
    for (const k of order) {
      prepare?.(k);
      const { result, cpuMs, wallMs } = await withCpu(pids[k], () => measure(k));
      results.push({ ...result, cpuMs, wallMs });
      say(`round ${r + 1} ${what} ${k}: ${describeRound(result, cpuMs, wallMs)}`);
    }
    paired.add(order, results);
  }
  return paired;
}

/** An account on ejabberd through mod_http_api's `register` (one HTTP request, no ejabberdctl node to start). */
async function registerOnEjabberd(api: string, user: string, password: string): Promise<void> {
  const res = await fetch(`${api}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, host: HOST, password }) });
  if (!res.ok) throw new Error(`ejabberd register ${user}: HTTP ${res.status} ${await res.text()}`);
}
