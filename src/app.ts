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
import { listCommand } from './handlers/commands/list';
import { mineCommand } from './handlers/commands/mine';
import { pendingCommand } from './handlers/commands/pending';
import { statsCommand } from './handlers/commands/stats';
import { sendCommand } from './handlers/commands/send';
import { emailTransportFor, type EmailTransport } from './mail/transport';
import type { SmtpTimeouts } from './mail/smtp';
import { registerDisco } from './handlers/disco';
import { OutboxWorker } from './outbox/worker';
import { XmppTransport } from './outbox/xmpp-transport';
import { databaseFor, limitsFor, outboxFor } from './services';
import type { SqliteOutbox } from './store/outbox-repo';
import { ComponentRegistration } from './handlers/register';
import { BridgeHandler } from './handlers/bridge';
import { PresenceHandler } from './handlers/presence';
import { InviteRequests } from './domain/requests';
import { SqliteRequestStore, SqliteSubscriptions } from './store/requests-repo';
import { ProsodyBridgeClient } from './provisioners/prosody-bridge';
import type { Services } from './handlers/services';
import { immediateTransaction, type Db } from './store/database';
import { GroupCommit } from './store/group-commit';
import { SERVICE_BUSY_TIMEOUT_MS } from './store/busy';
import { StoreMonitor } from './store/health';
import { inviteServiceFor } from './services';
import { Registration, type Provisioner } from './domain/registration';
import { EjabberdApiProvisioner } from './provisioners/ejabberd-api';
import { Xep0133Provisioner } from './provisioners/xep0133';
import { SqliteClaimStore } from './store/claims-repo';
import { AdhocCommands, type Requester } from './xmpp/adhoc';
import { Respond } from './domain/respond';
import { createWebServer, type WebServer } from './web';
import type { RateLimitOptions } from './web/rate-limit';
import type { WebLimits } from './web/server';
import { ComponentConnection } from './xmpp/connection';
import { NS } from './xmpp/ns';
import { bareOf, Router } from './xmpp/router';
import type { Element } from './xmpp/xml';

export interface AppOptions {
  /** keepalive settings, shortened by tests */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** how long to wait for the server to create an account or answer whether one exists */
  provisionTimeoutMs?: number;
  /** overrides web.listen: tests bind port 0 and read `app.web.url` */
  webListen?: { host: string; port: number };
  /** overrides the per-IP limit on POSTs of the web server */
  webRateLimit?: RateLimitOptions;
  /** overrides the web server's connection caps and timeouts */
  webLimits?: Partial<WebLimits>;
  /** outbox retry backoff base (default 5 s) and poll interval (default 2 s), shortened by tests */
  outboxBackoffMs?: number;
  outboxPollMs?: number;
  /** SMTP connection, greeting and socket timeouts, shortened by tests */
  smtpTimeouts?: SmtpTimeouts;
}

export class App {
  readonly db: Db;
  /** whether the database can be written (for /healthz), and the held claims */
  readonly store: StoreMonitor;
  readonly invites: InviteService;
  readonly router: Router;
  readonly adhoc: AdhocCommands;
  readonly connection: ComponentConnection;
  readonly services: Services;
  readonly registration: Registration;
  readonly outbox: SqliteOutbox;
  readonly worker: OutboxWorker;
  /** the landing page's answers to invitations: accept several with one account, decline */
  readonly respond: Respond;
  /** the landing page and web registration (`web.url` once started) */
  readonly web: WebServer;
  #expiryTimer: NodeJS.Timeout | undefined;
  readonly #email: EmailTransport;
  /** the server side of the bridge, when `registration.server_bridge` is true */
  readonly bridge: ProsodyBridgeClient | undefined;
  readonly #bridgeHandler: BridgeHandler;
  #reconcileTimer: NodeJS.Timeout | undefined;
  readonly #features = new Set<string>([NS.discoInfo, NS.discoItems, NS.commands, NS.ping]);
  #stopping: Promise<void> | undefined;

