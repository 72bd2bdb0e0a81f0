/**
 * The API's endpoints, declared as data: method, path, scope, what they read and return, and a
 * handler calling the same domain services as every other door. openapi.ts documents exactly
 * this table, and index.ts serves exactly it. An endpoint for another feature (rooms) is one
 * more entry here.
 */
import { isIP } from 'node:net';
import type { z } from 'zod';
import type { ApiScope, Config } from '../../config-schema';
import { parseDuration } from '../../config-values';
import { InviteError } from '../../errors';
import { parseEmailAddress } from '../../domain/email-address';
import type { InviteService, RoomRef } from '../../domain/invites';
import type { RoomsPort } from '../../domain/rooms';
import { isRequestId, type MembershipRequest, type MembershipService, type RequestState } from '../../domain/membership';
import { normalizeBareJid, emailKey } from '../../domain/jid';
import { trimSpace } from '../../domain/text';
import { isInviteId } from '../../domain/tokens';
import type { Actor, Invite, ShownState } from '../../domain/types';
import { inviteJson, roomsJson } from '../../present/invite';
import { requestJson } from '../../present/request';
import type { ApiKey } from './keys';
import { allows } from './keys';
import {
  AcceptedOut,
  CreatedOut,
  CreateInviteBody,
  ExtendBody,
  InviteOut,
  ListQuery,
  NewRequestBody,
  PageOut,
  ReasonBody,
  RejectRequestBody,
  RequestListQuery,
  RequestOut,
  RequestPageOut,
} from './schemas';

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
  handle(ctx: ApiContext): ApiResult | Promise<ApiResult>;
}

export interface ApiDeps {
  config: Config;
  invites: InviteService;
  /** membership requests (whatever `registration.requests` says: when off, new ones are refused with 403, old ones can still be decided) */
  membership: MembershipService;
  /** the MUC service (absent: `rooms.service` is not set): asked who may invite to a room for keys without the admin scope */
  rooms?: RoomsPort;
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

/**
 * Who acts on invite `id` for `key`: the operator named by the key with the admin scope; without
 * it, the invite's inviter (a local user, never with an admin's rights), as the key spoke for them
 * when it made the invite. Others' invites (the operator's, a remote inviter's) are an admin's to
 * change: 403.
 */
function speakerFor({ config, invites }: Pick<ApiDeps, 'config' | 'invites'>, key: ApiKey, id: string, verb: string): Actor {
  if (allows(key, 'admin')) return keyActor(key);
  const invite = invites.get(id);
  if (!invite) throw new InviteError('invite-not-found', `No invite ${id}`);
  if (!invite.inviter || invite.inviter.split('@')[1] !== config.host) {
    throw new InviteError('forbidden', `A key without the admin scope ${verb} only invites of local users`);
  }
  return { kind: 'user', jid: invite.inviter, isAdmin: false };
}

function encodeCursor(item: { createdAt: number; id: string }): string {
  return Buffer.from(JSON.stringify([item.createdAt, item.id])).toString('base64url');
}

function decodeCursor(cursor: string, isId: (id: string) => boolean = isInviteId): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt === 'number' && Number.isSafeInteger(createdAt) && typeof id === 'string' && isId(id)) return { createdAt, id };
  } catch {
    /* falls through */
  }
  throw invalid('cursor', 'not a cursor this API gave');
}

function requestId(params: Record<string, string>): string {
  if (!isRequestId(params.id)) throw new InviteError('invite-not-found', `No request ${params.id}`);
  return params.id;
}

function parseExpire(expire: string | undefined): number | undefined {
  if (expire === undefined) return undefined;
  try {
    return parseDuration(expire);
  } catch {
    throw invalid('expire', 'not a duration (30m, 12h, 7d, 4w)');
  }
}

/** Requests read from the store this many at a time while a page is filled by their shown state. */
const REQUEST_BATCH = 500;

/**
 * A page of requests by shown state, oldest first: `expired` includes unverified requests past their
 * 24 hours (as `request list` shows them), so the store is read in batches and filtered.
 */
function requestPage(membership: MembershipService, state: RequestState | undefined, limit: number, after: { createdAt: number; id: string } | undefined) {
  const stored: RequestState | undefined = state === 'expired' || state === 'unverified' ? undefined : state;
  const found: { r: MembershipRequest; s: RequestState }[] = [];
  let cursor = after;
  for (;;) {
    const batch = membership.list({ state: stored, limit: REQUEST_BATCH, after: cursor });
    for (const r of batch) {
      const s = membership.shownState(r);
      if (state === undefined || s === state) found.push({ r, s });
      if (found.length > limit) break;
    }
    if (found.length > limit || batch.length < REQUEST_BATCH) break;
    cursor = batch[batch.length - 1];
  }
  const page = found.slice(0, limit);
  return { requests: page.map((x) => requestJson(x.r, x.s)), next_cursor: found.length > limit ? encodeCursor(page[page.length - 1].r) : null };
}

