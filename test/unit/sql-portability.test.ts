/**
 * SQL the two engines read alike, checked in the source: the repositories' statements run on SQLite
 * and on PostgreSQL unchanged, and a difference that neither engine reports as an error shows only
 * as a wrong value on one of them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '../..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** `AS fooBar`: a column alias with a capital letter, not quoted. */
const UNQUOTED_MIXED_CASE_ALIAS = /\bAS\s+([a-z_][a-z0-9_]*[A-Z][A-Za-z0-9_]*)\b/g;

describe('SQL in src/', () => {
  it('quotes every column alias that has a capital letter (PostgreSQL folds an unquoted one to lower case)', () => {
    const found: string[] = [];
    for (const file of sourceFiles(join(ROOT, 'src'))) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        for (const m of line.matchAll(UNQUOTED_MIXED_CASE_ALIAS)) found.push(`${relative(ROOT, file)}:${i + 1}: AS ${m[1]}`);
      });
    }
    expect(found).toEqual([]);
  });

  it('is checked by a pattern that finds such an alias, and passes a quoted one', () => {
    const find = (sql: string) => [...sql.matchAll(UNQUOTED_MIXED_CASE_ALIAS)].map((m) => m[1]);
    expect(find(`SELECT min(created_at) AS oldestAt, count(*) AS n FROM claims`)).toEqual(['oldestAt']);
    expect(find(`SELECT min(created_at) AS "oldestAt", CAST(x AS BIGINT) AS total FROM claims`)).toEqual([]);
  });
});