  constructor(
    readonly config: Config,
    readonly logger: Logger,
    private readonly opts: AppOptions = {},
  ) {
    // A short busy timeout: waiting for another process's lock must not freeze the event loop
    // (store/busy.ts); asynchronous writes retry with backoff instead.
    this.db = databaseFor(config, { busyTimeoutMs: SERVICE_BUSY_TIMEOUT_MS });
    this.store = new StoreMonitor(this.db, config.database);
    this.outbox = outboxFor(config, this.db);
    this.invites = inviteServiceFor(config, this.db, undefined, this.outbox);
    const commit = new GroupCommit(this.db, {
      onError: (err, jobs) => {
        this.store.recordWriteError(err);
        logger.error({ err, jobs }, 'a batch of writes failed: none of it was stored');
      },
      onCommit: () => this.store.recordWriteOk(),
    });
    this.services = { config, invites: this.invites, logger, limits: limitsFor(config, this.db), commit };
    this.connection = new ComponentConnection({
      server: config.component.server,
      domain: config.component.domain,
      secret: config.component.secret,
      standby: config.component.standby,
      logger: logger.child({ module: 'connection' }),
      pingIntervalMs: opts.pingIntervalMs,
      pingTimeoutMs: opts.pingTimeoutMs,
    });
    this.router = new Router((el) => this.connection.send(el), logger.child({ module: 'router' }), configSecrets(config));
    this.adhoc = new AdhocCommands({ jid: config.component.domain });
    this.worker = new OutboxWorker(
      this.outbox,
      this.invites,
      { siteName: config.siteName, component: config.component.domain },
      logger.child({ module: 'outbox' }),
      { maxAttempts: config.mail.maxAttempts, backoffBaseMs: opts.outboxBackoffMs, pollMs: opts.outboxPollMs },
    ).use('xmpp', new XmppTransport(config.component.domain, (el) => this.connection.send(el), () => this.connection.online));
    // Notices are written inside the transaction that causes them; the worker's timer runs after
    // that commit, so whatever queues a notice (a stanza, the web, a job) gets it delivered at once.
    this.outbox.onEnqueue = () => this.worker.poke();
    this.#email = emailTransportFor(config, this.invites, logger.child({ module: 'mail' }), { timeouts: opts.smtpTimeouts });
    this.worker.use('email', this.#email);
    const request = (iq: Element, timeout?: number) => this.connection.request(iq, timeout);
    this.bridge = config.registration.serverBridge ? new ProsodyBridgeClient(request, config.host, opts.provisionTimeoutMs) : undefined;
    const bridge = this.bridge;
    this.registration = new Registration(
      new SqliteClaimStore(this.db),
      this.invites,
      this.#provisioner(),
      { host: config.host, mode: config.registration.mode, minPasswordLength: config.registration.minPasswordLength },
      {
        joined: ({ jid, door }) => logger.info({ jid, door }, 'account created'),
        reconcileFailed: ({ claimId, claim, err }) =>
          logger.warn(
            { claim: claimId, door: claim?.door, username: claim?.username, heldSinceS: claim && Math.round((Date.now() - claim.createdAt) / 1000), err },
            'a held claim could not be reconciled; it stays held and is tried again',
          ),
      },
      undefined,
      {
        notices: this.outbox,
        limits: limitsFor(config, this.db),
        ...(bridge
          ? {
              // With the bridge, the server itself links contacts and pushes the roster (XEP-0401 §3.4).
              linkContacts: (a: string, b: string) => bridge.linkContacts(a, b),
              existence: { bridge: (u: string) => bridge.accountExists(u) },
            }
          : {}),
      },
    );
    this.#bridgeHandler = new BridgeHandler({
      config,
      invites: this.invites,
      registration: this.registration,
      adhoc: this.adhoc,
      requester: (jid) => this.requester(jid),
      redeemedBy: (id) => this.registration.redeemedUsernames(id),
    });

    this.respond = new Respond(this.invites, this.registration, { transaction: immediateTransaction(this.db) });
    this.web = createWebServer(config, {
      invites: this.invites,
      respond: this.respond,
      logger: logger.child({ module: 'web' }),
      health: () => ({ xmpp: this.connection.online, standby: this.connection.standingBy, store: this.store.check(), now: Date.now() }),
      listen: opts.webListen,
      rateLimit: opts.webRateLimit,
      limits: opts.webLimits,
    });

