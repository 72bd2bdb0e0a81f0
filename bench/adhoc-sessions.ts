/**
 * What keeping ad-hoc sessions in the store costs against keeping them in the process
 * (`npx tsx bench/adhoc-sessions.ts`; figures, not a test). Through AdhocCommands as a stanza
 * reaches it, without XMPP:
 * - the flood of test/unit/adhoc.test.ts: 10,000 sessions opened by one user's resources (each past
 *   the per-user cap ends that user's oldest);
 * - a one-stage command (New Invite's session: nothing stored, its id signed), one per turn of the
 *   event loop and 16 per turn;
 * - the table full (10,000 users holding one each): each new session ends the victim's.
 * The store is a SQLite file in WAL mode, as `serve` opens it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteCommandSessions } from '../src/store/command-sessions-repo';
import { openDatabase } from '../src/store/database';
import { AdhocCommands, type AdhocOptions, type CommandDef } from '../src/xmpp/adhoc';
import { NS } from '../src/xmpp/ns';
import { bareOf, type Requester } from '../src/xmpp/requester';
import { xml } from '../src/xmpp/xml';

const form = xml('x', { xmlns: NS.dataForms, type: 'form' });
const twoStage: CommandDef = {
  node: 'urn:bench#two',
  name: 'Two stages',
  allowed: () => true,
  start: () => ({ status: 'executing', form, actions: { allowed: ['complete'], execute: 'complete' }, state: { stage: 'one' } }),
  next: () => ({ status: 'completed' }),
};
const oneStage: CommandDef = { node: 'urn:bench#one', name: 'One stage', allowed: () => true, start: () => ({ status: 'completed' }) };
const who = (full: string): Requester => ({ full, bare: bareOf(full), isLocal: true, isAdmin: false });
const run = (adhoc: AdhocCommands, full: string, node: string) => adhoc.execute(who(full), xml('command', { xmlns: NS.commands, node }));
const turn = () => new Promise((resolve) => setImmediate(resolve));

async function measure(name: string, sessions: () => AdhocOptions['sessions']): Promise<Record<string, string>> {
  const us = (t: number, n: number) => `${(((performance.now() - t) / n) * 1000).toFixed(0)} µs`;
  const out: Record<string, string> = {};
  let adhoc = new AdhocCommands({ jid: 'bench.localhost', sessions: sessions() }).add(twoStage).add(oneStage);
  let t = performance.now();
  for (let i = 0; i < 10_000; i++) await run(adhoc, `bob@localhost/r${i}`, twoStage.node);
  out['10,000 sessions of one user'] = `${((performance.now() - t) / 1000).toFixed(2)} s (${us(t, 10_000)} each)`;
  for (const perTurn of [1, 16]) {
    t = performance.now();
    for (let i = 0; i < 4_000; i++) {
      await run(adhoc, `u${i % 100}@localhost/r`, oneStage.node);
      if (i % perTurn === perTurn - 1) await turn();
    }
    out[`one-stage command, ${perTurn} per turn`] = us(t, 4_000);
  }
  adhoc = new AdhocCommands({ jid: 'bench.localhost', sessions: sessions() }).add(twoStage);
  for (let i = 0; i < 10_000; i++) await run(adhoc, `f${i}@localhost/r`, twoStage.node);
  t = performance.now();
  for (let i = 0; i < 1_000; i++) await run(adhoc, `g${i}@localhost/r`, twoStage.node);
  out['table full: a new user’s session'] = us(t, 1_000);
  console.log(name, out);
  return out;
}

void (async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sessions-'));
  try {
    await measure('in memory', () => undefined);
    let n = 0;
    await measure('in the store', () => {
      const db = openDatabase(join(dir, `store${++n}.sqlite`));
      return (limits) => new SqliteCommandSessions(db, limits);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();
