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

/**
 * The unit that rate limits and connection caps count: an IPv4 address as it is, an IPv6 address by
 * its /64 (one subscriber usually holds a whole /64, so counting single addresses would give a
 * client 2^64 buckets). `2001:db8:1:2:a:b:c:d` → `2001:db8:1:2::/64`.
 */
export function addressKey(ip: string): string {
  const addr = normalizeIp(ip);
  if (isIP(addr) !== 6) return addr;
  const groups = expandIpv6(addr).map((g) => parseInt(g, 16));
  // NAT64 (RFC 6052's well-known prefix 64:ff9b::/96): the client is the IPv4 address inside.
  if (groups.slice(0, 6).join(':') === '100:65435:0:0:0:0') {
    return [groups[6] >> 8, groups[6] & 255, groups[7] >> 8, groups[7] & 255].join('.');
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as written (no zone), hex, without leading zeros. */
function expandIpv6(addr: string): string[] {
  let text = addr.split('%')[0];
  // An embedded IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) becomes two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...zeros, ...right];
}
