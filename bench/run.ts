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
 * --no-wait, --no-doc, --doc (write the doc even with --quick), --baseline REF, --no-baseline,
 * --only ours,echo,baseline|registration|postgresql (just those rounds; bench/options.ts). BENCH_SERVICE_FLAGS
 * adds Node flags to the service's processes (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 *
 * Everything runs on 127.0.0.1: two Prosody 0.12 instances (test/support/prosody.ts), the service
 * as `xmpp-invites serve` child processes, the echo and add-user components as child processes,
 * a loopback SMTP server and the client sessions in this process. The baseline build (part 6,
 * bench/baseline.ts) is a fourth component on the same Prosody. Part 5 (bench/postgresql.ts)
 * runs first, on an ejabberd and a PostgreSQL cluster of its own, stopped before the rest starts.
 * Every process started here is stopped by its PID at the end.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { SMTPServer } from 'smtp-server';
import { loadConfig } from '../src/config';
import { inviteServiceFor } from '../src/services';
import { openDatabase } from '../src/store/database';
import { TestProsody, randomSecret } from '../test/support/prosody';
import type { TestClient } from '../test/support/client';
import { connectAnonymous, connectUsers, inviteRound, registrationRound, stopAll } from './load';
import { seedStore, seededId, type SeedResult } from './seed';
import { writeProsodyInvites } from './prosody-store';
import { storeCosts } from './store-costs';
import { Child, PROJECT_ROOT, loadAverage, median, percentile, rate, sleep, summarize, waitForQuiet, withCpu, type RoundResult, type Summary } from './support';
import { PairedRounds, pairedSequence, roundOrder } from './paired';
import { PG_RATIOS, TUNED_FLAGS, pairedText, previousRates, writeReport, printTable, type PostgresFigures, type Report } from './report';
import { options, selection } from './options';
import { postgresqlRounds } from './postgresql';
import { buildBaseline, type BaselineBuild } from './baseline';
import {
  ACCOUNT_PASSWORD,
  ADMIN,
  ANON,
  HOST,
  InvitePool,
  USERS,
  USER_PASSWORD,
  buildService,
  describeRound,
  memoryReport,
  say,
  startService,
  writeServiceConfig,
} from './services';

// ---------------------------------------------------------------------------------------------
// Fixed names

const OURS = 'invites.localhost';
const HISTORY = 'history.localhost';
const ECHO = 'echo.localhost';
const CEILING = 'ceiling.localhost';
const BASELINE = 'baseline.localhost';

// ---------------------------------------------------------------------------------------------

interface Running {
  tmp: string;
  a?: TestProsody;
  b?: TestProsody;
  children: Child[];
  clients: TestClient[];
  smtp?: SMTPServer;
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
  const sel = selection(opt.only);
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
    // (Not when only part 5 runs: it does not use that store.)
    const historyDir = join(run.tmp, 'history');
    let seed: SeedResult | undefined;
    if (sel.prosody) {
      say(`seeding ${opt.seed.toLocaleString('en')} invites`);
      seed = seedStore(join(historyDir, 'invites.sqlite'), { count: opt.seed, host: HOST, admin: `${ADMIN}@${HOST}` });
      say(`seeded in ${(seed.ms / 1000).toFixed(1)} s (and ${(seed.syncMs / 1000).toFixed(1)} s to fsync it): ${seed.events.toLocaleString('en')} events, ${seed.outbox.toLocaleString('en')} outbox rows, ${seed.fileMb.toFixed(0)} MB`);
    }
    let quiet: { quiet: boolean | undefined; load: number } = { quiet: undefined, load: loadAverage() };
    if (opt.wait) quiet = await waitForQuiet(0.5, 60_000, 20 * 60_000, say);
    say(`load average ${loadAverage().toFixed(2)}${opt.wait ? (quiet.quiet ? ' (quiet for a minute)' : ' (NOT quiet: gave up waiting)') : ''}`);
    const startedAt = new Date();
    sampleLoad();

    let emailsSeen = 0;
    const emailTimes: number[] = [];
    const smtp = await startSmtp(() => {
      emailsSeen++;
      emailTimes.push(performance.now());
    });
    run.smtp = smtp.server;
    // The services run as bin/xmpp-invites runs `serve`: the compiled build with its Node flags.
    const dist = buildService(run.tmp);
    const production = { dist, flags: TUNED_FLAGS };
    // The earlier build that SQLite's figures are held to, run beside this one (bench/baseline.ts).
    let baselineBuild: BaselineBuild | undefined;
    if (sel.baseline && opt.baseline && sel.prosody) {
      baselineBuild = buildBaseline(run.tmp, opt.baseline);
      say(`baseline: ${baselineBuild.commit.slice(0, 12)} of ${baselineBuild.date}, run with ${baselineBuild.flags.join(' ')}`);
    }

