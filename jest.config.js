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
      // the landing page in a real headless Chromium (Debian's /usr/bin/chromium), against a real Prosody
      displayName: 'browser',
      testMatch: ['<rootDir>/test/browser/**/*.test.ts'],
      transform,
      testEnvironment: 'node',
      setupFilesAfterEnv: ['<rootDir>/test/support/integration-setup.ts'],
    },
  ],
};
