/** The pool of random bytes (src/domain/random.ts): every byte handed out once, as a copy. */
import { secureRandomBytes } from '../../src/domain/random';

describe('secureRandomBytes', () => {
  it('gives each caller bytes of its own, across refills of the pool', () => {
    const drawn = Array.from({ length: 5_000 }, () => secureRandomBytes(9));
    expect(drawn.every((b) => b.length === 9)).toBe(true);
    // 72 random bits each: 5,000 draws (about 11 refills of 4 KiB) never repeat one
    expect(new Set(drawn.map((b) => b.toString('hex'))).size).toBe(5_000);
    // copies, not views of the pool: changing one changes no other, nor what comes next
    const before = drawn[0].toString('hex');
    drawn[1].fill(0);
    expect(drawn[0].toString('hex')).toBe(before);
    expect(secureRandomBytes(9).equals(Buffer.alloc(9))).toBe(false);
  });

  it('spreads its bytes evenly over 0–255, and draws large sizes directly', () => {
    const counts = new Array<number>(256).fill(0);
    for (const b of secureRandomBytes(256 * 400)) counts[b]++;
    for (let i = 0; i < 20; i++) for (const b of secureRandomBytes(1_000)) counts[b]++;
    // about 478 of each: a fair draw stays within ±35 % (over 7 standard deviations)
    expect(Math.min(...counts)).toBeGreaterThan(310);
    expect(Math.max(...counts)).toBeLessThan(650);
    expect(secureRandomBytes(0)).toHaveLength(0);
  });
});
