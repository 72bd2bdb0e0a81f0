/**
 * setupFiles of the jest project "integration-prosody13-ejabberd24.12": its test files run against
 * the backported Prosody 13 and ejabberd 24.12 (test/support/servers.ts). Jest gives every test file
 * its own copy of process.env, so this does not reach the files of the other projects.
 */
process.env.PROSODY_VERSION = '13';
process.env.EJABBERD_VERSION = '24.12';
