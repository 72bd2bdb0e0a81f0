/**
 * Setup file (after the framework) of the `*-postgresql` jest projects: the test file's stores are
 * PostgreSQL databases (engine.ts), whose connections end once its tests have run.
 */
process.env.XMPP_INVITES_TEST_ENGINE = 'postgresql';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { dropTestDatabases } = require('./engine') as typeof import('./engine');

afterAll(() => dropTestDatabases());
