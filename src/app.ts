/**
 * The composition root: wires the store, the domain, the XMPP router and the handlers in order,
 * and starts and stops them. The periodic jobs (expiry, reminders, reconciliation) are in jobs.ts.
 * `serve` runs one App; tests run it in-process against a real Prosody.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { configSecrets, type Config } from './config';
import type { InviteService } from './domain/invites';
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
import { ACCOUNT_CHECKS_EVERY_MS, ACCOUNT_CHECKS_NOTIFIED_EVERY_MS, periodicJobs, PRESENCE_TTL_MS, Scheduler } from './jobs';
import { OutboxWorker } from './outbox/worker';
import { XmppTransport } from './outbox/xmpp-transport';
import { accountChecksFor, bouncesFor, databaseFor, inviteServiceFor, limitsFor, membershipFor, outboxFor, resetsFor, trustFor } from './services';
import type { PasswordSetter, ResetService } from './domain/resets';
import type { AccountChecks } from './domain/account-checks';
import { resetCommand } from './handlers/commands/reset';
import type { MembershipService } from './domain/membership';
import type { LmtpListener } from './mail/lmtp';
import { WEBHOOK_MAX_ATTEMPTS, WebhookTransport } from './outbox/webhook-transport';
import type { SqliteOutbox } from './store/outbox-repo';
import { ComponentRegistration } from './handlers/register';
import { BridgeHandler } from './handlers/bridge';
import { PresenceHandler } from './handlers/presence';
import { InviteRequests } from './domain/requests';
import { SqliteRequestStore, SqliteSubscriptions } from './store/requests-repo';
import { ProsodyBridgeClient } from './provisioners/prosody-bridge';
import type { Services } from './handlers/services';
import { immediateTransaction, isPostgres, type Db, type SqliteDb } from './store/database';
import { PgWake, WAKE_CHANNELS } from './store/pg/wake';
import { GroupCommit } from './store/group-commit';
import { retryWhileBusy, SERVICE_BUSY_TIMEOUT_MS } from './store/busy';
import { SqliteJobLeases } from './store/leases-repo';
import { StoreMonitor, sqliteWriteCheck } from './store/health';
import type { PgSyncDb } from './store/pg/sync-db';
import { Registration, type Provisioner } from './domain/registration';
import { EjabberdApiProvisioner } from './provisioners/ejabberd-api';
import { Xep0133Provisioner } from './provisioners/xep0133';
import { MucRooms } from './xmpp/rooms';
import { roomRightsAdvice, type RoomsPort } from './domain/rooms';
import { SqliteClaimStore } from './store/claims-repo';
import { AdhocCommands } from './xmpp/adhoc';
import { SqliteCommandSessions } from './store/command-sessions-repo';
import { Respond } from './domain/respond';
import { ConsoleAuth } from './domain/console-auth';
import { SqliteConsoleStore } from './store/console-repo';
import { RoomAnswers } from './domain/room-answers';
import { inviteToRoomsCommand } from './handlers/commands/invite-to-rooms';
import { respondCommand } from './handlers/commands/respond';
import { createWebServer, type WebServer } from './web';
import type { RateLimitOptions } from './web/rate-limit';
import type { WebLimits } from './web/server';
import { XMPP_GRACE_MS } from './web/health';
import type { Metrics, MetricsServer } from './metrics';
import { ComponentConnection } from './xmpp/connection';
import { NS } from './xmpp/ns';
import { Router } from './xmpp/router';
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
  /** overrides the per-user limit on POSTs of the web console's signed-in users */
  webSessionRateLimit?: RateLimitOptions;
  /** overrides the web server's connection caps and timeouts */
  webLimits?: Partial<WebLimits>;
  /** outbox retry backoff base (default 5 s) and poll interval (default 1 s), shortened by tests */
  outboxBackoffMs?: number;
  outboxPollMs?: number;
  /** SMTP connection, greeting and socket timeouts, shortened by tests */
  smtpTimeouts?: SmtpTimeouts;
  /** how long one webhook POST may take (default 10 s) */
  webhookTimeoutMs?: number;
  /** how long the XMPP link may be down before /healthz answers 503 (default 60 s) */
  xmppGraceMs?: number;
  /** overrides metrics.listen (tests: port 0) */
  metricsListen?: { host: string; port: number };
}

