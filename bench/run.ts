/**
 * `npm run bench`: the service against the ceiling of its path and against Prosody's own invites,
 * in one run, each figure the median of several rounds. Two systems compared by a ratio run back to
 * back in every round (in the other order in the next one), and the ratio is the median of the
 * rounds' own ratios (bench/paired.ts).
 * Prints a table and writes docs/performance.md (figures, conditions, how to reproduce).
 *
 *   npm run bench                      the full run (waits for a quiet machine first)
 *   npm run bench -- --quick           small sizes, no waiting, no doc written (developing)
 *   npm run bench -- --seed 200000 --rounds 3 --measure 2 --no-wait --no-doc
 *
 * Options: --seed N, --rounds N, --warmup S, --measure S, --prosody-invites N, --emails N,
 * --no-wait, --no-doc, --doc (write the doc even with --quick), --only ours,echo|registration (just
 * those rounds, to compare two versions of the service). BENCH_SERVICE_FLAGS adds Node flags to
 * the service's processes (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 *
 * Everything runs on 127.0.0.1: two Prosody 0.12 instances (test/support/prosody.ts), the service
 * as `xmpp-invites serve` child processes, the echo and add-user components as child processes,
 * a loopback SMTP server and the client sessions in this process. Every process started here is
 * stopped by its PID at the end.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { SMTPServer } from 'smtp-server';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config';
import { inviteServiceFor } from '../src/services';
import { openDatabase, type SqliteDb as Db } from '../src/store/database';
import type { InviteService } from '../src/domain/invites';
import { OPERATOR } from '../src/domain/types';
import { TestProsody, freePorts, randomSecret } from '../test/support/prosody';
import type { TestClient } from '../test/support/client';
import { connectAnonymous, connectUsers, inviteRound, registrationRound, stopAll } from './load';
import { seedStore, seededId, type SeedResult } from './seed';
import { writeProsodyInvites } from './prosody-store';
import { storeCosts } from './store-costs';
import { Child, PROJECT_ROOT, loadAverage, median, memoryOf, percentile, rate, sleep, summarize, waitForQuiet, withCpu, type RoundResult } from './support';
import { PairedRounds, pairedSequence, roundOrder } from './paired';
import { TUNED_FLAGS, pairedText, writeReport, printTable, type Memory, type Report } from './report';

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  quick: boolean;
  seed: number;
  rounds: number;
  warmupMs: number;
  measureMs: number;
  sessions: number;
  inFlight: number;
  prosodyN: number;
  emails: number;
  wait: boolean;
  doc: boolean;
  /** `--only ours,echo` (New Invite systems) and/or `registration` (ours and the ceiling): just these rounds, nothing written */
  only: string[] | undefined;
}

function options(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const num = (name: string, dflt: number) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  return {
    quick,
    seed: num('seed', quick ? 20_000 : 1_000_000),
    rounds: num('rounds', quick ? 2 : 5),
    warmupMs: num('warmup', quick ? 0.5 : 1) * 1000,
    measureMs: num('measure', quick ? 1.5 : 4) * 1000,
    sessions: 8,
    inFlight: 4,
    prosodyN: num('prosody-invites', quick ? 2_000 : 10_000),
    emails: num('emails', quick ? 300 : 1_500),
    wait: !quick && !argv.includes('--no-wait'),
    doc: !argv.includes('--only') && (argv.includes('--doc') || (!quick && !argv.includes('--no-doc'))),
    only: argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : undefined,
  };
}

