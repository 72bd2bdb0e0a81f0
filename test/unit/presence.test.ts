/**
 * Invite requests carried in presence, below the XMPP stream: reading the element, the structural
 * checks, the canonical form and its hash, e-mail addresses, the once-per-sender rule against a
 * real SQLite database, the acknowledgement's stanza, and the subscription state machine.
 */
import { parseEmailAddress } from '../../src/domain/email-address';
import { InviteService } from '../../src/domain/invites';
import { canonicalForm, checkRequest, InviteRequests, requestKey, type InviteRequest } from '../../src/domain/requests';
import { NO_SUBSCRIPTION, onInbound } from '../../src/domain/subscriptions';
import type { Actor } from '../../src/domain/types';
import { readInviteRequest } from '../../src/handlers/presence';
import { renderNotice } from '../../src/outbox/render';
import { outcomesOf } from '../../src/outbox/request-result';
import { invitePolicy } from '../../src/services';
import { type Db } from '../../src/store/database';
import { openTestStore } from '../support/engine';
import { SqliteInviteStore } from '../../src/store/invites-repo';
import { SqliteOutbox } from '../../src/store/outbox-repo';
import { SqliteRequestStore, SqliteSubscriptions } from '../../src/store/requests-repo';
import { presenceError, requestResultMessage } from '../../src/xmpp/builders';
import { errorElement } from '../../src/xmpp/stanza-errors';
import { xml, type Element } from '../../src/xmpp/xml';
import { testConfig } from '../support/fixtures';

const NS = 'urn:xmpp-invites:0';
const RULES = { maxInvitees: 3, maxMessageLength: 10 };

function request(...children: Element[]): Element {
  return xml('invite-request', { xmlns: NS }, ...children);
}

function check(el: Element) {
  return checkRequest(readInviteRequest(el), RULES);
}

describe('reading and checking <invite-request/>', () => {
  it('reads invitees with their attributes as sent, the message and the id', () => {
    const el = xml(
      'invite-request',
      { xmlns: NS, id: 'r1' },
      xml('invitee', { email: ' Bob@Example.org', name: 'Bob' }),
      xml('invitee', { jid: 'carol@elsewhere.net' }),
      xml('message', {}, 'Come!'),
    );
    expect(check(el)).toEqual({
      request: { id: 'r1', invitees: [{ email: ' Bob@Example.org', name: 'Bob' }, { jid: 'carol@elsewhere.net' }], message: 'Come!' },
    });
  });

  it('cleans the message and the names of control characters, keeping addresses as sent', () => {
    const el = xml(
      'invite-request',
      { xmlns: NS },
      xml('invitee', { email: 'bob@example.org', name: 'B\u0085ob\u009b' }),
      xml('message', {}, 'Co\u0085me\u007f!'),
    );
    expect(check(el)).toEqual({ request: { invitees: [{ email: 'bob@example.org', name: 'Bob' }], message: 'Come!' } });
  });

  it('treats an empty id as no id', () => {
    expect(readInviteRequest(xml('invite-request', { xmlns: NS, id: '' }, xml('invitee', { jid: 'a@b.org' }))).id).toBeUndefined();
  });

  it('refuses a request without invitees', () => {
    expect(check(request(xml('message', {}, 'hi')))).toEqual({ fault: 'An invite request names at least one invitee' });
  });

  it('refuses an unknown child element, also one of another namespace', () => {
    expect(check(request(xml('invitee', { jid: 'a@b.org' }), xml('reason', {}, 'x')))).toEqual({ fault: 'Unknown element <reason/> in the invite request' });
    expect(check(request(xml('invitee', { jid: 'a@b.org' }), xml('message', { xmlns: 'urn:other' }, 'x')))).toEqual({
      fault: 'Unknown element <message/> in the invite request',
    });
  });

  it('refuses an invitee with neither or both of email and jid', () => {
    expect(check(request(xml('invitee', { name: 'Nobody' })))).toEqual({ fault: 'Each invitee has either an email or a jid attribute' });
    expect(check(request(xml('invitee', { email: 'a@b.org', jid: 'a@b.org' })))).toEqual({ fault: 'Each invitee has either an email or a jid attribute' });
  });

  it('accepts presence.max_invitees invitees and refuses one more', () => {
    const invitees = (n: number) => Array.from({ length: n }, (_, i) => xml('invitee', { jid: `u${i}@b.org` }));
    expect('request' in check(request(...invitees(3)))).toBe(true);
    expect(check(request(...invitees(4)))).toEqual({ fault: 'An invite request names at most 3 invitees (this one names 4)' });
  });

  it('counts the message in characters, not bytes or UTF-16 units, and refuses a longer one', () => {
    expect('request' in check(request(xml('invitee', { jid: 'a@b.org' }), xml('message', {}, '😀'.repeat(10))))).toBe(true);
    expect(check(request(xml('invitee', { jid: 'a@b.org' }), xml('message', {}, 'x'.repeat(11))))).toEqual({
      fault: 'The message is longer than 10 characters',
    });
  });

  it('refuses two messages', () => {
    expect(check(request(xml('invitee', { jid: 'a@b.org' }), xml('message', {}, 'a'), xml('message', {}, 'b')))).toEqual({
      fault: 'An invite request carries at most one message',
    });
  });

  it('leaves bad addresses to the invitee’s status, not to the structure', () => {
    expect('request' in check(request(xml('invitee', { email: 'not an address' }), xml('invitee', { jid: '@@' })))).toBe(true);
  });
});

