/** The figures of one run: the table printed at the end, and docs/performance.md. */
import { writeFileSync } from 'node:fs';
import type { SeedResult } from './seed';
import type { StoreCosts } from './store-costs';
import { pairedRatio, type Paired } from './paired';
import type { Summary } from './support';

// Part 5: the service on ejabberd, on SQLite and on PostgreSQL (bench/postgresql.ts).

export type PgSystem = 'sqlite' | 'pg1' | 'pg2';

/** One round's order: every two of the three systems back to back once (sqlite–pg1, pg1–pg2, pg2–sqlite). */
export const PG_SEQUENCE: readonly PgSystem[] = ['sqlite', 'pg1', 'pg2', 'sqlite'];

export type PgRatio = 'pg1Sqlite' | 'pg2Pg1' | 'pg2Sqlite';

/** The ratios of part 5, numerator and denominator: PostgreSQL ÷ SQLite, two instances ÷ one. */
export const PG_RATIOS: Record<PgRatio, [PgSystem, PgSystem]> = {
  pg1Sqlite: ['pg1', 'sqlite'],
  pg2Pg1: ['pg2', 'pg1'],
  pg2Sqlite: ['pg2', 'sqlite'],
};

/** Part 5's figures (bench/postgresql.ts). */
export interface PostgresFigures {
  postgresql: string;
  ejabberd: string;
  invites: Record<PgSystem, Summary>;
  registration: Record<PgSystem, Summary>;
  /** every ratio the median of the rounds' own ratios */
  ratios: { invites: Record<PgRatio, Paired>; registration: Record<PgRatio, Paired> };
}

/** Part 6: the earlier build (bench/baseline.ts) measured beside this one, paired. */
export interface BaselineFigures {
  commit: string;
  date: string;
  /** the Node flags its bin/xmpp-invites gave \`serve\` */
  flags: string[];
  invites: Summary;
  registration: Summary;
  /** e-mails a second, median of the rounds */
  email: number;
  /** ours ÷ baseline, each the median of the rounds' own ratios; invitesCpu: the component's CPU per New Invite */
  ratios: { invites: Paired; invitesCpu: Paired; registration: Paired; email: Paired };
}

export interface Memory {
  rssMb: number;
  peakMb: number;
  /** the memory probe's highest sample: V8's heap (of which the young generation) and the rest */
  breakdown?: { rssMb: number; heapTotalMb: number; heapUsedMb: number; youngMb: number; externalMb: number };
}

export interface Report {
  options: { seed: number; rounds: number; warmupMs: number; measureMs: number; sessions: number; inFlight: number; prosodyN: number; emails: number; quick: boolean };
  startedAt: Date;
  finishedAt: Date;
  machine: {
    cpu: string;
    cores: number;
    memoryGb: number;
    node: string;
    prosody: string;
    sqlite: string;
    loadBefore: number;
    /** undefined when the bench did not wait (--no-wait, --quick) */
    quiet: boolean | undefined;
    loadMin: number;
    loadMax: number;
  };
  seed: SeedResult;
  invites: Record<'ours' | 'history' | 'echo' | 'prosody' | 'prosodyN', Summary>;
  /** invites in the "empty" store once the New Invite rounds are over */
  oursHeld: number;
  lookups: { p50: number; p99: number; max: number; n: number };
  pending: { total: number; first: number; firstMax: number; later: number; laterMax: number };
  /** ours and history: as bin/xmpp-invites runs `serve` (compiled, TUNED_FLAGS), after every round; compiled and tsx: for comparison */
  memory: Record<'ours' | 'history', Memory> & Partial<Record<'compiled' | 'tsx' | 'baseline', Memory>>;
  registration: { ours: Summary; history: Summary; ceiling: Summary };
  /**
   * Every ratio between two systems: the median of the rounds' own ratios, each from the two
   * measured back to back in that round (bench/paired.ts). registrationProsodyCost is the ceiling's
   * Prosody CPU per account ÷ ours'.
   */
  ratios: Record<'oursEcho' | 'oursProsody' | 'oursProsodyN' | 'historyOurs' | 'registration' | 'registrationProsodyCost', Paired>;
  email: { rate: number; perRound: number; rounds: number };
  costs: { empty: StoreCosts; history: StoreCosts };
  /** part 5: New Invite and registration on PostgreSQL (one and two instances) beside SQLite, on ejabberd */
  postgresql: PostgresFigures;
  /** part 6: the baseline build beside this one (absent with --no-baseline) */
  baseline?: BaselineFigures;
}

export interface Row {
  figure: string;
  value: string;
  target: string;
  met: string;
}

const n0 = (x: number) => Math.round(x).toLocaleString('en');
const ms = (x: number) => `${x < 1 ? x.toFixed(3) : x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString('en')} ms`;
const cpu = (x: number) => `${x < 1 ? x.toFixed(2) : x.toFixed(1)} ms`;
const pct = (x: number) => `${Math.round(100 * x)} %`;
const ratio = (x: number) => `${x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)}×`;
const bare = (x: number) => ratio(x).slice(0, -1);
/** A paired ratio: its median, then each round's ratio in round order and their range. */
export const pairedText = (p: Paired) =>
  `${ratio(p.median)} (rounds ${p.rounds.map(bare).join(', ')}; range ${bare(p.min)}–${bare(p.max)})`;
const check = (ok: boolean) => (ok ? 'yes' : '**no**');
const us = (x: number) => `${Math.round(x)} µs`;
/** The Node flags bin/xmpp-invites gives `serve`: V8's young generation at most 8 MB, the old one collected sooner. */
export const TUNED_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=64'];
const TUNED = TUNED_FLAGS.join(' ');

