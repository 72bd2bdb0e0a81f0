/** The rooms rules (domain) and the MUC adapter's stanzas and error mapping, against a fake service. */
import { atLeast, mayInviteTo, roomRightsAdvice } from '../../src/domain/rooms';
import { NotConnectedError, RequestTimeoutError, StanzaError, StanzaRejectedError } from '../../src/xmpp/connection';
import { directInvitation, MucRooms } from '../../src/xmpp/rooms';
import { xml, type Element } from '../../src/xmpp/xml';

const SERVICE = 'conference.example.com';
const ROOM = `team@${SERVICE}`;
const NS_ADMIN = 'http://jabber.org/protocol/muc#admin';

/** A fake MUC service: answers each IQ with `answer`, records what was asked and sent. */
function fake(answer: (iq: Element) => Element | Error) {
  const asked: Element[] = [];
  const sent: Element[] = [];
  const rooms = new MucRooms({
    service: SERVICE,
    component: 'invites.example.com',
    request: async (iq) => {
      asked.push(iq);
      const a = answer(iq);
      if (a instanceof Error) throw a;
      return a;
    },
    send: async (el) => {
      sent.push(el);
    },
  });
  return { rooms, asked, sent };
}

/** An affiliation list answer: `lists[affiliation]` holds the JIDs. */
function lists(byAffiliation: Record<string, string[]>) {
  return (iq: Element): Element => {
    const affiliation = iq.getChild('query', NS_ADMIN)!.getChild('item')!.attrs.affiliation as string;
    if (iq.attrs.type === 'set') return xml('iq', { type: 'result', from: iq.attrs.to, id: 'x' });
    const items = (byAffiliation[affiliation] ?? []).map((jid) => xml('item', { affiliation, jid }));
    return xml('iq', { type: 'result', from: iq.attrs.to, id: 'x' }, xml('query', { xmlns: NS_ADMIN }, ...items));
  };
}

describe('rules', () => {
  it('ranks affiliations owner > admin > member > none > outcast', () => {
    expect(atLeast('owner', 'member')).toBe(true);
    expect(atLeast('admin', 'member')).toBe(true);
    expect(atLeast('member', 'member')).toBe(true);
    expect(atLeast('none', 'member')).toBe(false);
    expect(atLeast('outcast', 'member')).toBe(false);
  });

  it("lets a room's owners and admins invite, and a site admin to any room", () => {
    const managers = { owners: ['alice@example.com'], admins: ['bob@example.com'] };
    expect(mayInviteTo('Alice@example.com', managers, false)).toBe(true);
    expect(mayInviteTo('bob@example.com', managers, false)).toBe(true);
    expect(mayInviteTo('carol@example.com', managers, false)).toBe(false);
    expect(mayInviteTo('carol@example.com', managers, true)).toBe(true);
  });

  it('names the Prosody and the ejabberd setting to add', () => {
    const advice = roomRightsAdvice('invites.example.com', SERVICE, 'forbidden');
    expect(advice).toContain('Component "conference.example.com" "muc", add admins = { "invites.example.com" }');
    expect(advice).toContain('acl: muc_admin: server: invites.example.com');
    expect(advice).toContain('mod_muc: access_admin: - allow: muc_admin');
  });
});