const say = (s: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`);

// ---------------------------------------------------------------------------------------------
// Fixed names

const HOST = 'localhost';
const ANON = 'anon.localhost';
const ADMIN = 'admin';
const OURS = 'invites.localhost';
const HISTORY = 'history.localhost';
const ECHO = 'echo.localhost';
const CEILING = 'ceiling.localhost';
const USER_PASSWORD = 'bench-user-password';
const ACCOUNT_PASSWORD = 'bench-account-password';
const TOKEN_KEY = 'bench-token-key-' + 'x'.repeat(32);
const USERS = Array.from({ length: 8 }, (_, i) => `bench${i + 1}`);

// ---------------------------------------------------------------------------------------------

interface Running {
  tmp: string;
  a?: TestProsody;
  b?: TestProsody;
  children: Child[];
  clients: TestClient[];
  smtp?: SMTPServer;
}

/** The service's config file for one instance (its own directory, database, web port). */
async function writeServiceConfig(dir: string, a: TestProsody, domain: string, secret: string, smtpPort: number): Promise<string> {
  const file = join(dir, 'xmpp-invites.yaml');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    stringify({
      component: { server: a.componentUrl(), domain, secret },
      host: HOST,
      admins: [`${ADMIN}@${HOST}`],
      database: './invites.sqlite',
      token_key: TOKEN_KEY,
      registration: { requester_domains: [ANON] },
      mail: { transport: `smtp://127.0.0.1:${smtpPort}?tls=none`, from: 'Bench <invites@example.org>' },
      web: { public_url: 'https://invites.example.org', listen: `127.0.0.1:${(await freePorts(1))[0]}` },
      // A load test is a flood by design: the shipped per-user limits would stop it at once.
      limits: { per_user_open: 'off', per_user_per_day: 'off', invite_requests_per_minute: 'off' },
    }),
  );
  return file;
}

const MEMORY_PROBE = join(PROJECT_ROOT, 'bench', 'memory-probe.cjs');