export function rows(r: Report): Row[] {
  const { ours, history, echo, prosody, prosodyN } = r.invites;
  const q = r.ratios;
  const N = r.options.prosodyN.toLocaleString('en');
  const M = r.options.seed.toLocaleString('en');
  const inv = (s: Summary, unit = '/s') => `${n0(s.rate)}${unit} (p50 ${ms(s.p50)}, p99 ${ms(s.p99)})${s.errors ? `, ${s.errors} errors` : ''}`;
  const mem = (m: Memory | undefined) => (m ? `${n0(m.peakMb)} MB` : 'not measured');
  return [
    { figure: '1a. New Invite: ours (empty store at the start)', value: inv(ours), target: '', met: '' },
    { figure: '1b. New Invite: echo component (ceiling of the path)', value: inv(echo), target: '', met: '' },
    { figure: '1c. New Invite: Prosody `mod_invites_adhoc`, no invites kept at the start', value: inv(prosody), target: '', met: '' },
    { figure: `1d. New Invite: Prosody \`mod_invites_adhoc\` holding ${N} invites`, value: inv(prosodyN), target: '', met: '' },
    { figure: '1. ours ÷ echo', value: pairedText(q.oursEcho), target: '≥ 0.8×', met: check(q.oursEcho.median >= 0.8) },
    { figure: '1. ours ÷ Prosody (no invites kept)', value: pairedText(q.oursProsody), target: '≥ 10×', met: check(q.oursProsody.median >= 10) },
    { figure: `1. ours ÷ Prosody holding ${N}`, value: pairedText(q.oursProsodyN), target: '≥ 10×', met: check(q.oursProsodyN.median >= 10) },
    { figure: `2a. New Invite: ours holding ${M} invites`, value: inv(history), target: '', met: '' },
    { figure: `2a. ours holding ${M} ÷ ours empty`, value: pairedText(q.historyOurs), target: '≥ 0.9×', met: check(q.historyOurs.median >= 0.9) },
    {
      figure: `2b. token lookup (\`findByToken\`) among ${M}`,
      value: `p99 ${ms(r.lookups.p99)} (p50 ${ms(r.lookups.p50)}, max ${ms(r.lookups.max)}; ${n0(r.lookups.n)} lookups)`,
      target: 'p99 < 1 ms',
      met: check(r.lookups.p99 < 1),
    },
    {
      figure: `2c. a \`#pending\` page (list 21 + count), ${n0(r.pending.total)} pending`,
      value: `first page ${ms(r.pending.first)} (max ${ms(r.pending.firstMax)}), later pages ${ms(r.pending.later)} (max ${ms(r.pending.laterMax)})`,
      target: '< 50 ms',
      met: check(Math.max(r.pending.firstMax, r.pending.laterMax) < 50),
    },
    {
      figure: `2d. peak resident memory of \`serve\` holding ${M}, as bin/xmpp-invites runs it (compiled, \`${TUNED}\`)`,
      value: `${mem(r.memory.history)} (empty store: ${mem(r.memory.ours)})`,
      target: '< 100 MB',
      met: check(Math.max(r.memory.history.peakMb, r.memory.ours.peakMb) < 100),
    },
    { figure: '2d. for comparison: compiled, with Node\'s defaults', value: mem(r.memory.compiled), target: '', met: '' },
    { figure: '2d. for comparison: the TypeScript under tsx (`npm run cli -- serve`)', value: mem(r.memory.tsx), target: '', met: '' },
    { figure: '3a. registration at the component (XEP-0077 → XEP-0133): ours', value: inv(r.registration.ours, ' accounts/s'), target: '', met: '' },
    { figure: `3a. the same, ours holding ${M}`, value: inv(r.registration.history, ' accounts/s'), target: '', met: '' },
    { figure: '3b. `add-user` straight from a bare component (ceiling)', value: inv(r.registration.ceiling, ' accounts/s'), target: '', met: '' },
    {
      figure: '3. ours ÷ ceiling',
      value: pairedText(q.registration),
      target: '≥ 0.8×',
      met: check(q.registration.median >= 0.8),
    },
    { figure: '4. e-mail through the outbox to a loopback SMTP server', value: `${n0(r.email.rate)} e-mails/s`, target: '≥ 200/s', met: check(r.email.rate >= 200) },
    ...postgresRows(r.postgresql),
    ...baselineRows(r),
  ];
}

/**
 * Where the baseline build stands against the echo ceiling in this run: in each round, ours ÷ echo
 * over ours ÷ the baseline (both paired within the round), and the median of those. It measured
 * 0.82× of the echo in the run of 21 November that wrote the figures the second wave started from.
 */
export function baselineOverEcho(r: Report): Paired | undefined {
  const b = r.baseline;
  if (!b || b.ratios.invites.rounds.length !== r.ratios.oursEcho.rounds.length) return undefined;
  return pairedRatio(r.ratios.oursEcho.rounds, b.ratios.invites.rounds);
}

function echoAndBaseline(r: Report): string {
  const p = baselineOverEcho(r);
  if (!p) return '';
  return `The same ceiling holds the build this target was first met with: the baseline build of part 6,
0.82× of the echo in the run of 21 November, is ${pairedText(p)} of it in this one (each round's
ours ÷ echo over its ours ÷ baseline). The path's ratio moved with the machine, not with the code.`;
}

/** Target 6, in words: the baseline's ratios and what lies behind them (empty without a baseline). */
function baselineTarget(r: Report): string {
  const b = r.baseline;
  if (!b) return '';
  const theirs = r.memory.baseline;
  const grew = memoryGrowth(r);
  const met = b.ratios.invites.median >= 0.9 && b.ratios.registration.median >= 0.9 && b.ratios.email.median >= 0.9 && (grew ?? 0) <= 1.1;
  return `
**6. The service on SQLite keeps 0.9× of ${baselineName(b)}, side by side: ${check(met)}.** That build
is commit ${b.commit}, run with \`${b.flags.join(' ')}\`. New Invite ${pairedText(b.ratios.invites)}
(${n0(r.invites.ours.rate)} against ${n0(b.invites.rate)} invites/s; the component's CPU per invite
${pairedText(b.ratios.invitesCpu)} of the baseline's); registration ${pairedText(b.ratios.registration)};
e-mail ${pairedText(b.ratios.email)}${theirs ? `; peak resident memory ${n0(r.memory.ours.peakMb)} MB against ${n0(theirs.peakMb)} MB (${ratio(grew!)}, held to 1.1×)` : ''}.
What this build does that the baseline did not, on these paths: it asks the server whether an
account exists before it claims a use (one more XEP-0133 round trip per registration), checks
every outgoing stanza for characters XML forbids, keeps ad-hoc sessions in the store for other
instances, leases its periodic jobs in the store, and carries the code of the second wave (rooms,
requests, the console, the API, metrics) in the same process.
`;
}

