import { PairedRounds, adjacentPair, pairedRatio, pairedSequence, roundOrder } from '../../bench/paired';
import { median, rate, type RoundResult } from '../../bench/support';
import { pairedText } from '../../bench/report';

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
