/**
 * The one rule for text from people (src/domain/text.ts) and its last line of defence: the
 * connection's character check (src/xmpp/outgoing.ts), which every stanza passes before it is
 * written, and what the provisioners and the outbox make of its refusal.
 */
import { saslprep } from '@mongodb-js/saslprep';
import { checkPasswordCharacters, cleanText, forbiddenXmlCharacter } from '../../src/domain/text';
import { XmppTransport } from '../../src/outbox/xmpp-transport';
import { PermanentDeliveryError } from '../../src/outbox/worker';
import { ProsodyBridgeClient } from '../../src/provisioners/prosody-bridge';
import { Xep0133Provisioner } from '../../src/provisioners/xep0133';
import type { OutboxRow } from '../../src/store/outbox-repo';
import { checkCharacters, ForbiddenCharacterError, StanzaRejectedError } from '../../src/xmpp/outgoing';
import { SubmittedForm } from '../../src/xmpp/forms';
import { Router } from '../../src/xmpp/router';
import { xml, type Element } from '../../src/xmpp/xml';
import pino from 'pino';

const ESC = '\u001b';

describe('text from people', () => {
  it.each([
    ['U+0001', 'a\u0001b', 'U+0001'],
    ['ESC', `a${ESC}b`, 'U+001B'],
    ['NUL', 'a\u0000b', 'U+0000'],
    ['a lone high surrogate', 'a\uD83Db', 'U+D83D'],
    ['a lone low surrogate', 'a\uDE00b', 'U+DE00'],
    ['U+FFFE', 'a\uFFFEb', 'U+FFFE'],
    ['U+FFFF', 'a\uFFFFb', 'U+FFFF'],
  ])('names %s as a character XML forbids', (_what, text, code) => {
    expect(forbiddenXmlCharacter(text)).toBe(code);
  });

  it('lets tab, line breaks, letters, emoji (a surrogate pair) and C1 controls pass as XML', () => {
    expect(forbiddenXmlCharacter('a\tb\nc\r d ß Ω 😀 \u0085 \uE000 \u{10FFFF}')).toBeUndefined();
  });

  it('cleans free text: no XML-forbidden characters, no DEL or C1 controls, the rest kept', () => {
    expect(cleanText(`Hi${ESC}[31m red${ESC}]8;;http://x${ESC}\\ \u0001\u0007\u007f\u009b\uFFFE\uD800 😀\tok\nline`)).toBe(
      'Hi[31m red]8;;http://x\\  😀\tok\nline',
    );
  });

  it('refuses passwords that XML or SASLprep refuse, and accepts what a person types', () => {
    for (const bad of ['pass\u0001word', `pass${ESC}word`, 'pass\tword', 'pass\u007fword', 'pass\u0085word', 'pass\uE000word', 'pass\uDC00word']) {
      expect(() => checkPasswordCharacters(bad)).toThrow(expect.objectContaining({ code: 'invalid-input' }));
    }
    for (const good of ['correct horse battery', 'pässwörd', 'пароль123', '密码密码密码密码', 'p@$$w0rd!"<>&\'']) {
      expect(() => checkPasswordCharacters(good)).not.toThrow();
    }
  });

  it('lets printable ASCII through without SASLprep because SASLprep never refuses or changes it', () => {
    const ascii = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));
    // The library agrees, character by character and for the whole range at once.
    for (const text of [...ascii, ascii.join('')]) {
      expect(saslprep(text)).toBe(text);
      expect(() => checkPasswordCharacters(text)).not.toThrow();
    }
    // Just outside the range, SASLprep has the last word.
    for (const bad of ['tab\there', 'del\x7f']) expect(() => checkPasswordCharacters(bad)).toThrow(expect.objectContaining({ code: 'invalid-input' }));
  });

  it('cleans the text values of a submitted data form, and keeps a secret exactly as sent', () => {
    const form = SubmittedForm.parse(
      xml(
        'x',
        { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'reason' }, xml('value', {}, 'no\u0085 thanks\u009b')),
        xml('field', { var: 'message' }, xml('value', {}, 'line\u0007 one'), xml('value', {}, 'two')),
        xml('field', { var: 'password' }, xml('value', {}, 'pass\u0085word')),
      ),
    )!;
    expect(form.text('reason')).toBe('no thanks');
    expect(form.texts('message')).toEqual(['line one', 'two']);
    expect(form.secret('password')).toBe('pass\u0085word');
  });
});

