import { PairedRounds, adjacentPair, pairedRatio, pairedSequence, roundOrder } from '../../bench/paired';
import { median, rate, type RoundResult } from '../../bench/support';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PG_RATIOS, PG_SEQUENCE, againstPrevious, baselineOverEcho, baselineRows, pairedText, postgresRows, previousRates, rows, writeReport, type Report } from '../../bench/report';
import { BASELINE_REF, buildBaseline, serveFlags } from '../../bench/baseline';
import type { Summary } from '../../bench/support';
import { options, selection } from '../../bench/options';

/** A round that made `perSecond` operations in one second. */
const round = (perSecond: number): RoundResult => ({ ops: perSecond, allOps: perSecond, seconds: 1, latencies: [], errors: 0 });

// Issue 15's registration rounds: ours ÷ ceiling was 0.86, 0.73, 0.90, 0.77, 0.64 round by round,
// while the median of ours over the median of the ceiling read 0.90.
const ceiling = [400, 300, 350, 450, 340];
const ours = [344, 219, 315, 346.5, 217.6];

describe('paired ratios', () => {
  test('the ratio is the median of the rounds’ own ratios, not one median over the other', () => {
    expect(median(ours) / median(ceiling)).toBeCloseTo(0.9, 10);
    const p = pairedRatio(ours, ceiling);
    expect(p.rounds.map((x) => Number(x.toFixed(2)))).toEqual([0.86, 0.73, 0.9, 0.77, 0.64]);
    expect(p.median).toBeCloseTo(0.77, 10);
    expect(p.min).toBeCloseTo(0.64, 10);
    expect(p.max).toBeCloseTo(0.9, 10);
  });

  test('an even number of rounds takes the mean of the middle two ratios', () => {
    expect(pairedRatio([1, 3, 2, 8], [1, 2, 4, 4]).median).toBeCloseTo((1 + 1.5) / 2, 10);
  });

  test('rounds that do not pair up are refused', () => {
    expect(() => pairedRatio([1, 2, 3], [1, 2])).toThrow(/3 rounds against 2/);
  });

  test('the report prints the median, then every round’s ratio and their range', () => {
    expect(pairedText(pairedRatio(ours, ceiling))).toBe('0.77× (rounds 0.86, 0.73, 0.90, 0.77, 0.64; range 0.64–0.90)');
  });
});

describe('the order of a round', () => {
  test('the hub is measured beside every partner', () => {
    expect(pairedSequence('ours', ['history', 'echo', 'prosody', 'prosodyN'])).toEqual(['history', 'ours', 'echo', 'prosody', 'ours', 'prosodyN']);
    expect(pairedSequence('ours', ['echo'])).toEqual(['echo', 'ours']);
    expect(pairedSequence('ours', ['history', 'ceiling'])).toEqual(['history', 'ours', 'ceiling']);
  });

  test('every other round runs the sequence backwards, so each pair alternates its order', () => {
    const seq = pairedSequence('ours', ['history', 'echo', 'prosody', 'prosodyN']);
    for (const partner of ['history', 'echo', 'prosody', 'prosodyN']) {
      const [even, odd] = [0, 1].map((r) => adjacentPair(roundOrder(seq, r), 'ours', partner));
      expect(even[0] < even[1]).toBe(!(odd[0] < odd[1]));
    }
  });

  test('part 5 measures every two of its three systems back to back, in both directions of a round', () => {
    for (const [a, b] of Object.values(PG_RATIOS)) {
      const [even, odd] = [0, 1].map((r) => adjacentPair(roundOrder(PG_SEQUENCE, r), a, b));
      expect(even[0] < even[1]).toBe(!(odd[0] < odd[1]));
    }
  });

  test('two systems never back to back cannot be paired', () => {
    expect(() => adjacentPair(['a', 'b', 'c'], 'a', 'c')).toThrow(/never measured back to back/);
  });
});