    // ---- 5: PostgreSQL, one and two instances, beside SQLite, on an ejabberd of its own (stopped
    // before the Prosody rounds start, so that those run as they always have).
    let postgresql: PostgresFigures | undefined;
    if (sel.postgresql) {
      postgresql = await postgresqlRounds(opt, run.tmp, production, smtp.port);
      sampleLoad();
      if (opt.only) {
        for (const [part, summaries, ratios] of [
          ['New Invite', postgresql.invites, postgresql.ratios.invites],
          ['registration', postgresql.registration, postgresql.ratios.registration],
        ] as const) {
          say(`${part} on ejabberd: ${Object.entries(summaries as Record<string, Summary>).map(([k, v]) => `${k} ${v.rate.toFixed(0)}/s`).join(', ')}`);
          for (const [name, [x, y]] of Object.entries(PG_RATIOS) as [keyof typeof PG_RATIOS, [string, string]][]) say(`${part} ${x} ÷ ${y}: ${pairedText(ratios[name])}`);
        }
      }
      if (!sel.prosody) return;
    }

    // ---- servers
    const ourSecret = randomSecret();
    const historySecret = randomSecret();
    const echoSecret = randomSecret();
    const ceilingSecret = randomSecret();
    const baselineSecret = randomSecret();
    run.a = await TestProsody.start({
      components: [
        { domain: OURS, secret: ourSecret },
        { domain: HISTORY, secret: historySecret },
        { domain: ECHO, secret: echoSecret },
        { domain: CEILING, secret: ceilingSecret },
        { domain: BASELINE, secret: baselineSecret },
      ],
      hostAdmins: [OURS, HISTORY, CEILING, BASELINE],
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

    const oursDir = join(run.tmp, 'ours');
    const oursConfig = await writeServiceConfig(oursDir, { server: a.componentUrl(), domain: OURS, secret: ourSecret, smtpPort: smtp.port });
    const historyConfig = await writeServiceConfig(historyDir, { server: a.componentUrl(), domain: HISTORY, secret: historySecret, smtpPort: smtp.port });
    const ours = await startService(oursConfig, oursDir, 'service', production);
    run.children.push(ours);
    const history = await startService(historyConfig, historyDir, 'service', production);
    run.children.push(history);
    const baselineDir = join(run.tmp, 'baseline-store');
    let baseline: Child | undefined;
    let baselineConfig = '';
    if (baselineBuild) {
      baselineConfig = await writeServiceConfig(baselineDir, { server: a.componentUrl(), domain: BASELINE, secret: baselineSecret, smtpPort: smtp.port, earlier: true });
      baseline = await startService(baselineConfig, baselineDir, 'service', baselineBuild);
      run.children.push(baseline);
    }
    const echo = Child.start('bench/echo-component.ts', [a.componentUrl(), ECHO, echoSecret], { ipc: true, logFile: join(run.tmp, 'echo.log') });
    run.children.push(echo);
    await echo.waitForLog(/^online$/m);
    const ceiling = Child.start('bench/add-user-ceiling.ts', [a.componentUrl(), CEILING, ceilingSecret, HOST], { ipc: true, logFile: join(run.tmp, 'ceiling.log') });
    run.children.push(ceiling);
    await ceiling.nextMessage<{ ready: boolean }>(60_000);
    say(`service pids: empty store ${ours.pid}, ${opt.seed.toLocaleString('en')} invites ${history.pid}; echo ${echo.pid}; add-user ceiling ${ceiling.pid}${baseline ? `; baseline ${baseline.pid}` : ''}`);

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
      ...(baseline ? [{ key: 'baseline', to: BASELINE, clients: clientsA, pids: { prosody: a.pid, component: baseline.pid } }] : []),
    ];
    if (opt.only) systems.splice(0, systems.length, ...systems.filter((s) => (sel.invites as string[]).includes(s.key)));
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
    const cpuOver = (key: string) => inviteRounds.ratio('ours', key, (x) => (x.cpuMs?.component ?? NaN) / x.allOps);
    const peakLine = () =>
      [['ours', ours, oursDir] as const, ...(baseline ? [['baseline', baseline, baselineDir] as const] : [])]
        .map(([name, child, dir]) => {
          const m = memoryReport(child, dir, 'service');
          const b = m.breakdown;
          return `${name} ${m.peakMb.toFixed(0)} MB${b ? ` (at its highest sample: heap ${b.heapTotalMb.toFixed(0)} MB, ${b.heapUsedMb.toFixed(0)} in use, the rest ${(b.rssMb - b.heapTotalMb).toFixed(0)} MB)` : ''}`;
        })
        .join(', ');
    if (opt.only) {
      say(`peak resident memory after the New Invite rounds: ${peakLine()}`);
      for (const s of systems) say(`${s.key}: median ${summarize(inviteRounds.all(s.key)).rate.toFixed(0)}/s`);
      if (byKey.has('ours')) {
        for (const k of partners) say(`${k === 'history' ? 'history ÷ ours' : `ours ÷ ${k}`}: ${pairedText(oursOver(k))}`);
        if (byKey.has('baseline')) say(`component CPU per invite, ours ÷ baseline: ${pairedText(cpuOver('baseline'))}`);
      }
      if (!sel.registration) return;
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
    const baselinePool = baselineBuild ? new InvitePool(baselineConfig, () => `acct${accountSeq++}`, baselineBuild.dist) : undefined;
    // One registration round at a service: its pool topped up and checkpointed first, and ended
    // once the service has sent every welcome message of the round.
    const poolRound = (pool: InvitePool, to: string) => async (warm = false) => {
      pool.topUp(4000);
      pool.checkpoint();
      const result = await registrationRound(anonymous, to, opt.inFlight, warm ? 0 : opt.warmupMs, warm ? 500 : opt.measureMs, () => pool.next(), ACCOUNT_PASSWORD);
      await pool.drainOutbox();
      return result;
    };
    const regSystems = [
      { key: 'ours' as const, pids: { prosody: a.pid, component: ours.pid }, run: poolRound(oursPool, OURS) },
      { key: 'history' as const, pids: { prosody: a.pid, component: history.pid }, run: poolRound(historyPool, HISTORY) },
      ...(baseline && baselinePool && (!opt.only || sel.baseline)
        ? [{ key: 'baseline' as const, pids: { prosody: a.pid, component: baseline.pid }, run: poolRound(baselinePool, BASELINE) }]
        : []),
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
    const regSequence = pairedSequence<'ours' | 'history' | 'ceiling' | 'baseline'>('ours', regSystems.map((s) => s.key).filter((k) => k !== 'ours'));
    const regRounds = new PairedRounds<'ours' | 'history' | 'ceiling' | 'baseline', RoundResult>();
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
      if (regByKey.has('baseline')) say(`registration: baseline ${summarize(regRounds.all('baseline')).rate.toFixed(0)}/s, ours ÷ baseline ${pairedText(regRounds.ratio('ours', 'baseline', rate))}`);
      say(`peak resident memory after the registration rounds: ${peakLine()}`);
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

    // ---- 4: e-mail through the outbox to the loopback SMTP server (ours and the baseline back to
    // back in each round, in the other order in the next).
    const emailRound = async (pool: InvitePool, tag: string) => {
      sampleLoad();
      emailTimes.length = 0;
      const before = emailsSeen;
      pool.queueEmails(opt.emails, (i) => `guest-${tag}-${i}@example.org`);
      const deadline = Date.now() + 120_000;
      while (emailsSeen - before < opt.emails && Date.now() < deadline) await sleep(20);
      const n = emailsSeen - before;
      if (n < opt.emails) throw new Error(`only ${n} of ${opt.emails} e-mails arrived within 120 s`);
      // From the first to the last message: the worker's poll before the first is not throughput.
      const seconds = (emailTimes[emailTimes.length - 1] - emailTimes[0]) / 1000;
      return { rate: (n - 1) / seconds, count: n, seconds };
    };
    const emailPools = new Map<'ours' | 'baseline', InvitePool>([['ours', oursPool], ...(baselinePool ? [['baseline', baselinePool] as const] : [])]);
    const emailRounds = new PairedRounds<'ours' | 'baseline', { rate: number; count: number; seconds: number }>();
    for (let r = 0; r < opt.rounds; r++) {
      const order = roundOrder([...emailPools.keys()], r);
      const results = [];
      for (const key of order) {
        const e = await emailRound(emailPools.get(key)!, `${key}-${r}`);
        results.push(e);
        say(`round ${r + 1} e-mail ${key}: ${e.rate.toFixed(0)}/s (${e.count} in ${e.seconds.toFixed(2)} s)`);
      }
      emailRounds.add(order, results);
    }
    oursPool.close();
    historyPool.close();
    baselinePool?.close();
    memory.ours = memoryReport(ours, oursDir, 'service');
    if (baseline) memory.baseline = memoryReport(baseline, baselineDir, 'service');
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
      seed: seed!,
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
      email: { rate: median(emailRounds.all('ours').map((e) => e.rate)), perRound: opt.emails, rounds: emailRounds.count },
      baseline: baselineBuild && {
        commit: baselineBuild.commit,
        date: baselineBuild.date,
        flags: baselineBuild.flags,
        invites: summarize(inviteRounds.all('baseline')),
        registration: summarize(regRounds.all('baseline')),
        email: median(emailRounds.all('baseline').map((e) => e.rate)),
        ratios: {
          invites: oursOver('baseline'),
          invitesCpu: cpuOver('baseline'),
          registration: regRounds.ratio('ours', 'baseline', rate),
          email: emailRounds.ratio('ours', 'baseline', (e) => e.rate),
        },
      },
      costs,
      postgresql: postgresql!,
    };
    printTable(report);
    if (opt.doc) {
      const file = join(PROJECT_ROOT, 'docs', 'performance.md');
      writeReport(file, report, existsSync(file) ? previousRates(readFileSync(file, 'utf8')) : undefined);
      say('wrote docs/performance.md');
    }
  } finally {
    await stopEverything();
  }
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
