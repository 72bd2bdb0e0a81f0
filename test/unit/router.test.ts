/**
 * The router works out who is asking once per stanza (src/xmpp/requester.ts) and hands it to every
 * handler of that stanza in its context.
 */
import pino from 'pino';
import { Router, type StanzaContext } from '../../src/xmpp/router';
import { xml, type Element } from '../../src/xmpp/xml';

function router() {
  const sent: Element[] = [];
  const seen: StanzaContext[] = [];
  const r = new Router({ send: async (el) => void sent.push(el), logger: pino({ level: 'silent' }), host: 'localhost', admins: ['admin@localhost'] });
  r.iq('get', 'query', 'urn:test', (ctx) => (seen.push(ctx), true));
  // Two presence handlers: the first passes the stanza on to the second.
  r.presence((ctx) => (seen.push(ctx), false));
  r.presence((ctx) => (seen.push(ctx), true));
  const iq = (from: string) => r.handle(xml('iq', { type: 'get', id: 'q', from, to: 'invites.localhost' }, xml('query', { xmlns: 'urn:test' })));
  return { r, sent, seen, iq };
}

describe('the requester of a stanza', () => {
  it.each([
    ['alice@localhost/phone', { bare: 'alice@localhost', isLocal: true, isAdmin: false }],
    ['Admin@LocalHost/laptop', { bare: 'admin@localhost', isLocal: true, isAdmin: true }],
    ['admin@elsewhere.example/x', { bare: 'admin@elsewhere.example', isLocal: false, isAdmin: false }],
    ['localhost', { bare: 'localhost', isLocal: false, isAdmin: false }],
    ['anon123@anon.localhost/r', { bare: 'anon123@anon.localhost', isLocal: false, isAdmin: false }],
    ['', { bare: '', isLocal: false, isAdmin: false }],
  ])('from %j is %j', async (from, expected) => {
    const { seen, iq } = router();
    await iq(from);
    expect(seen[0].requester).toEqual({ full: from, ...expected });
    expect(seen[0].from).toBe(from);
  });

  it('is worked out once and shared by every handler of the stanza', async () => {
    const { r, seen } = router();
    await r.handle(xml('presence', { from: 'alice@localhost/phone', to: 'invites.localhost' }));
    expect(seen).toHaveLength(2);
    expect(seen[1].requester).toBe(seen[0].requester);
    expect(seen[0].requester).toMatchObject({ bare: 'alice@localhost', isLocal: true });
  });
});
