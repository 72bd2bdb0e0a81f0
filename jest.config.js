/**
 * Four projects: fast unit tests, integration tests against real servers (the system's Prosody 0.12
 * and ejabberd 23.01), the integration files that matter most for server compatibility again
 * against today's servers (Prosody 13 and ejabberd 24.12 from Debian's bookworm-backports, see
 * scripts/backports.ts), and browser tests.
 */
const transform = { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] };

/**
 * Run against Prosody 13 and ejabberd 24.12 as well: the component connection, XEP-0133
 * provisioning and registration at the component, the landing page, the bridge module, standby
 * (what the server does with a second connection as the component), the MUC rights and
 * affiliations (rooms: Prosody 13 needs a setting 0.12 does not), and everything on ejabberd. The rest (commands, presence, e-mail, limits…) talks only to the
 * component and does not depend on the server version.
 */
const TODAY_SERVERS_FILES = ['connection', 'registration', 'web', 'bridge', 'ejabberd', 'standby', 'rooms', 'rooms-ejabberd', 'rooms-invitations'];

/**
 * The suite again on PostgreSQL: every file whose outcome depends on the store, with
 * XMPP_INVITES_TEST_ENGINE=postgresql (test/support/engine.ts: each store a new database on one
 * throwaway cluster). Left out: files about SQLite itself (its faults, locks and files) or about
 * PostgreSQL already (the schema twins, `db copy`), and files that never open a store.
 */
const NOT_ON_POSTGRESQL = [
  // SQLite itself
  'store-failures', 'store', 'busy', 'records', 'backup', 'webhook-migration',
  // a SQLite file made read-only (and its no-store unit twin)
  'health',
  // PostgreSQL already
  'pg-schema', 'db-copy', 'db-copy-serve', 'pg-sync-db', 'pg-wake',
  // no store
  'backports', 'bench-paired', 'config-docs', 'config-schema', 'config', 'forms', 'fuzz-support', 'logger', 'sanitize', 'terminal-text', 'text', 'present', 'jobs', 'ejabberd-api', 'web-server',
  'harness', 'connection', 'ops-config', 'dev-logs', 'systemd-unit', 'sql-portability', 'lean-start', 'random',
].map((f) => `/test/(unit|integration)/${f}\\.test\\.ts$`);
/** PostgreSQL's projects: one throwaway cluster for all of them (test/support/pg-global.ts). */
const ON_POSTGRESQL = {
  globalSetup: '<rootDir>/test/support/pg-global.ts',
  globalTeardown: '<rootDir>/test/support/pg-teardown.ts',
  testPathIgnorePatterns: ['/node_modules/', ...NOT_ON_POSTGRESQL],
};

module.exports = {
  projects: [
    { displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'], transform, testEnvironment: 'node' },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform,
      testEnvironment: 'node',
      setupFilesAfterEnv: ['<rootDir>/test/support/integration-setup.ts'],
    },
    {
      displayName: 'integration-prosody13-ejabberd24.12',
      testMatch: TODAY_SERVERS_FILES.map((f) => `<rootDir>/test/integration/${f}.test.ts`),
      transform,
      testEnvironment: 'node',
      setupFiles: ['<rootDir>/test/support/today-servers.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/integration-setup.ts'],
    },
    {
      displayName: 'unit-postgresql',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform,
      testEnvironment: 'node',
      setupFilesAfterEnv: ['<rootDir>/test/support/pg-engine.ts'],
      ...ON_POSTGRESQL,
    },
    {
      displayName: 'integration-postgresql',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform,
      testEnvironment: 'node',
      setupFilesAfterEnv: ['<rootDir>/test/support/pg-engine.ts', '<rootDir>/test/support/integration-setup.ts'],
      ...ON_POSTGRESQL,
    },
    {
      // the landing page in a real headless Chromium (Debian's /usr/bin/chromium), against a real Prosody
      displayName: 'browser',
      testMatch: ['<rootDir>/test/browser/**/*.test.ts'],
      transform,
      testEnvironment: 'node',
      setupFilesAfterEnv: ['<rootDir>/test/support/integration-setup.ts'],
    },
    {
      displayName: 'browser-postgresql',
      testMatch: ['<rootDir>/test/browser/**/*.test.ts'],
      transform,
      testEnvironment: 'node',
      setupFilesAfterEnv: ['<rootDir>/test/support/pg-engine.ts', '<rootDir>/test/support/integration-setup.ts'],
      ...ON_POSTGRESQL,
    },
  ],
};