/** `xmpp-invites serve` (src/cli.ts under tsx, or the compiled cli.js), with the memory probe preloaded. */
async function startService(configFile: string, dir: string, name: string, compiled?: { dist: string; flags: string[] }): Promise<Child> {
  const child = Child.start(compiled ? join(compiled.dist, 'cli.js') : 'src/cli.ts', ['serve', '--config', configFile], {
    logFile: join(dir, `${name}.log`),
    tsx: !compiled,
    nodeFlags: [...(compiled?.flags ?? []), ...(process.env.BENCH_SERVICE_FLAGS?.split(' ').filter(Boolean) ?? []), '--require', MEMORY_PROBE],
    env: { ...process.env, BENCH_MEMORY_FILE: join(dir, `${name}.memory.json`) },
  });
  await child.waitForLog(/"online as /, 60_000);
  return child;
}

/** VmHWM and VmRSS from /proc, and the probe's breakdown of its highest sample. */
function memoryReport(child: Child, dir: string, name: string): Memory {
  let breakdown: Memory['breakdown'];
  try {
    breakdown = JSON.parse(readFileSync(join(dir, `${name}.memory.json`), 'utf8')) as Memory['breakdown'];
  } catch {
    breakdown = undefined;
  }
  return { ...memoryOf(child.pid), breakdown };
}

/** The loopback SMTP server that takes every message and counts it (no TLS, no auth). */
function startSmtp(onMessage: (to: string) => void): Promise<{ server: SMTPServer; port: number }> {
  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 1024 * 1024,
    onData(stream, session, done) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        for (const r of session.envelope.rcptTo) onMessage(r.address);
        done();
      });
    },
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.server.address() as { port: number }).port }));
  });
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opt = options(process.argv.slice(2));
  say(`options: ${JSON.stringify(opt)}`);
  const run: Running = { tmp: mkdtempSync(join(tmpdir(), 'xmpp-invites-bench-')), children: [], clients: [] };
  const stopEverything = async () => {
    await stopAll(run.clients).catch(() => undefined);
    for (const c of run.children) await c.stop().catch(() => undefined);
    run.smtp?.close();
    await run.a?.stop().catch(() => undefined);
    await run.b?.stop().catch(() => undefined);
    rmSync(run.tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stopEverything().finally(() => process.exit(130)));
  const loads: number[] = [];
  const sampleLoad = () => loads.push(loadAverage());

  try {
    // ---- 1,000,000 invites, seeded before anything runs (the seed is not a measured figure
    // beyond its own duration), then a quiet machine for the measurements.
    const historyDir = join(run.tmp, 'history');
    say(`seeding ${opt.seed.toLocaleString('en')} invites`);
    const seed: SeedResult = seedStore(join(historyDir, 'invites.sqlite'), { count: opt.seed, host: HOST, admin: `${ADMIN}@${HOST}` });
    say(`seeded in ${(seed.ms / 1000).toFixed(1)} s (and ${(seed.syncMs / 1000).toFixed(1)} s to fsync it): ${seed.events.toLocaleString('en')} events, ${seed.outbox.toLocaleString('en')} outbox rows, ${seed.fileMb.toFixed(0)} MB`);
    let quiet: { quiet: boolean | undefined; load: number } = { quiet: undefined, load: loadAverage() };
    if (opt.wait) quiet = await waitForQuiet(0.5, 60_000, 20 * 60_000, say);
    say(`load average ${loadAverage().toFixed(2)}${opt.wait ? (quiet.quiet ? ' (quiet for a minute)' : ' (NOT quiet: gave up waiting)') : ''}`);
    const startedAt = new Date();
    sampleLoad();

    // ---- servers
    const ourSecret = randomSecret();
    const historySecret = randomSecret();
    const echoSecret = randomSecret();
    const ceilingSecret = randomSecret();
    run.a = await TestProsody.start({
      components: [
        { domain: OURS, secret: ourSecret },
        { domain: HISTORY, secret: historySecret },
        { domain: ECHO, secret: echoSecret },
        { domain: CEILING, secret: ceilingSecret },
      ],
      hostAdmins: [OURS, HISTORY, CEILING],
      anonymousHost: ANON,
      // Prosody's production default is to log at info; the harness logs debug (every stanza).
      logLevel: 'info',
    });
    run.b = await TestProsody.start({ modules: ['invites', 'invites_adhoc'], hostConfig: '  allow_user_invites = true', logLevel: 'info' });
    const a = run.a;
    const b = run.b;
    say(`Prosody A (component path) pid ${a.pid}, Prosody B (mod_invites_adhoc) pid ${b.pid}`);
    await Promise.all([...USERS, ADMIN].map((u) => a.register(u, USER_PASSWORD)));
    await Promise.all([...USERS, ADMIN].map((u) => b.register(u, USER_PASSWORD)));

    let emailsSeen = 0;
    const emailTimes: number[] = [];
    const smtp = await startSmtp(() => {
      emailsSeen++;
      emailTimes.push(performance.now());
    });
    run.smtp = smtp.server;

    const oursDir = join(run.tmp, 'ours');
    const oursConfig = await writeServiceConfig(oursDir, a, OURS, ourSecret, smtp.port);
    const historyConfig = await writeServiceConfig(historyDir, a, HISTORY, historySecret, smtp.port);
    // The services run as bin/xmpp-invites runs `serve`: the compiled build with its Node flags.
    const dist = buildService(run.tmp);
    const production = { dist, flags: TUNED_FLAGS };
    const ours = await startService(oursConfig, oursDir, 'service', production);
    run.children.push(ours);
    const history = await startService(historyConfig, historyDir, 'service', production);
    run.children.push(history);
    const echo = Child.start('bench/echo-component.ts', [a.componentUrl(), ECHO, echoSecret], { ipc: true, logFile: join(run.tmp, 'echo.log') });
    run.children.push(echo);
    await echo.waitForLog(/^online$/m);
    const ceiling = Child.start('bench/add-user-ceiling.ts', [a.componentUrl(), CEILING, ceilingSecret, HOST], { ipc: true, logFile: join(run.tmp, 'ceiling.log') });
    run.children.push(ceiling);
    await ceiling.nextMessage<{ ready: boolean }>(60_000);
    say(`service pids: empty store ${ours.pid}, ${opt.seed.toLocaleString('en')} invites ${history.pid}; echo ${echo.pid}; add-user ceiling ${ceiling.pid}`);

    const users = USERS.map((username) => ({ username, password: USER_PASSWORD }));
    const clientsA = await connectUsers(a.ports.c2s, HOST, users);
    run.clients.push(...clientsA);
    const clientsB = await connectUsers(b.ports.c2s, HOST, users);
    run.clients.push(...clientsB);
    const anonymous = await connectAnonymous(a.ports.c2s, ANON, opt.sessions);
    run.clients.push(...anonymous);

    // ---- 1 and 2: New Invite, each system compared with ours beside a measurement of ours.
    const dataB = join(b.dir, 'data');
    // Prosody's own rounds start measuring at once (no warm-up): each starts from the store
    // written by `before`, which every command then grows.
    const systems: { key: string; to: string; clients: TestClient[]; pids: Record<string, number>; warmupMs?: number; before?: () => void }[] = [
      { key: 'ours', to: OURS, clients: clientsA, pids: { prosody: a.pid, component: ours.pid } },
      { key: 'history', to: HISTORY, clients: clientsA, pids: { prosody: a.pid, component: history.pid } },
      { key: 'echo', to: ECHO, clients: clientsA, pids: { prosody: a.pid, component: echo.pid } },
      { key: 'prosody', to: HOST, clients: clientsB, pids: { prosody: b.pid }, warmupMs: 0, before: () => writeProsodyInvites(dataB, HOST, USERS, 0) },
      {
        key: 'prosodyN',
        to: HOST,
        clients: clientsB,
        pids: { prosody: b.pid },
        warmupMs: 0,
        before: () => writeProsodyInvites(dataB, HOST, USERS, Math.ceil(opt.prosodyN / USERS.length)),
      },
    ];
    if (opt.only) systems.splice(0, systems.length, ...systems.filter((s) => opt.only!.includes(s.key)));
    // Each system compared with ours runs right before or after a measurement of ours, and the
    // sequence is reversed every other round: every ratio is the median of the rounds' own ratios.
    const byKey = new Map(systems.map((s) => [s.key, s]));
    const partners = systems.map((s) => s.key).filter((k) => k !== 'ours');
    const inviteSequence = byKey.has('ours') ? pairedSequence('ours', partners) : partners;
    const inviteRounds = new PairedRounds<string, RoundResult>();
    // A short unmeasured pass so that every component is warm (JIT, page cache, sessions).
    for (const s of systems.filter((x) => x.to !== HOST)) await inviteRound(s.clients, s.to, opt.inFlight, 0, 300);
    for (let r = 0; r < opt.rounds; r++) {
      const order = roundOrder(inviteSequence, r);
      const results: RoundResult[] = [];
      for (const key of order) {
        const s = byKey.get(key)!;
        s.before?.();
        sampleLoad();
        const { result, cpuMs, wallMs } = await withCpu(s.pids, () => inviteRound(s.clients, s.to, opt.inFlight, s.warmupMs ?? opt.warmupMs, opt.measureMs));
        results.push({ ...result, cpuMs, wallMs });
        say(`round ${r + 1} ${s.key}: ${describeRound(result, cpuMs, wallMs)}`);
      }
      inviteRounds.add(order, results);
    }
    writeProsodyInvites(dataB, HOST, USERS, 0);
    const oursOver = (key: string) => (key === 'history' ? inviteRounds.ratio('history', 'ours', rate) : inviteRounds.ratio('ours', key, rate));
    if (opt.only) {
      for (const s of systems) say(`${s.key}: median ${summarize(inviteRounds.all(s.key)).rate.toFixed(0)}/s`);
      if (byKey.has('ours')) {
        for (const k of partners) say(`${k === 'history' ? 'history ÷ ours' : `ours ÷ ${k}`}: ${pairedText(oursOver(k))}`);
      }
      if (!opt.only.includes('registration')) return;
    }
    const oursHeld = (() => {
      const db = openDatabase(loadConfig(oursConfig, {}).database, { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM invites').get() as { n: number }).n;
      } finally {
        db.close();
      }
    })();

    // ---- 2: the store with 1,000,000 invites, read directly through the service's code.
    const historyCfg = loadConfig(historyConfig, {});
    const historyDb = openDatabase(historyCfg.database);
    const historyInvites = inviteServiceFor(historyCfg, historyDb);
    const lookups: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const token = historyInvites.tokens.render(seededId(Math.floor(Math.random() * opt.seed)), 0);
      const t0 = performance.now();
      const found = historyInvites.findByToken(token);
      lookups.push(performance.now() - t0);
      if (!found) throw new Error(`findByToken found nothing for a seeded invite`);
    }
    // The #pending page: exactly the handler's two queries, first page and pages further on.
    const pendingTotal = historyInvites.count({ state: 'pending' });
    const firstPage: number[] = [];
    const laterPages: number[] = [];
    for (let rep = 0; rep < 5; rep++) {
      let after: { createdAt: number; id: string } | undefined;
      for (let page = 0; page < 20; page++) {
        const t0 = performance.now();
        const list = historyInvites.list({ state: 'pending', oldestFirst: true, after, limit: 21 });
        historyInvites.count({ state: 'pending' });
        (page === 0 ? firstPage : laterPages).push(performance.now() - t0);
        // the next page starts after the 20th; a small store starts again from the first
        const last = list.length > 20 ? list[19] : undefined;
        after = last && { createdAt: last.createdAt, id: last.id };
      }
    }
    historyDb.close();
    sampleLoad();

    // ---- 3: registration at the component (XEP-0077 + XEP-0133) against add-user straight from a component.
    let accountSeq = 0;
    const oursPool = new InvitePool(oursConfig, () => `acct${accountSeq++}`);
    const historyPool = new InvitePool(historyConfig, () => `acct${accountSeq++}`);
    const regSystems = [
      {
        key: 'ours' as const,
        pids: { prosody: a.pid, component: ours.pid },
        run: async (warm = false) => {
          oursPool.topUp(4000);
          oursPool.checkpoint();
          const result = await registrationRound(anonymous, OURS, opt.inFlight, warm ? 0 : opt.warmupMs, warm ? 500 : opt.measureMs, () => oursPool.next(), ACCOUNT_PASSWORD);
          await oursPool.drainOutbox();
          return result;
        },
      },
      {
        key: 'history' as const,
        pids: { prosody: a.pid, component: history.pid },
        run: async (warm = false) => {
          historyPool.topUp(4000);
          historyPool.checkpoint();
          const result = await registrationRound(anonymous, HISTORY, opt.inFlight, warm ? 0 : opt.warmupMs, warm ? 500 : opt.measureMs, () => historyPool.next(), ACCOUNT_PASSWORD);
          await historyPool.drainOutbox();
          return result;
        },
      },
      {
        key: 'ceiling' as const,
        pids: { prosody: a.pid, component: ceiling.pid },
        run: (warm = false) =>
          ceiling.ask<RoundResult>({
            warmupMs: warm ? 0 : opt.warmupMs,
            measureMs: warm ? 500 : opt.measureMs,
            concurrency: opt.sessions * opt.inFlight,
            prefix: `ceil${accountSeq++}x`,
            password: ACCOUNT_PASSWORD,
          }),
      },
    ];
    // `--only registration`: ours against the ceiling.
    if (opt.only) regSystems.splice(0, regSystems.length, ...regSystems.filter((s) => s.key !== 'history'));
    const regByKey = new Map(regSystems.map((s) => [s.key, s]));
    // ours between the ceiling and ours holding the large store, the order reversed every other round.
    const regSequence = pairedSequence<'ours' | 'history' | 'ceiling'>('ours', regSystems.map((s) => s.key).filter((k) => k !== 'ours'));
    const regRounds = new PairedRounds<'ours' | 'history' | 'ceiling', RoundResult>();
    // A short unmeasured pass so that every registration path is warm too.
    for (const s of regSystems) await s.run(true);
    for (let r = 0; r < opt.rounds; r++) {
      const order = roundOrder(regSequence, r);
      const results: RoundResult[] = [];
      for (const key of order) {
        const s = regByKey.get(key)!;
        sampleLoad();
        const { result, cpuMs, wallMs } = await withCpu(s.pids, () => s.run());
        results.push({ ...result, cpuMs, wallMs });
        say(`round ${r + 1} registration ${s.key}: ${describeRound(result, cpuMs, wallMs)}`);
      }
      regRounds.add(order, results);
    }
    if (opt.only) {
      const [ours, ceiling] = [summarize(regRounds.all('ours')), summarize(regRounds.all('ceiling'))];
      say(`registration: ours ${ours.rate.toFixed(0)}/s, ceiling ${ceiling.rate.toFixed(0)}/s, ours ÷ ceiling ${pairedText(regRounds.ratio('ours', 'ceiling', rate))}`);
      return;
    }

    // ---- 2d: resident memory. The services above run as bin/xmpp-invites runs them (compiled,
    // with its Node flags); their peak covers every round so far. For comparison, the same service
    // on the same store under lighter load (two New Invite rounds and a registration round): compiled
    // with Node's defaults, and the TypeScript under tsx (whose loader keeps a second V8 isolate on a
    // worker thread, with esbuild).
    const memory: Report['memory'] = { ours: memoryReport(ours, oursDir, 'service'), history: memoryReport(history, historyDir, 'service') };
    await history.stop();
    run.children.splice(run.children.indexOf(history), 1);
    await sleep(500); // the server lets go of the component's stream
    for (const variant of ['compiled', 'tsx'] as const) {
      const other = await startService(historyConfig, historyDir, variant, variant === 'compiled' ? { dist, flags: [] } : undefined);
      run.children.push(other);
      for (let r = 0; r < 2; r++) await inviteRound(clientsA, HISTORY, opt.inFlight, opt.warmupMs, opt.measureMs);
      historyPool.topUp(4000);
      historyPool.checkpoint();
      await registrationRound(anonymous, HISTORY, opt.inFlight, opt.warmupMs, opt.measureMs, () => historyPool.next(), ACCOUNT_PASSWORD);
      memory[variant] = memoryReport(other, historyDir, variant);
      await other.stop();
      run.children.splice(run.children.indexOf(other), 1);
      await sleep(500);
    }
    say(
      `resident memory (peak): as bin/xmpp-invites runs it ${memory.history.peakMb.toFixed(0)} MB (empty store ${memory.ours.peakMb.toFixed(0)} MB), ` +
        `compiled with Node's defaults ${memory.compiled!.peakMb.toFixed(0)} MB, tsx ${memory.tsx!.peakMb.toFixed(0)} MB`,
    );

    // ---- 4: e-mail through the outbox to the loopback SMTP server.
    const emailRounds: { rate: number; count: number; seconds: number }[] = [];
    for (let r = 0; r < opt.rounds; r++) {
      sampleLoad();
      emailTimes.length = 0;
      const before = emailsSeen;
      oursPool.inOneTransaction((invites) => {
        for (let i = 0; i < opt.emails; i++) invites.create(OPERATOR, { kind: 'account', source: 'cli', email: `guest-${r}-${i}@example.org` });
      });
      const deadline = Date.now() + 120_000;
      while (emailsSeen - before < opt.emails && Date.now() < deadline) await sleep(20);
      const n = emailsSeen - before;
      if (n < opt.emails) throw new Error(`only ${n} of ${opt.emails} e-mails arrived within 120 s`);
      // From the first to the last message: the worker's 2 s poll before the first is not throughput.
      const seconds = (emailTimes[emailTimes.length - 1] - emailTimes[0]) / 1000;
      emailRounds.push({ rate: (n - 1) / seconds, count: n, seconds });
      say(`round ${r + 1} e-mail: ${((n - 1) / seconds).toFixed(0)}/s (${n} in ${seconds.toFixed(2)} s)`);
    }
    oursPool.close();
    historyPool.close();
    memory.ours = memoryReport(ours, oursDir, 'service');
    sampleLoad();

    // ---- 2e: the store alone, in this process: an empty file, and the 1,000,000 (nothing else uses it now).
    const historyCfg2 = loadConfig(historyConfig, {});
    const costs = {
      empty: storeCosts({ ...historyCfg2, database: join(run.tmp, 'costs-empty.sqlite') }),
      history: storeCosts(historyCfg2),
    };
    say(`store alone: ${JSON.stringify(costs)}`);

    const finishedAt = new Date();
    const report: Report = {
      options: opt,
      startedAt,
      finishedAt,
      machine: {
        cpu: cpus()[0]?.model ?? 'unknown',
        cores: cpus().length,
        node: process.version,
        prosody: prosodyVersion(),
        sqlite: sqliteVersion(),
        memoryGb: totalmem() / 1024 ** 3,
        loadBefore: quiet.load,
        quiet: quiet.quiet,
        loadMin: Math.min(...loads),
        loadMax: Math.max(...loads),
      },
      seed,
      invites: Object.fromEntries(systems.map((s) => [s.key, summarize(inviteRounds.all(s.key))])) as Report['invites'],
      oursHeld,
      lookups: { p50: percentile(lookups, 50), p99: percentile(lookups, 99), max: Math.max(...lookups), n: lookups.length },
      pending: { total: pendingTotal, first: median(firstPage), firstMax: Math.max(...firstPage), later: median(laterPages), laterMax: Math.max(...laterPages) },
      memory,
      registration: { ours: summarize(regRounds.all('ours')), history: summarize(regRounds.all('history')), ceiling: summarize(regRounds.all('ceiling')) },
      ratios: {
        oursEcho: oursOver('echo'),
        oursProsody: oursOver('prosody'),
        oursProsodyN: oursOver('prosodyN'),
        historyOurs: oursOver('history'),
        registration: regRounds.ratio('ours', 'ceiling', rate),
        registrationProsodyCost: regRounds.ratio('ceiling', 'ours', (x) => (x.cpuMs?.prosody ?? NaN) / x.allOps),
      },
      email: { rate: median(emailRounds.map((e) => e.rate)), perRound: opt.emails, rounds: emailRounds.length },
      costs,
    };
    printTable(report);
    if (opt.doc) {
      writeReport(join(PROJECT_ROOT, 'docs', 'performance.md'), report);
      say('wrote docs/performance.md');
    }
  } finally {
    await stopEverything();
  }
}

