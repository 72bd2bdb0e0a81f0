/**
 * README's three example set-ups (public, somewhat private, private) are valid configuration, and
 * say what they claim: requests open, by approval, or off.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/config';
import { rawTestConfig } from '../support/fixtures';

const README = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

function examples(): string[] {
  const start = README.indexOf('### Three example set-ups');
  const end = README.indexOf('\n## ', start);
  const section = README.slice(start, end);
  return [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
}

it('README gives three set-ups, each a valid configuration with the site mode it names', () => {
  const blocks = examples();
  expect(blocks).toHaveLength(3);
  const modes = blocks.map((yaml) => {
    const doc = { ...rawTestConfig(), ...(parse(yaml) as Record<string, unknown>) };
    const config = parseConfig(stringify(doc), { baseDir: process.cwd(), env: {} });
    return [config.registration.requests, config.invites.allowUserInvites];
  });
  expect(modes).toEqual([
    ['open', true],
    ['approval', true],
    ['off', false],
  ]);
});
