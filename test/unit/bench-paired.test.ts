import { PairedRounds, adjacentPair, pairedRatio, pairedSequence, roundOrder } from '../../bench/paired';
import { median, rate, type RoundResult } from '../../bench/support';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pairedText, rows, writeReport, type Report } from '../../bench/report';
import type { Summary } from '../../bench/support';

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

describe('the report', () => {
  const summary = (perSecond: number): Summary => ({
    rate: perSecond,
    p50: 10,
    p99: 20,
    errors: 0,
    rounds: 5,
    cpuPerOp: { prosody: 1, component: 0.5, bench: 0.1 },
    busy: { prosody: 0.9, component: 0.5, bench: 0.1 },
  });
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
    ratios: {
      oursEcho: paired([0.81, 0.83, 0.79, 0.85, 0.82]),
      oursProsody: paired([26, 25, 27, 26, 24]),
      oursProsodyN: paired([700, 710, 720, 690, 705]),
      historyOurs: paired([0.95, 0.94, 0.96, 0.93, 0.97]),
      registration: pairedRatio(ours, ceiling),
      registrationProsodyCost: paired([0.8, 0.81, 0.79, 0.82, 0.8]),
    },
  };

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
});
