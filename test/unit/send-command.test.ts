/**
 * "Invite by e-mail" (urn:xmpp-invites:0#send) through the real ad-hoc framework and a real
 * database: who may run it, the lifetimes it offers, and what it refuses.
 */
import { GroupCommit } from '../../src/store/group-commit';
import pino from 'pino';
import { expiryChoices, MAX_ADDRESSES, sendCommand } from '../../src/handlers/commands/send';
import { inviteServiceFor, limitsFor, outboxFor } from '../../src/services';
import { openTestStore } from '../support/engine';
import { AdhocCommands } from '../../src/xmpp/adhoc';
import type { Requester } from '../../src/xmpp/requester';
import { NS, NODES } from '../../src/xmpp/ns';
import { xml, type Element } from '../../src/xmpp/xml';
import { testConfig } from '../support/fixtures';

const DAY = 86_400_000;

function setup(overrides: Record<string, unknown> = {}) {
  const config = testConfig({ admins: ['admin@localhost'], ...overrides });
  const db = openTestStore();
  const outbox = outboxFor(config, db);
  const invites = inviteServiceFor(config, db, { outbox });
  const adhoc = new AdhocCommands({ jid: 'invites.localhost' });
  adhoc.add(sendCommand({ config, invites, logger: pino({ level: 'silent' }), limits: limitsFor(config, db), commit: new GroupCommit(db) }));
  const who = (bare: string): Requester => ({ full: `${bare}/r`, bare, isLocal: true, isAdmin: config.admins.includes(bare) });
  const field = (name: string, values: string[]) => xml('field', { var: name }, ...values.map((v) => xml('value', {}, v)));
  async function run(bare: string, submitted: Record<string, string[]>): Promise<Element> {
    const first = await adhoc.execute(who(bare), xml('command', { xmlns: NS.commands, node: NODES.send, action: 'execute' }));
    const form = xml('x', { xmlns: NS.dataForms, type: 'submit' }, ...Object.entries(submitted).map(([k, v]) => field(k, v)));
    return adhoc.execute(who(bare), xml('command', { xmlns: NS.commands, node: NODES.send, sessionid: first.attrs.sessionid, action: 'complete' }, form));
  }
  const snapshot = () => ['invites', 'events', 'outbox'].map((t) => JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all())).join('\n');
  const notes = (reply: Element) => reply.getChildren('note').map((n) => ({ type: n.attrs.type, text: n.text() }));
  return { adhoc, who, run, snapshot, notes, invites, outbox };
}