describe('the identity of a request', () => {
  const base: InviteRequest = {
    invitees: [{ email: 'bob@example.org', name: 'Bob' }, { jid: 'carol@elsewhere.net' }],
    message: 'Come and chat with us',
  };

  it('is the same hash whatever the order of the invitees and the white space around the message', () => {
    const reordered: InviteRequest = { invitees: [base.invitees[1], base.invitees[0]], message: '\n  Come and chat with us\n' };
    expect(canonicalForm(reordered)).toBe(canonicalForm(base));
    expect(requestKey(reordered)).toBe(requestKey(base));
    expect(requestKey(base)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('pins the canonical form', () => {
    expect(canonicalForm(base)).toBe('[["email","bob@example.org","Bob"],["jid","carol@elsewhere.net",null]]\n"Come and chat with us"');
    expect(canonicalForm({ invitees: [{ jid: 'a@b.org' }] })).toBe('[["jid","a@b.org",null]]\nnull');
  });

  it('changes with an invitee, a name, the message, or an address written differently', () => {
    const keys = [
      base,
      { ...base, message: 'Come and chat' },
      { ...base, message: undefined },
      { ...base, invitees: [base.invitees[0]] },
      { ...base, invitees: [{ email: 'bob@example.org' }, base.invitees[1]] },
      { ...base, invitees: [{ email: 'Bob@example.org', name: 'Bob' }, base.invitees[1]] },
      { ...base, invitees: [{ jid: 'bob@example.org', name: 'Bob' }, base.invitees[1]] },
    ].map(requestKey);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('is the client’s id when it sets one, whatever the content, and never collides with a hash', () => {
    expect(requestKey({ ...base, id: 'r1' })).toBe('id:r1');
    expect(requestKey({ invitees: [{ jid: 'x@y.org' }], id: 'r1' })).toBe('id:r1');
    const hash = requestKey(base);
    expect(requestKey({ ...base, id: hash })).toBe(`id:${hash}`);
    expect(requestKey({ ...base, id: 'x'.repeat(500) })).toMatch(/^id-sha256:[0-9a-f]{64}$/);
  });
});

describe('e-mail addresses', () => {
  it('accepts single addr-specs, without the spaces around them', () => {
    for (const a of ['bob@example.org', 'b.o.b+tag@mail.example.co.uk', "o'brien@example.ie", 'jürgen@bücher.de', 'x@xn--bcher-kva.de']) {
      expect(parseEmailAddress(a)).toBe(a);
    }
    expect(parseEmailAddress('  bob@example.org\t')).toBe('bob@example.org');
  });

  it('refuses display names, lists, line breaks, quoting, literals and half addresses', () => {
    for (const a of [
      'Bob <bob@example.org>',
      'bob@example.org, eve@example.org',
      'bob@example.org,eve@example.org',
      'bob@example.org\r\nBcc: eve@example.org',
      'bob@example.org\n',
      '"bob"@example.org',
      'bob@[192.0.2.1]',
      'bob@192.0.2.1',
      'bob@localhost',
      'bob',
      '@example.org',
      'bob@',
      'bob@@example.org',
      '.bob@example.org',
      'bo..b@example.org',
      'bob.@example.org',
      'bob@-example.org',
      'bob@example..org',
      'bo b@example.org',
      'bob(comment)@example.org',
      `${'b'.repeat(65)}@example.org`,
      `bob@${'a'.repeat(250)}.org`,
      '',
    ]) {
      expect([a, parseEmailAddress(a)]).toEqual([a, undefined]);
    }
  });
});

describe('processing a request once per sender', () => {
  const alice: Actor & { kind: 'user' } = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
  const admin: Actor & { kind: 'user' } = { kind: 'user', jid: 'admin@localhost', isAdmin: true };

  function setup(overrides: Record<string, unknown> = {}, store?: (db: Db) => SqliteRequestStore) {
    const config = testConfig(overrides);
    const db = openTestStore();
    const outbox = new SqliteOutbox(db);
    const invites = new InviteService({ store: new SqliteInviteStore(db), policy: invitePolicy(config), tokenKey: config.tokenKey, notices: outbox });
    const requests = new InviteRequests({
      store: store ? store(db) : new SqliteRequestStore(db),
      invites,
      notices: outbox,
      policy: { allowUserInvites: config.invites.allowUserInvites },
    });
    const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    const acks = () => outbox.list({ limit: 1000 }).filter((r) => r.kind === 'request-result');
    return { db, invites, requests, count, acks, outbox };
  }

  const two: InviteRequest = { invitees: [{ email: 'bob@example.org', name: 'Bob' }, { jid: 'carol@elsewhere.net' }], message: 'Come' };

  it('makes one invite per invitee and one acknowledgement to the full JID, and nothing on a replay', () => {
    const { requests, invites, count, acks } = setup();
    const first = requests.submit(alice, 'alice@localhost/phone', two);
    expect(first).toMatchObject({ replay: false, outcomes: [{ email: 'bob@example.org', status: 'pending' }, { jid: 'carol@elsewhere.net', status: 'pending' }] });
    const ids = first.replay ? [] : first.outcomes.map((o) => o.id!);
    expect(invites.get(ids[0])).toMatchObject({ inviter: 'alice@localhost', kind: 'contact-account', source: 'presence', inviteeEmail: 'bob@example.org', inviteeName: 'Bob', note: 'Come' });
    expect(invites.get(ids[1])).toMatchObject({ inviteeJid: 'carol@elsewhere.net', inviteeName: null, note: 'Come' });
    expect(acks()).toMatchObject([{ recipient: 'alice@localhost/phone', inviteIds: ids }]);

    for (let i = 0; i < 3; i++) expect(requests.submit(alice, 'alice@localhost/laptop', { ...two, invitees: [...two.invitees].reverse() })).toEqual({ replay: true });
    expect(count('invites')).toBe(2);
    expect(acks()).toHaveLength(1);
    expect(count('invite_requests')).toBe(1);
  });

  it('records what the acknowledgement said with the request', () => {
    const { requests, db } = setup();
    const r = requests.submit(alice, 'alice@localhost/a', { id: 'r1', invitees: [{ jid: 'carol@elsewhere.net' }] });
    const row = db.prepare('SELECT * FROM invite_requests').get() as { sender: string; request_key: string; result: string };
    expect(row).toMatchObject({ sender: 'alice@localhost', request_key: 'id:r1' });
    expect(JSON.parse(row.result)).toEqual(r.replay ? null : r.outcomes);
  });

  it('keeps the key per sender: the same request from another user is new', () => {
    const { requests, count } = setup();
    requests.submit(alice, 'alice@localhost/a', two);
    expect(requests.submit({ ...alice, jid: 'dave@localhost' }, 'dave@localhost/a', two).replay).toBe(false);
    expect(count('invites')).toBe(4);
  });

  it('opens an admin’s invites at once and queues the invitation to a JID invitee', () => {
    const { requests, outbox } = setup();
    const r = requests.submit(admin, 'admin@localhost/a', { invitees: [{ jid: 'carol@localhost' }] });
    expect(r).toMatchObject({ outcomes: [{ status: 'open' }] });
    expect(outbox.list().map((row) => [row.kind, row.recipient])).toEqual(
      expect.arrayContaining([['invitation', 'carol@localhost'], ['request-result', 'admin@localhost/a']]),
    );
  });

  it('refuses bad addresses, yourself and servers by invitee, and lets the others proceed', () => {
    const { requests, count } = setup();
    const r = requests.submit(alice, 'alice@localhost/a', {
      invitees: [{ email: 'Bob <bob@example.org>' }, { jid: 'not a jid@x' }, { jid: 'alice@localhost/other' }, { jid: 'example.org' }, { jid: 'carol@elsewhere.net' }],
    });
    expect(r).toEqual({
      replay: false,
      key: expect.any(String),
      outcomes: [
        { email: 'Bob <bob@example.org>', status: 'refused', reason: 'Not a valid e-mail address: give one address such as bob@example.org' },
        { jid: 'not a jid@x', status: 'refused', reason: 'Not a valid JID' },
        { jid: 'alice@localhost/other', status: 'refused', reason: 'You cannot invite yourself' },
        { jid: 'example.org', status: 'refused', reason: 'Not the address of a person: give a JID such as carol@example.org' },
        { jid: 'carol@elsewhere.net', status: 'pending', id: expect.any(String) },
      ],
    });
    expect(count('invites')).toBe(1);
  });

  it('answers duplicate with the existing invite, also within one request and across doors', () => {
    const { requests, invites } = setup();
    const existing = invites.create(alice, { kind: 'contact-account', source: 'command', email: 'BOB@Example.org' }).invite;
    const r = requests.submit(alice, 'alice@localhost/a', { invitees: [{ email: 'bob@example.org' }, { jid: 'carol@elsewhere.net' }, { jid: 'Carol@elsewhere.net' }] });
    expect(r.replay ? [] : r.outcomes).toEqual([
      { email: 'bob@example.org', status: 'duplicate', id: existing.id, state: 'pending' },
      { jid: 'carol@elsewhere.net', status: 'pending', id: expect.any(String) },
      { jid: 'Carol@elsewhere.net', status: 'duplicate', id: r.replay ? '' : r.outcomes[1].id, state: 'pending' },
    ]);
  });

  it('refuses an address that opted out, with a reason', () => {
    const { requests, invites } = setup();
    const { invite, links } = invites.create(admin, { kind: 'contact-account', source: 'command', email: 'bob@example.org' });
    invites.decline(links.token, null, true);
    expect(invites.get(invite.id)?.state).toBe('declined');
    const r = requests.submit(alice, 'alice@localhost/a', { invitees: [{ email: 'bob@example.org' }] });
    expect(r).toMatchObject({ outcomes: [{ status: 'refused', reason: 'bob@example.org asked not to be invited again' }] });
  });

  it('makes contact invites for JIDs and refuses e-mail to non-admins when user invites may not create accounts', () => {
    const { requests, invites } = setup({ invites: { allow_user_invites: false } });
    const r = requests.submit(alice, 'alice@localhost/a', { invitees: [{ email: 'bob@example.org' }, { jid: 'carol@elsewhere.net' }] });
    expect(r).toMatchObject({
      outcomes: [
        { email: 'bob@example.org', status: 'refused', reason: 'Only admins may invite by e-mail on this server' },
        { jid: 'carol@elsewhere.net', status: 'open' },
      ],
    });
    expect(invites.get(r.replay ? '' : r.outcomes[1].id!)?.kind).toBe('contact');
    const byAdmin = requests.submit(admin, 'admin@localhost/a', { invitees: [{ email: 'bob@example.org' }] });
    expect(byAdmin).toMatchObject({ outcomes: [{ status: 'open' }] });
  });

  it('creates nothing when it loses the race for the request’s key to another writer', () => {
    // Another process recorded the same request between our look and our insert.
    class RacedStore extends SqliteRequestStore {
      override seen(): boolean {
        return false;
      }
    }
    const { requests, db, count, acks } = setup({}, (d) => new RacedStore(d));
    db.prepare(`INSERT INTO invite_requests (sender, request_key, created_at, result) VALUES ('alice@localhost', ?, 0, '[]')`).run(requestKey(two));
    expect(requests.submit(alice, 'alice@localhost/a', two)).toEqual({ replay: true });
    expect(count('invites')).toBe(0);
    expect(count('events')).toBe(0);
    expect(count('outbox')).toBe(0);
    expect(acks()).toHaveLength(0);
  });

  it('renders the acknowledgement’s body from the recorded outcomes', () => {
    const { requests, outbox, invites } = setup();
    requests.submit(alice, 'alice@localhost/a', { invitees: [{ email: 'bob@example.org' }, { email: 'nope' }] });
    const row = outbox.list().find((r) => r.kind === 'request-result')!;
    const outcomes = outcomesOf(row.params);
    const rendered = renderNotice('request-result', [], row.params, { siteName: 'Example', component: 'invites.localhost', invites, now: Date.now });
    expect(rendered?.text).toBe(
      [
        'Your invite request on Example:',
        `• bob@example.org: waits for an admin's approval (invite ${outcomes[0].id})`,
        '• nope: not invited: Not a valid e-mail address: give one address such as bob@example.org',
      ].join('\n'),
    );
  });
});

describe('stanzas', () => {
  it('pins the acknowledgement', () => {
    const el = requestResultMessage({
      from: 'invites.example.com',
      to: 'alice@example.com/phone',
      id: 'm1',
      body: 'Your invite request',
      request: 'r1',
      invitees: [
        { email: 'bob@example.org', status: 'pending', id: 'abcdefghij' },
        { jid: 'carol@elsewhere.net', status: 'duplicate', id: 'klmnopqrst', state: 'open' },
        { email: 'x', status: 'refused', reason: 'Not a valid e-mail address' },
      ],
    });
    expect(el.toString()).toBe(
      '<message type="chat" from="invites.example.com" to="alice@example.com/phone" id="m1"><body>Your invite request</body>' +
        '<invite-request-result xmlns="urn:xmpp-invites:0" id="r1">' +
        '<invitee email="bob@example.org" status="pending" id="abcdefghij"/>' +
        '<invitee jid="carol@elsewhere.net" status="duplicate" id="klmnopqrst" state="open"/>' +
        '<invitee email="x" status="refused" reason="Not a valid e-mail address"/>' +
        '</invite-request-result><store xmlns="urn:xmpp:hints"/></message>',
    );
  });

  it('pins a presence error', () => {
    const el = presenceError({ from: 'invites.example.com', to: 'alice@example.com/phone', error: errorElement('bad-request', { text: 'No invitee' }) });
    expect(el.toString()).toBe(
      '<presence type="error" from="invites.example.com" to="alice@example.com/phone"><error type="modify">' +
        '<bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">No invitee</text>' +
        '</error></presence>',
    );
  });
});

describe('subscriptions', () => {
  it('answers a first subscribe with subscribed, its presence and one subscribe back', () => {
    const first = onInbound('subscribe', NO_SUBSCRIPTION);
    expect(first).toEqual({ next: { subscription: 'from', pendingOut: true }, send: ['subscribed', 'available', 'subscribe'] });
    // Asked again before the user answered: approved again, not asked twice.
    expect(onInbound('subscribe', first.next)).toEqual({ next: first.next, send: ['subscribed', 'available'] });
  });

  it('becomes both when the user approves, and never answers subscribed or unsubscribed', () => {
    const both = onInbound('subscribed', { subscription: 'from', pendingOut: true });
    expect(both).toEqual({ next: { subscription: 'both', pendingOut: false }, send: [] });
    expect(onInbound('subscribe', both.next)).toEqual({ next: both.next, send: ['subscribed', 'available'] });
    expect(onInbound('unsubscribed', both.next)).toEqual({ next: { subscription: 'from', pendingOut: false }, send: [] });
    expect(onInbound('subscribed', { subscription: 'from', pendingOut: false })).toEqual({ next: { subscription: 'from', pendingOut: false }, send: [] });
  });

  it('answers probes with presence only for subscribers', () => {
    expect(onInbound('probe', { subscription: 'both', pendingOut: false }).send).toEqual(['available']);
    expect(onInbound('probe', { subscription: 'from', pendingOut: false }).send).toEqual(['available']);
    expect(onInbound('probe', { subscription: 'to', pendingOut: false }).send).toEqual(['unsubscribed']);
    expect(onInbound('probe', NO_SUBSCRIPTION).send).toEqual(['unsubscribed']);
  });

  it('says unavailable once to a user who unsubscribes, and only records errors', () => {
    expect(onInbound('unsubscribe', { subscription: 'both', pendingOut: false })).toEqual({ next: { subscription: 'to', pendingOut: false }, send: ['unavailable'] });
    expect(onInbound('unsubscribe', { subscription: 'to', pendingOut: false })).toEqual({ next: { subscription: 'to', pendingOut: false }, send: [] });
    expect(onInbound('error', { subscription: 'from', pendingOut: true })).toEqual({ next: { subscription: 'from', pendingOut: false }, send: [] });
  });

  it('keeps the records in the subscriptions table', () => {
    const db = openTestStore();
    const subs = new SqliteSubscriptions(db);
    expect(subs.get('alice@localhost')).toEqual(NO_SUBSCRIPTION);
    subs.put('alice@localhost', { subscription: 'from', pendingOut: true }, 1);
    subs.put('alice@localhost', { subscription: 'both', pendingOut: false }, 2);
    expect(subs.get('alice@localhost')).toEqual({ subscription: 'both', pendingOut: false });
    expect(db.prepare('SELECT * FROM subscriptions').all()).toEqual([{ jid: 'alice@localhost', subscription: 'both', pending_out: 0, updated_at: 2 }]);
  });
});
