/** A real client's side of XEP-0045 for integration tests: join, create and configure rooms, grant affiliations. */
import { TestClient, xml, type XmlElement } from './client';

export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
export const NS_MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
export const NS_MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';

/** Joins `room` as `nick`; resolves with the room's answer to the join (own presence or error). */
export async function join(client: TestClient, room: string, nick: string): Promise<XmlElement> {
  const full = `${room}/${nick}`;
  await client.send(xml('presence', { to: full }, xml('x', { xmlns: NS_MUC })));
  return client.waitFor((s) => s.name === 'presence' && s.attrs.from === full);
}

/** Creates a members-only, persistent, public room named `name` with `owner` in it, and unlocks it. */
export async function createRoom(owner: TestClient, room: string, name: string): Promise<void> {
  const joined = await join(owner, room, 'owner');
  const status = joined.getChild('x', NS_MUC_USER)?.getChildren('status').map((s) => s.attrs.code);
  if (!status?.includes('201')) throw new Error(`${room} already existed: ${joined.toString()}`);
  const field = (v: string, value: string) => xml('field', { var: v }, xml('value', {}, value));
  const reply = await owner.iq(
    xml(
      'iq',
      { type: 'set', to: room },
      xml(
        'query',
        { xmlns: NS_MUC_OWNER },
        xml(
          'x',
          { xmlns: 'jabber:x:data', type: 'submit' },
          field('FORM_TYPE', 'http://jabber.org/protocol/muc#roomconfig'),
          field('muc#roomconfig_roomname', name),
          field('muc#roomconfig_membersonly', '1'),
          field('muc#roomconfig_persistentroom', '1'),
          field('muc#roomconfig_publicroom', '1'),
        ),
      ),
    ),
  );
  if (reply.attrs.type !== 'result') throw new Error(`could not configure ${room}: ${reply.toString()}`);
}

export async function grant(owner: TestClient, room: string, jid: string, affiliation: string): Promise<void> {
  const reply = await owner.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: NS_MUC_ADMIN }, xml('item', { jid, affiliation }))));
  if (reply.attrs.type !== 'result') throw new Error(`could not make ${jid} ${affiliation} of ${room}: ${reply.toString()}`);
}
