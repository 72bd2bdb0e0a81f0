/**
 * The composition root: wires the store, the domain, the XMPP router and the handlers in order.
 * `serve` runs one App; tests run it in-process against a real Prosody.
 */
import type { Logger } from 'pino';
import { configSecrets, type Config } from './config';
import type { InviteService } from './domain/invites';
import { isLocalUser } from './domain/jid';
import { createAccountCommand } from './handlers/commands/create-account';
import { newInviteCommand } from './handlers/commands/new-invite';
import { registerDisco } from './handlers/disco';
import type { Services } from './handlers/services';
import { openDatabase, type Db } from './store/database';
import { inviteServiceFor } from './services';
import { AdhocCommands, type Requester } from './xmpp/adhoc';
import { ComponentConnection } from './xmpp/connection';
import { NS } from './xmpp/ns';
import { bareOf, Router } from './xmpp/router';

export interface AppOptions {
  /** keepalive settings, shortened by tests */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
}

export class App {
  readonly db: Db;
  readonly invites: InviteService;
  readonly router: Router;
  readonly adhoc: AdhocCommands;
  readonly connection: ComponentConnection;
  readonly services: Services;
  readonly #features = new Set<string>([NS.discoInfo, NS.discoItems, NS.commands, NS.ping]);
  #stopping: Promise<void> | undefined;

  constructor(
    readonly config: Config,
    readonly logger: Logger,
    opts: AppOptions = {},
  ) {
    this.db = openDatabase(config.database);
    this.invites = inviteServiceFor(config, this.db);
    this.services = { config, invites: this.invites, logger };
    this.connection = new ComponentConnection({
      server: config.component.server,
      domain: config.component.domain,
      secret: config.component.secret,
      logger: logger.child({ module: 'connection' }),
      pingIntervalMs: opts.pingIntervalMs,
      pingTimeoutMs: opts.pingTimeoutMs,
    });
    this.router = new Router((el) => this.connection.send(el), logger.child({ module: 'router' }), configSecrets(config));
    this.adhoc = new AdhocCommands({ jid: config.component.domain });

    // Order matters only where handlers share a route; each feature registers its own.
    this.adhoc.add(newInviteCommand(this.services)).add(createAccountCommand(this.services));
    this.router.iq('set', 'command', NS.commands, (ctx, command) => this.adhoc.execute(this.requester(ctx.from), command));
    registerDisco(this.router, this.adhoc, {
      name: `${config.siteName} invitations`,
      features: () => [...this.#features],
      requester: (from) => this.requester(from),
    });

    this.connection.onStanza((stanza) => {
      if (this.#stopping) return;
      void this.router.handle(stanza);
    });
  }

  /** Who is asking: local users of `host` may use the service; admins come from the config only. */
  requester(full: string): Requester {
    const bare = bareOf(full);
    return { full, bare, isLocal: isLocalUser(bare, this.config.host), isAdmin: this.config.admins.includes(bare) };
  }

  /** Connects; rejects with FatalConnectionError when the server refuses the component. */
  async start(): Promise<void> {
    await this.connection.start();
  }

  /** Finishes the stanzas in hand, closes the stream, then the database. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.router.drain();
      await this.connection.stop();
      this.db.close();
    })();
    return this.#stopping;
  }
}
