/**
 * Identifiers from people (usernames, e-mail addresses, JIDs, tokens, invite ids, option values)
 * are taken as sent, less the white space around them, and never cleaned: a character they may not
 * hold makes their own validation refuse them, naming the value. Only free text is cleaned
 * (src/domain/text.ts). Driven through the router, the ad-hoc framework and a real database.
 */
import pino from 'pino';
import { Registration, type CreateOutcome, type Provisioner } from '../../src/domain/registration';
import { trimSpace } from '../../src/domain/text';
import { normalizeUsername } from '../../src/domain/usernames';
import { OPERATOR } from '../../src/domain/types';
import { createAccountCommand } from '../../src/handlers/commands/create-account';
import { listCommand } from '../../src/handlers/commands/list';
import { mineCommand } from '../../src/handlers/commands/mine';
import { pendingCommand } from '../../src/handlers/commands/pending';
import { sendCommand } from '../../src/handlers/commands/send';
import { ComponentRegistration } from '../../src/handlers/register';
import { inviteServiceFor, limitsFor } from '../../src/services';
import { SqliteClaimStore } from '../../src/store/claims-repo';
import { openTestStore } from '../support/engine';
import { GroupCommit } from '../../src/store/group-commit';
import { AdhocCommands } from '../../src/xmpp/adhoc';
import { SubmittedForm } from '../../src/xmpp/forms';
import { NS, NODES } from '../../src/xmpp/ns';
import { Router } from '../../src/xmpp/router';
import { xml, type Element } from '../../src/xmpp/xml';
import { testConfig } from '../support/fixtures';

const COMPONENT = 'invites.localhost';
const ADMIN = 'admin@localhost/laptop';
const ALICE = 'alice@localhost/phone';
const ANON = 'x1y2z3@anon.localhost/r';
/** Characters a client stream carries that cleaning would remove: DEL, NEL (C1), CSI (C1), by name. */
const HIDDEN = [['U+007F', '\u007f'], ['U+0085', '\u0085'], ['U+009B', '\u009b']] as const;

class FakeServer implements Provisioner {
  readonly name = 'fake';
  created: string[] = [];
  asked: string[] = [];
  async createAccount(username: string): Promise<CreateOutcome> {
    this.created.push(username);
    return { kind: 'created' };
  }
  async accountExists(username: string): Promise<boolean> {
    this.asked.push(username);
    return false;
  }
  async linkContacts(): Promise<void> {}
}

function setup() {
  const config = testConfig({ admins: ['admin@localhost'], registration: { requester_domains: ['anon.localhost'] } });
  const db = openTestStore();
  const invites = inviteServiceFor(config, db);
  const logger = pino({ level: 'silent' });
  const services = { config, invites, logger, limits: limitsFor(config, db), commit: new GroupCommit(db) };
  const adhoc = new AdhocCommands({ jid: COMPONENT });
  for (const c of [createAccountCommand, sendCommand, mineCommand, pendingCommand, listCommand]) adhoc.add(c(services));
  const server = new FakeServer();
  const registration = new Registration({
    claims: new SqliteClaimStore(db),
    invites,
    provisioner: server,
    policy: { host: config.host, mode: config.registration.mode, minPasswordLength: config.registration.minPasswordLength },
    events: { joined: () => undefined },
  });
  const sent: Element[] = [];
  const router = new Router({ send: async (el) => void sent.push(el), logger, host: config.host, admins: config.admins });
  router.iq('set', 'command', NS.commands, (ctx, c) => adhoc.execute(ctx.requester, c));
  new ComponentRegistration({ config, registration }).register(router);
  let n = 0;
  async function iq(from: string, payload: Element): Promise<Element> {
    const id = `q${++n}`;
    await router.handle(xml('iq', { type: 'set', from, to: COMPONENT, id }, payload));
    return sent.find((s) => s.attrs.id === id)!;
  }
  const form = (values: Record<string, readonly string[]>) =>
    xml('x', { xmlns: NS.dataForms, type: 'submit' }, ...Object.entries(values).map(([k, vs]) => xml('field', { var: k }, ...vs.map((v) => xml('value', {}, v)))));
  /** Opens a session of `node`, then submits `values` to it; the reply's command element (or the IQ error). */
  async function run(from: string, node: string, values: Record<string, readonly string[]>, action = 'complete'): Promise<Element> {
    const first = (await iq(from, xml('command', { xmlns: NS.commands, node, action: 'execute' }))).getChild('command', NS.commands)!;
    const reply = await iq(from, xml('command', { xmlns: NS.commands, node, sessionid: first.attrs.sessionid, action }, form(values)));
    return reply.getChild('command', NS.commands) ?? reply;
  }
  const snapshot = () => ['invites', 'events', 'outbox', 'claims'].map((t) => JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all())).join('\n');
  const notes = (cmd: Element) => cmd.getChildren('note').map((note) => ({ type: note.attrs.type, text: note.text() }));
  const condition = (reply: Element) => reply.getChild('error')?.getChildElements().find((c) => c.name !== 'text')?.name;
  return { db, invites, server, iq, form, run, snapshot, notes, condition };
}