export interface AppDeps extends AppOptions {
  config: Config;
  logger: Logger;
}

export class App {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Db;
  /** whether the database can be written (for /healthz), and the held claims */
  readonly store: StoreMonitor;
  readonly invites: InviteService;
  /** membership requests and e-mail verification (/request; #pending; the CLI's `request`) */
  readonly membership: MembershipService;
  /** password reset invites (kind reset): #reset, the CLI, their landing page */
  readonly resets: ResetService;
  /** the command line's questions whether an account exists, answered by the `account-checks` job */
  readonly accountChecks: AccountChecks;
  readonly router: Router;
  readonly adhoc: AdhocCommands;
  readonly connection: ComponentConnection;
  readonly services: Services;
  readonly registration: Registration;
  readonly outbox: SqliteOutbox;
  readonly worker: OutboxWorker;
  /** the landing page's answers to invitations: accept several with one account, decline */
  readonly respond: Respond;
  /** the web console's sign-ins and sessions */
  readonly consoleAuth: ConsoleAuth;
  /** the landing page and web registration (`web.url` once started) */
  readonly web: WebServer;
  /** Prometheus metrics and their listener, when `metrics.listen` is set */
  readonly metrics: Metrics | undefined;
  readonly metricsServer: MetricsServer | undefined;
  /** the periodic jobs (jobs.ts): `jobs.run('expiry')` runs one now */
  readonly jobs: Scheduler;
  /** this process's id among the instances sharing the store, drawn at start (it holds the job leases and the outbox rows it sends) */
  readonly instanceId: string;
  readonly #leases: SqliteJobLeases;
  readonly #email: EmailTransport;
  /** on PostgreSQL: what other instances queue wakes this one (store/pg/wake.ts) */
  readonly #wake: PgWake | undefined;
  /** the server side of the bridge, when `registration.server_bridge` is true */
  readonly bridge: ProsodyBridgeClient | undefined;
  readonly #bridgeHandler: BridgeHandler;
  /** the MUC service's rooms, when `rooms.service` is set */
  readonly rooms: RoomsPort | undefined;
  /** answers to room invitations, and the memberships they make */
  readonly roomAnswers: RoomAnswers;
  readonly #features = new Set<string>([NS.discoInfo, NS.discoItems, NS.commands, NS.ping]);
  #stopping: Promise<void> | undefined;
  /** the LMTP listener for bounces, when `mail.bounce_listen` is set */
  readonly lmtp: LmtpListener | undefined;
  /** since when the XMPP link is down (the start until it first comes up) */
  #downSince = Date.now();
  #everOnline = false;
  readonly #stopSignal = new AbortController();
  private readonly opts: AppOptions;

