/**
 * Talking to the landing page over plain HTTP (fetch), as a browser without JavaScript would:
 * GET a page, keep its CSRF cookie and form token, POST urlencoded forms. And a snapshot of the
 * database, to check that GETs and refusals change nothing.
 */
import { openStoreOf } from './engine';

export interface Page {
  status: number;
  headers: Headers;
  html: string;
  /** `xi_csrf=…` from Set-Cookie, or the one sent */
  cookie: string | undefined;
  /** the hidden csrf field of the page's forms */
  csrf: string | undefined;
}

export interface RequestOptions {
  /** sent as X-Forwarded-For (believed only from web.trusted_proxies) */
  ip?: string;
  cookie?: string;
}

function headersOf(opts: RequestOptions, extra: Record<string, string> = {}): Record<string, string> {
  return { ...(opts.ip ? { 'X-Forwarded-For': opts.ip } : {}), ...(opts.cookie ? { Cookie: opts.cookie } : {}), ...extra };
}

async function page(res: Response, sentCookie: string | undefined): Promise<Page> {
  const html = await res.text();
  const setCookie = res.headers.get('set-cookie');
  const cookie = setCookie ? setCookie.split(';')[0] : sentCookie;
  return { status: res.status, headers: res.headers, html, cookie, csrf: /name="csrf" value="([^"]+)"/.exec(html)?.[1] };
}

export async function get(url: string, opts: RequestOptions = {}): Promise<Page> {
  const res = await fetch(url, { headers: headersOf(opts), redirect: 'manual' });
  return page(res, opts.cookie);
}

/** POSTs a form (application/x-www-form-urlencoded); `fields` may repeat a name with an array. */
export async function post(url: string, fields: Record<string, string | string[]>, opts: RequestOptions = {}): Promise<Page> {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) body.append(name, v);
  const res = await fetch(url, {
    method: 'POST',
    headers: headersOf(opts, { 'Content-Type': 'application/x-www-form-urlencoded' }),
    body: body.toString(),
    redirect: 'manual',
  });
  return page(res, opts.cookie);
}

/**
 * Every table of record, as text. Delivery progress is left out (the outbox's states, the invites'
 * delivery columns, `delivered` events): the worker moves it on its own, at any moment.
 */
export function snapshot(file: string): string {
  const db = openStoreOf(file);
  try {
    const all = (sql: string) => JSON.stringify(db.prepare(sql).all());
    const invites = (db.prepare('SELECT * FROM invites ORDER BY id').all() as Record<string, unknown>[]).map(
      ({ email_delivery: _e, message_delivery: _m, ...rest }) => rest,
    );
    return [
      JSON.stringify(invites),
      all(`SELECT * FROM events WHERE type <> 'delivered' ORDER BY id`),
      all('SELECT * FROM claims ORDER BY id'),
      all('SELECT id, channel, kind, recipient, invite_ids, params FROM outbox ORDER BY id'),
      all('SELECT * FROM opt_outs ORDER BY address_hash'),
      all('SELECT * FROM membership_requests ORDER BY id'),
      all('SELECT * FROM membership_events ORDER BY id'),
      all('SELECT * FROM password_resets ORDER BY id'),
      all('SELECT * FROM password_reset_events ORDER BY id'),
      all('SELECT * FROM room_invitations ORDER BY invite_id, room'),
    ].join('\n');
  } finally {
    db.close();
  }
}

/** Outbox rows of a kind for a recipient (to see who was told what). */
export function notices(file: string, kind: string, recipient?: string): { recipient: string; invite_ids: string; params: string }[] {
  const db = openStoreOf(file);
  try {
    return db
      .prepare(`SELECT recipient, invite_ids, params FROM outbox WHERE kind = ? ${recipient ? 'AND recipient = ?' : ''} ORDER BY id`)
      .all(...(recipient ? [kind, recipient] : [kind])) as { recipient: string; invite_ids: string; params: string }[];
  } finally {
    db.close();
  }
}
