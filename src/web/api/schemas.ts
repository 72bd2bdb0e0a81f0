/**
 * What the API reads and writes, declared once with zod: the routes validate with these, and the
 * OpenAPI document (openapi.ts) is generated from them, so the two cannot drift apart.
 */
import { z } from 'zod';
import { REQUEST_STATES } from '../../domain/membership';
import { INVITE_KINDS, ROOM_ANSWER_STATES, SHOWN_STATES } from '../../domain/types';

const text = (max: number) => z.string().max(max);

export const CreateInviteBody = z
  .strictObject({
    kind: z.enum(INVITE_KINDS).describe('as `invite create --kind`'),
    username: text(64).optional().describe('the username an account-locked invite reserves'),
    email: text(254).optional().describe('the invitee: the invitation is e-mailed to this address'),
    jid: text(3071).optional().describe("the invitee's bare JID: the invitation is sent as a message (required for kind `room`)"),
    rooms: z
      .array(text(3071))
      .max(100)
      .optional()
      .describe(
        'room JIDs of `rooms.service` the invitee is invited to (as `--room`): for kind `room` (at least one) and the kinds that create an account; at most `rooms.max_per_invite`. With the admin scope any room of the service; without it, rooms the MUC service says `inviter` owns or administers',
      ),
    name: text(200).optional().describe("the invitee's name, as the landing page greets them"),
    expire: z.string().regex(/^\d+[smhdw]$/).optional().describe('lifetime: 30m, 12h, 7d, 4w (default invites.expiry)'),
    uses: z.number().int().min(1).max(1_000_000).optional().describe('uses of an account invite (default invites.max_uses)'),
    note: text(1000).optional().describe("the inviter's message, shown to the invitee"),
    inviter: text(3071)
      .optional()
      .describe('the local user who invites: required for keys without the admin scope (the invite is theirs: approval and limits apply as to them); with the admin scope, as `--inviter`'),
  });

export const ReasonBody = z.strictObject({ reason: text(1000).optional().describe('told to the inviter; recorded in the event log') });

export const ListQuery = z.strictObject({
  state: z.enum(SHOWN_STATES as [string, ...string[]]).optional(),
  inviter: z.string().optional().describe('bare JID'),
  invitee: z.string().optional().describe('e-mail address or bare JID'),
  limit: z.coerce.number().int().min(1).max(200).optional().describe('invites per page (default 50)'),
  cursor: z.string().optional().describe('`next_cursor` of the previous page'),
});

export const RejectRequestBody = z.strictObject({ reason: text(1000).optional().describe("e-mailed to the address; recorded in the request's events") });

export const ExtendBody = z.strictObject({
  expire: z.string().regex(/^\d+[smhdw]$/).optional().describe('the new lifetime, counted from now: 30m, 12h, 7d, 4w (as `invite extend --expire`)'),
  uses: z.number().int().min(1).max(1_000_000).optional().describe('the new number of uses in all (as `invite extend --uses`)'),
});

export const NewRequestBody = z.strictObject({
  email: text(254).describe('the address that asks to join; a verification link is e-mailed to it'),
  reason: text(4000).optional().describe('why they would like to join (as `registration.request_reason` asks)'),
  ip: z.string().max(45).optional().describe("the address of the person at the site's form, so that `limits.requests_per_hour` counts them rather than the site"),
});

export const RequestListQuery = z.strictObject({
  state: z.enum(REQUEST_STATES).optional().describe('as `request list --state` (an unverified request past its 24 hours is expired)'),
  limit: z.coerce.number().int().min(1).max(200).optional().describe('requests per page (default 50)'),
  cursor: z.string().optional().describe('`next_cursor` of the previous page'),
});

const iso = z.string().describe('RFC 3339');

export const InviteOut = z
  .strictObject({
    id: z.string(),
    kind: z.enum(INVITE_KINDS),
    state: z.enum(SHOWN_STATES as [string, ...string[]]),
    delivery: z.string().describe('e-mail and message delivery, as `invite list` shows it'),
    inviter: z.string().nullable(),
    invitee_email: z.string().nullable(),
    invitee_jid: z.string().nullable(),
    created: iso,
    expires: iso,
    uses: z.number().int(),
    max_uses: z.number().int(),
    rooms: z
      .array(
        z.strictObject({
          room: z.string().describe("the room's bare JID"),
          name: z.string().nullable().describe("the room's name when the invitation was made"),
          state: z.enum(ROOM_ANSWER_STATES).describe("the invitee's answer for this room"),
          member: z.string().nullable().describe('the JID made a member, once accepted'),
        }),
      )
      .optional()
      .describe('the rooms the invite names, each with its answer (absent when it names none), as `invite list --json`'),
  });

export const CreatedOut = InviteOut.extend({
  uri: z.string().describe("the invite's XEP-0401 URI (holds the token)"),
  landing_url: z.string().describe('{web.public_url}/i/TOKEN'),
});

export const PageOut = z
  .strictObject({
    invites: z.array(InviteOut),
    next_cursor: z.string().nullable().describe('null on the last page'),
  });

export const ErrorOut = z
  .strictObject({
    error: z.strictObject({
      code: z.string().describe('a stable code: unauthorized, forbidden, invalid-input, bad-request, invite-not-found, wrong-state, duplicate, conflict, opted-out, limit-reached, …'),
      message: z.string(),
      field: z.string().optional().describe('the request field at fault (400)'),
      detail: z.record(z.string(), z.string()).optional(),
    }),
  });

export const AcceptedOut = z.strictObject({
  accepted: z.literal(true).describe('the same answer whatever became of it (a new request, one already made, a refused address): no answer tells a known address from a new one'),
});

export const RequestOut = z.strictObject({
  id: z.string(),
  email: z.string(),
  state: z.enum(REQUEST_STATES),
  reason: z.string().nullable(),
  created: iso,
  verified: iso.nullable(),
  decided: iso.nullable(),
  decided_by: z.string().nullable(),
  decision_reason: z.string().nullable(),
  invite: z.string().nullable().describe('the account invite an approval made'),
});

export const RequestPageOut = z.strictObject({
  requests: z.array(RequestOut),
  next_cursor: z.string().nullable().describe('null on the last page'),
});
