/**
 * A webhook receiver on loopback: records every POST (headers and exact body) and answers 200, or
 * 503 while `failing` says so.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  /** the status it was answered with */
  status: number;
  at: number;
}

export class WebhookReceiver {
  readonly received: Received[] = [];
  /** answer 503 to this request? */
  failing: (n: number) => boolean = () => false;
  #server: http.Server;
  url = '';

  private constructor() {
    this.#server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = this.failing(this.received.length) ? 503 : 200;
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status, at: Date.now() });
        res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status === 200 ? 'ok' : 'down');
      });
    });
  }

  static async start(path = '/hooks'): Promise<WebhookReceiver> {
    const r = new WebhookReceiver();
    await new Promise<void>((resolve) => r.#server.listen(0, '127.0.0.1', resolve));
    r.url = `http://127.0.0.1:${(r.#server.address() as AddressInfo).port}${path}`;
    return r;
  }

  /** The deliveries answered 200. */
  delivered(): Received[] {
    return this.received.filter((r) => r.status === 200);
  }

  stop(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
