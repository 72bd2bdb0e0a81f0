/**
 * Answering room invitations (contract, "Rooms"): the invitee answers each (invite, room) on its own
 * (accept, decline, later) with one note back to the inviters, in one command or on one page.
 *
 * An accept is recorded first (`accepting`, in one transaction with the other answers), then the
 * component makes the member over XMPP: a definite answer of the MUC service settles it
 * (`accepted`: the inviter and the room's owners and admins are told, and the invitee gets a
 * XEP-0249 invitation so that the client offers to join; `failed`: the inviter is told, the invitee
 * sees the service's error). An unclear one (no answer in time, link lost) leaves it `accepting`,
 * and `retryAccepting` (a periodic job, and after every registration) tries again: making a member
 * twice changes nothing.
 *
 * References: https://xmpp.org/extensions/xep-0045.html §9.3, https://xmpp.org/extensions/xep-0249.html
 */
import { InviteError, isInviteError } from '../errors';
import type { InviteService } from './invites';
import type { RoomsPort } from './rooms';
import { roomLabel, type Invite, type RoomInvitation } from './types';

export type RoomChoice = 'accept' | 'decline' | 'later';
export const ROOM_CHOICES: readonly RoomChoice[] = ['accept', 'decline', 'later'];

/** What became of one answer. */
export type RoomOutcome =
  | { kind: 'accepted' }
  | { kind: 'declined' }
  | { kind: 'later' }
  /** the service refused the membership: `reason` is its error */
  | { kind: 'failed'; reason: string }
  /** the service did not answer yet: it is tried again */
  | { kind: 'pending'; reason: string }
  /** the answer was not taken (no longer open, not theirs) */
  | { kind: 'refused'; reason: string };

export interface RoomAnswer {
  inviteId: string;
  room: string;
  choice: RoomChoice;
}

export interface AnsweredRoom extends RoomAnswer {
  roomName: string | null;
  inviter: string | null;
  outcome: RoomOutcome;
}

/** Who answers: the invitee as the invitations name them, and the JID made a member. */
export interface Answerer {
  /** the invitations' invitee_key (a bare JID, or an e-mail key on the landing page of an e-mail invite) */
  inviteeKey: string;
  /** the bare JID of the account that becomes a member */
  memberJid: string;
  /** the door, when it is the web console (recorded with a decline, as for invites' events) */
  via?: 'web';
}

export interface RoomAnswersDeps {
  invites: InviteService;
  /** the MUC service (absent: memberships cannot be made, and accepts stay pending) */
  rooms: RoomsPort | undefined;
  /** what went wrong talking to the service, for the log */
  warn?: (msg: string, detail: Record<string, unknown>) => void;
}

export class RoomAnswers {
  readonly #invites: InviteService;
  readonly #rooms: RoomsPort | undefined;
  readonly #warn: NonNullable<RoomAnswersDeps['warn']>;
  /** memberships being made by this process, so that the retry job does not run one twice at once */
  readonly #inFlight = new Set<string>();

  constructor(deps: RoomAnswersDeps) {
    this.#invites = deps.invites;
    this.#rooms = deps.rooms;
    this.#warn = deps.warn ?? (() => undefined);
  }

  /** Every open room invitation to this invitee, from every inviter, oldest first. */
  openFor(inviteeKey: string): { row: RoomInvitation; invite: Invite }[] {
    return this.#invites.openRoomInvitations(inviteeKey);
  }

  /**
   * Records every answer (declines tell their inviters with `note`), then makes the member of each
   * accepted room. One refused answer (no longer open) does not stop the others.
   */
  async answer(by: Answerer, answers: readonly RoomAnswer[], note: string | null): Promise<AnsweredRoom[]> {
    const out: AnsweredRoom[] = [];
    const toGrant: { index: number; row: RoomInvitation }[] = [];
    for (const a of answers) {
      const row = this.#invites.roomsOf(a.inviteId).find((r) => r.room === a.room);
      const invite = this.#invites.get(a.inviteId);
      const base = { ...a, roomName: row?.roomName ?? null, inviter: invite?.inviter ?? null };
      if (a.choice === 'later') {
        out.push({ ...base, outcome: { kind: 'later' } });
        continue;
      }
      try {
        const answered = this.#invites.answerRoom(a.inviteId, a.room, a.choice, by, a.choice === 'decline' ? note : null);
        if (a.choice === 'decline') out.push({ ...base, outcome: { kind: 'declined' } });
        else {
          toGrant.push({ index: out.length, row: answered });
          out.push({ ...base, outcome: { kind: 'pending', reason: 'being made a member' } });
        }
      } catch (err) {
        if (!isInviteError(err)) throw err;
        out.push({ ...base, outcome: { kind: 'refused', reason: err.message } });
      }
    }
    for (const { index, row } of toGrant) out[index] = { ...out[index], outcome: await this.grant(row) };
    return out;
  }