/**
 * The rooms of a new invite, checked before anything is stored. Malformed, too many, or not rooms
 * of `rooms.service`: 400 naming `rooms`. With the admin scope (`user` undefined) that is all, as
 * for `invite create --room` (the operator may name any room of the service). For a user, each
 * room is asked of the MUC service, as the commands do: a room it does not know is 400, one where
 * the user is neither owner nor admin 403, no clear answer 503; the names are the service's.
 */
async function checkedApiRooms(config: Config, port: RoomsPort | undefined, asked: readonly string[], user: string | undefined): Promise<RoomRef[]> {
  const service = config.rooms.service;
  if (!service) throw invalid('rooms', 'room invitations are off on this site (rooms.service is not set)');
  const jids: string[] = [];
  for (const raw of asked) {
    const room = trimSpace(raw);
    const jid = room === '' ? undefined : normalizeBareJid(room);
    if (!jid || !jid.includes('@') || jid.slice(jid.indexOf('@') + 1) !== service) throw invalid('rooms', `${room === '' ? 'an empty value' : room} is not a room of ${service}`);
    if (!jids.includes(jid)) jids.push(jid);
  }
  if (jids.length > config.rooms.maxPerInvite) throw invalid('rooms', `at most ${config.rooms.maxPerInvite} rooms per invitation (rooms.max_per_invite); ${jids.length} were named`);
  if (user === undefined) return jids.map((jid) => ({ jid }));
  if (!port) throw new InviteError('unavailable', `The room service ${service} cannot be asked now; nothing was stored`);
  const [listed, answers] = await Promise.all([port.listRooms(), Promise.all(jids.map((jid) => port.mayInvite(jid, user, { siteAdmin: false })))]);
  const unknown = jids.filter((_, i) => { const a = answers[i]; return !a.ok && a.error.kind === 'item-not-found'; });
  if (unknown.length) throw invalid('rooms', `not a room of ${service}: ${unknown.join(', ')}`);
  const notAllowed = jids.filter((_, i) => { const a = answers[i]; return a.ok && !a.value; });
  if (notAllowed.length) {
    throw new InviteError('forbidden', `${user} is not an owner or admin of ${notAllowed.join(', ')}; nobody was invited`, { field: 'rooms', rooms: notAllowed.join(' ') });
  }
  const unclear = jids.filter((_, i) => !answers[i].ok);
  if (unclear.length) throw new InviteError('unavailable', `The room service ${service} did not answer for ${unclear.join(', ')}; nothing was stored, try again`);
  const names = listed.ok ? listed.value : [];
  return jids.map((jid) => ({ jid, name: names.find((r) => r.jid === jid)?.name ?? null }));
}

function inviteId(params: Record<string, string>): string {
  // An id that cannot exist is as unknown as one that does not.
  if (!isInviteId(params.id)) throw new InviteError('invite-not-found', `No invite ${params.id}`);
  return params.id;
}