describe('Invite by e-mail', () => {
  it('is for admins only, hidden and refused to others, where user invites may not create accounts', async () => {
    const s = setup({ invites: { allow_user_invites: false } });
    expect(s.adhoc.visibleTo(s.who('alice@localhost')).map((c) => c.node)).not.toContain(NODES.send);
    expect(s.adhoc.visibleTo(s.who('admin@localhost')).map((c) => c.node)).toContain(NODES.send);
    const before = s.snapshot();
    await expect(s.adhoc.execute(s.who('alice@localhost'), xml('command', { xmlns: NS.commands, node: NODES.send }))).rejects.toMatchObject({ condition: 'forbidden' });
    expect(s.snapshot()).toBe(before);
  });

  it('makes open invites for an admin, each e-mail queued at once', async () => {
    const s = setup();
    const reply = await s.run('admin@localhost', { emails: ['bob@example.org', 'carol@example.org'], expire: ['1d'] });
    expect(reply.attrs.status).toBe('completed');
    expect(s.notes(reply)).toEqual([
      { type: 'info', text: '2 addresses invited.' },
      { type: 'info', text: 'E-mailed now: bob@example.org, carol@example.org.' },
    ]);
    expect(s.outbox.list({ channel: 'email' }).map((r) => [r.kind, r.recipient]).sort()).toEqual([
      ['invitation', 'bob@example.org'],
      ['invitation', 'carol@example.org'],
    ]);
    for (const i of s.invites.list({})) expect(i).toMatchObject({ kind: 'contact-account', source: 'send', state: 'open', inviter: 'admin@localhost' });
  });

  it('shows the form again, naming the refused address, when nobody was invited', async () => {
    const s = setup();
    const first = await s.run('admin@localhost', { emails: ['bob@example.org'] });
    expect(first.attrs.status).toBe('completed');
    s.invites.decline(s.invites.links(s.invites.list({})[0]).token, null, true);
    const before = s.snapshot();
    const reply = await s.run('alice@localhost', { emails: ['BOB@example.org'] });
    expect(reply.attrs.status).toBe('executing');
    expect(s.notes(reply)).toEqual([{ type: 'error', text: 'Nobody was invited.\n"BOB@example.org" not invited: this address asked not to be invited again' }]);
    expect(s.snapshot()).toBe(before);
  });

  it(`refuses a list of more than ${MAX_ADDRESSES} addresses or an overlong message whole, creating nothing`, async () => {
    const s = setup({ presence: { max_message_length: 20 } });
    const before = s.snapshot();
    const many = Array.from({ length: MAX_ADDRESSES + 1 }, (_, i) => `u${i}@example.org`);
    const tooMany = await s.run('alice@localhost', { emails: many });
    expect(tooMany.attrs.status).toBe('executing');
    expect(s.notes(tooMany)).toEqual([
      { type: 'error', text: `Nobody was invited: the list has ${MAX_ADDRESSES + 1} addresses; at most ${MAX_ADDRESSES} are taken at a time.` },
    ]);
    const long = await s.run('alice@localhost', { emails: ['bob@example.org'], message: ['x'.repeat(21)] });
    expect(s.notes(long)).toEqual([{ type: 'error', text: 'Nobody was invited: the message has 21 characters; at most 20 are allowed.' }]);
    expect(s.snapshot()).toBe(before);
  });

  it('puts the outcome first, then what was done, then each refused line named', async () => {
    const s = setup();
    const reply = await s.run('alice@localhost', { emails: ['bob@example.org', 'Bad Address!', 'carol@example.org; dan@example.org'] });
    expect(reply.attrs.status).toBe('completed');
    expect(s.notes(reply)).toEqual([
      { type: 'warn', text: '1 of 3 addresses invited.' },
      { type: 'info', text: 'E-mailed once an admin approves: bob@example.org.' },
      {
        type: 'warn',
        text: '"Bad Address!" not invited: not a single e-mail address\n"carol@example.org; dan@example.org" not invited: not a single e-mail address (one address per line)',
      },
    ]);
  });

  it('names a refused line with what a client cannot show written out, and cuts it short', async () => {
    const s = setup();
    const reply = await s.run('alice@localhost', { emails: ['bob@example.org', 'evil\u001b[31m@x\u202e.org', 'y'.repeat(200)] });
    const refused = s.notes(reply).at(-1)!.text.split('\n');
    expect(refused[0]).toBe('"evil\\u001b[31m@x\\u202e.org" not invited: not a single e-mail address');
    expect(refused[1]).toBe(`"${'y'.repeat(79)}…" not invited: not a single e-mail address`);
  });

  it('states the message length in the instructions, not only in a field description', async () => {
    const s = setup({ presence: { max_message_length: 300 } });
    const first = await s.adhoc.execute(s.who('alice@localhost'), xml('command', { xmlns: NS.commands, node: NODES.send }));
    const lines = first.getChild('x', NS.dataForms)!.getChildren('instructions').map((i) => i.text());
    expect(lines).toContain('The message is optional (at most 300 characters) and goes into each e-mail.');
  });

  it('offers 1, 3, 7, 14 and 30 days, never beyond invites.expiry, which is the default', () => {
    expect(expiryChoices(7 * DAY).map((c) => c.value)).toEqual(['1d', '3d', '7d']);
    expect(expiryChoices(30 * DAY).map((c) => c.value)).toEqual(['1d', '3d', '7d', '14d', '30d']);
    expect(expiryChoices(10 * DAY).map((c) => [c.value, c.label])).toEqual([
      ['1d', '1 day'],
      ['3d', '3 days'],
      ['7d', '7 days'],
      ['10d', '10 days'],
    ]);
    expect(expiryChoices(12 * 3_600_000).map((c) => c.value)).toEqual(['12h']);
    expect(expiryChoices(28 * DAY).at(-1)).toEqual({ value: '28d', label: '28 days', ms: 28 * DAY });
  });
});
