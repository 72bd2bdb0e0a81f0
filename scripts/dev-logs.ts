/**
 * `npm start` shows the service's logs for a person: each JSON line of pino becomes one readable
 * line (pino-pretty: time, level, module, message, then the fields); any other line passes as it
 * is. `serve` itself always writes JSON (one object per line), as log collectors expect.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { prettyFactory } from 'pino-pretty';

export function prettyLogs(input: Readable, output: Writable, opts: { colorize?: boolean } = {}): Promise<void> {
  const pretty = prettyFactory({
    colorize: opts.colorize ?? false,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,module',
    messageFormat: '{if module}[{module}] {end}{msg}',
    singleLine: false,
  });
  const lines = createInterface({ input, crlfDelay: Infinity });
  lines.on('line', (line) => {
    let text = `${line}\n`;
    if (line.startsWith('{')) {
      try {
        JSON.parse(line);
        text = pretty(line);
      } catch {
        /* not a log line: as it is */
      }
    }
    output.write(text);
  });
  return new Promise((resolve) => lines.once('close', () => resolve()));
}
