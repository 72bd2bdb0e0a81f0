/**
 * The API's endpoints, declared as data: method, path, scope, what they read and return, and a
 * handler calling the same domain services as every other door. openapi.ts documents exactly
 * this table, and index.ts serves exactly it. An endpoint for another feature (membership
 * requests, rooms) is one more entry here.
 */
import type { z } from 'zod';
import type { ApiScope, Config } from '../../config-schema';
import { parseDuration } from '../../config-values';
import { InviteError } from '../../errors';
import { parseEmailAddress } from '../../domain/email-address';
import type { InviteService } from '../../domain/invites';
import { normalizeBareJid, emailKey } from '../../domain/jid';
import { trimSpace } from '../../domain/text';
import { isInviteId } from '../../domain/tokens';
import type { Actor, Invite, ShownState } from '../../domain/types';
import { inviteJson } from '../../present/invite';
import type { ApiKey } from './keys';
import { allows } from './keys';
import { CreatedOut, CreateInviteBody, InviteOut, ListQuery, PageOut, ReasonBody } from './schemas';

export interface ApiContext {
  key: ApiKey;
  params: Record<string, string>;
  query: unknown;
  body: unknown;
}

export interface ApiResult {
  status: number;
  body: unknown;
}

export interface ApiRoute {
  method: 'GET' | 'POST';
  /** OpenAPI form: `/invites/{id}` (under /api/v1) */
  path: string;
  operationId: string;
  summary: string;
  scope: ApiScope;
  query?: z.ZodType;
  body?: z.ZodType;
  /** the schema of the success answer, and its status */
  response: { status: number; schema: z.ZodType; description: string };
  /** the error statuses it can answer besides 401, 403 and 400 */
  errors: number[];
  handle(ctx: ApiContext): ApiResult;
}

export interface ApiDeps {
  config: Config;
  invites: InviteService;
}

/** A 400 naming the field at fault. */
export function invalid(field: string, message: string): InviteError {
  return new InviteError('invalid-input', `${field}: ${message}`, { field });
}

/** The operator named by the key (what the event log records), for keys with the admin scope. */
function keyActor(key: ApiKey): Actor {
  return { kind: 'operator', name: `api:${key.name}` };
}

const DEFAULT_PAGE = 50;

