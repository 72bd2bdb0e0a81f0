/**
 * Prometheus metrics (prom-client), served on `metrics.listen` (off by default) at GET /metrics.
 *
 * Two kinds of series, named so a query can tell:
 * - read from the store at each scrape, counting what every process did (this instance, the
 *   others, the CLI): invites by state, invites created/approved/rejected/redeemed/declined/
 *   expired/revoked (from the event log), registrations by door and outcome (from the claims),
 *   the outbox's depth and oldest age by channel. Every instance reports the same values: take
 *   `max` across instances, not `sum`.
 * - counted by this process: deliveries by channel and outcome, stanza handling time, the state
 *   of its XMPP connection; and prom-client's process_ and nodejs_ series. `sum` across instances.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Channel } from './domain/notices';
import { SHOWN_STATES } from './domain/types';
import type { Db } from './store/database';
import { SqliteMetricsStore } from './store/metrics-repo';
import type { SqliteOutbox } from './store/outbox-repo';

export const PREFIX = 'xmpp_invites_';

/** Event log types counted as `xmpp_invites_invites_<type>_total`. */
const COUNTED_EVENTS = ['created', 'approved', 'rejected', 'redeemed', 'declined', 'expired', 'revoked'] as const;

/** Claim states as registration outcomes (a held claim is not an outcome yet: see claims_held). */
const OUTCOME_OF_CLAIM: Record<string, string | undefined> = { spent: 'created', released: 'failed' };

const STANZA_KINDS = ['iq', 'message', 'presence'] as const;

export type DeliveryOutcome = 'sent' | 'retry' | 'failed';

export interface MetricsDeps {
  db: Db;
  outbox: SqliteOutbox;
  connection: { readonly online: boolean; readonly standingBy: boolean };
  clock?: () => number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #deliveries: Counter<'channel' | 'outcome'>;
  readonly #stanzas: Histogram<'kind'>;

  constructor(deps: MetricsDeps) {
    const clock = deps.clock ?? Date.now;
    const store = new SqliteMetricsStore(deps.db);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    // The event log only grows: its totals are kept here, and each scrape reads the new rows only.
    const totals: Record<string, number> = {};
    let lastEvent = 0;
    const readEvents = () => {
      const { counts, last } = store.eventsSince(lastEvent);
      for (const [type, n] of Object.entries(counts)) totals[type] = (totals[type] ?? 0) + n;
      lastEvent = last;
    };

    // Counting invites by state reads an index entry per invite (about 0.5 ms per 1,000 invites),
    // on the event loop: on a large store the count is reused for 100 times as long as it took, so
    // that scrapes take at most about 1 % of the loop's time, but never once an event was written
    // since (every change of state writes one; only "expired", derived from the time, may lag).
    let states: Record<string, number> = {};
    let statesUntil = -Infinity;
    let statesAtEvent = -1;
    new Gauge({
      name: `${PREFIX}invites`,
      help: 'Invites by state (expired: pending or open past their expiry)',
      labelNames: ['state'],
      registers,
      collect() {
        readEvents();
        const started = performance.now();
        if (started >= statesUntil || lastEvent !== statesAtEvent) {
          states = store.states(clock());
          statesUntil = started + 100 * (performance.now() - started);
          statesAtEvent = lastEvent;
        }
        for (const s of SHOWN_STATES) this.set({ state: s }, states[s] ?? 0);
      },
    });

    for (const type of COUNTED_EVENTS) {
      new Counter({
        name: `${PREFIX}invites_${type}_total`,
        help: `Invites ${type} (from the event log: every process)`,
        registers,
        collect() {
          if (type === COUNTED_EVENTS[0]) readEvents();
          this.reset();
          this.inc(totals[type] ?? 0);
        },
      });
    }

    let held = 0;
    new Counter({
      name: `${PREFIX}registrations_total`,
      help: 'Registrations that reached the server, by door (component, web, bridge) and outcome (created, failed)',
      labelNames: ['door', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const door of ['component', 'web', 'bridge']) for (const outcome of ['created', 'failed']) this.inc({ door, outcome }, 0);
        held = 0;
        for (const c of store.claims()) {
          const outcome = OUTCOME_OF_CLAIM[c.state];
          if (outcome) this.inc({ door: c.door, outcome }, c.count);
          else held += c.count;
        }
      },
    });

