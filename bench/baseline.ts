/**
 * The baseline build: the service as it was at an earlier commit, built from git and run beside
 * today's build in the same run, so that "SQLite's figures stay within 10 % of the earlier ones"
 * is measured side by side (same machine, same minute, paired rounds) rather than against figures
 * written on another day.
 *
 * The earlier tree comes out of git (`git archive`, nothing in the checkout changes), is compiled
 * with this checkout's TypeScript without type-checking (its own types were checked when it was
 * made) and runs on this checkout's node_modules, under the Node flags its own bin/xmpp-invites
 * gave `serve`. Its store is its own SQLite file at its own schema; the invites handed out in
 * registration rounds are written by its own code (InvitePool.fromBuild).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './support';

/**
 * The commit whose benchmark run wrote the docs/performance.md that the second wave started from
 * (the first wave's last commit, 2026-11-21): the figures SQLite must stay within 10 % of.
 */
export const BASELINE_REF = '10999604eb283496a7c93e66319f839fc5e765b8';

export interface BaselineBuild {
  /** the commit, as git names it in full */
  commit: string;
  /** its date (committer date, ISO) */
  date: string;
  /** DIR/dist: cli.js and the modules InvitePool.fromBuild loads */
  dist: string;
  /** the Node flags its bin/xmpp-invites gave `serve` */
  flags: string[];
}

function git(args: string[], opts: { input?: Buffer } = {}): Buffer {
  return execFileSync('git', ['-C', PROJECT_ROOT, ...args], { input: opts.input, maxBuffer: 256 * 1024 * 1024, stdio: ['pipe', 'pipe', 'ignore'] });
}

/** The tree at `ref`, extracted into DIR/baseline and compiled into DIR/baseline/dist. */
export function buildBaseline(dir: string, ref: string): BaselineBuild {
  let commit: string;
  try {
    commit = git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).toString().trim();
  } catch {
    throw new Error(`the baseline ${ref} is no commit of this clone (a shallow one?): fetch it, name another with --baseline REF, or leave it out with --no-baseline`);
  }
  const date = git(['show', '-s', '--format=%cI', commit]).toString().trim();
  const root = join(dir, 'baseline');
  mkdirSync(root, { recursive: true });
  execFileSync('tar', ['-x', '-C', root], { input: git(['archive', '--format=tar', commit]), maxBuffer: 256 * 1024 * 1024 });
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(root, 'node_modules'));
  const tsc = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(root, 'dist'), '--noCheck'], { stdio: 'inherit' });
  return { commit, date, dist: join(root, 'dist'), flags: serveFlags(readFileSync(join(root, 'bin', 'xmpp-invites'), 'utf8')) };
}

/**
 * The Node flags a bin/xmpp-invites script gives `serve`: the default of its
 * `${XMPP_INVITES_NODE_FLAGS-...}` (the environment variable that replaces them is not applied).
 */
export function serveFlags(script: string): string[] {
  const m = /\$\{XMPP_INVITES_NODE_FLAGS-?([^}]*)\}/.exec(script);
  if (!m) throw new Error('bin/xmpp-invites: no ${XMPP_INVITES_NODE_FLAGS-…} default for serve');
  return m[1].split(/\s+/).filter(Boolean);
}