    // Order matters only where handlers share a route; each feature registers its own.
    this.adhoc
      .add(newInviteCommand(this.services))
      .add(createAccountCommand(this.services))
      .add(mineCommand(this.services))
      .add(pendingCommand(this.services))
      .add(listCommand(this.services))
      .add(statsCommand(this.services))
      .add(sendCommand(this.services));
    this.router.iq('set', 'command', NS.commands, (ctx, command) => this.adhoc.execute(this.requester(ctx.from), command));
    this.#bridgeHandler.register(this.router);
    if (bridge) this.#features.add(NS.bridge);
    const componentRegistration = new ComponentRegistration(config, this.registration);
    componentRegistration.register(this.router);
    // Invite requests carried in presence, and the component's side of presence subscriptions.
    const presence = new PresenceHandler({
      config,
      requests: new InviteRequests(
        new SqliteRequestStore(this.db),
        this.invites,
        this.outbox,
        { allowUserInvites: config.invites.allowUserInvites },
        undefined,
        this.services.limits,
      ),
      subscriptions: new SqliteSubscriptions(this.db),
      requester: (jid) => this.requester(jid),
      send: (el) => this.connection.send(el),
    });
    presence.register(this.router);
    for (const f of presence.features()) this.#features.add(f);
    registerDisco(this.router, this.adhoc, {
      name: `${config.siteName} invitations`,
      features: (req) => [...this.#features, ...componentRegistration.features(req.bare)],
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

  #provisioner(): Provisioner {
    const { type, url } = this.config.registration.provisioner;
    switch (type) {
      case 'xep-0133':
        return new Xep0133Provisioner((iq, timeout) => this.connection.request(iq, timeout), this.config.host, this.opts.provisionTimeoutMs);
      case 'ejabberd-api':
        return new EjabberdApiProvisioner(url!, this.config.host, this.opts.provisionTimeoutMs);
      case 'prosody-bridge':
        // The config check guarantees server_bridge: true alongside.
        return new ProsodyBridgeClient((iq, timeout) => this.connection.request(iq, timeout), this.config.host, this.opts.provisionTimeoutMs);
    }
  }

  /** Connects; rejects with FatalConnectionError when the server refuses the component. */
  async start(): Promise<void> {
    // The web first: a port in use fails the start before anything connects.
    await this.web.start();
    await this.connection.start();
    // Claims left held by a crash or a server that did not answer: settle them now, and keep
    // retrying those the server could not answer.
    const reconcile = () =>
      this.registration.reconcileAll(60_000).catch((err: unknown) => this.logger.error({ err }, 'reconciling claims failed'));
    this.connection.on('online', () => {
      void this.registration.reconcileAll().catch((err: unknown) => this.logger.warn({ err }, 'reconciling claims failed'));
      void this.#checkBridge();
    });
    void this.#checkBridge();
    void this.registration
      .reconcileAll()
      .then((n) => n && this.logger.info('%d held claims checked with the server', n))
      .catch((err: unknown) => this.logger.warn({ err }, 'reconciling claims failed'));
    this.#reconcileTimer = setInterval(reconcile, 60_000);
    this.#reconcileTimer.unref();
    this.connection.on('online', () => this.worker.poke());
    this.worker.start();
    this.runExpiry();
    this.runReminders();
    this.#expiryTimer = setInterval(() => {
      this.runExpiry();
      this.runReminders();
    }, 60_000);
    this.#expiryTimer.unref();
  }

  /** The periodic expiry job: records expiries, tells the inviters, frees reserved usernames. */
  runExpiry(): number {
    try {
      let total = 0;
      for (let n = this.invites.recordExpiries().length; n > 0; n = this.invites.recordExpiries().length) total += n;
      if (total) {
        this.logger.info('%d invite(s) expired', total);
      }
      return total;
    } catch (err) {
      this.logger.error({ err }, 'expiry job failed');
      return 0;
    }
  }

  /** The reminder job (`mail.reminder_before`): one reminder per e-mail invite before it expires. */
  runReminders(): number {
    const before = this.config.mail.reminderBefore;
    if (before === null) return 0;
    try {
      let total = 0;
      for (let n = this.invites.queueReminders(before).length; n > 0; n = this.invites.queueReminders(before).length) total += n;
      if (total) {
        this.logger.info('%d reminder(s) queued', total);
      }
      return total;
    } catch (err) {
      this.logger.error({ err }, 'reminder job failed');
      return 0;
    }
  }

  /** With `server_bridge: true`, the server must run the bridge module: say so loudly when not. */
  async #checkBridge(): Promise<void> {
    if (!this.bridge) return;
    try {
      if (!(await this.bridge.installed())) {
        this.logger.error(
          'registration.server_bridge is true but %s does not advertise %s: load the module mod_xmpp_invites (bridge/) on that VirtualHost',
          this.config.host,
          NS.bridge,
        );
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not check for the bridge module');
    }
  }

  /** Finishes the stanzas in hand, closes the stream, then the database. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#reconcileTimer);
      clearInterval(this.#expiryTimer);
      await this.web.stop();
      this.#bridgeHandler.stop();
      await this.router.drain();
      await this.worker.stop();
      this.#email.close();
      await this.connection.stop();
      this.db.close();
    })();
    return this.#stopping;
  }
}
