/**
 * Today's servers for the integration tests (scripts/backports.ts, test/support/servers.ts): the
 * launchers are rewritten to run from the unpacked tree, a changed package layout is an error
 * rather than a launcher that runs the system's version, and a missing backport fails with the
 * command to fetch it (never a skipped test).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const PROSODY_HEAD = [
  '#!/usr/bin/env lua5.4',
  "CFG_SOURCEDIR='/usr/lib/prosody';",
  "CFG_CONFIGDIR='/etc/prosody';",
  "CFG_PLUGINDIR='/usr/lib/prosody/modules/';",
  "CFG_DATADIR='/var/lib/prosody';",
  'if CFG_SOURCEDIR then end',
].join('\n');

const EJABBERDCTL_HEAD = [
  '#!/bin/sh',
  'ERLANG_OPTS="+K $POLL +P $ERL_PROCESSES $ERL_OPTIONS"',
  "ERL_LIBS='/usr/lib/x86_64-linux-gnu'",
  'export ERL_LIBS',
].join('\n');

type Mods = { backports: typeof import('../../scripts/backports'); servers: typeof import('../support/servers') };

/** Runs fn with fresh copies of the modules, loaded and called with `env` in process.env. */
function withEnv<T>(env: Record<string, string | undefined>, fn: (mods: Mods) => T): T {
  const saved = process.env;
  process.env = { ...saved };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    let mods!: Mods;
    jest.isolateModules(() => {
      mods = { backports: require('../../scripts/backports'), servers: require('../support/servers') };
    });
    return fn(mods);
  } finally {
    process.env = saved;
  }
}

describe('launchers', () => {
  const backports = withEnv({}, (m) => m.backports);

  it("points Prosody's CFG_* paths into the unpacked tree", () => {
    const out = backports.rewriteProsodyLauncher(PROSODY_HEAD, '/c/prosody-13/root', '/c/prosody-13/data');
    expect(out.split('\n').slice(1, 5)).toEqual([
      "CFG_SOURCEDIR='/c/prosody-13/root/usr/lib/prosody';",
      "CFG_CONFIGDIR='/c/prosody-13/root/etc/prosody';",
      "CFG_PLUGINDIR='/c/prosody-13/root/usr/lib/prosody/modules/';",
      "CFG_DATADIR='/c/prosody-13/data';",
    ]);
    expect(out).not.toContain("'/usr/lib/prosody'");
  });

  it('refuses a launcher without the line it must rewrite', () => {
    expect(() => backports.rewriteProsodyLauncher(PROSODY_HEAD.replace(/^CFG_PLUGINDIR=.*$/m, ''), '/r', '/d', 'prosodyctl')).toThrow(
      'prosodyctl: no CFG_PLUGINDIR= line to rewrite',
    );
    expect(() => backports.rewriteEjabberdctl(EJABBERDCTL_HEAD.replace(/^ERLANG_OPTS=.*$/m, ''), '/r', ['/r/a/ebin'])).toThrow(
      'no ERLANG_OPTS= line',
    );
    expect(() => backports.rewriteEjabberdctl(EJABBERDCTL_HEAD.replace(/^ERL_LIBS=.*$/m, ''), '/r', ['/r/a/ebin'])).toThrow('no ERL_LIBS= line');
  });

  it("puts ejabberd's backported libraries first on the code path and its own tree in ERL_LIBS", () => {
    const out = backports.rewriteEjabberdctl(EJABBERDCTL_HEAD, '/c/ej/root', ['/c/ej/root/usr/lib/erlang/lib/p1_xml-1.1.55/ebin', '/c/ej/root/usr/lib/erlang/lib/jose-1.11.10/ebin']);
    expect(out).toContain(
      'ERLANG_OPTS="+K $POLL +P $ERL_PROCESSES $ERL_OPTIONS -pa /c/ej/root/usr/lib/erlang/lib/p1_xml-1.1.55/ebin /c/ej/root/usr/lib/erlang/lib/jose-1.11.10/ebin"',
    );
    expect(out).toContain("ERL_LIBS='/c/ej/root/usr/lib/x86_64-linux-gnu'");
    expect(() => backports.rewriteEjabberdctl(EJABBERDCTL_HEAD, '/c/with space', [])).toThrow('spaces');
  });
});

describe('selecting a server version', () => {
  let empty: string;
  beforeAll(() => {
    empty = fs.mkdtempSync(path.join(os.tmpdir(), 'xmpp-invites-cache-'));
  });
  afterAll(() => fs.rmSync(empty, { recursive: true, force: true }));

  it('uses the system packages by default', () => {
    const env = { PROSODY_VERSION: undefined, EJABBERD_VERSION: undefined, XMPP_INVITES_TEST_CACHE: empty };
    expect(withEnv(env, (m) => m.servers.prosodyBinaries())).toMatchObject({ version: '0.12', prosody: 'prosody', prosodyctl: 'prosodyctl' });
  });

  it('fails with the command to run when the selected backport is not unpacked', () => {
    const env = { PROSODY_VERSION: '13', EJABBERD_VERSION: '24.12', XMPP_INVITES_TEST_CACHE: empty };
    expect(() => withEnv(env, (m) => m.servers.prosodyBinaries())).toThrow(
      `Prosody 13 (Debian's bookworm-backports) is not unpacked in ${path.join(empty, 'prosody-13')}: run \`npm test\` as root, or: sudo npx tsx scripts/ensure-prosody.ts --test`,
    );
    expect(() => withEnv(env, (m) => m.servers.ejabberdBinaries())).toThrow(`ejabberd 24.12 (Debian's bookworm-backports) is not unpacked`);
  });

  it('uses an unpacked backport from the cache', () => {
    const dir = path.join(empty, 'prosody-13');
    fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'VERSION'), '13.0.1-1~bpo12+1\n');
    expect(withEnv({ PROSODY_VERSION: '13', XMPP_INVITES_TEST_CACHE: empty }, (m) => m.servers.prosodyBinaries())).toMatchObject({ version: '13', prosody: path.join(dir, 'bin', 'prosody'), prosodyctl: path.join(dir, 'bin', 'prosodyctl') });
  });

  it('refuses versions it does not know', () => {
    expect(() => withEnv({ PROSODY_VERSION: '0.11' }, (m) => m.servers.prosodyBinaries())).toThrow('PROSODY_VERSION=0.11: expected 0.12 or 13');
    expect(() => withEnv({ EJABBERD_VERSION: '21.01' }, (m) => m.servers.ejabberdBinaries())).toThrow('EJABBERD_VERSION=21.01: expected 23.01 or 24.12');
  });
});