export function apiRoutes({ config, invites, membership, rooms }: ApiDeps): ApiRoute[] {
  // as `invite list --json`: the rooms an invite names, with their answers
  const one = (invite: Invite) => roomsJson(inviteJson(invite, invites.now()), invites.roomsOf(invite.id));
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
      handle: async ({ key, body }) => {
        const b = body as z.output<typeof CreateInviteBody>;
        const email = b.email === undefined ? undefined : parseEmailAddress(b.email);
        if (b.email !== undefined && email === undefined) throw invalid('email', 'not a single e-mail address');
        const expiresIn = parseExpire(b.expire);
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
        const asked = b.rooms ?? [];
        if (asked.length > 0 && b.kind === 'contact') throw invalid('rooms', 'rooms go with an invite that creates an account, or with kind room');
        if (b.kind === 'room') {
          if (b.jid === undefined) throw invalid('jid', 'required for kind room: the XMPP account invited to the rooms');
          if (b.email !== undefined) throw invalid('email', 'kind room invites an XMPP account (jid), not an e-mail address');
          if (asked.length === 0) throw invalid('rooms', 'kind room names at least one room');
        }
        if (b.jid !== undefined && !normalizeBareJid(b.jid)?.includes('@')) throw invalid('jid', 'not a user JID');
        const roomRefs = asked.length ? await checkedApiRooms(config, rooms, asked, actor.kind === 'user' ? actor.jid : undefined) : undefined;
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
          rooms: roomRefs,
          // a room the invitee has a live invitation to (409) or over its daily limit (429) refuses the whole invite
          allRoomsOrNone: true,
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
      summary: "Revoke a pending or open invite (without the admin scope: a local user's invite, for its inviter; repeating it changes nothing)",
      scope: 'invites:write',
      body: ReasonBody,
      response: { status: 200, schema: InviteOut, description: 'the invite as it is now' },
      errors: changeErrors,
      handle: ({ key, params, body }) => {
        const { reason } = body as z.output<typeof ReasonBody>;
        const id = inviteId(params);
        return { status: 200, body: one(invites.revoke(speakerFor({ config, invites }, key, id, 'revokes'), id, reason ?? null).invite) };
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
    {
      method: 'POST',
      path: '/invites/{id}/extend',
      operationId: 'extendInvite',
      summary: 'Give an open invite a longer lifetime or more uses (as `invite extend`; repeating it changes nothing)',
      scope: 'invites:write',
      body: ExtendBody,
      response: { status: 200, schema: InviteOut, description: 'the invite as it is now' },
      errors: changeErrors,
      handle: ({ key, params, body }) => {
        const b = body as z.output<typeof ExtendBody>;
        if (b.expire === undefined && b.uses === undefined) throw invalid('expire', 'give expire, uses or both');
        const id = inviteId(params);
        const change = { expiresIn: parseExpire(b.expire), maxUses: b.uses };
        // Without the admin scope the inviter's limits apply: a lifetime of at most
        // invites.expiry from now, at most invites.max_uses uses.
        return { status: 200, body: one(invites.extend(speakerFor({ config, invites }, key, id, 'extends'), id, change).invite) };
      },
    },
    {
      method: 'POST',
      path: '/requests',
      operationId: 'createRequest',
      summary: "Ask to join for someone, from the site's own sign-up form (as the /request page): the address is e-mailed a verification link",
      scope: 'requests:write',
      body: NewRequestBody,
      response: { status: 202, schema: AcceptedOut, description: 'taken; what follows is told to the address, never in this answer' },
      errors: [429],
      handle: ({ body }) => {
        const b = body as z.output<typeof NewRequestBody>;
        if (b.ip !== undefined && isIP(b.ip) === 0) throw invalid('ip', 'not an IP address');
        membership.request({ email: b.email, reason: b.reason ?? null, ip: b.ip ?? null });
        return { status: 202, body: { accepted: true } };
      },
    },
    {
      method: 'GET',
      path: '/requests',
      operationId: 'listRequests',
      summary: 'List membership requests, oldest first, a page at a time (as `request list`)',
      scope: 'admin',
      query: RequestListQuery,
      response: { status: 200, schema: RequestPageOut, description: 'a page of requests' },
      errors: [],
      handle: ({ query }) => {
        const q = query as z.output<typeof RequestListQuery>;
        const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, isRequestId);
        return { status: 200, body: requestPage(membership, q.state, q.limit ?? DEFAULT_PAGE, after) };
      },
    },
    {
      method: 'GET',
      path: '/requests/{id}',
      operationId: 'getRequest',
      summary: 'One membership request (as `request show`)',
      scope: 'admin',
      response: { status: 200, schema: RequestOut, description: 'the request' },
      errors: [404],
      handle: ({ params }) => {
        const id = requestId(params);
        const r = membership.get(id);
        if (!r) throw new InviteError('invite-not-found', `No request ${id}`);
        return { status: 200, body: requestJson(r, membership.shownState(r)) };
      },
    },
    {
      method: 'POST',
      path: '/requests/{id}/approve',
      operationId: 'approveRequest',
      summary: 'Approve a verified request: its account invite is made and e-mailed to the address (as `request approve`; repeating it changes nothing)',
      scope: 'admin',
      response: { status: 200, schema: RequestOut, description: 'the request as it is now, naming its invite' },
      errors: changeErrors,
      handle: ({ key, params }) => {
        const { request } = membership.approve(keyActor(key), requestId(params));
        return { status: 200, body: requestJson(request, membership.shownState(request)) };
      },
    },
    {
      method: 'POST',
      path: '/requests/{id}/reject',
      operationId: 'rejectRequest',
      summary: 'Reject a verified request; the address is e-mailed the answer, with the reason when given (as `request reject`; repeating it changes nothing)',
      scope: 'admin',
      body: RejectRequestBody,
      response: { status: 200, schema: RequestOut, description: 'the request as it is now' },
      errors: changeErrors,
      handle: ({ key, params, body }) => {
        const { reason } = body as z.output<typeof RejectRequestBody>;
        const { request } = membership.reject(keyActor(key), requestId(params), reason ?? null);
        return { status: 200, body: requestJson(request, membership.shownState(request)) };
      },
    },
  ];
}