describe('an identifier with a character it may not hold is refused, never cleaned into another', () => {
  it.each(HIDDEN)('Create account invite refuses the username "del" + %s, naming it, and creates nothing', async (_name, c) => {
    const s = setup();
    const before = s.snapshot();
    const cmd = await s.run(ADMIN, NODES.createAccount, { username: [`del${c}`] });
    expect(cmd.attrs.status).toBe('executing');
    expect(s.notes(cmd)).toEqual([
      {
        type: 'error',
        text: `No invite was created: "del\\u00${c.charCodeAt(0).toString(16)}" is not a valid username: use 1 to 64 characters: letters a-z, digits, ".", "_" or "-", not starting or ending with ".".`,
      },
    ]);
    expect(s.snapshot()).toBe(before);
  });

  it.each(HIDDEN)('registration at the component refuses the username "del" + %s (form and plain elements) with not-acceptable, asking no server', async (_name, c) => {
    const s = setup();
    const token = s.invites.create(OPERATOR, { kind: 'account', source: 'cli', maxUses: 10 }).links.token;
    const before = s.snapshot();
    const asForm = xml('query', { xmlns: NS.register }, s.form({ FORM_TYPE: [NS.register], username: [`del${c}`], password: ['correct horse'], token: [token] }));
    const asElements = xml('query', { xmlns: NS.register }, xml('username', {}, `del${c}`), xml('password', {}, 'correct horse'), xml('token', {}, token));
    for (const query of [asForm, asElements]) {
      const reply = await s.iq(ANON, query);
      expect(s.condition(reply)).toBe('not-acceptable');
    }
    expect(s.server.asked).toEqual([]);
    expect(s.server.created).toEqual([]);
    expect(s.snapshot()).toBe(before);
  });

  it('registration at the component refuses a token with a character tokens do not hold', async () => {
    const s = setup();
    const token = s.invites.create(OPERATOR, { kind: 'account', source: 'cli', maxUses: 10 }).links.token;
    const before = s.snapshot();
    const reply = await s.iq(ANON, xml('query', { xmlns: NS.register }, s.form({ username: ['newuser'], password: ['correct horse'], token: [`${token}\u0085`] })));
    expect(s.condition(reply)).toBe('item-not-found');
    expect(s.server.created).toEqual([]);
    expect(s.snapshot()).toBe(before);
  });

  it('Invite by e-mail refuses an address and a lifetime that cleaning would have made valid, inviting nobody', async () => {
    const s = setup();
    const before = s.snapshot();
    const address = await s.run(ALICE, NODES.send, { emails: ['bob@example.org\u0085'], message: ['hi'] });
    expect(address.attrs.status).toBe('executing');
    expect(s.notes(address)).toEqual([{ type: 'error', text: 'Nobody was invited.\n"bob@example.org\\u0085" not invited: not a single e-mail address' }]);
    const lifetime = await s.run(ALICE, NODES.send, { emails: ['bob@example.org'], expire: ['\u0085'] });
    expect(lifetime.attrs.status).toBe('executing');
    expect(s.notes(lifetime)[0].text).toMatch(/^Nobody was invited: "\\u0085" is not a lifetime on offer/);
    expect(s.snapshot()).toBe(before);
  });

  it('Invite by e-mail cleans the message, which is free text, and invites', async () => {
    const s = setup();
    const cmd = await s.run(ALICE, NODES.send, { emails: ['bob@example.org'], message: ['hi\u0085 there\u009b'] });
    expect(cmd.attrs.status).toBe('completed');
    expect(s.invites.list({}).map((i) => [i.inviteeEmail, i.note])).toEqual([['bob@example.org', 'hi there']]);
  });

  it('an invite id with a character ids do not hold names no invite: My invites, Pending approvals and All invites act on nothing', async () => {
    const s = setup();
    const open = s.invites.create({ kind: 'user', jid: 'alice@localhost', isAdmin: false }, { kind: 'contact', source: 'command' }).invite;
    const pending = s.invites.create({ kind: 'user', jid: 'alice@localhost', isAdmin: false }, { kind: 'contact-account', source: 'send', email: 'carol@example.org' }).invite;
    expect(pending.state).toBe('pending');
    const before = s.snapshot();
    for (const [from, node, values] of [
      [ALICE, NODES.mine, { revoke: [`${open.id}\u007f`] }],
      [ALICE, NODES.mine, { resend: [`${open.id}\u0085`] }],
      [ADMIN, NODES.pending, { approve: [`${pending.id}\u0085`] }],
    ] as const) {
      const reply = await s.run(from, node, values);
      expect(s.condition(reply)).toBe('bad-request');
    }
    expect(s.snapshot()).toBe(before);
  });

  it('All invites refuses an inviter filter that is not a JID as typed', async () => {
    const s = setup();
    const first = await s.run(ADMIN, NODES.list, { state: ['any'], inviter: ['alice@localhost\u0085'] }, 'next');
    expect(s.notes(first)).toEqual([{ type: 'error', text: '"alice@localhost\\u0085" is not a JID: give an inviter as user@domain.' }]);
  });
});

