/**
 * RoomAnswers: an accept is recorded, then the membership is made; an unclear answer of the MUC
 * service leaves it `accepting` and the retry settles it; a refusal is `failed` with the service's
 * error. The MUC service here is an in-memory RoomsPort that answers as told (the real one is
 * tested against Prosody and ejabberd in test/integration/rooms-*.test.ts).
 */
import { InviteService } from '../../src/domain/invites';
import type { Notice } from '../../src/domain/notices';
import { formAnswers, RoomAnswers } from '../../src/domain/room-answers';
import type { MemberOutcome, RoomResult, RoomsPort } from '../../src/domain/rooms';
import { openDatabase } from '../../src/store/database';
import { SqliteInviteStore } from '../../src/store/invites-repo';
import { SqliteRoomInvitations } from '../../src/store/room-invitations-repo';
import { renderNotice } from '../../src/outbox/render';
import { renderEmail } from '../../src/mail/render-email';

const MUC = 'conference.example.com';
const TEAM = `team@${MUC}`;
const DAY = 86_400_000;

class ScriptedRooms implements RoomsPort {
  readonly service = MUC;
  next: RoomResult<MemberOutcome>[] = [];
  readonly members: string[] = [];
  readonly invitations: string[] = [];
  listRooms = async () => ({ ok: true as const, value: [{ jid: TEAM, name: 'The Team' }] });
  managers = async () => ({ ok: true as const, value: { owners: ['alice@example.com'], admins: ['dave@example.com'] } });
  affiliation = async () => ({ ok: true as const, value: 'none' as const });
  mayInvite = async () => ({ ok: true as const, value: true });
  async makeMember(room: string, bare: string): Promise<RoomResult<MemberOutcome>> {
    const answer = this.next.shift() ?? { ok: true, value: { kind: 'made' } };
    if (answer.ok) this.members.push(`${bare} in ${room}`);
    return answer;
  }
  async sendInvitation(room: string, bare: string): Promise<RoomResult<void>> {
    this.invitations.push(`${bare} to ${room}`);
    return { ok: true, value: undefined };
  }
  checkRights = async () => ({ kind: 'ok' as const, room: TEAM });
}

function setup() {
  const db = openDatabase(':memory:');
  const notices: Notice[] = [];
  let now = Date.UTC(2026, 10, 21, 12);
  const invites = new InviteService({
    store: new SqliteInviteStore(db),
    policy: { host: 'example.com', publicUrl: 'https://i.example.com', serverBridge: false, expiry: 7 * DAY, approval: 'non-admins', allowUserInvites: true, maxUses: 1, admins: [], roomsService: MUC },
    tokenKey: 'k'.repeat(40),
    clock: () => now,
    notices: { enqueue: (n) => notices.push(n) },
    rooms: new SqliteRoomInvitations(db),
  });
  const rooms = new ScriptedRooms();
  const answers = new RoomAnswers({ invites, rooms });
  const { invite } = invites.create({ kind: 'user', jid: 'alice@example.com', isAdmin: false }, { kind: 'room', source: 'invite-to-rooms', jid: 'carol@example.com', rooms: [{ jid: TEAM, name: 'The Team' }], note: 'Welcome' });
  const carol = { inviteeKey: 'carol@example.com', memberJid: 'carol@example.com' };
  return { invites, rooms, answers, notices, invite, carol, advance: (ms: number) => (now += ms) };
}

it('makes the member, tells the inviter and the other managers, and sends the direct invitation', async () => {
  const { invites, rooms, answers, notices, invite, carol } = setup();
  const [a] = await answers.answer(carol, [{ inviteId: invite.id, room: TEAM, choice: 'accept' }], null);
  expect(a.outcome).toEqual({ kind: 'accepted' });
  expect(rooms.members).toEqual([`carol@example.com in ${TEAM}`]);
  expect(rooms.invitations).toEqual([`carol@example.com to ${TEAM}`]);
  expect(invites.roomsOf(invite.id)[0].state).toBe('accepted');
  expect(notices.filter((n) => n.kind.startsWith('room-')).map((n) => [n.kind, n.recipient])).toEqual([
    ['room-accepted', 'alice@example.com'],
    ['room-joined', 'dave@example.com'],
  ]);
});

it('keeps an accept whose membership got no answer, and settles it on the retry', async () => {
  const { invites, rooms, answers, invite, carol, advance } = setup();
  rooms.next.push({ ok: false, error: { kind: 'unclear', reason: 'no answer within 10 s' } });
  const [a] = await answers.answer(carol, [{ inviteId: invite.id, room: TEAM, choice: 'accept' }], null);
  expect(a.outcome).toEqual({ kind: 'pending', reason: 'no answer within 10 s' });
  expect(invites.roomsOf(invite.id)[0].state).toBe('accepting');
  // too young for the job's run
  expect(await answers.retryAccepting(30_000)).toBe(0);
  advance(31_000);
  expect(await answers.retryAccepting(30_000)).toBe(1);
  expect(invites.roomsOf(invite.id)[0].state).toBe('accepted');
  expect(await answers.retryAccepting(0)).toBe(0);
});

