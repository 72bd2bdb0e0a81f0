/**
 * The xmpp: URI as an inline SVG QR code (the `qrcode` package): no image route, no script.
 *
 * Drawing one is the costliest part of a landing page (about 1 ms of CPU against 0.006 ms from the
 * cache, measured on a 2-core test machine), so the SVG is kept for the URI it encodes (the URI carries the token, which changes on resend, so a changed
 * invite never meets an old picture). The cache is bounded and keeps the most recently used.
 */
import QRCode from 'qrcode';
import { escapeHtml, trusted, type Html } from '../present/html';

/** At most this many pictures are kept (a few KiB each). */
export const QR_CACHE_SIZE = 500;

const cache = new Map<string, Promise<string>>();

/** How many drawings were made (not served from the cache): for tests. */
export const qrStats = { drawn: 0 };

function draw(text: string): Promise<string> {
  let svg = cache.get(text);
  if (svg) {
    // Most recently used last: the Map's order is the eviction order.
    cache.delete(text);
    cache.set(text, svg);
    return svg;
  }
  qrStats.drawn++;
  svg = QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  cache.set(text, svg);
  svg.catch(() => cache.delete(text));
  while (cache.size > QR_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return svg;
}

export async function qrSvg(text: string, label: string): Promise<Html> {
  const svg = await draw(text);
  // The library's SVG carries only paths and presentation attributes; it is given a class and a name.
  return trusted(svg.replace(/^<svg /, `<svg class="qr" role="img" aria-label="${escapeHtml(label)}" `));
}