describe('the connection refuses to write a character XML forbids', () => {
  const message = (...children: (Element | string)[]) => xml('message', { to: 'alice@localhost', type: 'chat' }, ...children);

  it.each([
    ['in a body', message(xml('body', {}, 'declined: \u0001'))],
    ['in an attribute value', message(xml('invitee', { xmlns: 'urn:xmpp-invites:0', name: `B${ESC}ob` }))],
    ['deep in the tree', xml('iq', { type: 'set', to: 'localhost' }, xml('command', {}, xml('x', {}, xml('field', { var: 'password' }, xml('value', {}, 'pw\u0001xxxxxx')))))],
    ['as a lone surrogate', message(xml('body', {}, 'half \uD83D of an emoji'))],
    ['as U+FFFF', message(xml('body', {}, '\uFFFF'))],
  ])('%s', (_where, el) => {
    let thrown: unknown;
    try {
      checkCharacters(el);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ForbiddenCharacterError);
    expect(thrown).toBeInstanceOf(StanzaRejectedError);
    // The error names the stanza and the code point, never the text.
    expect((thrown as Error).message).toMatch(/^Refusing to send a <(message|iq)\/> holding U\+[0-9A-F]{4}, a character XML does not allow$/);
    expect((thrown as Error).message).not.toMatch(/declined|Bob|pw|emoji/);
  });

  it('lets well-formed text through, markup characters and emoji included', () => {
    expect(() => checkCharacters(message(xml('body', {}, 'a < b & "c" \'d\' 😀\n\tΩ'), xml('x', { note: '<&>' })))).not.toThrow();
  });

  it('makes the provisioners report a definite refusal, never an unclear outcome', async () => {
    const refuse = async (iq: Element): Promise<Element> => {
      checkCharacters(iq);
      throw new Error('the test only sends refused stanzas');
    };
    await expect(new Xep0133Provisioner({ request: refuse, host: 'localhost' }).createAccount('bob', 'pw\u0001xxxxxx')).resolves.toMatchObject({ kind: 'refused' });
    await expect(new ProsodyBridgeClient({ request: refuse, host: 'localhost' }).createAccount('bob', 'pw\u0001xxxxxx')).resolves.toMatchObject({ kind: 'refused' });
  });

  it('makes the outbox fail the message for good rather than retry it or call it sent', async () => {
    const transport = new XmppTransport({ from: 'invites.localhost', send: async (el) => checkCharacters(el), online: () => true });
    const row = { id: 1, kind: 'declined', channel: 'xmpp', recipient: 'alice@localhost', messageId: 'm1@invites.localhost', inviteIds: ['i1'], params: {} } as unknown as OutboxRow;
    await expect(transport.send(row, { text: 'declined: \u0001', subject: '' } as never)).rejects.toBeInstanceOf(PermanentDeliveryError);
  });
});

describe('an answer the connection will not write', () => {
  it('becomes internal-server-error, so the requester is never left waiting', async () => {
    const sent: Element[] = [];
    // As the connection does: refuse what holds a character XML forbids, write the rest.
    const router = new Router({
      send: async (el) => {
        checkCharacters(el);
        sent.push(el);
      },
      logger: pino({ level: 'silent' }),
      host: 'localhost',
      admins: [],
    });
    router.iq('get', 'query', 'urn:test', () => xml('query', { xmlns: 'urn:test' }, xml('note', {}, 'stored before the rule: \u0001')));
    await router.handle(xml('iq', { type: 'get', from: 'alice@localhost/a', to: 'invites.localhost', id: 'q1' }, xml('query', { xmlns: 'urn:test' })));
    expect(sent).toHaveLength(1);
    expect(sent[0].attrs).toMatchObject({ type: 'error', id: 'q1', to: 'alice@localhost/a' });
    expect(sent[0].getChild('error')?.getChild('internal-server-error')).toBeDefined();
  });
});