describe('stanzas', () => {
  it('builds a XEP-0249 direct invitation, the reason cleaned of control characters', () => {
    expect(directInvitation('invites.example.com', 'dave@example.com', ROOM, ' Come\u0000 in\u001b ').toString()).toBe(
      `<message from="invites.example.com" to="dave@example.com"><x xmlns="jabber:x:conference" jid="${ROOM}" reason="Come in"/></message>`,
    );
    expect(directInvitation('invites.example.com', 'dave@example.com', ROOM).toString()).toBe(
      `<message from="invites.example.com" to="dave@example.com"><x xmlns="jabber:x:conference" jid="${ROOM}"/></message>`,
    );
  });

  it('grants membership with one muc#admin set, after reading the lists', async () => {
    const { rooms, asked } = fake(lists({ owner: ['alice@example.com'] }));
    expect(await rooms.makeMember(ROOM, 'Dave@Example.com')).toEqual({ ok: true, value: { kind: 'made' } });
    const set = asked.filter((iq) => iq.attrs.type === 'set');
    expect(set.map((iq) => iq.toString())).toEqual([
      `<iq type="set" to="${ROOM}"><query xmlns="${NS_ADMIN}"><item affiliation="member" jid="dave@example.com"/></query></iq>`,
    ]);
  });

  it('lists rooms with their names, taking the title from disco#info when the list appends an occupant count', async () => {
    const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
    const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
    const { rooms } = fake((iq) => {
      if (iq.getChild('query', DISCO_ITEMS)) {
        return xml(
          'iq',
          { type: 'result' },
          xml(
            'query',
            { xmlns: DISCO_ITEMS },
            xml('item', { jid: ROOM, name: 'The Team (3)' }),
            xml('item', { jid: `garden@${SERVICE}` }),
            xml('item', { jid: `lost@${SERVICE}`, name: 'Lost (1)' }),
            xml('item', { jid: 'elsewhere@other.example', name: 'Not ours' }),
          ),
        );
      }
      if (iq.attrs.to === ROOM) return xml('iq', { type: 'result' }, xml('query', { xmlns: DISCO_INFO }, xml('identity', { category: 'conference', type: 'text', name: 'The Team' })));
      return new StanzaError('item-not-found', 'cancel');
    });
    expect(await rooms.listRooms()).toEqual({
      ok: true,
      value: [
        { jid: ROOM, name: 'The Team' },
        { jid: `garden@${SERVICE}`, name: 'garden' },
        { jid: `lost@${SERVICE}`, name: 'Lost (1)' },
      ],
    });
  });

  it('asks nothing of a JID outside the service', async () => {
    const { rooms, asked } = fake(lists({}));
    expect(await rooms.makeMember('team@elsewhere.example', 'dave@example.com')).toMatchObject({ ok: false, error: { kind: 'item-not-found' } });
    expect(await rooms.managers(`team@${SERVICE}/nick`)).toMatchObject({ ok: false, error: { kind: 'item-not-found' } });
    expect(await rooms.mayInvite('team@elsewhere.example', 'dave@example.com', { siteAdmin: true })).toEqual({ ok: true, value: false });
    expect(asked).toEqual([]);
  });
});

describe('errors become results', () => {
  it.each([
    [new StanzaError('item-not-found', 'cancel'), 'item-not-found'],
    [new StanzaError('forbidden', 'auth'), 'forbidden'],
    [new StanzaError('not-allowed', 'cancel'), 'forbidden'],
    [new StanzaError('service-unavailable', 'cancel'), 'refused'],
    [new RequestTimeoutError(ROOM, 10), 'unclear'],
    [new NotConnectedError('offline'), 'unclear'],
    [new StanzaRejectedError('too big'), 'refused'],
  ])('%s → %s', async (err, kind) => {
    const { rooms } = fake(() => err);
    expect(await rooms.managers(ROOM)).toMatchObject({ ok: false, error: { kind } });
  });

  it('throws what is not a failure of the service (a bug)', async () => {
    const { rooms } = fake(() => new TypeError('bug'));
    await expect(rooms.managers(ROOM)).rejects.toThrow('bug');
  });

  it('does not send the membership when the lists could not be read', async () => {
    const { rooms, asked } = fake(() => new RequestTimeoutError(ROOM, 10));
    expect(await rooms.makeMember(ROOM, 'dave@example.com')).toMatchObject({ ok: false, error: { kind: 'unclear' } });
    expect(asked.filter((iq) => iq.attrs.type === 'set')).toEqual([]);
  });

  it('reports the rights unknown when the service lists no room to try them on', async () => {
    const { rooms } = fake(() => xml('iq', { type: 'result' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    expect(await rooms.checkRights()).toMatchObject({ kind: 'unknown' });
  });
});