describe('reading identifiers', () => {
  it('a submitted form gives identifiers as sent less the white space around them, free text cleaned', () => {
    const form = SubmittedForm.parse(
      xml(
        'x',
        { xmlns: NS.dataForms, type: 'submit' },
        xml('field', { var: 'username' }, xml('value', {}, ' \tdel\u007f\n')),
        xml('field', { var: 'ids' }, xml('value', {}, 'a\u0085'), xml('value', {}, 'b')),
        xml('field', { var: 'nbsp' }, xml('value', {}, '\u00a0alice\u3000')),
        xml('field', { var: 'note' }, xml('value', {}, ' del\u007f ')),
      ),
    )!;
    expect(form.value('username')).toBe('del\u007f');
    expect(form.values('ids')).toEqual(['a\u0085', 'b']);
    expect(form.value('nbsp')).toBe('\u00a0alice\u3000');
    expect(form.value('absent')).toBeUndefined();
    expect(form.text('note')).toBe('del');
  });

  it('trims only XML white space, so that NBSP, ideographic space or a BOM around a username make it invalid', () => {
    expect(trimSpace(' \r\n\talice \n')).toBe('alice');
    expect(trimSpace('\u00a0alice\ufeff')).toBe('\u00a0alice\ufeff');
    expect(normalizeUsername(' Alice\n')).toBe('alice');
    for (const bad of ['\u00a0alice', 'alice\u3000', '\ufeffalice', 'alice\u2028', 'del\u007f']) {
      expect(() => normalizeUsername(bad)).toThrow(expect.objectContaining({ code: 'invalid-input' }));
    }
  });
});
