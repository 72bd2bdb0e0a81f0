/**
 * Paired comparisons. A ratio between two systems is taken within each round, from the two
 * measured back to back, and the figure is the median of those per-round ratios. Drift (the
 * machine's other work, page cache, a store that grows) then falls on both members of each pair
 * alike; a ratio of two separate medians mixes rounds that ran under different conditions, and can
 * land far from every round's own ratio (rounds 0.86, 0.73, 0.90, 0.77, 0.64: paired 0.77, while
 * the medians' ratio can be 0.90).
 */
import { median } from './support';

/** The median of the rounds' own ratios, the ratios themselves (in round order) and their range. */
export interface Paired {
  median: number;
  rounds: number[];
  min: number;
  max: number;
}

/** Round i's ratio is numerators[i] ÷ denominators[i]; both lists are in round order. */
export function pairedRatio(numerators: readonly number[], denominators: readonly number[]): Paired {
  if (numerators.length !== denominators.length) {
    throw new Error(`paired ratio: ${numerators.length} rounds against ${denominators.length}`);
  }
  const rounds = numerators.map((n, i) => n / denominators[i]);
  return {
    median: median(rounds),
    rounds,
    min: rounds.length ? Math.min(...rounds) : NaN,
    max: rounds.length ? Math.max(...rounds) : NaN,
  };
}

/**
 * One round's order when one system (`hub`) is compared with each of `partners`: the hub is
 * measured again between every two partners, so that each partner sits next to a measurement of
 * the hub: [p0, hub, p1, p2, hub, p3, …]. A partner list of one gives [p0, hub].
 */
export function pairedSequence<K>(hub: K, partners: readonly K[]): K[] {
  const seq: K[] = [];
  partners.forEach((p, i) => {
    if (i % 2 === 0) seq.push(p, hub);
    else seq.push(p);
  });
  return seq;
}

/**
 * Round r's order: the sequence as it is in even rounds, reversed in odd ones, so that each pair's
 * order alternates (A then B, B then A) and a steady drift cancels out across rounds.
 */
export function roundOrder<K>(sequence: readonly K[], round: number): K[] {
  return round % 2 === 0 ? [...sequence] : [...sequence].reverse();
}

/**
 * The positions, in one round's order, of the first two adjacent slots holding `a` and `b` (in
 * either order): [index of a, index of b]. Throws if the order never puts them back to back.
 */
export function adjacentPair<K>(order: readonly K[], a: K, b: K): [number, number] {
  for (let i = 0; i + 1 < order.length; i++) {
    if (order[i] === a && order[i + 1] === b) return [i, i + 1];
    if (order[i] === b && order[i + 1] === a) return [i + 1, i];
  }
  throw new Error(`${String(a)} and ${String(b)} are never measured back to back in a round`);
}

/**
 * Measurements of several rounds, each in its round's order, with the slot order of each round.
 * `ratio(a, b, value)` pairs, in every round, a and b measured back to back.
 */
export class PairedRounds<K, T> {
  readonly #rounds: { order: K[]; results: T[] }[] = [];

  add(order: readonly K[], results: readonly T[]): void {
    if (order.length !== results.length) throw new Error(`a round of ${order.length} slots with ${results.length} results`);
    this.#rounds.push({ order: [...order], results: [...results] });
  }

  get count(): number {
    return this.#rounds.length;
  }

  /** Every measurement of `key`, all rounds, in order (a hub is measured several times a round). */
  all(key: K): T[] {
    return this.#rounds.flatMap((r) => r.results.filter((_, i) => r.order[i] === key));
  }

  /** value(a) ÷ value(b) within each round, from the slots where they ran back to back. */
  ratio(a: K, b: K, value: (t: T) => number): Paired {
    const nums: number[] = [];
    const dens: number[] = [];
    for (const r of this.#rounds) {
      const [i, j] = adjacentPair(r.order, a, b);
      nums.push(value(r.results[i]));
      dens.push(value(r.results[j]));
    }
    return pairedRatio(nums, dens);
  }
}
