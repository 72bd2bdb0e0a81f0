/**
 * How long `db copy` takes: a seeded SQLite store (bench/seed.ts: invites with their events, claims
 * and outbox rows, as after years of use) copied into a fresh database of a throwaway PostgreSQL
 * cluster on loopback (test/support/postgres.ts), stopped by its PID at the end.
 *
 *   npx tsx bench/db-copy.ts [--seed 100000] [--rounds 3]
 *
 * Prints, per round, the rows copied and the time, and the median.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../src/store/database';
import { copySqliteToPostgres } from '../src/store/pg/copy-from-sqlite';
import { openPool } from '../src/store/pg/pool';
import { TestPostgres } from '../test/support/postgres';
import { seedStore } from './seed';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seed: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } } });
  const count = Number(values.seed);
  const rounds = Number(values.rounds);
  const dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-copy-bench-'));
  const file = join(dir, 'store.sqlite');
  const cluster = await TestPostgres.start();
  try {
    const seeded = seedStore(file, { count, host: 'localhost', admin: 'admin@localhost' });
    console.log(`seeded ${seeded.invites} invites, ${seeded.events} events, ${seeded.claims} claims, ${seeded.outbox} outbox rows (${seeded.fileMb.toFixed(0)} MB)`);
    const times: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const pool = openPool(await cluster.createDatabase(), { max: 1 });
      const source = openDatabase(file, { readonly: true });
      try {
        const result = await copySqliteToPostgres(source, file, pool);
        times.push(result.ms);
        console.log(`round ${r + 1}: ${result.rows} rows in ${(result.ms / 1000).toFixed(2)} s (${Math.round(result.rows / (result.ms / 1000))} rows/s)`);
      } finally {
        source.close();
        await pool.end();
      }
    }
    const sorted = [...times].sort((a, b) => a - b);
    const mid = sorted.length / 2;
    const median = sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
    console.log(`median: ${(median / 1000).toFixed(2)} s`);
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