/** Our peak memory over the baseline's, after the same rounds (undefined when the baseline's was not read). */
function memoryGrowth(r: Report): number | undefined {
  return r.memory.baseline ? r.memory.ours.peakMb / r.memory.baseline.peakMb : undefined;
}

/** The commit and date that name the baseline build in the figures. */
const baselineName = (b: BaselineFigures) => `the baseline build (${b.commit.slice(0, 7)}, ${b.date.slice(0, 10)})`;

/**
 * Part 6: the service on SQLite against the baseline build, side by side: each figure of the
 * baseline, then ours ÷ the baseline (paired), held to 0.9× (memory: to 1.1×, since less is better).
 */
export function baselineRows(r: Report): Row[] {
  const b = r.baseline;
  if (!b) return [];
  const name = baselineName(b);
  const inv = (s: Summary, unit = '/s') => `${n0(s.rate)}${unit} (p50 ${ms(s.p50)}, p99 ${ms(s.p99)})${s.errors ? `, ${s.errors} errors` : ''}`;
  const held = (p: Paired) => ({ target: '≥ 0.9×', met: check(p.median >= 0.9) });
  const rows: Row[] = [
    { figure: `6a. New Invite: ${name}, empty store at the start`, value: inv(b.invites), target: '', met: '' },
    { figure: '6a. New Invite: ours ÷ the baseline', value: pairedText(b.ratios.invites), ...held(b.ratios.invites) },
    { figure: '6a. the component\'s CPU per New Invite: ours ÷ the baseline', value: pairedText(b.ratios.invitesCpu), target: '', met: '' },
    { figure: `6b. registration at the component: ${name}`, value: inv(b.registration, ' accounts/s'), target: '', met: '' },
    { figure: '6b. registration: ours ÷ the baseline', value: pairedText(b.ratios.registration), ...held(b.ratios.registration) },
    { figure: `6c. e-mail through the outbox: ${name}`, value: `${n0(b.email)} e-mails/s`, target: '', met: '' },
    { figure: '6c. e-mail: ours ÷ the baseline', value: pairedText(b.ratios.email), ...held(b.ratios.email) },
  ];
  const grew = memoryGrowth(r);
  if (grew !== undefined) {
    rows.push({
      figure: `6d. peak resident memory, empty store, after the same rounds: ours against ${name}`,
      value: `${n0(r.memory.ours.peakMb)} MB against ${n0(r.memory.baseline!.peakMb)} MB (${ratio(grew)})`,
      target: '≤ 1.1×',
      met: check(grew <= 1.1),
    });
  }
  return rows;
}

const PG_NAMES: Record<PgSystem, string> = {
  sqlite: 'ours on SQLite, one instance',
  pg1: 'ours on PostgreSQL, one instance',
  pg2: 'ours on PostgreSQL, two instances (`domain_balancing`)',
};
const PG_RATIO_NAMES: Record<PgRatio, string> = {
  pg1Sqlite: 'PostgreSQL ÷ SQLite (one instance each)',
  pg2Pg1: 'two instances ÷ one (PostgreSQL)',
  pg2Sqlite: 'PostgreSQL, two instances ÷ SQLite, one',
};

/** Part 5: each system's figure, then the three paired ratios, for New Invite and for registration. */
export function postgresRows(p: PostgresFigures): Row[] {
  const parts = [
    { letters: ['a', 'b', 'c'], what: `New Invite on ejabberd ${p.ejabberd}`, summaries: p.invites, ratios: p.ratios.invites, unit: '/s' },
    { letters: ['d', 'e', 'f'], what: 'registration on ejabberd (XEP-0077 → mod_http_api)', summaries: p.registration, ratios: p.ratios.registration, unit: ' accounts/s' },
  ];
  return parts.flatMap(({ letters, what, summaries, ratios, unit }) => [
    ...(['sqlite', 'pg1', 'pg2'] as const).map((k, i) => ({
      figure: `5${letters[i]}. ${what}: ${PG_NAMES[k]}`,
      value: `${n0(summaries[k].rate)}${unit} (p50 ${ms(summaries[k].p50)}, p99 ${ms(summaries[k].p99)})${summaries[k].errors ? `, ${summaries[k].errors} errors` : ''}`,
      target: '',
      met: '',
    })),
    ...(Object.keys(PG_RATIOS) as PgRatio[]).map((k) => ({
      figure: `5. ${what.split(' on ')[0]}: ${PG_RATIO_NAMES[k]}`,
      value: pairedText(ratios[k]),
      target: '',
      met: '',
    })),
  ]);
}

export function printTable(r: Report): void {
  const table = rows(r);
  const w = [0, 0, 0];
  for (const row of table) {
    w[0] = Math.max(w[0], row.figure.length);
    w[1] = Math.max(w[1], row.value.length);
    w[2] = Math.max(w[2], row.target.length);
  }
  console.log();
  for (const row of table) console.log(`${row.figure.padEnd(w[0])}  ${row.value.padEnd(w[1])}  ${row.target.padEnd(w[2])}  ${row.met.replace(/\*/g, '')}`);
  console.log();
}

function markdownTable(r: Report): string {
  const lines = ['| figure | median of the rounds | target | met |', '|---|---|---|---|'];
  for (const row of rows(r)) lines.push(`| ${row.figure} | ${row.value} | ${row.target} | ${row.met} |`);
  return lines.join('\n');
}

/** CPU per operation and share of a core, per process, for one system. */
function cpuLine(s: Summary): string {
  const names: Record<string, string> = {
    prosody: 'Prosody',
    ejabberd: 'ejabberd',
    postgresql: 'PostgreSQL (all its processes)',
    component: 'component',
    instance1: 'first instance',
    instance2: 'second instance',
    bench: 'clients (bench process)',
  };
  return Object.keys(s.cpuPerOp)
    .map((k) => `${names[k] ?? k} ${cpu(s.cpuPerOp[k])} (${pct(s.busy[k])} of a core)`)
    .join(', ');
}

function memoryLine(name: string, m: Memory | undefined): string {
  if (!m) return `- ${name}: not measured`;
  const b = m.breakdown;
  const parts = b
    ? `; at the highest sample (${n0(b.rssMb)} MB): V8 heap ${n0(b.heapTotalMb)} MB (${n0(b.heapUsedMb)} MB in use, young generation ${n0(b.youngMb)} MB), everything else ${n0(b.rssMb - b.heapTotalMb)} MB`
    : '';
  return `- ${name}: peak ${n0(m.peakMb)} MB, ${n0(m.rssMb)} MB at the end${parts}`;
}

