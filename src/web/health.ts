/**
 * `GET /healthz` (is this instance working? for monitoring and a load balancer) and `GET /readyz`
 * (may it take traffic yet?). Both answer JSON; the status code is what a load balancer reads.
 *
 * /healthz is 503, with the reason, when:
 * - the database cannot be written (read-only, full, failing): nothing that changes works;
 * - the XMPP link has been down longer than the grace period (a reconnection within it is normal:
 *   the pages still work, and registration answers 503 meanwhile);
 * - the instance stands by (`component.standby`), so that a load balancer sends nobody to it.
 * It reports too the outbox's depth and oldest age per channel and the oldest held claim, which
 * grow when deliveries or the server's answers stall.
 *
 * /readyz is 200 once the component has been online since the start (and the database can be
 * written, and the instance is not standing by).
 */
import type { StoreHealth } from '../store/health';
import type { Reply, WebServer } from './server';

/** How long the XMPP link may be down before /healthz says 503 (default). */
export const XMPP_GRACE_MS = 60_000;

export interface OutboxDepth {
  channel: string;
  /** rows queued or being sent */
  count: number;
  /** when the oldest of them was queued (ms), null when none */
  oldestAt: number | null;
}

/** What /healthz reports. */
export interface Health {
  /** the component is connected */
  xmpp: boolean;
  /** `component.standby`: another instance holds the component, this one waits to take over */
  standby?: boolean;
  store: StoreHealth;
  now: number;
  /** since when the XMPP link is down (ms; the start when it never came up), null while online */
  xmppDownSince?: number | null;
  /** the grace period before a link down makes /healthz 503 */
  graceMs?: number;
  /** the component has been online at least once since the start */
  ready?: boolean;
  outbox?: OutboxDepth[];
}

const ageS = (now: number, at: number | null) => (at === null ? null : Math.max(0, Math.floor((now - at) / 1000)));

function json(status: number, body: unknown): Reply {
  return { status, contentType: 'application/json', body: JSON.stringify(body) };
}

export function registerHealthRoutes(web: WebServer, health: () => Health): void {
  web.get('/healthz', () => {
    let h: Health;
    try {
      h = health();
    } catch {
      return json(503, { status: 'error', database: 'unavailable' });
    }
    const { store } = h;
    const standby = h.standby === true && !h.xmpp;
    const downMs = h.xmpp || h.xmppDownSince == null ? 0 : h.now - h.xmppDownSince;
    const linkDown = !standby && h.graceMs !== undefined && downMs > h.graceMs;
    const reason = store.reason ?? (linkDown ? `the XMPP link has been down for ${Math.floor(downMs / 1000)} s` : undefined);
    const ok = store.writable && !standby && !linkDown;
    const body = {
      status: !store.writable || linkDown ? 'error' : standby ? 'standby' : 'ok',
      xmpp: h.xmpp ? 'online' : standby ? 'standby' : 'offline',
      ...(h.xmppDownSince !== undefined && !h.xmpp ? { xmpp_down_s: Math.floor(downMs / 1000) } : {}),
      database: store.writable ? 'writable' : 'unwritable',
      ...(reason ? { reason } : {}),
      ...(store.locked ? { locked: true } : {}),
      held_claims: store.heldClaims,
      oldest_held_claim_age_s: ageS(h.now, store.oldestHeldClaimAt),
      ...(h.outbox
        ? { outbox: Object.fromEntries(h.outbox.map((o) => [o.channel, { depth: o.count, oldest_age_s: ageS(h.now, o.oldestAt) }])) }
        : {}),
    };
    return json(ok ? 200 : 503, body);
  });

  web.get('/readyz', () => {
    let h: Health;
    try {
      h = health();
    } catch {
      return json(503, { ready: false, reason: 'the database cannot be read' });
    }
    const reason = !h.store.writable
      ? h.store.reason
      : h.standby && !h.xmpp
        ? 'standing by: another instance holds the component'
        : h.ready === false
          ? 'the component has not connected yet'
          : undefined;
    return json(reason ? 503 : 200, reason ? { ready: false, reason } : { ready: true });
  });
}
