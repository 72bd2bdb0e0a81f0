/**
 * Rooms of the server's MUC service (contract, "Rooms"): what the service asks of it (a port the
 * XMPP adapter implements, src/xmpp/rooms.ts) and the rules that need no I/O: who may invite to a
 * room, and which affiliation already includes membership.
 *
 * References: https://xmpp.org/extensions/xep-0045.html §5.2 (affiliations), §9.3 (granting
 * membership), §10.5 (owner list), §9.8 (admin list); https://xmpp.org/extensions/xep-0249.html
 */

/** XEP-0045 §5.2, highest first. */
export const AFFILIATIONS = ['owner', 'admin', 'member', 'none', 'outcast'] as const;
export type Affiliation = (typeof AFFILIATIONS)[number];

/** A room of the service, as its disco#items lists it. */
export interface RoomInfo {
  /** bare room JID, lower-cased */
  jid: string;
  /** the name the service gives it (the localpart when it gives none) */
  name: string;
}

/** Those who may manage a room (bare JIDs, lower-cased). */
export interface RoomManagers {
  owners: string[];
  admins: string[];
}

/**
 * Why a request to the MUC service did not do what was asked: `item-not-found` (no such room),
 * `forbidden` (the component lacks the rights: see roomRightsAdvice), `refused` (another definite
 * error from the service), `unclear` (no answer in time, or the link was lost: it may have
 * happened; ask again).
 */
export type RoomErrorKind = 'item-not-found' | 'forbidden' | 'refused' | 'unclear';

export interface RoomError {
  kind: RoomErrorKind;
  /** the server's condition and text, or what went wrong; for logs and for the invitee */
  reason: string;
}

/** Expected failures are values, not throws. */
export type RoomResult<T> = { ok: true; value: T } | { ok: false; error: RoomError };

/** What makeMember did: `made` a member, or nothing because the JID `already` had `affiliation`. */
export type MemberOutcome = { kind: 'made' } | { kind: 'already'; affiliation: 'owner' | 'admin' | 'member' };

/**
 * The component's rights on the service, checked at connect: `ok`; `missing` (the service refused
 * it an admin query: log roomRightsAdvice); `unknown` (no room to try it on, or no clear answer).
 */
export type RightsCheck = { kind: 'ok'; room: string } | { kind: 'missing'; room: string; reason: string } | { kind: 'unknown'; reason: string };

/** The MUC service as the rest of the code sees it. */
export interface RoomsPort {
  /** the service's JID (`rooms.service`) */
  readonly service: string;
  /** the rooms the service lists */
  listRooms(): Promise<RoomResult<RoomInfo[]>>;
  /** the room's owners and admins */
  managers(room: string): Promise<RoomResult<RoomManagers>>;
  /** the affiliation of a bare JID in a room */
  affiliation(room: string, bare: string): Promise<RoomResult<Affiliation>>;
  /** may `bare` invite people to `room`? */
  mayInvite(room: string, bare: string, opts: { siteAdmin: boolean }): Promise<RoomResult<boolean>>;
  /** makes `bare` a member of `room`, unless it already has an affiliation at least as high */
  makeMember(room: string, bare: string): Promise<RoomResult<MemberOutcome>>;
  /** sends `bare` a XEP-0249 direct invitation to `room` */
  sendInvitation(room: string, bare: string, reason?: string): Promise<RoomResult<void>>;
  /** does the component have the admin rights it needs on the service? */
  checkRights(): Promise<RightsCheck>;
}

/** Is `a` at least as high as `b` (owner > admin > member > none > outcast)? */
export function atLeast(a: Affiliation, b: Affiliation): boolean {
  return AFFILIATIONS.indexOf(a) <= AFFILIATIONS.indexOf(b);
}

/**
 * Contract, "Who may invite to a room": the room's owners and admins as the service reports them,
 * and the site's admins for every room of the service.
 */
export function mayInviteTo(bare: string, managers: RoomManagers, siteAdmin: boolean): boolean {
  if (siteAdmin) return true;
  const who = bare.toLowerCase();
  return managers.owners.includes(who) || managers.admins.includes(who);
}

/**
 * What the operator must add so that the component may read affiliations and make members, for
 * both servers (the component cannot tell which one it talks to): logged when checkRights says
 * `missing`.
 */
export function roomRightsAdvice(component: string, service: string, reason: string): string {
  return (
    `the component ${component} is not an admin of the MUC service ${service} (${reason}), so it can neither read ` +
    `room affiliations nor make members. Prosody: in the section Component "${service}" "muc", add ` +
    `admins = { "${component}" } (Prosody 13: and component_admins_as_room_owners = true). ejabberd: an ACL acl: muc_admin: server: ${component}, and under ` +
    `modules: mod_muc: access_admin: - allow: muc_admin`
  );
}

/** The rooms of the service `bare` may invite people to (for the form's options), by name. */
export async function invitableRooms(rooms: RoomsPort, bare: string, siteAdmin: boolean): Promise<RoomResult<RoomInfo[]>> {
  const listed = await rooms.listRooms();
  if (!listed.ok) return listed;
  const checks = await Promise.all(listed.value.map((r) => rooms.mayInvite(r.jid, bare, { siteAdmin })));
  const failed = checks.find((c) => !c.ok);
  if (failed && !failed.ok && failed.error.kind === 'forbidden') return failed;
  return { ok: true, value: listed.value.filter((_, i) => { const c = checks[i]; return c.ok && c.value; }).sort((a, b) => a.name.localeCompare(b.name)) };
}

/**
 * Contract, "Who may invite to a room": each room asked for is checked with the service, also
 * those the form did not list. `forbidden` names the rooms `bare` may not invite to (and those the
 * service does not know), `unclear` those it could not answer for.
 */
export async function authoriseRooms(
  rooms: RoomsPort,
  bare: string,
  siteAdmin: boolean,
  asked: readonly string[],
  known: readonly RoomInfo[] = [],
): Promise<{ allowed: RoomInfo[]; forbidden: { room: string; reason: string }[]; unclear: { room: string; reason: string }[] }> {
  const allowed: RoomInfo[] = [];
  const forbidden: { room: string; reason: string }[] = [];
  const unclear: { room: string; reason: string }[] = [];
  const answers = await Promise.all(asked.map((room) => rooms.mayInvite(room, bare, { siteAdmin })));
  asked.forEach((room, i) => {
    const a = answers[i];
    const jid = room.toLowerCase();
    if (a.ok && a.value) allowed.push(known.find((k) => k.jid === jid) ?? { jid, name: jid.slice(0, jid.indexOf('@')) });
    else if (a.ok) forbidden.push({ room, reason: `you are not an owner or admin of ${room}` });
    else if (a.error.kind === 'item-not-found') forbidden.push({ room, reason: `${room} is not a room of ${rooms.service}` });
    else unclear.push({ room, reason: a.error.reason });
  });
  return { allowed, forbidden, unclear };
}
