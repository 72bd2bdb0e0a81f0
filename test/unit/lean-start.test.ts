/**
 * A process on SQLite (the embedded default) never loads the PostgreSQL client: node-postgres alone
 * adds about 16 MB of resident memory, and `serve` has a memory target (docs/performance.md, 2d).
 * Nor, unless their features are configured, the libraries of metrics (prom-client, which brings
 * @opentelemetry/api) and of bounces (smtp-server, postal-mime), nor SASLprep's tables before a
 * password beyond printable ASCII.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

it('loads neither pg nor pg-native, nor the libraries of metrics and bounces, with the service and the command line', () => {
  const script = `
    require('./src/app.ts');
    require('./src/cli.ts');
    const loaded = Object.keys(require.cache).filter((m) => /node_modules\\/(pg|pg-native|libpq|pg-pool|pg-protocol|prom-client|@opentelemetry|smtp-server|postal-mime|@mongodb-js\\/saslprep)\\//.test(m));
    process.stdout.write(JSON.stringify({ modules: Object.keys(require.cache).length, loaded }));`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, XMPP_INVITES_CONFIG: '' } });
  expect(run.stderr).toBe('');
  const { modules, loaded } = JSON.parse(run.stdout) as { modules: number; loaded: string[] };
  expect(modules).toBeGreaterThan(100);
  expect(loaded).toEqual([]);
}, 60_000);