it('records failed with the service’s error and tells the inviter', async () => {
  const { invites, rooms, answers, notices, invite, carol } = setup();
  rooms.next.push({ ok: false, error: { kind: 'item-not-found', reason: 'item-not-found: no such room' } });
  const [a] = await answers.answer(carol, [{ inviteId: invite.id, room: TEAM, choice: 'accept' }], null);
  expect(a.outcome).toEqual({ kind: 'failed', reason: 'item-not-found: no such room' });
  expect(invites.roomsOf(invite.id)[0]).toMatchObject({ state: 'failed', reason: 'item-not-found: no such room' });
  expect(notices.find((n) => n.kind === 'room-failed')).toMatchObject({ recipient: 'alice@example.com', params: { reason: 'item-not-found: no such room' } });
  expect(rooms.invitations).toEqual([]);
});

it('leaves a later alone and refuses an answer to an invitation that is not open', async () => {
  const { invites, answers, invite, carol } = setup();
  expect((await answers.answer(carol, [{ inviteId: invite.id, room: TEAM, choice: 'later' }], null))[0].outcome).toEqual({ kind: 'later' });
  expect(invites.roomsOf(invite.id)[0].state).toBe('open');
  await answers.answer(carol, [{ inviteId: invite.id, room: TEAM, choice: 'decline' }], 'no thanks');
  const [again] = await answers.answer(carol, [{ inviteId: invite.id, room: TEAM, choice: 'accept' }], null);
  expect(again.outcome).toMatchObject({ kind: 'refused' });
});

it('renders the invitation with its rooms, and the room notices', () => {
  const { invites, notices, invite } = setup();
  const ctx = { siteName: 'Example Chat', component: 'invites.example.com', host: 'example.com', invites, now: () => invites.now() };
  const invitation = notices.find((n) => n.kind === 'invitation')!;
  const text = renderNotice('invitation', [invite], invitation.params ?? {}, ctx)!.text;
  expect(text).toContain('alice@example.com invites you to a room on Example Chat:\n• The Team (team@conference.example.com)\n“Welcome”');
  expect(text).toContain('Or run the command “Answer room invitations” on invites.example.com.');
  const params = { room: TEAM, roomName: 'The Team', jid: 'carol@example.com', inviter: 'alice@example.com', reason: 'Too busy' };
  expect(renderNotice('room-declined', [invite], params, ctx)!.text).toBe('carol@example.com declined your invitation to The Team (team@conference.example.com): “Too busy”');
  expect(renderNotice('room-joined', [invite], params, ctx)!.text).toBe('carol@example.com is now a member of The Team (team@conference.example.com), invited by alice@example.com.');
  expect(renderNotice('room-failed', [invite], { ...params, reason: 'forbidden' }, ctx)!.text).toContain('refused the membership: forbidden.');
});

it('e-mails the rooms that go with an account invite', () => {
  const { invites } = setup();
  const { invite } = invites.create({ kind: 'operator' }, { kind: 'account', source: 'cli', email: 'new@example.org', rooms: [{ jid: TEAM, name: 'The <Team>' }] });
  const mail = renderEmail('invitation', [invite], {}, { siteName: 'Example Chat', invites, now: () => invites.now() }, { subject: '', text: '' })!;
  expect(mail.text).toContain('With your account you are invited to these rooms (you choose which to join when you create it):\n\n• The <Team> (team@conference.example.com)');
  expect(mail.html).toContain('<li>The &lt;Team&gt; (team@conference.example.com)</li>');
});

describe('answers read from a web form', () => {
  const offered = new Set(['abcdefghij/team@conference.example.com', 'abcdefghij/garden@conference.example.com']);
  it('takes the listed invitations with accept, decline or later, and ignores other fields', () => {
    const form = new URLSearchParams({ csrf: 'x', note: 'hi', 'room-abcdefghij/team@conference.example.com': 'accept', 'room-abcdefghij/garden@conference.example.com': 'later' });
    expect(formAnswers(form, offered)).toEqual({
      ok: true,
      answers: [
        { inviteId: 'abcdefghij', room: 'team@conference.example.com', choice: 'accept' },
        { inviteId: 'abcdefghij', room: 'garden@conference.example.com', choice: 'later' },
      ],
    });
  });

  it('refuses the whole form for an invitation not listed, a value that is no answer, or no answer at all', () => {
    const listed = 'room-abcdefghij/team@conference.example.com';
    expect(formAnswers(new URLSearchParams([[listed, 'accept'], ['room-zzzzzzzzzz/team@conference.example.com', 'decline']]), offered)).toEqual({ ok: false, why: 'not-offered', key: 'zzzzzzzzzz/team@conference.example.com' });
    expect(formAnswers(new URLSearchParams([['room-nonsense', 'accept']]), offered)).toEqual({ ok: false, why: 'not-offered', key: 'nonsense' });
    expect(formAnswers(new URLSearchParams([[listed, 'maybe']]), offered)).toEqual({ ok: false, why: 'bad-choice', key: 'abcdefghij/team@conference.example.com', value: 'maybe' });
    expect(formAnswers(new URLSearchParams({ note: 'hello' }), offered)).toEqual({ ok: false, why: 'none' });
  });
});