function encodeCursor(invite: Invite): string {
  return Buffer.from(JSON.stringify([invite.createdAt, invite.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt === 'number' && Number.isSafeInteger(createdAt) && typeof id === 'string' && isInviteId(id)) return { createdAt, id };
  } catch {
    /* falls through */
  }
  throw invalid('cursor', 'not a cursor this API gave');
}

function inviteId(params: Record<string, string>): string {
  // An id that cannot exist is as unknown as one that does not.
  if (!isInviteId(params.id)) throw new InviteError('invite-not-found', `No invite ${params.id}`);
  return params.id;
}

export function apiRoutes({ config, invites }: ApiDeps): ApiRoute[] {
  const one = (invite: Invite) => inviteJson(invite, invites.now());
  const changeErrors = [404, 409];
  return [
    {
      method: 'POST',
      path: '/invites',
      operationId: 'createInvite',
      summary: 'Create an invite (as `invite create`)',
      scope: 'invites:write',
      body: CreateInviteBody,
      response: { status: 201, schema: CreatedOut, description: 'the invite, with its URI and landing URL' },
      errors: [409, 429],
      handle: ({ key, body }) => {
        const b = body as z.output<typeof CreateInviteBody>;
        const email = b.email === undefined ? undefined : parseEmailAddress(b.email);
        if (b.email !== undefined && email === undefined) throw invalid('email', 'not a single e-mail address');
        let expiresIn: number | undefined;
        if (b.expire !== undefined) {
          try {
            expiresIn = parseDuration(b.expire);
          } catch {
            throw invalid('expire', 'not a duration (30m, 12h, 7d, 4w)');
          }
        }
        let actor: Actor = keyActor(key);
        let inviter = b.inviter;
        if (inviter !== undefined) {
          const jid = normalizeBareJid(inviter);
          if (!jid || !jid.includes('@')) throw invalid('inviter', 'not a user JID');
          inviter = jid;
        }
        if (!allows(key, 'admin')) {
          // Without the admin scope a key speaks for one of the site's users: the invite is
          // theirs, and approval, limits and duplicates apply as if they had made it themselves.
          // Never with an admin's rights, even for an admin's JID: those take the admin scope.
          if (inviter === undefined) throw invalid('inviter', 'required for a key without the admin scope');
          if (inviter.split('@')[1] !== config.host) throw invalid('inviter', `must be a user of ${config.host}`);
          actor = { kind: 'user', jid: inviter, isAdmin: false };
          inviter = undefined;
        }
        const { invite, links } = invites.create(actor, {
          kind: b.kind,
          source: 'api',
          inviter,
          username: b.username,
          email,
          jid: b.jid,
          name: b.name,
          note: b.note,
          expiresIn,
          maxUses: b.uses,
        });
        return { status: 201, body: { ...one(invite), uri: links.uri, landing_url: links.landingUrl } };
      },
    },
    {
      method: 'GET',
      path: '/invites',
      operationId: 'listInvites',
      summary: 'List invites, oldest first, a page at a time',
      scope: 'invites:read',
      query: ListQuery,
      response: { status: 200, schema: PageOut, description: 'a page of invites' },
      errors: [],
      handle: ({ query }) => {
        const q = query as z.output<typeof ListQuery>;
        let inviter: string | undefined;
        if (q.inviter !== undefined) {
          inviter = normalizeBareJid(q.inviter) ?? undefined;
          if (!inviter) throw invalid('inviter', 'not a JID');
        }
        const invitee = q.invitee === undefined ? undefined : (normalizeBareJid(trimSpace(q.invitee)) ?? emailKey(trimSpace(q.invitee)));
        const limit = q.limit ?? DEFAULT_PAGE;
        const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
        const list = invites.list({ state: q.state as ShownState | undefined, inviter, invitee, oldestFirst: true, after, limit: limit + 1 });
        const page = list.slice(0, limit);
        return { status: 200, body: { invites: page.map(one), next_cursor: list.length > limit ? encodeCursor(page[page.length - 1]) : null } };
      },
    },
    {
      method: 'GET',
      path: '/invites/{id}',
      operationId: 'getInvite',
      summary: 'One invite',
      scope: 'invites:read',
      response: { status: 200, schema: InviteOut, description: 'the invite' },
      errors: [404],
      handle: ({ params }) => {
        const invite = invites.get(inviteId(params));
        if (!invite) throw new InviteError('invite-not-found', `No invite ${params.id}`);
        return { status: 200, body: one(invite) };
      },
    },
    {
      method: 'POST',
      path: '/invites/{id}/revoke',
      operationId: 'revokeInvite',
      summary: 'Revoke a pending or open invite (repeating it changes nothing)',
      scope: 'invites:write',
      body: ReasonBody,
      response: { status: 200, schema: InviteOut, description: 'the invite as it is now' },
      errors: changeErrors,
      handle: ({ key, params, body }) => {
        const { reason } = body as z.output<typeof ReasonBody>;
        return { status: 200, body: one(invites.revoke(keyActor(key), inviteId(params), reason ?? null).invite) };
      },
    },
    {
      method: 'POST',
      path: '/invites/{id}/approve',
      operationId: 'approveInvite',
      summary: 'Approve a pending invite (repeating it changes nothing)',
      scope: 'admin',
      response: { status: 200, schema: InviteOut, description: 'the invite as it is now' },
      errors: changeErrors,
      handle: ({ key, params }) => ({ status: 200, body: one(invites.approve(keyActor(key), inviteId(params)).invite) }),
    },
    {
      method: 'POST',
      path: '/invites/{id}/reject',
      operationId: 'rejectInvite',
      summary: 'Reject a pending invite; the inviter is told, with the reason (repeating it changes nothing)',
      scope: 'admin',
      body: ReasonBody,
      response: { status: 200, schema: InviteOut, description: 'the invite as it is now' },
      errors: changeErrors,
      handle: ({ key, params, body }) => {
        const { reason } = body as z.output<typeof ReasonBody>;
        return { status: 200, body: one(invites.reject(keyActor(key), inviteId(params), reason ?? null).invite) };
      },
    },
  ];
}
