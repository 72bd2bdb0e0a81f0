/** The xmpp: URI as an inline SVG QR code (the `qrcode` package): no image route, no script. */
import QRCode from 'qrcode';
import { escapeHtml, trusted, type Html } from './html';

export async function qrSvg(text: string, label: string): Promise<Html> {
  const svg = await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  // The library's SVG carries only paths and presentation attributes; it is given a class and a name.
  return trusted(svg.replace(/^<svg /, `<svg class="qr" role="img" aria-label="${escapeHtml(label)}" `));
}
