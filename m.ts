import { openDatabase } from './src/store/database';
import { GroupCommit } from './src/store/group-commit';
import { inviteServiceFor } from './src/services';
import { testConfig } from './test/support/fixtures';
import { mkdtempSync } from 'node:fs';
(async () => {
  const dir = mkdtempSync('/tmp/full-');
  const config = testConfig({ database: `${dir}/db.sqlite`, invites: { approval: 'none' } });
  const db = openDatabase(config.database);
  const invites = inviteServiceFor(config, db);
  const commit = new GroupCommit(db);
  const pages = db.pragma('page_count', { simple: true });
  console.log('pages', pages);
  db.pragma(`max_page_count = ${pages}`);
  const admin = { kind: 'user' as const, jid: 'admin@localhost', isAdmin: true };
  let made = 0;
  try { for (;;) { invites.create(admin, { kind: 'contact-account', source: 'command' }); made++; } } catch (e) { console.log('filled after', made, (e as any).code, (e as Error).message); }
  const results = await Promise.allSettled(Array.from({ length: 30 }, () => commit.run(() => invites.create(admin, { kind: 'contact-account', source: 'command' }))));
  console.log(results.map((r) => r.status === 'rejected' ? (r.reason as Error).message : 'ok'));
  console.log('inTransaction', db.inTransaction, (db.prepare('select count(*) n from invites').get() as any).n);
})();