/**
 * Pre-made account invites in a service's database (written beside the running service, as the
 * CLI does), handed out one per registration.
 */
class InvitePool {
  readonly #db: Db;
  readonly #invites: InviteService;
  readonly #items: { username: string; token: string }[] = [];

  constructor(configFile: string, private readonly username: () => string) {
    const config = loadConfig(configFile, {});
    this.#db = openDatabase(config.database);
    this.#invites = inviteServiceFor(config, this.#db);
  }

  topUp(n: number): void {
    this.inOneTransaction((invites) => {
      while (this.#items.length < n) this.#items.push({ username: this.username(), token: invites.create(OPERATOR, { kind: 'account', source: 'cli' }).links.token });
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

  /** Checkpoints what this connection wrote, so that the service does not pay for it during a round. */
  checkpoint(): void {
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
  }

  next(): { username: string; token: string } {
    const item = this.#items.shift();
    if (!item) throw new Error('the pool of pre-made invites ran out');
    return item;
  }

  inOneTransaction(fn: (invites: InviteService) => void): void {
    this.#db.transaction(() => fn(this.#invites)).immediate();
  }

  close(): void {
    this.#db.close();
  }
}

/** `tsc -p tsconfig.build.json` into DIR/build/dist, laid out as the checkout is (schema.sql, node_modules). */
function buildService(dir: string): string {
  const root = join(dir, 'build');
  mkdirSync(root, { recursive: true });
  execFileSync(process.execPath, [join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(PROJECT_ROOT, 'tsconfig.build.json'), '--outDir', join(root, 'dist')], { stdio: 'inherit' });
  copyFileSync(join(PROJECT_ROOT, 'schema.sql'), join(root, 'schema.sql'));
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(root, 'node_modules'));
  return join(root, 'dist');
}

function describeRound(r: RoundResult, cpuMs: Record<string, number>, wallMs: number): string {
  const cpu = Object.entries(cpuMs)
    .map(([k, v]) => `${k} ${((100 * v) / wallMs).toFixed(0)}% ${(v / r.allOps).toFixed(3)} ms/op`)
    .join(', ');
  const errors = r.errors ? ` errors ${r.errors} (${r.firstError})` : '';
  return `${(r.ops / r.seconds).toFixed(0)}/s p50 ${percentile(r.latencies, 50).toFixed(1)} ms p99 ${percentile(r.latencies, 99).toFixed(1)} ms; CPU ${cpu}${errors}`;
}

function sqliteVersion(): string {
  const db = openDatabase(':memory:');
  try {
    return (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  } finally {
    db.close();
  }
}

function prosodyVersion(): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'prosody'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
