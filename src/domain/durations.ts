/** Lifetimes as the config writes them ("7d") and as people read them ("7 days"). */

const DAY = 86_400_000;
const UNITS: [string, number][] = [
  ['d', DAY],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
];

/** A lifetime as the config writes it: "7d", "12h". */
export function durationValue(ms: number): string {
  const [unit, size] = UNITS.find(([, size]) => ms % size === 0) ?? ['s', 1_000];
  return `${Math.max(1, Math.round(ms / size))}${unit}`;
}

/** A lifetime in words: "7 days", "12 hours". */
export function durationLabel(ms: number): string {
  const names: Record<string, string> = { d: 'day', h: 'hour', m: 'minute', s: 'second' };
  const v = durationValue(ms);
  const n = Number(v.slice(0, -1));
  return `${n} ${names[v.slice(-1)]}${n === 1 ? '' : 's'}`;
}

