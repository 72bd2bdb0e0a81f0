import * as fs from 'node:fs';
import * as path from 'node:path';
import { configKeys, configTable } from '../../src/config-schema';
import { README, withTable } from '../../scripts/config-docs';

const EXAMPLE = path.join(__dirname, '..', '..', 'config', 'xmpp-invites.example.yaml');

/** The keys of a YAML file as written (`mail.from`), each with the comment lines just above it. */
function keysWithComments(yaml: string): Map<string, string> {
  const out = new Map<string, string>();
  const stack: { indent: number; key: string }[] = [];
  const lines = yaml.split('\n');
  lines.forEach((line, i) => {
    const m = /^( *)([a-z_]+):/.exec(line);
    if (!m) return;
    const indent = m[1].length;
    while (stack.length > 0 && stack[stack.length - 1].indent >= indent) stack.pop();
    stack.push({ indent, key: m[2] });
    const comment: string[] = [];
    for (let j = i - 1; j >= 0 && lines[j].trim().startsWith('#'); j--) comment.unshift(lines[j].trim().replace(/^#\s?/, ''));
    out.set(stack.map((s) => s.key).join('.'), comment.join(' '));
  });
  return out;
}

/** What the example fails to say: a key of the schema absent, or its default not stated. */
function undocumented(yaml: string): string[] {
  const documented = keysWithComments(yaml);
  const problems: string[] = [];
  for (const k of configKeys()) {
    const comment = documented.get(k.key);
    if (comment === undefined) problems.push(`${k.key}: missing`);
    else if (k.default.startsWith('required') ? !/\bRequired\b/.test(comment) : !comment.includes(`Default: ${k.default}`)) {
      problems.push(`${k.key}: its comment does not say ${k.default.startsWith('required') ? '"Required"' : `"Default: ${k.default}"`}`);
    }
  }
  return problems;
}

describe('the documentation comes from the schema', () => {
  const example = fs.readFileSync(EXAMPLE, 'utf8');

  it('the example config names every key of the schema with its default', () => {
    expect(undocumented(example)).toEqual([]);
  });

  it('the example config names no key the schema lacks, and every mapping of it', () => {
    const leaves = configKeys().map((k) => k.key);
    const sections = new Set(leaves.flatMap((k) => k.split('.').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('.'))));
    expect([...keysWithComments(example).keys()].sort()).toEqual([...leaves, ...sections].sort());
  });

  it('would catch a key added to the schema without documentation', () => {
    const withoutReminder = example.replace(/\n *reminder_before:.*\n/, '\n');
    expect(undocumented(withoutReminder)).toEqual(['mail.reminder_before: missing']);
    const wrongDefault = example.replace('Default: 7d', 'Default: 5d');
    expect(undocumented(wrongDefault)).toEqual(['invites.expiry: its comment does not say "Default: 7d"']);
  });

  it("README's table is the one the schema gives (npx tsx scripts/config-docs.ts writes it)", () => {
    const readme = fs.readFileSync(README, 'utf8');
    expect(readme).toContain(configTable());
    expect(withTable(readme)).toBe(readme);
  });

  it('gives a default or a reason for every key, and a meaning', () => {
    for (const k of configKeys()) {
      expect(k.default).not.toBe('');
      expect(k.summary).not.toBe('');
    }
    expect(configKeys().find((k) => k.key === 'limits.per_user_open')).toEqual({
      key: 'limits.per_user_open', default: '100', literal: true, summary: 'open invites per user (admins exempt)',
    });
  });
});
