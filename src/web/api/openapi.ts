/**
 * The OpenAPI 3.1 description of the API, generated from the route table (routes.ts) and its zod
 * schemas: what it documents is what is served. JSON Schema 2020-12, which OpenAPI 3.1 uses.
 */
import { z } from 'zod';
import type { ApiRoute } from './routes';
import { ErrorOut } from './schemas';

const STATUS_TEXT: Record<number, string> = {
  400: 'a field is missing or wrong (`error.field` names it), or the body is not JSON',
  401: 'no key, or an unknown one',
  403: 'the key lacks the scope, or the domain refuses (e.g. user invites may not create accounts; the inviter is not an owner or admin of a room named; membership requests are off)',
  404: 'no such invite or request',
  409: 'the invite or request is in another state, or a duplicate (`error.detail.id` names the existing one), or the invitee opted out',
  413: 'the body is too large',
  415: 'the body is not application/json',
  429: 'a limit was reached (`Retry-After` says when it frees)',
  503: 'the database is busy for a moment (`Retry-After`), or the MUC service did not answer about a room',
};

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', reused: 'inline' }) as Record<string, unknown>;
  return rest;
}

export function openApiDocument(routes: readonly ApiRoute[], serverUrl: string, version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const error = { description: '', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  for (const route of routes) {
    const parameters: unknown[] = [];
    for (const m of route.path.matchAll(/\{(\w+)\}/g)) parameters.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    if (route.query) {
      const q = schemaOf(route.query, 'input') as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) {
        const { description, ...rest } = schema;
        parameters.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema: rest, ...(description ? { description } : {}) });
      }
    }
    const statuses = [400, 401, 403, ...(route.body ? [413, 415] : []), ...route.errors, 503];
    const responses: Record<string, unknown> = {
      [String(route.response.status)]: { description: route.response.description, content: { 'application/json': { schema: schemaOf(route.response.schema, 'output') } } },
    };
    for (const s of [...new Set(statuses)].sort()) responses[String(s)] = { ...error, description: STATUS_TEXT[s] };
    paths[route.path] ??= {};
    paths[route.path][route.method.toLowerCase()] = {
      operationId: route.operationId,
      summary: route.summary,
      description: `Scope: \`${route.scope}\`${route.scope === 'admin' ? '' : ' (or `admin`)'}.`,
      security: [{ bearer: [] }],
      ...(parameters.length ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: false, content: { 'application/json': { schema: schemaOf(route.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'xmpp-invites API',
      version,
      description: 'Invites for an XMPP server, for sites that integrate invitations into their own pages. Keys and their scopes are set in `api.keys`.',
    },
    servers: [{ url: serverUrl }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a key of `api.keys`' } },
      schemas: { Error: schemaOf(ErrorOut, 'output') },
    },
  };
}