  /**
   * Makes the member of an `accepting` invitation, settles it and sends the XEP-0249 invitation.
   * Contract: "member (unless it already has an affiliation at least as high)" (RoomsPort.makeMember).
   */
  async grant(row: RoomInvitation): Promise<RoomOutcome> {
    const key = `${row.inviteId}/${row.room}`;
    if (!row.memberJid) return { kind: 'refused', reason: 'nobody to make a member' };
    if (!this.#rooms) return { kind: 'pending', reason: 'room invitations are off (rooms.service is not set)' };
    if (this.#inFlight.has(key)) return { kind: 'pending', reason: 'being made a member' };
    this.#inFlight.add(key);
    try {
      const made = await this.#rooms.makeMember(row.room, row.memberJid);
      if (!made.ok) {
        if (made.error.kind === 'unclear') {
          this.#warn('the MUC service did not answer; the membership is tried again', { room: row.room, jid: row.memberJid, reason: made.error.reason });
          return { kind: 'pending', reason: made.error.reason };
        }
        const reason = made.error.kind === 'forbidden' ? `the service refused it (${made.error.reason}): the component is not an admin of ${this.#rooms.service}` : made.error.reason;
        this.#invites.settleRoom(row.inviteId, row.room, { ok: false, reason });
        return { kind: 'failed', reason };
      }
      const managers = await this.#rooms.managers(row.room);
      const everyone = managers.ok ? [...managers.value.owners, ...managers.value.admins] : [];
      if (this.#invites.settleRoom(row.inviteId, row.room, { ok: true, managers: everyone })) {
        const inviter = this.#invites.get(row.inviteId)?.inviter;
        // XEP-0249 §2: "the inviting entity ... sends a message stanza ... to the invitee's bare JID"
        const sent = await this.#rooms.sendInvitation(row.room, row.memberJid, `${inviter ? `${inviter} invited you to` : 'You are now a member of'} ${roomLabel(row)}`);
        if (!sent.ok) this.#warn('could not send the direct invitation', { room: row.room, jid: row.memberJid, reason: sent.error.reason });
      }
      return { kind: 'accepted' };
    } finally {
      this.#inFlight.delete(key);
    }
  }

  /** Makes the members of every invitation accepted before `olderThanMs` ago and not settled yet. */
  async retryAccepting(olderThanMs = 0): Promise<number> {
    const due = this.#invites.acceptingRooms(this.#invites.now() - olderThanMs + 1);
    let settled = 0;
    for (const row of due) {
      const outcome = await this.grant(row);
      if (outcome.kind === 'accepted' || outcome.kind === 'failed') settled++;
    }
    return settled;
  }
}

/** Reads a `var` of the respond form: `ID/ROOMJID`. */
export function parsePairVar(v: string): { inviteId: string; room: string } | undefined {
  const slash = v.indexOf('/');
  if (slash <= 0 || slash === v.length - 1) return undefined;
  return { inviteId: v.slice(0, slash), room: v.slice(slash + 1) };
}

/** What a web form's answers came to: the answers, or why none is taken. */
export type FormAnswers =
  | { ok: true; answers: RoomAnswer[] }
  | { ok: false; why: 'not-offered'; key: string }
  | { ok: false; why: 'bad-choice'; key: string; value: string }
  | { ok: false; why: 'none' };

/**
 * Reads the answers of a web form (fields `room-ID/ROOMJID`, values accept, decline, later), for the
 * landing page and the console alike. Only the invitations the page listed (`offered`, `ID/ROOMJID`)
 * are taken: one that is not (someone else's, answered, unknown) or a value that is no answer
 * refuses the whole form, so that nothing is half answered.
 */
export function formAnswers(fields: Iterable<[string, string]>, offered: ReadonlySet<string>): FormAnswers {
  const answers: RoomAnswer[] = [];
  for (const [name, value] of fields) {
    if (!name.startsWith('room-')) continue;
    const key = name.slice('room-'.length);
    const pair = parsePairVar(key);
    if (!pair || !offered.has(key)) return { ok: false, why: 'not-offered', key };
    if (!(ROOM_CHOICES as readonly string[]).includes(value)) return { ok: false, why: 'bad-choice', key, value };
    answers.push({ ...pair, choice: value as RoomChoice });
  }
  return answers.length === 0 ? { ok: false, why: 'none' } : { ok: true, answers };
}

export function assertChoice(value: string, what: string): RoomChoice {
  if ((ROOM_CHOICES as readonly string[]).includes(value)) return value as RoomChoice;
  throw new InviteError('invalid-input', `${what}: "${value}" is not one of accept, decline, later`);
}
