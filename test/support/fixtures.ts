/** Configs and services for tests, built through the real config parser. */
import { stringify } from 'yaml';
import { parseConfig, type Config } from '../../src/config';
import { testDatabase } from './engine';

export const TEST_TOKEN_KEY = 'test-token-key-0123456789abcdef0123456789';
export const TEST_SECRET = 'test-component-secret-5f2c';

type Raw = Record<string, unknown>;

function merge(base: Raw, over: Raw): Raw {
  const out: Raw = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? merge(out[k] as Raw, v as Raw) : v;
  }
  return out;
}

export function rawTestConfig(overrides: Raw = {}): Raw {
  return merge(
    {
      component: { server: 'xmpp://127.0.0.1:5347', domain: 'invites.localhost', secret: TEST_SECRET },
      host: 'localhost',
      admins: ['admin@localhost'],
      // on PostgreSQL a new database, made only when the test does not name one
      ...('database' in overrides ? {} : { database: testDatabase() }),
      token_key: TEST_TOKEN_KEY,
      // port 0: every service a test starts (in-process or `serve`) binds a free port of its own
      web: { public_url: 'https://invites.example.org', listen: '127.0.0.1:0' },
    },
    overrides,
  );
}

export function testConfig(overrides: Raw = {}, baseDir = process.cwd()): Config {
  return parseConfig(stringify(rawTestConfig(overrides)), { baseDir, env: {} });
}
