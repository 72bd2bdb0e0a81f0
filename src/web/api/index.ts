/**
 * The HTTP API under /api/v1/ (JSON; `Authorization: Bearer KEY`), mounted on the web server, and
 * its description at /api/openapi.json. Checks in order, so that a refusal never reaches the
 * domain: route (404, 405), key (401), scope (403), body size (413), type (415), JSON and fields
 * (400); then the domain, whose error codes map to statuses in one table.
 */
import type http from 'node:http';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { InviteError, isDatabaseBusy, type ErrorCode } from '../../errors';
import { Router } from '../router';
import { MAX_BODY_BYTES, readBody, type MountHandler, type Reply } from '../server';
import { retryAfter } from '../errors';
import { ApiKeys, allows } from './keys';
import { openApiDocument } from './openapi';
import { apiRoutes, invalid, type ApiDeps, type ApiRoute } from './routes';

export const API_PREFIX = '/api';
export const API_BASE = '/api/v1';

const STATUS: Record<ErrorCode, number> = {
  forbidden: 403,
  'invite-not-found': 404,
  'invite-pending': 409,
  'invite-required': 403,
  conflict: 409,
  'username-mismatch': 400,
  'invalid-input': 400,
  'bad-request': 400,
  'wrong-state': 409,
  'limit-reached': 429,
  duplicate: 409,
  'opted-out': 409,
  // the address bounced for good (mail unsuppress lifts it)
  suppressed: 409,
  unavailable: 503,
  internal: 500,
};

function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, body: JSON.stringify(body), contentType: 'application/json; charset=utf-8', headers };
}

function problem(status: number, code: string, message: string, extra: { field?: string; detail?: Record<string, string> } = {}, headers: Record<string, string> = {}): Reply {
  return json(status, { error: { code, message, ...extra } }, headers);
}

/** The first zod issue as a 400 naming its field. */
function fieldError(error: z.ZodError, where: 'body' | 'query'): InviteError {
  const issue = error.issues[0];
  let field = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') field = (issue as { keys: string[] }).keys[0];
  if (!field) return new InviteError('bad-request', `the ${where} must be a JSON object`);
  const message = issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message;
  return invalid(field, message);
}

export interface ApiOptions extends ApiDeps {
  logger: Logger;
}

/** The version of the API's description (not of the package): it changes with what /api/v1 offers. */
export const API_VERSION = '1.0.0';

export function apiHandler(opts: ApiOptions): MountHandler {
  const keys = new ApiKeys(opts.config.api.keys);
  const routes = apiRoutes(opts);
  const router = new Router<ApiRoute>();
  for (const r of routes) router.add(r.method, API_BASE + r.path.replace(/\{(\w+)\}/g, ':$1'), r);
  const document = JSON.stringify(openApiDocument(routes, `${opts.config.web.publicUrl}${API_BASE}`, API_VERSION), null, 2);

  return async (req, path, ip) => {
    const method = req.method ?? 'GET';
    if (path === `${API_PREFIX}/openapi.json`) {
      req.resume();
      if (method !== 'GET' && method !== 'HEAD') return problem(405, 'method-not-allowed', 'GET only', {}, { Allow: 'GET' });
      return { status: 200, body: document, contentType: 'application/json; charset=utf-8' };
    }
    const match = router.match(method, path);
    if (match.kind === 'none') {
      req.resume();
      return problem(404, 'not-found', 'No such endpoint (see /api/openapi.json)');
    }
    if (match.kind === 'method') {
      req.resume();
      return problem(405, 'method-not-allowed', `Allowed: ${match.allowed.join(', ')}`, {}, { Allow: match.allowed.join(', ') });
    }
    const route = match.handler;
    const key = keys.authenticate(req.headers.authorization);
    if (!key) {
      req.resume();
      return problem(401, 'unauthorized', 'An API key is required: Authorization: Bearer KEY', {}, { 'WWW-Authenticate': 'Bearer realm="xmpp-invites"' });
    }
    if (!allows(key, route.scope)) {
      req.resume();
      return problem(403, 'forbidden', `This key lacks the scope ${route.scope}`);
    }
    const log = opts.logger.child({ api: route.operationId, key: key.name, ip });
    try {
      const body = method === 'POST' ? await readJson(req, route) : undefined;
      const query = route.query ? parseQuery(req.url ?? '', route.query) : undefined;
      const result = await route.handle({ key, params: match.params, query, body });
      if (method === 'POST') log.info({ status: result.status }, 'api change');
      return json(result.status, result.body);
    } catch (err) {
      if (err instanceof BodyError) return err.reply;
      if (err instanceof InviteError) {
        const status = STATUS[err.code];
        const { field, ...detail } = err.detail ?? {};
        const after = retryAfter(err, Date.now());
        return problem(status, err.code, err.message, { ...(field ? { field } : {}), ...(Object.keys(detail).length ? { detail } : {}) }, after ? { 'Retry-After': String(after) } : {});
      }
      if (isDatabaseBusy(err)) return problem(503, 'busy', 'Nothing was changed; try again in a moment', {}, { 'Retry-After': '2' });
      log.error({ err }, 'api request failed');
      return problem(500, 'internal', 'Something went wrong');
    }
  };
}

class BodyError extends Error {
  constructor(readonly reply: Reply) {
    super('body');
  }
}

async function readJson(req: http.IncomingMessage, route: ApiRoute): Promise<unknown> {
  const raw = await readBody(req, MAX_BODY_BYTES);
  if (raw === 'too-large') throw new BodyError(problem(413, 'too-large', `The body is larger than ${MAX_BODY_BYTES} bytes`, {}, { Connection: 'close' }));
  let value: unknown = {};
  if (raw.length > 0) {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') throw new BodyError(problem(415, 'unsupported-media-type', 'The body must be application/json'));
    try {
      value = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new InviteError('bad-request', 'The body is not valid JSON');
    }
  }
  if (!route.body) return value;
  const parsed = route.body.safeParse(value);
  if (!parsed.success) throw fieldError(parsed.error, 'body');
  return parsed.data;
}

function parseQuery(url: string, schema: z.ZodType): unknown {
  const params = new URL(url, 'http://localhost').searchParams;
  const parsed = schema.safeParse(Object.fromEntries(params));
  if (!parsed.success) throw fieldError(parsed.error, 'query');
  return parsed.data;
}
