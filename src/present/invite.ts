/**
 * How an invite reads to a person, in one place: the commands' forms, the XMPP messages, the
 * e-mails, the web pages and the CLI all render from here. Pure (no I/O, no clock: callers pass
 * `now`), above src/domain and below every door.
 *
 * The rules of the wording:
 * - A date never stands alone: "created …", "expires …", "valid until …" say which it is. Every
 *   time is UTC and says so; `instant` (RFC 3339) is for the lines an operator copies or compares.
 * - The invitee is named by what the invite knows: the JID, the e-mail address, the account it
 *   creates, or else "anyone with the link".
 * - The inviter: to admins and inviters an invite without one is the operator's; to the invitee it
 *   comes from the site.
 * - The state is the shown state (`expired` derived from pending or open past expiry).
 */
import type { Limits } from '../domain/limits';
import type { InviteStats, RoomStats } from '../domain/ports';
import { SHOWN_STATES, shownState, type Invite, type RoomInvitation, type ShownDelivery } from '../domain/types';

// ---- dates --------------------------------------------------------------------------------------

/** "2026-11-21 12:00 UTC": the date and time of messages, e-mails, command lines and the CLI. */
export function dateTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "21 Nov 12:00" (UTC; the detail lines say so): short enough for an option label. */
export function shortDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.toISOString().slice(11, 16)}`;
}

const LONG_MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/**
 * "28 November 2026 at 12:00 UTC": the web pages' words for a date (what Intl.DateTimeFormat's
 * en-GB long date and short time say). Written out rather than asked of Intl: its first use loads
 * ICU's locale data, about 6 MB of resident memory for one fixed English format.
 */
export function longDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCDate()} ${LONG_MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} at ${d.toISOString().slice(11, 16)} UTC`;
}

