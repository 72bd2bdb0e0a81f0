import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger';
import { ProsodyBridgeClient } from '../../src/provisioners/prosody-bridge';
import { Xep0133Provisioner, type IqRequester } from '../../src/provisioners/xep0133';
import { sanitizeStanza } from '../../src/xmpp/sanitize';
import { xml, type Element } from '../../src/xmpp/xml';

const TOKEN = 'abcdefghij0123456789ABCDEFGHIJklmn';

/** Sanitises, and checks that the element given is exactly as it was. */
function sanitized(el: Element, secrets?: string[]): string {
  const before = el.toString();
  const out = sanitizeStanza(el, secrets);
  expect(el.toString()).toBe(before);
  return out;
}

describe('sanitizeStanza', () => {
  test('the component handshake digest is masked', () => {
    const el = xml('handshake', {}, '3f4c0a5e9d0b6e1f2a3b4c5d6e7f8091a2b3c4d5');
    expect(sanitized(el)).toBe('<handshake>[redacted]</handshake>');
  });

  test('an empty handshake (the server acknowledgement) stays empty', () => {
    expect(sanitized(xml('handshake'))).toBe('<handshake/>');
  });

  test('the password of an in-band registration is masked, the username kept', () => {
    const el = xml(
      'iq',
      { type: 'set', id: 'reg1' },
      xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, 'hank'), xml('password', {}, 'hunter2')),
    );
    const out = sanitized(el);
    expect(out).toContain('<username>hank</username>');
    expect(out).toContain('<password>[redacted]</password>');
    expect(out).not.toContain('hunter2');
  });

  test('values of data form fields password, password-verify and token are masked', () => {
    const el = xml(
      'iq',
      { type: 'set', to: 'localhost', id: 'add1' },
      xml(
        'command',
        { xmlns: 'http://jabber.org/protocol/commands', node: 'http://jabber.org/protocol/admin#add-user' },
        xml(
          'x',
          { xmlns: 'jabber:x:data', type: 'submit' },
          xml('field', { var: 'accountjid' }, xml('value', {}, 'hank@localhost')),
          xml('field', { var: 'password' }, xml('value', {}, 'pw-one')),
          xml('field', { var: 'password-verify' }, xml('value', {}, 'pw-one')),
          xml('field', { var: 'token' }, xml('value', {}, TOKEN)),
        ),
      ),
    );
    const out = sanitized(el);
    expect(out).toContain('hank@localhost');
    expect(out).not.toContain('pw-one');
    expect(out).not.toContain(TOKEN);
    expect(out.match(/<value>\[redacted\]<\/value>/g)).toHaveLength(3);
  });

  test('a text-private field is masked whatever its name', () => {
    const el = xml(
      'x',
      { xmlns: 'jabber:x:data', type: 'form' },
      xml('field', { var: 'pin', type: 'text-private' }, xml('value', {}, '7777')),
    );
    expect(sanitized(el)).not.toContain('7777');
  });

  test('a field named password outside a data form is left alone', () => {
    const el = xml('x', { xmlns: 'urn:example' }, xml('field', { var: 'password' }, xml('value', {}, 'visible')));
    expect(sanitized(el)).toContain('visible');
  });

  test('the token attribute of a XEP-0445 preauth element is masked', () => {
    const el = xml('iq', { type: 'set', id: 'p1' }, xml('preauth', { xmlns: 'urn:xmpp:pars:0', token: TOKEN }));
    const out = sanitized(el);
    expect(out).toBe(`<iq type="set" id="p1"><preauth xmlns="urn:xmpp:pars:0" token="[redacted]"/></iq>`);
  });

  test('a token attribute on any element (bridge IQs) is masked', () => {
    const el = xml('iq', { type: 'get', id: 'b1' }, xml('check', { xmlns: 'urn:example:bridge', token: TOKEN, user: 'hank' }));
    const out = sanitized(el);
    expect(out).not.toContain(TOKEN);
    expect(out).toContain('user="hank"');
  });

  test('preauth in an xmpp: URI in a message body is masked', () => {
    const el = xml(
      'message',
      { to: 'hank@localhost', type: 'chat' },
      xml('body', {}, `Join me: xmpp:alice@localhost?roster;preauth=${TOKEN};ibr=y and see you`),
    );
    const out = sanitized(el);
    expect(out).not.toContain(TOKEN);
    expect(out).toContain('xmpp:alice@localhost?roster;preauth=[redacted];ibr=y and see you');
  });

  test('preauth in an attribute (XEP-0401 uri value in a form, XEP-0066 url) is masked', () => {
    const el = xml('message', {}, xml('x', { xmlns: 'jabber:x:oob' }, xml('url', {}, 'https://x.test/i/' + TOKEN)));
    el.getChild('x')!.attrs['data-uri'] = `xmpp:localhost?register;preauth=${TOKEN}`;
    const out = sanitized(el);
    expect(out).not.toContain(TOKEN);
    expect(out).toContain('data-uri="xmpp:localhost?register;preauth=[redacted]"');
    expect(out).toContain('<url>https://x.test/i/[redacted]</url>');
  });

  test('the landing URL token is masked and the rest of the URL kept', () => {
    const el = xml('message', {}, xml('body', {}, `Open https://invites.example.org/i/${TOKEN}?lang=de now`));
    expect(sanitized(el)).toContain('https://invites.example.org/i/[redacted]?lang=de now');
  });

  test('a token split over two text nodes (two network chunks) is masked whole', () => {
    const body = xml('body', {});
    body.t(`xmpp:alice@localhost?roster;preauth=${TOKEN.slice(0, 12)}`);
    body.t(`${TOKEN.slice(12)} bye`);
    const out = sanitized(xml('message', {}, body));
    expect(out).not.toContain(TOKEN.slice(12));
    expect(out).toContain('preauth=[redacted] bye');
  });

  test('configured secret strings are masked in text and attributes, also when XML-escaped', () => {
    const secret = 's3cr<e>t&"x';
    const el = xml('message', { to: 'a@localhost', 'x-key': secret }, xml('body', {}, `the key is ${secret}.`));
    const out = sanitized(el, [secret]);
    expect(out).not.toContain('s3cr');
    expect(out).toContain('<body>the key is [redacted].</body>');
  });

  test('a stanza without anything secret is serialised unchanged', () => {
    const el = xml('presence', { from: 'a@localhost/r', to: 'invites.localhost' }, xml('status', {}, 'hi & bye'));
    expect(sanitized(el, ['unused-secret'])).toBe(el.toString());
  });

  test('a parsed stanza whose parent is the stream keeps its parent and children untouched', () => {
    const stream = xml('stream:stream', { xmlns: 'jabber:component:accept' });
    const el = xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:register' }, xml('password', {}, 'pw')));
    el.parent = stream;
    const password = el.getChild('query')!.getChild('password')!;
    sanitized(el);
    expect(el.parent).toBe(stream);
    expect(password.parent).toBe(el.getChild('query'));
    expect(password.children).toEqual(['pw']);
  });
});