    new Gauge({
      name: `${PREFIX}claims_held`,
      help: 'Registrations whose outcome is not known yet (held until the server says whether the account exists)',
      registers,
      collect() {
        // read with the registrations just above, in the same scrape
        this.set(held);
      },
    });

    const depth = new Gauge({ name: `${PREFIX}outbox_depth`, help: 'Outbox rows queued or being sent, by channel', labelNames: ['channel'], registers });
    new Gauge({
      name: `${PREFIX}outbox_oldest_age_seconds`,
      help: 'Age of the oldest outbox row queued or being sent, by channel (0 when none)',
      labelNames: ['channel'],
      registers,
      collect() {
        const now = clock();
        for (const d of deps.outbox.depth()) {
          depth.set({ channel: d.channel }, d.count);
          this.set({ channel: d.channel }, d.oldestAt === null ? 0 : Math.max(0, (now - d.oldestAt) / 1000));
        }
      },
    });

    this.#deliveries = new Counter({
      name: `${PREFIX}deliveries_total`,
      help: 'Delivery attempts by this process, by channel and outcome (sent, retry, failed)',
      labelNames: ['channel', 'outcome'],
      registers,
    });
    for (const channel of ['xmpp', 'email', 'webhook']) for (const outcome of ['sent', 'retry', 'failed']) this.#deliveries.inc({ channel, outcome }, 0);

    this.#stanzas = new Histogram({
      name: `${PREFIX}stanza_duration_seconds`,
      help: 'Time to handle an incoming stanza, by kind (iq, message, presence)',
      labelNames: ['kind'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    for (const kind of STANZA_KINDS) this.#stanzas.zero({ kind });

    new Gauge({
      name: `${PREFIX}xmpp_connected`,
      help: '1 while the component is connected to the XMPP server',
      registers,
      collect() {
        this.set(deps.connection.online ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}xmpp_standby`,
      help: '1 while this instance stands by (component.standby: another holds the component)',
      registers,
      collect() {
        this.set(deps.connection.standingBy ? 1 : 0);
      },
    });
  }

  delivery(channel: Channel, outcome: DeliveryOutcome): void {
    this.#deliveries.inc({ channel, outcome });
  }

  /** Starts timing a stanza; call the result when it is handled. */
  stanza(kind: string): () => void {
    const end = this.#stanzas.startTimer({ kind: (STANZA_KINDS as readonly string[]).includes(kind) ? kind : 'other' });
    return () => void end();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The listener of `metrics.listen`: GET /metrics, and nothing else. */
export class MetricsServer {
  readonly #server: http.Server;
  #url: string | undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly listen: { host: string; port: number },
    private readonly logger: Logger,
  ) {
    this.#server = http.createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, (req, res) => void this.#handle(req, res));
  }

  get url(): string {
    if (!this.#url) throw new Error('The metrics server is not listening');
    return this.#url;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume();
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET', 'Content-Type': 'text/plain; charset=utf-8' }).end('GET only\n');
      return;
    }
    try {
      const body = await this.metrics.text();
      res.writeHead(200, { 'Content-Type': this.metrics.contentType, 'Cache-Control': 'no-store' }).end(body);
    } catch (err) {
      this.logger.error({ err }, 'metrics could not be collected');
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
    }
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.listen.port, this.listen.host, () => {
        this.#server.off('error', reject);
        const { address, port } = this.#server.address() as AddressInfo;
        this.#url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
        this.logger.info('metrics on %s/metrics', this.#url);
        resolve();
      });
    });
  }

  stop(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