/**
 * The throughputs in the figures table of an earlier docs/performance.md, by figure: the leading
 * number of each value given per second (ratios, latencies and memory are left out).
 */
export function previousRates(text: string): Map<string, number> {
  const rates = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\| (.+?) \| ([\d,]+(?:\.\d+)?)(?:\/s| accounts\/s| e-mails\/s)[ |]/.exec(line);
    if (m) rates.set(m[1], Number(m[2].replace(/,/g, '')));
  }
  return rates;
}

/**
 * This run's throughputs beside those of the run that wrote the file before (another run, so not
 * paired: the figures of two runs differ by the machine's conditions too). For information: the
 * 0.9× that the service on SQLite is held to is measured side by side, in part 6.
 */
export function againstPrevious(r: Report, previous: Map<string, number>): Row[] {
  const out: Row[] = [];
  for (const row of rows(r)) {
    const before = previous.get(row.figure);
    const now = /^([\d,]+(?:\.\d+)?)(?:\/s| accounts\/s| e-mails\/s)/.exec(row.value);
    if (before === undefined || !now) continue;
    const change = Number(now[1].replace(/,/g, '')) / before;
    out.push({ figure: row.figure, value: `${n0(before)} → ${now[1]} (${ratio(change)})`, target: '', met: '' });
  }
  return out;
}

function previousSection(r: Report, previous: Map<string, number> | undefined): string {
  const compared = previous ? againstPrevious(r, previous) : [];
  if (!compared.length) return '';
  const lines = ['| figure | the previous run → this one |', '|---|---|'];
  for (const row of compared) lines.push(`| ${row.figure} | ${row.value} |`);
  return `
Against the run that wrote this file before (its medians, read from the file). Two runs are not
paired: the machine's conditions differ between them as well as the code (the echo ceiling, which
does not change, shows by how much). Whether the service on SQLite keeps 0.9× of an earlier build's
speed is measured side by side, in the same run, in part 6 above:

${lines.join('\n')}
`;
}

