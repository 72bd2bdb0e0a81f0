/**
 * `npm ci` and `npm install` run this (the `prepare` script): it compiles src/ into dist/, which
 * bin/xmpp-invites runs. An install without the development packages (`npm ci --omit=dev`) has no
 * compiler; bin/xmpp-invites then runs the TypeScript through tsx, and this says so.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..');
let tsc: string;
try {
  tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
} catch {
  console.log('xmpp-invites: no TypeScript compiler installed; bin/xmpp-invites will run the sources through tsx');
  process.exit(0);
}
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