/** "2026-11-21T12:00:00Z" (RFC 3339, to the second): XEP-0082's form, and what an operator copies. */
export function instant(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export const created = (invite: Invite): string => `created ${dateTime(invite.createdAt)}`;
export const expires = (invite: Invite): string => `expires ${dateTime(invite.expiresAt)}`;

/** "3 h 12 min", "2 d 4 h": how long ago, roughly. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

// ---- people -------------------------------------------------------------------------------------

/** The invitee in a sentence: "bob@example.org", "the account carol", "anyone with the link". */
export function inviteeOf(invite: Invite): string {
  if (invite.inviteeJid) return invite.inviteeJid;
  if (invite.inviteeEmail) return invite.inviteeEmail;
  if (invite.username) return `the account ${invite.username}`;
  return 'anyone with the link';
}

/** The invitee in a few characters, for labels and table cells: "account carol", "link". */
export function inviteeLabel(invite: Invite): string {
  return invite.inviteeJid ?? invite.inviteeEmail ?? (invite.username ? `account ${invite.username}` : 'link');
}

/** The inviter as admins and inviters read it: the JID, or "the operator" (the CLI's invites). */
export function inviterOf(invite: Invite): string {
  return invite.inviter ?? 'the operator';
}

/** The inviter in a label: the user name alone for users of `host`. */
export function inviterLabel(invite: Invite, host: string): string {
  if (!invite.inviter) return 'the operator';
  return invite.inviter.endsWith(`@${host}`) ? invite.inviter.slice(0, -host.length - 1) : invite.inviter;
}

/** The inviter as the invitee reads it: the JID, or the site for the operator's invites. */
export function inviterForInvitee(invite: Invite, site: string): string {
  return invite.inviter ?? site;
}

/**
 * The invitation's title, as the invitee reads it (the page's heading, the subject of the e-mail
 * and of the message): "alice@example.com invites you to Example Chat", or for the operator's
 * invites "You are invited to Example Chat". `inviter` is the invite's, cleaned as the door needs.
 */
export function invitationTitle(inviter: string | null, site: string): string {
  return inviter ? `${inviter} invites you to ${site}` : `You are invited to ${site}`;
}

/** What the invitation offers, after "invites you": "to create an account on Example Chat". */
export function offer(invite: Invite, site: string): string {
  switch (invite.kind) {
    case 'account':
      return `to create an account on ${site}`;
    case 'account-locked':
      return `to create the account “${invite.username}” on ${site}`;
    case 'contact':
      return `to become their contact on XMPP, the open chat network (${site})`;
    case 'contact-account':
      return `to join ${site} and chat with them`;
    case 'room':
      return `to rooms on ${site}`;
  }
}

// ---- state --------------------------------------------------------------------------------------

/** How the invitation was delivered: by e-mail to an e-mail invitee, by message to a JID, else `none`. */
export function delivery(invite: Invite): ShownDelivery {
  if (invite.inviteeEmail) return emailDelivery(invite);
  if (invite.inviteeJid) return invite.messageDelivery;
  return 'none';
}

/** The e-mail delivery as shown: `bounced` once the invitation came back for good. */
export function emailDelivery(invite: Invite): ShownDelivery {
  return invite.emailBouncedAt ? 'bounced' : invite.emailDelivery;
}

/** Why an invite can no longer be used, as a sentence for its holder. */
export function endedReason(invite: Invite, now: number): string {
  switch (shownState(invite, now)) {
    case 'expired':
      return 'It has expired.';
    case 'exhausted':
      return invite.kind === 'room' ? 'Every room it names has been answered.' : 'It has already been used.';
    case 'revoked':
      return 'It was withdrawn.';
    case 'rejected':
      return 'An admin did not approve it.';
    case 'declined':
      return 'It was declined.';
    default:
      return 'It cannot be used any more.';
  }
}

// ---- one invite on one line ---------------------------------------------------------------------

/** Free text on one line, cut to `max` characters. */
function excerpt(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export interface LineOptions {
  host: string;
  now: number;
  /** name the inviter (admins' lists); without it the label ends with the state (one's own invites) */
  inviter: boolean;
}

/**
 * An option label. Clients cut labels short (Gajim at about 40 characters), so it starts with what
 * tells one invite from another: "bob@example.org, by alice, 21 Nov 12:00"; without the inviter
 * "bob@example.org, 21 Nov 12:00, open".
 */
export function optionLabel(invite: Invite, opts: LineOptions): string {
  if (opts.inviter) return `${inviteeLabel(invite)}, by ${inviterLabel(invite, opts.host)}, ${shortDate(invite.createdAt)}`;
  return `${inviteeLabel(invite)}, ${shortDate(invite.createdAt)}, ${shownState(invite, opts.now)}`;
}

/**
 * An invite waiting for approval, after its label: "link, by alice, 21 Nov 12:00: k3x9q2m7ab,
 * contact-account, from alice@example.com to anyone with the link, created 2026-11-21 12:00 UTC, note “…”".
 */
export function approvalLine(invite: Invite, host: string): string {
  return [
    `${optionLabel(invite, { host, now: 0, inviter: true })}: ${invite.id}`,
    invite.kind,
    `from ${inviterOf(invite)} to ${inviteeOf(invite)}`,
    created(invite),
    ...(invite.note ? [`note “${excerpt(invite.note, 200)}”`] : []),
  ].join(', ');
}

/**
 * An invite in a list: "bob@example.org, by alice, 21 Nov 12:00: k3x9q2m7ab open, contact-account,
 * by alice@example.com, to bob@example.org, 0/1 used, created …, expires …, delivery sent".
 */
export function listLine(invite: Invite, opts: LineOptions): string {
  const sent = delivery(invite);
  return [
    // Without the inviter, the label already ends with the state.
    `${optionLabel(invite, opts)}: ${invite.id}${opts.inviter ? ` ${shownState(invite, opts.now)}` : ''}`,
    invite.kind,
    ...(opts.inviter ? [`by ${inviterOf(invite)}`] : []),
    `to ${inviteeOf(invite)}`,
    `${invite.uses}/${invite.maxUses} used`,
    created(invite),
    expires(invite),
    ...(sent !== 'none' ? [`delivery ${sent}`] : []),
  ].join(', ');
}

/** An invite in a message to admins: "alice@example.com → bob@example.org (contact-account, created …) — “note”". */
export function summary(invite: Invite): string {
  const note = invite.note ? ` — “${invite.note}”` : '';
  return `${inviterOf(invite)} → ${inviteeOf(invite)} (${invite.kind}, ${created(invite)})${note}`;
}

// ---- statistics ---------------------------------------------------------------------------------

/** The headings of the statistics, for the command's fields and the CLI's sections. */
export const STATS_HEADINGS = {
  states: 'Invites by state',
  delivery: 'Delivery',
  funnel: 'Per inviter (created → approved → used → accounts)',
  overruns: 'Uses that made two accounts (late settles; should be 0)',
  claims: 'Registrations not settled yet',
  rooms: 'Per room (invited → accepted, declined, failed, no answer)',
} as const;

/** One line per room: "team@conference.example.com: invited 4, accepted 2, declined 1, failed 0, no answer 1". */
export function roomStatsLines(rooms: readonly RoomStats[]): string[] {
  return rooms.map((r) => `${r.room}: invited ${r.invited}, accepted ${r.accepted}, declined ${r.declined}, failed ${r.failed}, no answer ${r.noAnswer}`);
}

/** A room's answer in a line: "The Team (team@conference.example.com): accepted by bob@example.com". */
export function roomAnswerLine(r: RoomInvitation): string {
  const name = r.roomName ? `${r.roomName} (${r.room})` : r.room;
  const by = r.memberJid && (r.state === 'accepted' || r.state === 'accepting') ? ` by ${r.memberJid}` : '';
  return `${name}: ${r.state}${by}${r.reason ? ` (${r.reason})` : ''}`;
}

/** "2 held, the oldest for 3 h 12 min (since …)": a claim held long means the server could not be asked. */
export function heldClaimsLine(held: InviteStats['heldClaims'], now: number): string {
  if (held.count === 0 || held.oldestAt === null) return 'none held';
  return `${held.count} held, the oldest for ${age(now - held.oldestAt)} (since ${instant(held.oldestAt)})`;
}

export interface StatsLines {
  /** "open: 3", one per shown state */
  states: string[];
  /** "e-mail: sent 2, failed 1", "message: none" */
  delivery: string[];
  /** per inviter: "alice@example.com: created 3, approved 2, used 1, accounts 1 (limits: open 1/5)" */
  funnel: string[];
  claims: string;
}

export function statsLines(stats: InviteStats, limits?: Pick<Limits, 'usage'>, now = Date.now()): StatsLines {
  const states = SHOWN_STATES.map((s) => `${s}: ${stats.states[s] ?? 0}`);
  const counts = (rec: Record<string, number>) =>
    ['queued', 'sent', 'bounced', 'failed', 'none']
      .filter((k) => rec[k])
      .map((k) => `${k} ${rec[k]}`)
      .join(', ') || 'none';
  const delivery = [
    `e-mail: ${counts(stats.delivery.email)}`,
    `message: ${counts(stats.delivery.message)}`,
    `bounces received: ${stats.bounces.permanent} permanent, ${stats.bounces.transient} transient`,
  ];
  const funnel = stats.funnel.map((f) => {
    const u = limits?.usage(f.inviter, now);
    const close = [
      ...(u?.perUserOpen ? [`open ${u.perUserOpen.used}/${u.perUserOpen.limit}`] : []),
      ...(u?.perUserPerDay ? [`today ${u.perUserPerDay.used}/${u.perUserPerDay.limit}`] : []),
    ];
    return `${f.inviter}: created ${f.created}, approved ${f.approved}, used ${f.used}, accounts ${f.accounts}${f.bounced ? `, bounced ${f.bounced}` : ''}${close.length ? ` (limits: ${close.join(', ')})` : ''}`;
  });
  return { states, delivery, funnel, claims: heldClaimsLine(stats.heldClaims, now) };
}

/**
 * An invite as machines read it (`invite list --json`, the HTTP API): these fields and never a
 * token or hash.
 */
/**
 * The `--json` fields, and `rooms` (each room's JID, name and answer, and the JID made a member)
 * when the invite names rooms: `invite list --json` and the API.
 */
export function roomsJson<T extends object>(j: T, rooms: readonly RoomInvitation[]): T & { rooms?: { room: string; name: string | null; state: string; member: string | null }[] } {
  return rooms.length ? { ...j, rooms: rooms.map((r) => ({ room: r.room, name: r.roomName, state: r.state, member: r.memberJid })) } : j;
}

export function inviteJson(invite: Invite, now: number) {
  return {
    id: invite.id,
    kind: invite.kind,
    state: shownState(invite, now),
    delivery: delivery(invite),
    inviter: invite.inviter,
    invitee_email: invite.inviteeEmail,
    invitee_jid: invite.inviteeJid,
    created: new Date(invite.createdAt).toISOString(),
    expires: new Date(invite.expiresAt).toISOString(),
    uses: invite.uses,
    max_uses: invite.maxUses,
  };
}
