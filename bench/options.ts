/** The options of `npm run bench` (bench/run.ts), and which rounds `--only` selects. */
import { BASELINE_REF } from './baseline';

export interface Options {
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
  /** `--only ours,echo` (New Invite systems), `registration` (ours and the ceiling), `postgresql` (part 5): just these rounds, nothing written */
  only: string[] | undefined;
  /** `--baseline REF`: the earlier build measured beside this one (bench/baseline.ts); undefined with `--no-baseline` */
  baseline: string | undefined;
}

/** The New Invite systems on Prosody that `--only` may name. */
export const INVITE_SYSTEMS = ['ours', 'history', 'echo', 'prosody', 'prosodyN', 'baseline'] as const;
const OTHER_ROUNDS = ['registration', 'postgresql'] as const;

export function options(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const num = (name: string, dflt: number) => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return dflt;
    const n = Number(argv[i + 1]);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a number, not ${argv[i + 1] ?? 'nothing'}`);
    return n;
  };
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',').filter(Boolean) : undefined;
  if (only) selection(only); // refuses unknown names before anything starts
  const baselineAt = argv.indexOf('--baseline');
  const baselineRef = baselineAt >= 0 ? argv[baselineAt + 1] : BASELINE_REF;
  if (!baselineRef || baselineRef.startsWith('--')) throw new Error('--baseline needs a commit (a hash, tag or branch)');
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
    doc: !only && (argv.includes('--doc') || (!quick && !argv.includes('--no-doc'))),
    only,
    baseline: argv.includes('--no-baseline') ? undefined : baselineRef,
  };
}

export interface Selection {
  /** the New Invite systems measured on Prosody */
  invites: (typeof INVITE_SYSTEMS)[number][];
  /** registration on Prosody: ours and the add-user ceiling (and ours holding the seeded store in a full run) */
  registration: boolean;
  /** part 5: New Invite and registration on PostgreSQL, one and two instances, beside SQLite, on ejabberd */
  postgresql: boolean;
  /** whether the rounds on Prosody run at all (their servers, the seed) */
  prosody: boolean;
  /** the baseline build beside ours: in New Invite, and with `registration` in registration; in a full run, in e-mail and memory too */
  baseline: boolean;
}

/** What a run measures: everything without `--only`, else the rounds it names. Refuses a name it does not know. */
export function selection(only: readonly string[] | undefined): Selection {
  if (!only) return { invites: [...INVITE_SYSTEMS], registration: true, postgresql: true, prosody: true, baseline: true };
  const known: readonly string[] = [...INVITE_SYSTEMS, ...OTHER_ROUNDS];
  const unknown = only.filter((k) => !known.includes(k));
  if (unknown.length) throw new Error(`--only: no rounds called ${unknown.join(', ')} (known: ${known.join(', ')})`);
  if (only.length === 0) throw new Error(`--only needs a list of rounds (${known.join(', ')})`);
  const invites = INVITE_SYSTEMS.filter((k) => only.includes(k));
  const registration = only.includes('registration');
  return { invites, registration, postgresql: only.includes('postgresql'), prosody: invites.length > 0 || registration, baseline: only.includes('baseline') };
}