/** Writes docs/performance.md; `previous`: the throughputs of the file it replaces (previousRates), compared in a table. */
export function writeReport(file: string, r: Report, previous?: Map<string, number>): void {
  const { ours, history, echo, prosody, prosodyN } = r.invites;
  const reg = r.registration;
  const q = r.ratios;
  const M = r.options.seed.toLocaleString('en');
  const N = r.options.prosodyN.toLocaleString('en');
  const S = r.options.sessions;
  const F = r.options.inFlight;
  const minutes = (r.finishedAt.getTime() - r.startedAt.getTime()) / 60_000;
  const c = r.costs;
  const pg = r.postgresql;
  const text = `# Performance

How fast the service answers, how it behaves as its history grows, and how that compares with the
limits of the path it sits on and with Prosody's own invites. Every figure below comes from one run
of \`npm run bench\`, which wrote this file.

## Reproducing

\`\`\`sh
npm ci
npm run bench            # about ${Math.ceil(minutes + (r.seed.ms + r.seed.syncMs) / 60_000 + 0.5)} minutes once the machine is quiet (it waits for that); rewrites this file
npm run bench -- --quick # small sizes, no waiting, nothing written (to try the harness)
\`\`\`

It needs what \`npm test\` needs (Prosody 0.12, ejabberd and PostgreSQL from Debian). Options:
\`--seed N\` (invites in the large store, default 1,000,000), \`--rounds N\` (5), \`--measure S\`
(seconds per measured window, 4), \`--warmup S\` (1), \`--prosody-invites N\` (10,000), \`--emails N\`
(1,500 per round), \`--no-wait\`, \`--no-doc\`, \`--baseline REF\` (the earlier build of part 6, any commit
git knows; by default the first wave's last), \`--no-baseline\`, and \`--only\` with a list of \`ours\`,
\`history\`, \`echo\`, \`prosody\`, \`prosodyN\`, \`baseline\` (New Invite on Prosody), \`registration\`
(ours and the ceiling, and the baseline when named) and \`postgresql\` (part 5), such as
\`--only ours,baseline\` (just those rounds, printed, nothing written: to compare two versions of
the service). Everything binds 127.0.0.1; every process it starts is
stopped by its PID.

## Conditions of this run

- ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGb.toFixed(0)} GB RAM; Node ${r.machine.node}; Prosody ${r.machine.prosody} (Debian);
  SQLite ${r.machine.sqlite} (better-sqlite3); @xmpp/component and @xmpp/client 0.13.1; for part 5,
  ejabberd ${pg.ejabberd} (Debian) and PostgreSQL ${pg.postgresql} (Debian) with its own defaults for
  durability and memory (fsync and synchronous_commit on, shared_buffers 128 MB), reached through
  libpq (pg-native), on the same disk as the SQLite files. Each PostgreSQL commit waits for its WAL
  to reach the disk; SQLite, in WAL mode with \`synchronous = NORMAL\` (the service's setting),
  syncs at checkpoints only.
- Measured from ${r.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC for ${minutes.toFixed(1)} minutes, after the seed.
  ${
    r.machine.quiet === undefined
      ? `**The bench did not wait for a quiet machine** (--no-wait or --quick; load average ${r.machine.loadBefore.toFixed(2)} at the start).`
      : r.machine.quiet
        ? `The 1-minute load average had stayed below 0.5 for a minute before the first measurement (${r.machine.loadBefore.toFixed(2)}).`
        : `**The machine did not become quiet** (load average ${r.machine.loadBefore.toFixed(2)} when the bench gave up waiting after 20 minutes): other work ran beside these figures.`
  }
  During the run it was between ${r.machine.loadMin.toFixed(2)} and ${r.machine.loadMax.toFixed(2)}: the bench's own processes
  keep about two of them busy (two Prosody, the service, the client sessions).
- The machine is shared with other work. Each figure is the median of ${r.options.rounds} rounds; each ratio is the
  median of the rounds' own ratios, the two systems measured back to back in every round (in the
  other order in the next), so that a disturbance falls on both alike. The rounds' ratios and their
  range stand beside each ratio. Whole runs still differ by several hundredths in each ratio (see
  the ranges under each target below).

## Figures

${markdownTable(r)}
${previousSection(r, previous)}
CPU per operation, as measured from /proc for each process during the rounds (medians):

- 1a ours: ${cpuLine(ours)}
- 1b echo: ${cpuLine(echo)}
- 2a ours holding ${M}: ${cpuLine(history)}
- 1c Prosody, no invites kept: ${cpuLine(prosody)}
- 1d Prosody holding ${N}: ${cpuLine(prosodyN)}
- 3a registration, ours: ${cpuLine(reg.ours)}
- 3a registration, ours holding ${M}: ${cpuLine(reg.history)}
- 3b add-user ceiling: ${cpuLine(reg.ceiling)}
- 5a New Invite on ejabberd, SQLite: ${cpuLine(pg.invites.sqlite)}
- 5b New Invite on ejabberd, PostgreSQL, one instance: ${cpuLine(pg.invites.pg1)}
- 5c New Invite on ejabberd, PostgreSQL, two instances: ${cpuLine(pg.invites.pg2)}
- 5d registration on ejabberd, SQLite: ${cpuLine(pg.registration.sqlite)}
- 5e registration on ejabberd, PostgreSQL, one instance: ${cpuLine(pg.registration.pg1)}
- 5f registration on ejabberd, PostgreSQL, two instances: ${cpuLine(pg.registration.pg2)}

The store alone, in one process without XMPP (\`InviteService.create\` as New Invite calls it;
bench/store-costs.ts):

| store | one transaction per invite | WAL pages written per invite | the same without the fsyncs (\`synchronous = OFF\`) | 8 invites per transaction, as group commit makes them |
|---|---|---|---|---|
| empty file | ${us(c.empty.perCreateUs)} | ${c.empty.walPages.toFixed(1)} | ${us(c.empty.noFsyncUs)} | ${us(c.empty.batchedUs)} |
| ${M} invites | ${us(c.history.perCreateUs)} | ${c.history.walPages.toFixed(1)} | ${us(c.history.noFsyncUs)} | ${us(c.history.batchedUs)} |

Resident memory (VmHWM from /proc; the breakdown from a probe preloaded into the same process,
bench/memory-probe.cjs, sampling every second):

${memoryLine(`as bin/xmpp-invites runs it (compiled, ${TUNED}), ${M} invites, after every round`, r.memory.history)}
${memoryLine('the same, empty store', r.memory.ours)}
${memoryLine(`compiled with Node's defaults, ${M} invites`, r.memory.compiled)}
${memoryLine(`tsx, ${M} invites`, r.memory.tsx)}

## What is measured, and how

**Processes.** Prosody A carries the component path: the service twice (\`invites.localhost\` on an
empty file database in a temp directory, \`history.localhost\` on the seeded one), the echo component
(bench/echo-component.ts) and the add-user component (bench/add-user-ceiling.ts) are all connected to
it; ${S} users log in over c2s (PLAIN) with \`@xmpp/client\` in the bench process. Prosody B is a second
instance with \`invites\` and \`invites_adhoc\` enabled and \`allow_user_invites = true\` (so that its
New Invite, like ours, makes an invite that can create an account), with the same ${S} users. Both
log at \`info\`, Prosody's default (the test harness logs every stanza at \`debug\`). The service runs
as \`xmpp-invites serve\` in its own process, as bin/xmpp-invites runs it: the build of
\`tsc -p tsconfig.build.json\` under \`node ${TUNED}\`, with its default configuration plus one admin
(\`admin@localhost\`), \`requester_domains: [anon.localhost]\`, an SMTP transport and the per-user limits
\`off\` (a load test is a flood by design); it logs JSON at
\`info\` to a file. The 8 users are not admins: each New Invite makes a pending invite and tells the
admin (one folded message per 30 s).

**Rounds.** Each round is a closed loop: ${S} sessions keep ${F} commands each in flight, pipelined on
their streams (${S * F} outstanding), for ${r.options.warmupMs / 1000} s of warm-up and ${r.options.measureMs / 1000} s measured. Throughput counts the
commands answered inside the measured window; p50 and p99 are the latencies of those answers, from
sending the IQ to reading its result. Every answer is checked (a completed XEP-0401 form with an
\`xmpp:\` URI, or a result for a registration); errors are counted and shown. A figure is the median
of the ${r.options.rounds} rounds. A ratio is never one median over another: in every round the two systems it
compares run back to back, and the ratio is the median of those ${r.options.rounds} per-round ratios. So each
system compared with ours runs right beside a measurement of ours (New Invite: ours holding ${M},
ours, echo, Prosody, ours, Prosody holding ${N}; registration: ours holding ${M}, ours, the
ceiling), and every other round runs that sequence backwards, so that each pair's order alternates and
a steady drift cancels out. Ours' own figures (1a, 3a) are the median of all its measurements.

1. **New Invite** (\`urn:xmpp:invite#invite\`, execute): (a) ours, (b) the echo component on the same
   library, which answers with a fixed completed command of the same shape and size as ours (the
   form, and the note a user's invite carries while it waits for approval) and stores nothing: the
   cost of the path itself (two c2s hops, two component hops, the library); (c, d) Prosody's
   \`mod_invites_adhoc\` on the host JID. Prosody's store is emptied (c) or replaced by ${N} unused
   invites of the same users (d) before each of its rounds, and its rounds have no warm-up, so (c) is
   "starting from nothing, growing with every invite of the round". Our empty store is not emptied:
   it held ${n0(r.oursHeld)} invites at the end of the New Invite rounds.
2. **${M} invites.** bench/seed.ts writes them in one transaction with prepared statements, in
   ${(r.seed.ms / 1000).toFixed(0)} s (then ${(r.seed.syncMs / 1000).toFixed(0)} s to fsync the file, so that its write-back does not run beside the
   measurements): the same columns InviteService writes, a mix of states
   (${Object.entries(r.seed.byState).map(([k, v]) => `${v.toLocaleString('en')} ${k}`).join(', ')}),
   ${r.seed.events.toLocaleString('en')} events, ${r.seed.claims.toLocaleString('en')} claims and ${r.seed.outbox.toLocaleString('en')} outbox rows
   (the notices the admin, the inviters and the new accounts would have had), ${n0(r.seed.fileMb)} MB. Their ids are
   spread over the whole key space, as a store grown by earlier versions (whose ids were random) would
   be. (a) is New Invite as in 1, measured beside ours in each round; (b) ${n0(r.lookups.n)} \`findByToken\` calls
   for random seeded invites; (c) the \`#pending\` handler's two queries exactly (\`list({ state: 'pending',
   oldestFirst: true, after, limit: 21 })\` and \`count({ state: 'pending' })\`), the first page and 19
   pages after it, five times; (b) and (c) run in the bench process on its own connection to the file
   while the service is connected. (d) is the peak resident memory (VmHWM) of the \`serve\` process on
   the seeded store after all its New Invite and registration rounds; for comparison, the same service
   compiled with Node's defaults and under tsx, after two New Invite rounds and a registration round each.
3. **Registration**: anonymous sessions on \`anon.localhost\` (${S}, ${F} in flight each) register
   at the component with one pre-made account invite each (XEP-0077 with the token in the
   request); the service asks Prosody whether the account exists (XEP-0133 \`user-stats\`, so
   that an account that existed before is never credited to an invite), claims a use, creates the
   account with XEP-0133 \`add-user\`, settles the claim and sends the new account its welcome
   message. A round of ours ends once every welcome message has
   left (so that Prosody's work for them is counted in that round's CPU figures, and falls in no other
   round). The ceiling is a bare \`@xmpp/component\` sending the same \`add-user\` straight to Prosody,
   ${S * F} in flight.
4. **E-mail**: ${r.options.emails.toLocaleString('en')} account invites with an e-mail invitee are created by the operator
   in one transaction (as the CLI would); the service's outbox worker renders and sends them to an
   \`smtp-server\` on 127.0.0.1 (no TLS, no auth). The rate runs from the first message received to
   the last (the worker's 2 s poll before the first is not throughput).
5. **PostgreSQL, one and two instances** (bench/postgresql.ts; it runs first, and its servers are
   stopped before the others start). Two active instances of one component need ejabberd: Prosody
   holds one connection per component. So this part has an ejabberd of its own (Debian's
   ${pg.ejabberd}, logging at \`info\`, \`mod_offline\` on so that messages to offline accounts are
   kept as Prosody keeps them) with three components on it, each with routes of its own
   (\`global_routes: false\`): ours on a SQLite file (the baseline on this server), ours on a
   PostgreSQL database, and two \`serve\` processes on another PostgreSQL database connected as one
   component, among which ejabberd shares the stanzas (\`domain_balancing\`, \`bare_source\`, as the
   README advises; each user's stanzas reach one instance). The cluster (PostgreSQL ${pg.postgresql})
   is a throwaway one on 127.0.0.1, stopped by its PID at the end. The same ${S} users (not admins)
   and ${S} anonymous sessions as on Prosody, ${F} in flight each. Every round runs the three
   systems as SQLite, PostgreSQL one instance, two instances, SQLite (backwards in the next round),
   so that each pair is measured back to back in every round and each ratio is the median of the
   rounds' own ratios. New Invite is as in 1; registration is as in 3, but all three make the
   account through mod_http_api (the \`ejabberd-api\` provisioner: \`check_account\`, then
   \`register\`): behind \`domain_balancing\` the server's answer to an IQ one instance sent may reach
   the other one, so XEP-0133 cannot serve two instances, and the baseline takes the same path so
   that the ratios compare the store and the number of instances only.
6. **The baseline build** (bench/baseline.ts): the service as it was at an earlier commit (by
   default the first wave's last, whose run wrote the figures the second wave started from), taken
   out of git, compiled with this checkout's TypeScript and run on its node_modules, under the Node
   flags its own bin/xmpp-invites gave \`serve\`, as a fourth component on Prosody A with an empty
   store of its own schema. It runs the rounds of 1, 3 and 4 beside ours: in every New Invite
   round next to a measurement of ours, in every registration round next to ours (its invites
   written by its own code), and in every e-mail round before or after ours; its peak memory is read
   after the same rounds. Its config differs from ours only where it has to: no \`limits\` section
   (it shipped no per-user limits, and did not know \`off\`).

## The targets

**1. ours ≥ 0.8 × echo: ${check(q.oursEcho.median >= 0.8)} (${pairedText(q.oursEcho)}).** The echo rounds are
bound by Prosody (${pct(echo.busy.prosody)} of a core, ${cpu(echo.cpuPerOp.prosody)} per invite); the echo component does
nothing (${cpu(echo.cpuPerOp.component)}). Ours makes each invite durable before it answers (the invite, its event, the
admin's notice), and spends ${cpu(ours.cpuPerOp.component)} of CPU per invite for everything, against Prosody's ${cpu(ours.cpuPerOp.prosody)} and
the client sessions' ${cpu(ours.cpuPerOp.bench)}, on ${r.machine.cores} cores (ours busy ${pct(ours.busy.component)} of the time, Prosody ${pct(ours.busy.prosody)}). What
brings it there:
- group commit (src/store/group-commit.ts): the New Invite commands read in one turn of the event
  loop are committed in one transaction, each in a savepoint of its own, and answered after the
  commit; the pages they all touch are written into the WAL once per batch instead of once per invite;
- the answers of one turn leave in one write on the socket (src/xmpp/connection.ts);
- the admin's pending notices are folded into one message per 30 s whatever the flood (it names at
  most 100 invites and counts the rest), and the delivery worker's passes are at least 250 ms apart
  under load, so a burst of invites costs Prosody one offline message, not one per invite.
A component that keeps what it hands out still pays for it: on ${r.machine.cores} cores shared with Prosody and the
clients, every 0.1 ms of CPU per invite it spends is CPU that Prosody and the clients do not get.
${echoAndBaseline(r)}

**1. ours ≥ 10 × Prosody's own: ${check(q.oursProsody.median >= 10 && q.oursProsodyN.median >= 10)} (${ratio(q.oursProsody.median)} from an empty store, ${ratio(q.oursProsodyN.median)} holding ${N}).**
Prosody keeps invites in internal storage's map store, which it emulates on its keyval files: every
New Invite loads the whole host file of invites, adds one and writes the whole file back (and the
inviter's file too). From an empty store each round already grows it by hundreds of invites
(${cpu(prosody.cpuPerOp.prosody)} of Prosody per invite on average); holding ${N} it costs ${cpu(prosodyN.cpuPerOp.prosody)} per invite, Prosody at
${pct(prosodyN.busy.prosody)} of a core. Nothing removes invites that are never used. While it writes, Prosody does
nothing else: the ${S * F} commands of a round are answered together, ${ms(prosodyN.p50)} after they were sent,
and every other user of that server waits as long.

**2a. ${M} invites cost at most 10 % of throughput: ${check(q.historyOurs.median >= 0.9)} (${pairedText(q.historyOurs)}).**
Token lookups, the approval queue and every query New Invite and registration run stay on indexes
(2b, 2c), so reads do not grow with the store's history. Writes did: invite ids were random, so each
new invite's primary-key entry and its event's \`events_invite\` entry landed on pages no other recent
invite touched, which a large store had to read, write into the WAL and write back at a random place
in a ${n0(r.seed.fileMb)} MB file. Ids now begin with 4 characters from the second of their creation
(src/domain/invites.ts, \`newInviteId\`, like UUIDv7): the invites of one moment share those pages,
which stay few and cached. In development, the store alone with 8 invites per transaction took
282 µs per invite on a copy of this store with random ids, 163 µs with these ids, and 115 µs on an
empty file. It still costs more on the large file (the table above: ${us(c.history.batchedUs)} against ${us(c.empty.batchedUs)}): its indexes are
deeper, and the pages of the old, random ids lie around the current ones. In the service that is a
small part of each invite's path, and it runs beside Prosody's share rather than adding to it.

**2b. token lookup p99 < 1 ms: ${check(r.lookups.p99 < 1)} (${ms(r.lookups.p99)}).** One primary-key read and one HMAC.

**2c. a \`#pending\` page < 50 ms: ${check(Math.max(r.pending.firstMax, r.pending.laterMax) < 50)} (${ms(Math.max(r.pending.firstMax, r.pending.laterMax))} at most).** The list reads 21 entries of the partial
index \`invites_live\`; the count reads the unexpired pending entries of \`invites_state\` (a covering
index scan of ${n0(r.pending.total)} entries, most of the time).

**2d. resident memory < 100 MB: ${check(Math.max(r.memory.history.peakMb, r.memory.ours.peakMb) < 100)} (${n0(Math.max(r.memory.history.peakMb, r.memory.ours.peakMb))} MB at the peak, as bin/xmpp-invites runs the service).**
bin/xmpp-invites runs the compiled build (dist/, which \`npm ci\` makes through the \`prepare\` script)
and gives \`serve\` \`${TUNED}\`: under a high allocation rate V8 lets its young generation grow to
32 MB and collects the old one lazily while its limit is large; these flags cap the first at 8 MB and
make the second collect before 64 MB (the live heap is the "in use" figure above, two to three times
smaller). \`XMPP_INVITES_NODE_FLAGS\` replaces them. What the service keeps is small: V8's heap in use,
and SQLite's page cache (at most 4 MB). The rest is Node itself (about 40 MB for an empty script on
this machine) and heap not yet collected; under tsx, its loader adds a second V8 isolate on a
worker thread, with esbuild (${r.memory.tsx ? `${n0(r.memory.tsx.peakMb)} MB` : 'not measured'} in all, under lighter load).

**3. registration ≥ 0.8 × add-user from a bare component: ${check(q.registration.median >= 0.8)} (${pairedText(q.registration)}).**
Both are bound by Prosody (${pct(reg.ceiling.busy.prosody)} of a core for the ceiling, ${pct(reg.ours.busy.prosody)} for ours): creating an
account (hashing the password for SCRAM, writing the account) is most of its work. Through us,
Prosody spends ${cpu(reg.ours.cpuPerOp.prosody)} per account against ${cpu(reg.ceiling.cpuPerOp.prosody)}: the registration's own IQ and
result, over c2s and through the component (the path that costs it ${cpu(echo.cpuPerOp.prosody)} per New Invite in the echo
rounds), and the welcome message to the new account, which it routes and, the account being
offline, writes into a new offline store for that account. While Prosody is the bottleneck, the ratio of
those costs (the ceiling's ÷ ours, round by round: ${pairedText(q.registrationProsodyCost)}) is about what this path can reach against that
ceiling. The rest of the gap: in our measured windows Prosody was busy about ${pct((reg.ours.rate * reg.ours.cpuPerOp.prosody) / 1000)} of the time
(${n0(reg.ours.rate)} accounts/s × ${cpu(reg.ours.cpuPerOp.prosody)}), not quite saturated although ${S * F} registrations were in flight and
most of their time was spent waiting in Prosody (this share is derived from the round's CPU per
account, which also covers the warm-up and the welcome messages leaving after the window). Why is not
established; the fsyncs of our commits were ruled out (the same rounds with \`synchronous = OFF\` gave
the same ratio). Measured during development with \`--only registration\` (5 rounds of 3 s): ours ÷ ceiling
between 0.67 and 0.80 across runs; with the welcome message switched off (a build made for the
measurement only), 0.79 and 0.85, and Prosody's cost per account fell by 0.3 to 1 ms. The welcome
is part of the contract (it is how an account made at the component learns who invited it, with a
link to add them), so it stays. Holding ${M} invites changes nothing that matters here
(${n0(reg.history.rate)} accounts/s).

**4. e-mail ≥ 200/s: ${check(r.email.rate >= 200)} (${n0(r.email.rate)}/s).** One worker sends one message at a time over
a pooled SMTP connection (nodemailer, two connections, 100 messages each), rendering the text and
HTML bodies and recording each delivery in the invite's log.

**5. PostgreSQL, one and two instances** (no target: what a site gives up or gains by moving its
store, measured beside SQLite on the same ejabberd).
New Invite: PostgreSQL ÷ SQLite ${pairedText(pg.ratios.invites.pg1Sqlite)}; two instances ÷ one
${pairedText(pg.ratios.invites.pg2Pg1)}; two instances on PostgreSQL ÷ one on SQLite
${pairedText(pg.ratios.invites.pg2Sqlite)}. ejabberd spends ${cpu(pg.invites.sqlite.cpuPerOp.ejabberd)} per invite (${pct(pg.invites.sqlite.busy.ejabberd)} of a core in the SQLite rounds); on
PostgreSQL, the service spends ${cpu(pg.invites.pg1.cpuPerOp.component)} per invite against ${cpu(pg.invites.sqlite.cpuPerOp.component)} on SQLite, and PostgreSQL's
processes ${cpu(pg.invites.pg1.cpuPerOp.postgresql)}. With two instances, the first spent ${cpu(pg.invites.pg2.cpuPerOp.instance1)} and the second ${cpu(pg.invites.pg2.cpuPerOp.instance2)} per invite
(how \`bare_source\` split the ${S} users between them).
Registration: PostgreSQL ÷ SQLite ${pairedText(pg.ratios.registration.pg1Sqlite)}; two instances ÷ one
${pairedText(pg.ratios.registration.pg2Pg1)}; two instances on PostgreSQL ÷ one on SQLite
${pairedText(pg.ratios.registration.pg2Sqlite)}. ejabberd spends ${cpu(pg.registration.sqlite.cpuPerOp.ejabberd)} per account in the SQLite
rounds (${pct(pg.registration.sqlite.busy.ejabberd)} of a core). On ${r.machine.cores} cores, ejabberd, PostgreSQL, the instances and the client
sessions share the same CPUs: a second instance adds capacity only where the first was the bottleneck.
${baselineTarget(r)}
## Changes made to the service because of these figures

Before/after figures measured during development; "the store alone" is bench/store-costs.ts's loop.

- **Group commit for New Invite** (src/store/group-commit.ts, src/handlers/commands/new-invite.ts).
  See target 1. With it, New Invite went from about 2,300 to 2,750 invites/s in development runs.
- **One transaction wrapper per repository** (src/store/database.ts, \`immediateTransaction\`):
  better-sqlite3 builds four wrapper functions for every \`db.transaction(fn)\` call; this was about
  6 % of the service's busy time under New Invite load.
- **New Invite's ended sessions stored nowhere** (src/xmpp/adhoc.ts). Each New Invite's ended
  session id was a row in \`command_sessions\` (so that another instance could answer it
  \`session-expired\`): an insert, a delete beyond the per-user cap and the counts, in the group
  commit's transaction (in one of its own each turn before that: 18 % of the service's busy time).
  The id now proves its own end: 96 random bits and a 96-bit MAC of them, the owner's full JID and
  the command, keyed from \`token_key\`. New Invite's CPU in process (bench/new-invite-cpu.ts,
  16 a turn) went from 0.152 to 0.121 ms, and to 0.114 ms with timed-out sessions swept once a
  second rather than looked for at every command.
- **Less memory at start** (part 6 showed 105 MB against the baseline's 89 under the same rounds):
  the web pages' long dates are written out rather than through \`Intl.DateTimeFormat\`, which
  loaded ICU's locale data at start (6 MB of resident memory); prom-client (with
  @opentelemetry/api), smtp-server and postal-mime load only where metrics or bounces are
  configured; SASLprep's library and its tables only for a password beyond printable ASCII, which
  SASLprep never refuses or changes. A test keeps a default start free of them
  (test/unit/lean-start.test.ts). Loading the service and the CLI went from 80 to 70 MB (the
  baseline: 59 MB).
- **Replies written in one go** (src/xmpp/connection.ts): the socket is corked for the rest of the
  event-loop turn at the first write, so a batch of answers is one system call here and one read in
  Prosody.
- **The admin's pending notices** (src/store/outbox-repo.ts, src/outbox/render.ts). A flood of
  invites made one message per 100 invites (840 messages every 30 s at 2,800 invites/s), which the
  worker rendered and Prosody stored all at once: New Invite stalled for a second (a round at
  489/s). Now one message per window names at most 100 invites and says how many wait in all,
  counted when it leaves; further invites of the window do not touch the row. The delivery worker,
  woken by every new notice, now starts its passes at least 250 ms apart (the first notice on a quiet
  service still leaves at once), so that what a burst queues is sent together.
- **Time-prefixed invite ids** (src/domain/invites.ts, src/domain/tokens.ts). See target 2a.
- **Migration 8** (schema.sql): the indexes on \`invitee_email_key\` and \`invitee_jid\` were read by no
  query (every lookup by invitee uses \`invitee_key\`), and \`invites_invitee_key\` held an entry for
  every invite although most have no invitee: the first two are gone and the third is partial. The
  store alone, empty: 282 → 192 µs per invite (one transaction each), 17.7 → 14.4 WAL pages.
- **The production launch** (bin/xmpp-invites, scripts/prepare.ts). See target 2d.
- Earlier: the query that finds an admin's queued pending notice follows its index (325 ms → 0.007 ms
  at 270,000 notices); partial indexes \`invites_live\` and \`invites_due\` (migration 7: the \`#pending\`
  page 77 ms → 0.2 ms, the expiry job 160 ms → 1 ms); the username reservation check on its own index
  (100 ms → 0.016 ms); SQLite's page cache at 4 MB instead of 16 MB (no slower, 12 MB less memory);
  \`PRAGMA optimize\` at start-up (the planner's statistics, without which two queries picked slow
  plans at 1,000,000 invites).

## Tried, and left out

- **Checkpoints on a thread of their own.** SQLite copies the WAL back into the database inside the
  commit that crosses 1,000 pages, and that copy waits for two fsyncs. A worker thread running
  PASSIVE checkpoints took that off the event loop, but once group commit had cut the WAL pages per
  invite, New Invite was no faster with it (within the noise, on the empty and on the large store)
  and the thread cost 10 MB of resident memory, against target 2d.
- **A larger \`wal_autocheckpoint\`** (8,000 or 10,000 pages instead of 1,000): no measurable
  difference after group commit either.

## Left as they are (for the lead to decide)

- The service still loads more than the baseline at start (70 against 59 MB of resident memory,
  14 against 7 MB of live heap): zod and the configuration schema built from it (about 5 MB), the
  API's schemas, and the code of the second wave. The schema could be built only while the
  configuration is read, or the build bundled; neither was done.

- The welcome message's cost to Prosody (target 3).
- In some runs the first registration round of a service has a stall of up to a second (its p99;
  the medians are not affected). Not explained yet.
`;
  writeFileSync(file, text);
}
