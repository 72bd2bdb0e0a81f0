/**
 * The CPU one New Invite costs the process, through AdhocCommands and the New Invite handler as a
 * stanza reaches them (no XMPP), 16 commands per turn of the event loop as a busy socket delivers
 * them (`npx tsx bench/new-invite-cpu.ts [N] [ROUNDS] [PER_TURN]`; figures, not a test), with the
 * store, the group commit and the session ids as `serve` has them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { newInviteCommand } from '../src/handlers/commands/new-invite';
import { inviteServiceFor, limitsFor, outboxFor } from '../src/services';
import { SqliteCommandSessions } from '../src/store/command-sessions-repo';
import { openDatabase } from '../src/store/database';
import { GroupCommit } from '../src/store/group-commit';
import { AdhocCommands } from '../src/xmpp/adhoc';
import { NS, NODES } from '../src/xmpp/ns';
import { xml } from '../src/xmpp/xml';
import { testConfig } from '../test/support/fixtures';

const N = Number(process.argv[2] ?? 4000);
const ROUNDS = Number(process.argv[3] ?? 4);
const PER_TURN = Number(process.argv[4] ?? 16);

void (async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-new-invite-'));
  try {
    const config = testConfig({ limits: { per_user_open: 'off', per_user_per_day: 'off', invite_requests_per_minute: 'off' } });
    const db = openDatabase(join(dir, 'store.sqlite'));
    const outbox = outboxFor(config, db, { instance: 'bench' });
    const invites = inviteServiceFor(config, db, { outbox });
    const commit = new GroupCommit(db);
    const services = { config, invites, logger: pino({ level: 'silent' }), limits: limitsFor(config, db), commit };
    const adhoc = new AdhocCommands({
      jid: 'bench.localhost',
      sessions: (l) => new SqliteCommandSessions(db, l),
      sessionIdMac: (data) => invites.tokens.sessionIdMac(data),
    }).add(newInviteCommand(services));
    const command = xml('command', { xmlns: NS.commands, node: NODES.newInvite });
    const measure = async () => {
      const batches = commit.counts.batches;
      const cpu = process.cpuUsage();
      for (let i = 0; i < N; i += PER_TURN) {
        await Promise.all(
          Array.from({ length: PER_TURN }, (_, k) => adhoc.execute({ full: `bench${(i + k) % 8}@localhost/r`, bare: `bench${(i + k) % 8}@localhost`, isLocal: true, isAdmin: false }, command)),
        );
      }
      const used = process.cpuUsage(cpu);
      return { msPer: (used.user + used.system) / 1000 / N, batches: commit.counts.batches - batches };
    };
    await measure();
    const out: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const m = await measure();
      out.push(m.msPer);
      console.log(`round ${r + 1}: ${m.msPer.toFixed(3)} ms CPU per invite, ${m.batches} group commits`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`median: ${median(out).toFixed(3)} ms CPU per invite`);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();