  constructor({ config, logger, ...opts }: AppDeps) {
    this.config = config;
    this.logger = logger;
    this.opts = opts;
    // A short busy timeout: waiting for another process's lock must not freeze the event loop
    // (store/busy.ts); asynchronous writes retry with backoff instead.
    this.db = databaseFor(config, { busyTimeoutMs: SERVICE_BUSY_TIMEOUT_MS });
    this.store = new StoreMonitor(this.db, isPostgres(this.db) ? () => (this.db as PgSyncDb).writeProblem() : sqliteWriteCheck(this.db as SqliteDb, config.database));
    this.instanceId = randomBytes(8).toString('hex');
    // The rows this instance takes to send name it: another instance takes them over if it dies.
    this.outbox = outboxFor(config, this.db, { instance: this.instanceId });
    this.invites = inviteServiceFor(config, this.db, { outbox: this.outbox });
    this.membership = membershipFor(config, this.db, this.invites, { outbox: this.outbox });
    this.consoleAuth = new ConsoleAuth({
      store: new SqliteConsoleStore(this.db),
      tokenKey: config.tokenKey,
      host: config.host,
      publicUrl: config.web.publicUrl,
      notices: this.outbox,
    });
    const commit = new GroupCommit(this.db, {
      onError: (err, jobs) => {
        this.store.recordWriteError(err);
        logger.error({ err, jobs }, 'a batch of writes failed: none of it was stored');
      },
      onCommit: () => this.store.recordWriteOk(),
    });
    const trust = trustFor(config, this.db, this.invites);
    this.services = {
      config,
      invites: this.invites,
      logger,
      limits: limitsFor(config, this.db),
      commit,
      membership: this.membership,
      trust,
    };
    this.connection = new ComponentConnection({
      server: config.component.server,
      domain: config.component.domain,
      secret: config.component.secret,
      standby: config.component.standby,
      logger: logger.child({ module: 'connection' }),
      pingIntervalMs: opts.pingIntervalMs,
      pingTimeoutMs: opts.pingTimeoutMs,
    });
    this.router = new Router({
      send: (el) => this.connection.send(el),
      logger: logger.child({ module: 'router' }),
      host: config.host,
      admins: config.admins,
      secrets: configSecrets(config),
    });
    // Sessions live in the store: a command's next stage may reach another instance (contract,
    // "Several instances").
    this.adhoc = new AdhocCommands({
      jid: config.component.domain,
      sessions: (limits) => new SqliteCommandSessions(this.db, limits),
      // A New Invite's session id proves by itself that it ended: nothing is written for it.
      sessionIdMac: (data) => this.invites.tokens.sessionIdMac(data),
    });
    this.worker = new OutboxWorker({
      outbox: this.outbox,
      invites: this.invites,
      render: {
        siteName: config.siteName,
        component: config.component.domain,
        host: config.host,
        membership: this.membership,
        logins: this.consoleAuth,
        consoleUrl: `${config.web.publicUrl}/admin`,
      },
      logger: logger.child({ module: 'outbox' }),
      maxAttempts: config.mail.maxAttempts,
      backoffBaseMs: opts.outboxBackoffMs,
      pollMs: opts.outboxPollMs,
      onOutcome: (channel, outcome) => this.metrics?.delivery(channel, outcome),
    }).use(
      'xmpp',
      new XmppTransport({ from: config.component.domain, send: (el) => this.connection.send(el), online: () => this.connection.online }),
    );
    // Notices are written inside the transaction that causes them; the worker's timer runs after
    // that commit, so whatever queues a notice (a stanza, the web, a job) gets it delivered at once.
    this.outbox.onEnqueue = () => this.worker.poke();
    this.#email = emailTransportFor({
      config,
      invites: this.invites,
      logger: logger.child({ module: 'mail' }),
      timeouts: opts.smtpTimeouts,
      membership: this.membership,
    });
    this.worker.use('email', this.#email);
    const bounces = config.mail.bounceListen ? bouncesFor(config, this.db, this.invites) : undefined;
    // Loaded only where bounces are read: smtp-server and postal-mime are not small.
    this.lmtp = bounces ? new (lazy<typeof import('./mail/lmtp')>('./mail/lmtp').LmtpListener)({ ...bounces, logger: logger.child({ module: 'bounces' }) }) : undefined;
    // Webhooks: a receiver that is down for hours still gets every event once it is back.
    this.worker.use('webhook', new WebhookTransport({ endpoints: config.webhooks, timeoutMs: opts.webhookTimeoutMs }), { maxAttempts: WEBHOOK_MAX_ATTEMPTS });
    const request = (iq: Element, timeout?: number) => this.connection.request(iq, timeout);
    this.bridge = config.registration.serverBridge
      ? new ProsodyBridgeClient({ request, host: config.host, timeoutMs: opts.provisionTimeoutMs })
      : undefined;
    const bridge = this.bridge;
    this.rooms = config.rooms.service
      ? new MucRooms({ service: config.rooms.service, component: config.component.domain, request, send: (el) => this.connection.send(el) })
      : undefined;
    const provisioner = this.#provisioner();
    this.resets = resetsFor(config, this.db, { outbox: this.outbox });
    const setPassword = provisioner.setPassword?.bind(provisioner);
    const setter: PasswordSetter | undefined = setPassword
      ? { setPassword, accountExists: (u: string) => provisioner.accountExists(u) }
      : undefined;
    this.services.resets = { service: this.resets, setter };
    // Another process's write lock is waited for without blocking (store/busy.ts).
    this.accountChecks = accountChecksFor(this.db, { write: (fn) => retryWhileBusy(fn, { deadlineMs: 2_000 }) });
    // Only an instance that can reach the server takes a question: with XEP-0133 or the bridge, one
    // whose XMPP link is up (a standby instance, or one reconnecting, leaves them to another).
    const canAsk = () => this.config.registration.provisioner.type === 'ejabberd-api' || this.connection.online;
    const roomsLogger = logger.child({ module: 'rooms' });
    this.roomAnswers = new RoomAnswers({ invites: this.invites, rooms: this.rooms, warn: (msg, detail) => roomsLogger.warn(detail, msg) });
    this.registration = new Registration({
      claims: new SqliteClaimStore(this.db),
      invites: this.invites,
      provisioner,
      policy: { host: config.host, mode: config.registration.mode, minPasswordLength: config.registration.minPasswordLength },
      events: {
        joined: ({ jid, door }) => {
          logger.info({ jid, door }, 'account created');
          // The rooms accepted with the registration: their memberships, now that the account exists.
          if (this.rooms) void this.roomAnswers.retryAccepting(0).catch((err) => roomsLogger.warn({ err }, 'room memberships after a registration failed'));
        },
        reconcileFailed: ({ claimId, claim, err }) =>
          logger.warn(
            { claim: claimId, door: claim?.door, username: claim?.username, heldSinceS: claim && Math.round((Date.now() - claim.createdAt) / 1000), err },
            'a held claim could not be reconciled; it stays held and is tried again',
          ),
      },
      notices: this.outbox,
      limits: limitsFor(config, this.db),
      ...(bridge
        ? {
            // With the bridge, the server itself links contacts and pushes the roster (XEP-0401 §3.4).
            linkContacts: (a: string, b: string) => bridge.linkContacts(a, b),
            existence: { bridge: (u: string) => bridge.accountExists(u) },
          }
        : {}),
    });
    this.#bridgeHandler = new BridgeHandler({
      config,
      invites: this.invites,
      registration: this.registration,
      adhoc: this.adhoc,
      redeemedBy: (id) => this.registration.redeemedUsernames(id),
    });

    this.respond = new Respond({ invites: this.invites, registration: this.registration, tx: { transaction: immediateTransaction(this.db) } });
    this.web = createWebServer({
      config,
      invites: this.invites,
      respond: this.respond,
      membership: this.membership,
      resets: { service: this.resets, setter },
      auth: this.consoleAuth,
      roomAnswers: this.rooms ? this.roomAnswers : undefined,
      trust,
      rooms: this.rooms,
      logger: logger.child({ module: 'web' }),
      health: () => ({
        xmpp: this.connection.online,
        standby: this.connection.standingBy,
        store: this.store.check(),
        now: Date.now(),
        xmppDownSince: this.connection.online ? null : this.#downSince,
        graceMs: opts.xmppGraceMs ?? XMPP_GRACE_MS,
        ready: this.#everOnline,
        outbox: this.outbox.depth(),
      }),
      listen: opts.webListen,
      rateLimit: opts.webRateLimit,
      sessionRateLimit: opts.webSessionRateLimit,
      limits: opts.webLimits,
    });

    // Order matters only where handlers share a route; each feature registers its own.
    this.adhoc
      .add(newInviteCommand(this.services))
      .add(createAccountCommand(this.services, this.rooms))
      .add(mineCommand(this.services))
      .add(pendingCommand(this.services))
      .add(listCommand(this.services))
      .add(statsCommand(this.services))
      .add(sendCommand(this.services, this.rooms))
      .add(resetCommand(this.services));
    if (this.rooms) {
      this.adhoc.add(inviteToRoomsCommand(this.services, this.rooms)).add(respondCommand(this.services, this.roomAnswers));
    }
    this.router.iq('set', 'command', NS.commands, (ctx, command) => this.adhoc.execute(ctx.requester, command));
    this.#bridgeHandler.register(this.router);
    if (bridge) this.#features.add(NS.bridge);
    const componentRegistration = new ComponentRegistration({ config, registration: this.registration });
    componentRegistration.register(this.router);
    // Invite requests carried in presence, and the component's side of presence subscriptions.
    const presence = new PresenceHandler({
      config,
      requests: new InviteRequests({
        store: new SqliteRequestStore(this.db),
        invites: this.invites,
        notices: this.outbox,
        policy: { allowUserInvites: config.invites.allowUserInvites },
        limits: this.services.limits,
      }),
      subscriptions: new SqliteSubscriptions(this.db),
      send: (el) => this.connection.send(el),
      rooms: this.rooms,
    });
    presence.register(this.router);
    for (const f of presence.features()) this.#features.add(f);
    registerDisco(this.router, {
      adhoc: this.adhoc,
      name: `${config.siteName} invitations`,
      features: (req) => [...this.#features, ...componentRegistration.features(req.bare)],
    });

    // Each periodic job runs once per period across the instances sharing the store (jobs.ts).
    this.#leases = new SqliteJobLeases(this.db, this.instanceId);
    const leases = this.#leases;
    const jobsLogger = logger.child({ module: 'jobs', instance: this.instanceId });
    this.jobs = new Scheduler({
      logger: jobsLogger,
      // Another process's write lock is waited for without blocking (store/busy.ts).
      lease: (job, periodMs) => retryWhileBusy(() => leases.take(job, periodMs), { deadlineMs: 5_000 }),
    });
    const jobs = periodicJobs({
      invites: this.invites,
      registration: this.registration,
      reminderBefore: config.mail.reminderBefore,
      logger: jobsLogger,
      // Waiting to learn whether the others are alive ends early on stop (then they are taken to be).
      othersLive: () => leases.othersLive((ms) => this.#pause(ms)),
      presence: () => retryWhileBusy(() => leases.beat(PRESENCE_TTL_MS), { deadlineMs: 1_000 }),
      ...(config.registration.requests !== 'off' ? { membership: this.membership } : {}),
      ...(this.rooms ? { roomMembers: (olderThanMs: number) => this.roomAnswers.retryAccepting(olderThanMs) } : {}),
      accountChecks: async () => (canAsk() ? this.accountChecks.answerWaiting(this.instanceId, (u) => provisioner.accountExists(u)) : 0),
      // On PostgreSQL a question wakes the job (below): the poll only covers a lost notification.
      accountChecksEveryMs: isPostgres(this.db) ? ACCOUNT_CHECKS_NOTIFIED_EVERY_MS : ACCOUNT_CHECKS_EVERY_MS,
    });
    for (const job of jobs) this.jobs.add(job);
    // On PostgreSQL, a notice queued or a question asked by another process wakes this one at once
    // (the polls stay, for whatever is notified while nobody listens).
    this.#wake = isPostgres(this.db)
      ? new PgWake({
          url: config.database,
          handlers: {
            [WAKE_CHANNELS.outbox]: () => this.worker.poke(),
            [WAKE_CHANNELS.accountChecks]: () => void this.jobs.run('account-checks'),
          },
          logger: logger.child({ module: 'wake' }),
        })
      : undefined;

    this.connection.on('online', () => {
      this.#everOnline = true;
    });
    this.connection.on('offline', () => {
      this.#downSince = Date.now();
    });

    const metricsListen = opts.metricsListen ?? config.metrics.listen;
    // prom-client (with @opentelemetry/api) is loaded only where metrics are served.
    const metricsModule = metricsListen ? lazy<typeof import('./metrics')>('./metrics') : undefined;
    this.metrics = metricsModule ? new metricsModule.Metrics({ db: this.db, outbox: this.outbox, connection: this.connection }) : undefined;
    this.metricsServer = this.metrics && metricsListen ? new metricsModule!.MetricsServer(this.metrics, metricsListen, logger.child({ module: 'metrics' })) : undefined;

    this.connection.onStanza((stanza) => {
      if (this.#stopping) return;
      const handled = this.router.handle(stanza);
      if (this.metrics) void handled.finally(this.metrics.stanza(stanza.name));
    });
  }

  /** A pause that ends early when the app stops. */
  #pause(ms: number): Promise<void> {
    const signal = this.#stopSignal.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }

  #provisioner(): Provisioner {
    const { type, url } = this.config.registration.provisioner;
    const host = this.config.host;
    const timeoutMs = this.opts.provisionTimeoutMs;
    const request = (iq: Element, timeout?: number) => this.connection.request(iq, timeout);
    switch (type) {
      case 'xep-0133':
        return new Xep0133Provisioner({ request, host, timeoutMs });
      case 'ejabberd-api':
        return new EjabberdApiProvisioner({ url: url!, host, timeoutMs });
      case 'prosody-bridge':
        // The config check guarantees server_bridge: true alongside.
        return new ProsodyBridgeClient({ request, host, timeoutMs });
    }
  }

  /** Connects; rejects with FatalConnectionError when the server refuses the component. */
  async start(): Promise<void> {
    this.logger.info({ instance: this.instanceId }, 'instance %s starting', this.instanceId);
    // Present before anything can be claimed here: another instance starting now must see this one.
    await retryWhileBusy(() => this.#leases.beat(PRESENCE_TTL_MS), { deadlineMs: 5_000 });
    // The web first: a port in use fails the start before anything connects.
    await this.web.start();
    if (this.lmtp) {
      const { host, port } = this.config.mail.bounceListen!;
      const bound = await this.lmtp.listen(host, port);
      this.logger.info(bound, 'bounce listener (LMTP) on %s:%d', bound.host, bound.port);
    }
    await this.metricsServer?.start();
    await this.connection.start();
    // After each reconnection: claims left unclear while the server was away are settled at once,
    // and what waited in the outbox leaves.
    this.connection.on('online', () => {
      void this.jobs.run('reconcile');
      // Memberships accepted while the server was away are made now.
      if (this.rooms) void this.jobs.run('rooms');
      void this.#checkBridge();
      void this.#checkRoomRights();
      this.worker.poke();
    });
    void this.#checkBridge();
    void this.#checkRoomRights();
    this.worker.start();
    this.jobs.start();
    await this.#wake?.start();
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

  /** With `rooms.service`, the component must be an admin of the MUC service: say what to add when not. */
  async #checkRoomRights(): Promise<void> {
    if (!this.rooms) return;
    const service = this.rooms.service;
    try {
      const check = await this.rooms.checkRights();
      if (check.kind === 'ok') this.logger.info({ service, room: check.room }, 'the component is an admin of the MUC service %s', service);
      else if (check.kind === 'missing') this.logger.error({ service, room: check.room }, roomRightsAdvice(this.config.component.domain, service, check.reason));
      else this.logger.warn({ service }, 'could not check the rights on the MUC service %s: %s', service, check.reason);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, service }, 'could not check the rights on the MUC service');
    }
  }

  /** Finishes the stanzas in hand, closes the stream, then the database. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      // No new job runs from here on; one in progress ends before the database closes.
      this.#stopSignal.abort();
      const jobs = this.jobs.stop();
      await this.#wake?.stop();
      await this.web.stop();
      await this.lmtp?.close();
      await this.metricsServer?.stop();
      this.#bridgeHandler.stop();
      await this.router.drain();
      await this.worker.stop();
      this.#email.close();
      await this.connection.stop();
      await jobs;
      // Hands the job leases over (another instance takes each job at its next run, not a period
      // later) and ends this instance's presence.
      try {
        this.#leases.release();
      } catch (err) {
        this.logger.warn({ err }, 'could not release the job leases; other instances take the jobs over when they end');
      }
      this.db.close();
    })();
    return this.#stopping;
  }
}
/** A module of this package, loaded when first asked for rather than at start (its cost in memory is paid only where it is used). */
function lazy<T>(path: string): T {
  // The module system's own require: jest and tsx resolve the TypeScript source, Node the build.
  return require(path) as T;
}

