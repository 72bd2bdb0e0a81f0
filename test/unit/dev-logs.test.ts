/**
 * `npm start` prints the service's JSON log lines for a person (scripts/dev-logs.ts), while the
 * logger of `serve` writes JSON: the same lines, read both ways.
 */
import { PassThrough } from 'node:stream';
import { prettyLogs } from '../../scripts/dev-logs';
import { createLogger } from '../../src/logger';
import { LogCapture } from '../support/service';

it('serve logs JSON lines; npm start shows them as readable lines, secrets still masked', async () => {
  const capture = new LogCapture();
  const logger = createLogger({ level: 'info', secrets: ['s3cret-component-key'], destination: capture });
  logger.child({ module: 'web' }).info('web server listening on %s', 'http://127.0.0.1:8080');
  logger.child({ module: 'connection' }).warn({ attempt: 3 }, 'could not connect with s3cret-component-key');
  await new Promise((r) => setImmediate(r));
  // serve: one JSON object per line
  const json = capture.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(json.map((l) => [l.level, l.module, l.msg])).toEqual([
    [30, 'web', 'web server listening on http://127.0.0.1:8080'],
    [40, 'connection', 'could not connect with [redacted]'],
  ]);

  const input = new PassThrough();
  const output = new PassThrough();
  let shown = '';
  output.on('data', (d: Buffer) => (shown += d.toString('utf8')));
  const done = prettyLogs(input, output);
  for (const line of capture.lines) input.write(`${line}\n`);
  input.write('xmpp-invites: stopped with errors (see the log above)\n');
  input.end();
  await done;
  const lines = shown.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[web\] web server listening on http:\/\/127\.0\.0\.1:8080$/);
  expect(lines[1]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: \[connection\] could not connect with \[redacted\]$/);
  expect(lines[2]).toMatch(/^\s+attempt: 3$/);
  expect(lines.at(-1)).toBe('xmpp-invites: stopped with errors (see the log above)');
  expect(shown).not.toContain('{"level"');
  expect(shown).not.toContain('s3cret-component-key');
});
