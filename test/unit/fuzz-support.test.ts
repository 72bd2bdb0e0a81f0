/** The fuzz test's own tools: a seed replays the same inputs, and the XML character rule is exact. */
import { hasXmlForbidden, hostileString, Rng, snapshotDiff, STREAM_SAFE_ODDITIES, XML_FORBIDDEN } from '../support/fuzz';

it('gives the same picks for the same seed and other picks for another', () => {
  const run = (seed: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: 50 }, () => hostileString(rng, { forbidden: true }));
  };
  expect(run(42)).toEqual(run(42));
  expect(run(42)).not.toEqual(run(43));
});

it('knows which characters XML 1.0 forbids, surrogate pairs allowed and lone halves not', () => {
  for (const c of XML_FORBIDDEN) expect(hasXmlForbidden(`a${c}b`)).toBe(true);
  for (const c of STREAM_SAFE_ODDITIES) expect(hasXmlForbidden(`a${c}b`)).toBe(false);
  expect(hasXmlForbidden('\uD83D\uDE00')).toBe(false);
  expect(hasXmlForbidden('\uD83D')).toBe(true);
  expect(hasXmlForbidden('\uDE00\uD83D')).toBe(true);
});

it('keeps stream-safe strings free of characters XML forbids', () => {
  const rng = new Rng(7);
  for (let i = 0; i < 2000; i++) expect(hasXmlForbidden(hostileString(rng))).toBe(false);
});

it('names the tables that differ between two snapshots', () => {
  expect(snapshotDiff({ a: '1\n2', b: 'x' }, { a: '1\n2', b: 'x' })).toEqual([]);
  expect(snapshotDiff({ a: '1\n2', b: 'x' }, { a: '1\n3', b: 'x' })).toEqual(['a: 2 → 2 rows; first difference at row 1: "2" → "3"']);
});