describe('PairedRounds', () => {
  test('pairs, in each round, the measurement of the hub that ran beside the partner', () => {
    const rounds = new PairedRounds<string, RoundResult>();
    const seq = pairedSequence('ours', ['history', 'echo']);
    // round 1: history 90, ours 100, echo 200; round 2 (backwards): echo 300, ours 150, history 120
    rounds.add(roundOrder(seq, 0), [round(90), round(100), round(200)]);
    rounds.add(roundOrder(seq, 1), [round(300), round(150), round(120)]);
    expect(rounds.ratio('ours', 'echo', rate).rounds).toEqual([0.5, 0.5]);
    expect(rounds.ratio('history', 'ours', rate).rounds).toEqual([0.9, 0.8]);
    expect(rounds.all('ours').map(rate)).toEqual([100, 150]);
  });

  test('a hub measured twice a round pairs each partner with its own neighbour', () => {
    const rounds = new PairedRounds<string, RoundResult>();
    const seq = pairedSequence('ours', ['history', 'echo', 'prosody', 'prosodyN']);
    // history, ours, echo, prosody, ours, prosodyN
    rounds.add(seq, [round(95), round(100), round(125), round(4), round(80), round(1)]);
    expect(rounds.ratio('ours', 'echo', rate).median).toBe(0.8);
    expect(rounds.ratio('ours', 'prosody', rate).median).toBe(20);
    expect(rounds.ratio('ours', 'prosodyN', rate).median).toBe(80);
    expect(rounds.all('ours')).toHaveLength(2);
  });
});

// A full run's report (figures made up).
const summary = (perSecond: number): Summary => ({
  rate: perSecond,
  p50: 10,
  p99: 20,
  errors: 0,
  rounds: 5,
  cpuPerOp: { prosody: 1, component: 0.5, bench: 0.1 },
  busy: { prosody: 0.9, component: 0.5, bench: 0.1 },
});
// Part 5's processes: ejabberd, PostgreSQL, one service or two instances, the clients.
const onEjabberd = (perSecond: number, instances: 1 | 2): Summary => {
  const names = ['ejabberd', 'postgresql', ...(instances === 1 ? ['component'] : ['instance1', 'instance2']), 'bench'];
  return { ...summary(perSecond), cpuPerOp: Object.fromEntries(names.map((k) => [k, 0.5])), busy: Object.fromEntries(names.map((k) => [k, 0.5])) };
};
const costs = { perCreateUs: 200, walPages: 14, noFsyncUs: 100, batchedUs: 90 };
const memory = { rssMb: 80, peakMb: 90 };
const paired = (rounds: number[]) => pairedRatio(rounds, rounds.map(() => 1));
// The medians of the rates say 0.90 for registration; the rounds, paired, say 0.77.
const report: Report = {
  options: { seed: 1_000_000, rounds: 5, warmupMs: 1000, measureMs: 4000, sessions: 8, inFlight: 4, prosodyN: 10_000, emails: 1500, quick: false },
  startedAt: new Date('2026-12-02T07:00:00Z'),
  finishedAt: new Date('2026-12-02T07:05:00Z'),
  machine: { cpu: 'test', cores: 2, memoryGb: 8, node: 'v20', prosody: '0.12', sqlite: '3', loadBefore: 0.1, quiet: true, loadMin: 0.1, loadMax: 2 },
  seed: { invites: 1_000_000, events: 1, outbox: 1, claims: 1, byState: {} as Report['seed']['byState'], ms: 1000, syncMs: 0, fileMb: 1 },
  invites: { ours: summary(2900), history: summary(2750), echo: summary(3500), prosody: summary(110), prosodyN: summary(4) },
  oursHeld: 1,
  lookups: { p50: 0.03, p99: 0.2, max: 3, n: 20_000 },
  pending: { total: 1, first: 6, firstMax: 8, later: 6, laterMax: 7 },
  memory: { ours: memory, history: memory },
  registration: { ours: summary(315), history: summary(310), ceiling: summary(350) },
  email: { rate: 400, perRound: 1500, rounds: 5 },
  costs: { empty: costs, history: costs },
  postgresql: {
    postgresql: '15.20',
    ejabberd: '23.01-1',
    invites: { sqlite: onEjabberd(2000, 1), pg1: onEjabberd(1500, 1), pg2: onEjabberd(1600, 2) },
    registration: { sqlite: onEjabberd(200, 1), pg1: onEjabberd(190, 1), pg2: onEjabberd(195, 2) },
    ratios: {
      invites: { pg1Sqlite: paired([0.74, 0.76, 0.75]), pg2Pg1: paired([1.1, 1.05, 1.07]), pg2Sqlite: paired([0.8, 0.82, 0.79]) },
      registration: { pg1Sqlite: paired([0.95, 0.94, 0.96]), pg2Pg1: paired([1.01, 1.03, 0.99]), pg2Sqlite: paired([0.96, 0.97, 0.95]) },
    },
  },
  ratios: {
    oursEcho: paired([0.81, 0.83, 0.79, 0.85, 0.82]),
    oursProsody: paired([26, 25, 27, 26, 24]),
    oursProsodyN: paired([700, 710, 720, 690, 705]),
    historyOurs: paired([0.95, 0.94, 0.96, 0.93, 0.97]),
    registration: pairedRatio(ours, ceiling),
    registrationProsodyCost: paired([0.8, 0.81, 0.79, 0.82, 0.8]),
  },
};

