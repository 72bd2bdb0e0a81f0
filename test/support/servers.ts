/**
 * Which server versions the integration tests run against.
 *
 * - `PROSODY_VERSION`: `0.12` (default: the system's Debian package, `prosody` on PATH) or `13`
 *   (Debian's bookworm-backports, unpacked beside it by scripts/backports.ts).
 * - `EJABBERD_VERSION`: `23.01` (default: the system's package) or `24.12` (the backport).
 *
 * The jest project "integration (Prosody 13, ejabberd 24.12)" sets both for its files
 * (test/support/today-servers.ts); any integration file can be run against them by hand with
 * `PROSODY_VERSION=13 EJABBERD_VERSION=24.12 npx jest --selectProjects integration FILE`.
 * A selected version that is not there fails the test with the command to fetch it: never skipped.
 * The harnesses also check the version the started server reports, so a test never passes on
 * another version than the one named.
 */
import * as fs from 'node:fs';
import { ejabberd24, prosody13 } from '../../scripts/backports';

export type ProsodyVersion = '0.12' | '13';
export type EjabberdVersion = '23.01' | '24.12';

export interface ProsodyBinaries {
  version: ProsodyVersion;
  /** commands (PATH names or absolute paths) */
  prosody: string;
  prosodyctl: string;
  /** what its start-up log line "Hello and welcome to Prosody version X" must say */
  reports: RegExp;
}

export interface EjabberdBinaries {
  version: EjabberdVersion;
  ejabberdctl: string;
  inetrc: string;
  /** what "ejabberd X is started in the node" must say */
  reports: RegExp;
}

export function prosodyVersion(): ProsodyVersion {
  const v = process.env.PROSODY_VERSION || '0.12';
  if (v !== '0.12' && v !== '13') throw new Error(`PROSODY_VERSION=${v}: expected 0.12 or 13`);
  return v;
}

export function ejabberdVersion(): EjabberdVersion {
  const v = process.env.EJABBERD_VERSION || '23.01';
  if (v !== '23.01' && v !== '24.12') throw new Error(`EJABBERD_VERSION=${v}: expected 23.01 or 24.12`);
  return v;
}

export function prosodyBinaries(): ProsodyBinaries {
  const version = prosodyVersion();
  if (version === '0.12') return { version, prosody: 'prosody', prosodyctl: 'prosodyctl', reports: /^0\.12\./ };
  const p = prosody13();
  return { version, prosody: p.prosody, prosodyctl: p.prosodyctl, reports: /^13\./ };
}

export function ejabberdBinaries(): EjabberdBinaries {
  const version = ejabberdVersion();
  if (version === '23.01') {
    const ejabberdctl = '/usr/sbin/ejabberdctl';
    if (!fs.existsSync(ejabberdctl)) {
      throw new Error('ejabberd is not installed: run `npm test` as root to install it, or: sudo apt-get install -y ejabberd');
    }
    return { version, ejabberdctl, inetrc: '/etc/ejabberd/inetrc', reports: /^23\.01/ };
  }
  const e = ejabberd24();
  return { version, ejabberdctl: e.ejabberdctl, inetrc: e.inetrc, reports: /^24\.12/ };
}
