/**
 * The client's address: the peer of the connection, unless that peer is one of
 * `web.trusted_proxies`, in which case X-Forwarded-For is read from the right (each proxy appends
 * the address it saw) and the first hop that is not a trusted proxy is the client. Entries left of
 * it were written by the client itself and are never believed.
 */
import { isIP } from 'node:net';

/** `::ffff:127.0.0.1` → `127.0.0.1`; lower case. */
export function normalizeIp(ip: string): string {
  const lower = ip.trim().toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  return mapped ? mapped[1] : lower;
}

export function clientIp(peer: string | undefined, forwardedFor: string | string[] | undefined, trustedProxies: readonly string[]): string {
  let client = normalizeIp(peer ?? '');
  if (!forwardedFor || !trustedProxies.includes(client)) return client;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map(normalizeIp);
  for (let i = hops.length - 1; i >= 0; i--) {
    // A malformed entry ends the chain: the last trusted hop is the best we know.
    if (!isIP(hops[i])) break;
    client = hops[i];
    if (!trustedProxies.includes(client)) break;
  }
  return client;
}