describe('the report', () => {
  test('each ratio row shows the paired median, the rounds and their range, and is met by the median', () => {
    const reg = rows(report).find((r) => r.figure === '3. ours ÷ ceiling')!;
    expect(reg.value).toBe('0.77× (rounds 0.86, 0.73, 0.90, 0.77, 0.64; range 0.64–0.90)');
    expect(reg.met).toBe('**no**');
    const echo = rows(report).find((r) => r.figure === '1. ours ÷ echo')!;
    expect(echo.value).toBe('0.82× (rounds 0.81, 0.83, 0.79, 0.85, 0.82; range 0.79–0.85)');
    expect(echo.met).toBe('yes');
  });

  test('the written file gives the paired ratios in the targets too, never a ratio of the medians', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    try {
      const file = join(dir, 'performance.md');
      writeReport(file, report);
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('**3. registration ≥ 0.8 × add-user from a bare component: **no** (0.77× (rounds 0.86, 0.73, 0.90, 0.77, 0.64; range 0.64–0.90)).**');
      expect(text).toContain('**2a. 1,000,000 invites cost at most 10 % of throughput: yes (0.95× (rounds 0.95, 0.94, 0.96, 0.93, 0.97; range 0.93–0.97)).**');
      expect(text).toContain('round by round: 0.80×');
      expect(text).not.toContain('0.90×');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('part 5 has a row per system and a paired row per ratio, for New Invite and for registration', () => {
    const part5 = postgresRows(report.postgresql);
    expect(part5.map((r) => r.figure)).toEqual([
      '5a. New Invite on ejabberd 23.01-1: ours on SQLite, one instance',
      '5b. New Invite on ejabberd 23.01-1: ours on PostgreSQL, one instance',
      '5c. New Invite on ejabberd 23.01-1: ours on PostgreSQL, two instances (`domain_balancing`)',
      '5. New Invite: PostgreSQL ÷ SQLite (one instance each)',
      '5. New Invite: two instances ÷ one (PostgreSQL)',
      '5. New Invite: PostgreSQL, two instances ÷ SQLite, one',
      '5d. registration on ejabberd (XEP-0077 → mod_http_api): ours on SQLite, one instance',
      '5e. registration on ejabberd (XEP-0077 → mod_http_api): ours on PostgreSQL, one instance',
      '5f. registration on ejabberd (XEP-0077 → mod_http_api): ours on PostgreSQL, two instances (`domain_balancing`)',
      '5. registration: PostgreSQL ÷ SQLite (one instance each)',
      '5. registration: two instances ÷ one (PostgreSQL)',
      '5. registration: PostgreSQL, two instances ÷ SQLite, one',
    ]);
    expect(part5[0].value).toBe('2,000/s (p50 10 ms, p99 20 ms)');
    expect(part5[3].value).toBe('0.75× (rounds 0.74, 0.76, 0.75; range 0.74–0.76)');
    expect(part5[10].value).toBe('1.01× (rounds 1.01, 1.03, 0.99; range 0.99–1.03)');
    expect(rows(report).slice(-part5.length)).toEqual(part5);
  });

  test('the written file names part 5’s servers and gives its paired ratios', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    try {
      const file = join(dir, 'performance.md');
      writeReport(file, report);
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('ejabberd 23.01-1 (Debian) and PostgreSQL 15.20 (Debian)');
      expect(text).toContain('| 5. New Invite: two instances ÷ one (PostgreSQL) | 1.07× (rounds 1.10, 1.05, 1.07; range 1.05–1.10) |');
      expect(text).toContain('Registration: PostgreSQL ÷ SQLite 0.95× (rounds 0.95, 0.94, 0.96; range 0.94–0.96)');
      expect(text).toContain('`postgresql` (part 5)');
      expect(text).not.toContain('Against the run that wrote this file before');
      writeReport(file, report, previousRates('| 1a. New Invite: ours (empty store at the start) | 3,000/s (p50 10 ms, p99 23 ms) |  |  |'));
      expect(readFileSync(file, 'utf8')).toContain('| 1a. New Invite: ours (empty store at the start) | 3,000 → 2,900 (0.97×) |\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('against the previous run', () => {
  // Lines of the figures table as docs/performance.md had them before part 5.
  const before = [
    '| figure | median of the rounds | target | met |',
    '|---|---|---|---|',
    '| 1a. New Invite: ours (empty store at the start) | 2,888/s (p50 10 ms, p99 23 ms) |  |  |',
    '| 1. ours ÷ echo | 0.82× | ≥ 0.8× | yes |',
    '| 2a. New Invite: ours holding 1,000,000 invites | 2,747/s (p50 11 ms, p99 23 ms) |  |  |',
    '| 3a. registration at the component (XEP-0077 → XEP-0133): ours | 277 accounts/s (p50 113 ms, p99 185 ms) |  |  |',
    '| 3b. `add-user` straight from a bare component (ceiling) | 367 accounts/s (p50 82 ms, p99 104 ms) |  |  |',
    '| 4. e-mail through the outbox to a loopback SMTP server | 405 e-mails/s | ≥ 200/s | yes |',
  ].join('\n');

  test('reads the throughputs of the earlier file, and nothing else', () => {
    expect([...previousRates(before)]).toEqual([
      ['1a. New Invite: ours (empty store at the start)', 2888],
      ['2a. New Invite: ours holding 1,000,000 invites', 2747],
      ['3a. registration at the component (XEP-0077 → XEP-0133): ours', 277],
      ['3b. `add-user` straight from a bare component (ceiling)', 367],
      ['4. e-mail through the outbox to a loopback SMTP server', 405],
    ]);
  });

  test('shows each earlier throughput beside this run’s, without a target: two runs are not paired', () => {
    const previous = previousRates(before);
    const r = { ...report, invites: { ...report.invites, ours: { ...report.invites.ours, rate: 2500 } } };
    const compared = againstPrevious(r, previous);
    expect(compared.map((c) => [c.figure.slice(0, 3), c.value, c.target, c.met])).toEqual([
      ['1a.', '2,888 → 2,500 (0.87×)', '', ''],
      ['2a.', '2,747 → 2,750 (1.00×)', '', ''],
      ['3a.', '277 → 315 (1.14×)', '', ''],
      ['3b.', '367 → 350 (0.95×)', '', ''],
      ['4. ', '405 → 400 (0.99×)', '', ''],
    ]);
  });
});

describe('the baseline build, side by side (part 6)', () => {
  const baseline = {
    commit: '10999604eb283496a7c93e66319f839fc5e765b8',
    date: '2026-11-21T16:02:32+00:00',
    flags: ['--max-semi-space-size=4', '--max-old-space-size=64'],
    invites: summary(2000),
    registration: summary(300),
    email: 380,
    ratios: { invites: paired([0.97, 0.93, 1.05]), invitesCpu: paired([1.1, 1.2, 1.0]), registration: paired([0.86, 0.91, 1.27]), email: paired([0.8, 0.85, 0.9]) },
  };

  test('holds New Invite, registration and e-mail to 0.9× of the baseline, paired, and memory to 1.1×', () => {
    const part6 = baselineRows({ ...report, baseline, memory: { ...report.memory, baseline: { rssMb: 70, peakMb: 80 } } });
    expect(part6.map((r) => [r.figure.slice(0, 3), r.target, r.met])).toEqual([
      ['6a.', '', ''],
      ['6a.', '≥ 0.9×', 'yes'],
      ['6a.', '', ''],
      ['6b.', '', ''],
      ['6b.', '≥ 0.9×', 'yes'],
      ['6c.', '', ''],
      ['6c.', '≥ 0.9×', '**no**'],
      ['6d.', '≤ 1.1×', '**no**'],
    ]);
    expect(part6[0].figure).toBe('6a. New Invite: the baseline build (1099960, 2026-11-21), empty store at the start');
    expect(part6[1].value).toBe('0.97× (rounds 0.97, 0.93, 1.05; range 0.93–1.05)');
    expect(part6[7].value).toBe('90 MB against 80 MB (1.13×)');
    expect(rows({ ...report, baseline }).slice(-7)).toEqual(baselineRows({ ...report, baseline }));
    expect(baselineRows(report)).toEqual([]);
  });

  test('the written file says which commit, with which flags, and whether it held', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    try {
      const file = join(dir, 'performance.md');
      writeReport(file, { ...report, baseline, memory: { ...report.memory, baseline: { rssMb: 70, peakMb: 88 } } });
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('**6. The service on SQLite keeps 0.9× of the baseline build (1099960, 2026-11-21), side by side: **no**.**');
      expect(text).toContain('commit 10999604eb283496a7c93e66319f839fc5e765b8, run with `--max-semi-space-size=4 --max-old-space-size=64`');
      expect(text).toContain('peak resident memory 90 MB against 88 MB (1.02×, held to 1.1×)');
      writeReport(file, report);
      expect(readFileSync(file, 'utf8')).not.toContain('**6. ');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('places the baseline against the echo ceiling, round by round, from the two paired ratios', () => {
    const r = { ...report, baseline: { ...baseline, ratios: { ...baseline.ratios, invites: paired([1.05, 1.0, 0.9, 1.1, 1.0]) } } };
    expect(pairedText(baselineOverEcho(r)!)).toBe('0.82× (rounds 0.77, 0.83, 0.88, 0.77, 0.82; range 0.77–0.88)');
    expect(baselineOverEcho(report)).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    try {
      writeReport(join(dir, 'performance.md'), r);
      expect(readFileSync(join(dir, 'performance.md'), 'utf8')).toContain('is 0.82× (rounds 0.77, 0.83, 0.88, 0.77, 0.82; range 0.77–0.88) of it in this one');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a baseline that is no commit of the clone is refused before anything is built', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-baseline-'));
    try {
      expect(() => buildBaseline(dir, 'no-such-commit-0000')).toThrow(/the baseline no-such-commit-0000 is no commit of this clone .*--no-baseline/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the flags a bin/xmpp-invites gave serve are read from its script', () => {
    expect(serveFlags('  flags="${XMPP_INVITES_NODE_FLAGS---max-semi-space-size=4 --max-old-space-size=64}"\n')).toEqual(['--max-semi-space-size=4', '--max-old-space-size=64']);
    expect(serveFlags('flags="${XMPP_INVITES_NODE_FLAGS-}"')).toEqual([]);
    expect(() => serveFlags('exec node "$here/dist/cli.js"')).toThrow(/no \$\{XMPP_INVITES_NODE_FLAGS/);
  });
});

describe('the options', () => {
  test('--quick is small and writes nothing; a full run writes the doc', () => {
    const quick = options(['--quick']);
    expect(quick).toMatchObject({ rounds: 2, measureMs: 1500, warmupMs: 500, wait: false, doc: false, only: undefined });
    expect(options(['--quick', '--doc']).doc).toBe(true);
    expect(options([])).toMatchObject({ rounds: 5, measureMs: 4000, seed: 1_000_000, wait: true, doc: true });
  });

  test('--only runs the rounds it names and never writes the doc', () => {
    expect(options(['--only', 'postgresql', '--doc']).doc).toBe(false);
    expect(selection(['postgresql'])).toEqual({ invites: [], registration: false, postgresql: true, prosody: false, baseline: false });
    expect(selection(['ours', 'echo'])).toEqual({ invites: ['ours', 'echo'], registration: false, postgresql: false, prosody: true, baseline: false });
    expect(selection(['registration', 'postgresql'])).toEqual({ invites: [], registration: true, postgresql: true, prosody: true, baseline: false });
    expect(selection(['ours', 'baseline', 'registration'])).toEqual({ invites: ['ours', 'baseline'], registration: true, postgresql: false, prosody: true, baseline: true });
    expect(selection(undefined)).toEqual({ invites: ['ours', 'history', 'echo', 'prosody', 'prosodyN', 'baseline'], registration: true, postgresql: true, prosody: true, baseline: true });
  });

  test('the baseline is the first wave’s last commit unless --baseline names another; --no-baseline leaves it out', () => {
    expect(options([]).baseline).toBe(BASELINE_REF);
    expect(options(['--baseline', 'v1.0']).baseline).toBe('v1.0');
    expect(options(['--no-baseline']).baseline).toBeUndefined();
    expect(() => options(['--baseline'])).toThrow(/--baseline needs a commit/);
    expect(() => options(['--baseline', '--no-wait'])).toThrow(/--baseline needs a commit/);
  });

  test('an unknown round or a bad number is refused before anything starts', () => {
    expect(() => options(['--only', 'postgres'])).toThrow(/no rounds called postgres \(known: .*postgresql/);
    expect(() => options(['--only'])).toThrow(/--only needs a list/);
    expect(() => options(['--rounds', 'five'])).toThrow(/--rounds needs a number, not five/);
  });
});
