/**
 * Runs the real service in-process against a real server (Prosody or ejabberd), with its logs
 * captured in memory so that tests can read them (and check that no secret ever reaches them).
 */
import { testDatabase } from './engine';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { App, type AppOptions } from '../../src/app';
import { configSecrets, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { testConfig } from './fixtures';

export const COMPONENT = 'invites.localhost';
export const COMPONENT_SECRET = 'component-secret-for-tests-9b1e';

export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  text(): string {
    return this.lines.join('\n');
  }
}

export interface RunningService {
  app: App;
  config: Config;
  logs: LogCapture;
  stop(): Promise<void>;
}

/** What the service needs to know of a test server (TestProsody, TestEjabberd). */
export interface TestServer {
  host: string;
  dir: string;
  componentUrl(): string;
}

export function serviceConfig(server: TestServer, overrides: Record<string, unknown> = {}, dir?: string): Config {
  const base = dir ?? mkdtempSync(join(server.dir, 'service-'));
  return testConfig(
    {
      component: { server: server.componentUrl(), domain: COMPONENT, secret: COMPONENT_SECRET },
      host: server.host,
      database: testDatabase(join(base, 'invites.sqlite')),
      ...overrides,
    },
    base,
  );
}

export async function startService(config: Config, opts: AppOptions = {}): Promise<RunningService> {
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', secrets: configSecrets(config), destination: logs });
  const app = new App({ config, logger, ...opts });
  try {
    await app.start();
  } catch (err) {
    await app.stop().catch(() => undefined);
    throw err;
  }
  return { app, config, logs, stop: () => app.stop() };
}
