/**
 * A process that keeps writing, as the service does under load: it creates invites (with their
 * events and outbox rows) through the invite service, one transaction each, and prints each id on
 * its own line once committed (acknowledged). Run: node --import tsx invite-writer.ts CONFIG.
 */
import { loadConfig } from '../../src/config';
import { OPERATOR } from '../../src/domain/types';
import { databaseFor, inviteServiceFor } from '../../src/services';

const config = loadConfig(process.argv[2]);
const db = databaseFor(config, { busyTimeoutMs: 5_000 });
const invites = inviteServiceFor(config, db);
let n = 0;
function batch(): void {
  for (let i = 0; i < 20; i++) {
    const { invite } = invites.create(OPERATOR, { kind: 'account', source: 'cli', email: `load${n++}@example.net`, note: 'x'.repeat(200) });
    process.stdout.write(`${invite.id}\n`);
  }
  setImmediate(batch);
}
process.on('SIGTERM', () => {
  db.close();
  process.exit(0);
});
batch();