describe('secrets as the provisioners send them, logged at debug', () => {
  const PASSWORD = 'correct horse "battery" <staple>';

  /** What the component writes for `el` at debug level (as ComponentConnection logs "XMPP out"), as JSON text. */
  function loggedAtDebug(el: Element): string {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    createLogger({ level: 'debug', destination }).debug({ stanza: sanitizeStanza(el, ['component-secret']) }, 'XMPP out');
    return lines.join('');
  }

  /** The IQ a provisioner sends to create an account (the request never gets an answer). */
  async function sentBy(create: (request: IqRequester) => Promise<unknown>): Promise<Element> {
    let sent: Element | undefined;
    await create(async (iq) => {
      sent = iq;
      throw new Error('no answer');
    }).catch(() => undefined);
    return sent!;
  }

  test('the bridge create-account IQ keeps the username and hides the password attribute', async () => {
    const iq = await sentBy((request) => new ProsodyBridgeClient({ request, host: 'localhost' }).createAccount('hank', PASSWORD));
    expect(iq.getChild('create-account')?.attrs.password).toBe(PASSWORD);
    const log = loggedAtDebug(iq);
    expect(log).toContain('create-account');
    expect(log).toContain('username=\\"hank\\"');
    expect(log).toContain('password=\\"[redacted]\\"');
    for (const piece of ['correct horse', 'battery', 'staple']) expect(log).not.toContain(piece);
  });

  test('the XEP-0133 add-user form hides password and password-verify', async () => {
    const iq = await sentBy((request) => new Xep0133Provisioner({ request, host: 'localhost' }).createAccount('hank', PASSWORD));
    const log = loggedAtDebug(iq);
    expect(log).toContain('add-user');
    expect(log).toContain('hank@localhost');
    expect(log.match(/<value>\[redacted\]<\/value>/g)).toHaveLength(2);
    for (const piece of ['correct horse', 'battery', 'staple']) expect(log).not.toContain(piece);
  });

  test('a password or token quoted in any logged string is masked as well', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    createLogger({ level: 'debug', destination }).debug(`server said: <create-account password='${'hunter2'}'/>`);
    expect(lines.join('')).not.toContain('hunter2');
  });

  test('secret-bearing attributes, elements and fields are masked wherever they are', () => {
    const el = xml(
      'iq',
      { type: 'set' },
      xml('claim', { xmlns: 'urn:xmpp-invites:bridge:0', token: TOKEN, username: 'hank', preauth: 'true' }),
      xml('query', { xmlns: 'jabber:iq:register' }, xml('token', {}, 'plain-token-text')),
      xml('auth', { xmlns: 'urn:ietf:params:xml:ns:xmpp-sasl', mechanism: 'PLAIN' }, 'AGhhbmsAaHVudGVyMg=='),
      xml(
        'x',
        { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'old-password' }, xml('value', {}, 'old-secret-1')),
        xml('field', { var: 'muc#roomconfig_roomsecret' }, xml('value', {}, 'room-secret-1')),
      ),
    );
    const out = sanitized(el);
    for (const secret of [TOKEN, 'plain-token-text', 'AGhhbmsAaHVudGVyMg==', 'old-secret-1', 'room-secret-1']) expect(out).not.toContain(secret);
    expect(out).toContain('username="hank"');
    expect(out).toContain('mechanism="PLAIN"');
  });
});
