/**
 * `xmpp-invites serve`: the component and (as later parts land) the web server, the delivery
 * worker and the periodic jobs, in one process. Exit codes: 0 after a clean stop, 1 when the server
 * refuses the component (the message names the config key to fix) or another runtime failure.
 */
import type { Logger } from 'pino';
import { App } from './app';
import { configSecrets, redactConfig, type Config } from './config';
import { createLogger } from './logger';
import { FatalConnectionError } from './xmpp/connection';

export async function serve(config: Config, logger: Logger = createLogger({ secrets: configSecrets(config), level: process.env.XMPP_INVITES_LOG_LEVEL })): Promise<number> {
  let app: App;
  try {
    app = new App({ config, logger });
  } catch (err) {
    logger.fatal({ err }, 'cannot open the database %s', config.database);
    return 1;
  }
  logger.info({ config: redactConfig(config) }, 'starting');

  return new Promise<number>((resolve) => {
    let exiting = false;
    const exit = async (code: number, why: string) => {
      if (exiting) return;
      exiting = true;
      logger.info('stopping (%s)', why);
      await app.stop().catch((err: unknown) => logger.error({ err }, 'error while stopping'));
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
      logger.info('stopped');
      resolve(code);
    };
    const onSigint = () => void exit(0, 'SIGINT');
    const onSigterm = () => void exit(0, 'SIGTERM');
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);

    app.connection.on('fatal', (err: FatalConnectionError) => {
      logger.fatal(err.message);
      void exit(1, err.condition);
    });
    app.start().then(
      () => logger.info('online as %s at %s', config.component.domain, config.component.server),
      (err: unknown) => {
        if (exiting) return; // stopped (a signal) before the first connection, e.g. standing by
        if (err instanceof FatalConnectionError) logger.fatal(err.message);
        else logger.fatal({ err }, 'cannot start');
        void exit(1, 'start failed');
      },
    );
  });
}
