/**
 * One user flooding the store with invite requests in presence (issue: 300 presences made 6,001
 * pending invites in 1.9 s with no limits configured). The shipped defaults stop it at once; admins
 * are exempt from the per-user limits, as the README's limits table says; `off` lifts each default.
 */
import pino from 'pino';
import { InviteRequests } from '../../src/domain/requests';
import { PresenceHandler } from '../../src/handlers/presence';
import { inviteServiceFor, limitsFor, outboxFor } from '../../src/services';
import { openTestStore } from '../support/engine';
import { SqliteRequestStore, SqliteSubscriptions } from '../../src/store/requests-repo';
import { AdhocCommands } from '../../src/xmpp/adhoc';
import { newInviteCommand } from '../../src/handlers/commands/new-invite';
import { GroupCommit } from '../../src/store/group-commit';
import { NODES } from '../../src/xmpp/ns';
import { errorFor } from '../../src/xmpp/stanza-errors';
import { bareOf, type Requester } from '../../src/xmpp/requester';
import { Router } from '../../src/xmpp/router';
import { xml, type Element } from '../../src/xmpp/xml';
import { testConfig } from '../support/fixtures';

const NS = 'urn:xmpp-invites:0';
const COMPONENT = 'invites.localhost';

function setup(overrides: Record<string, unknown> = {}) {
  const config = testConfig(overrides);
  const db = openTestStore();
  let now = Date.UTC(2026, 10, 21, 12);
  const clock = () => now;
  const outbox = outboxFor(config, db, { clock });
  const invites = inviteServiceFor(config, db, { clock, outbox });
  const requests = new InviteRequests({
    store: new SqliteRequestStore(db),
    invites,
    notices: outbox,
    policy: { allowUserInvites: true },
    clock,
    limits: limitsFor(config, db),
  });
  const sent: Element[] = [];
  const router = new Router({ send: async (el) => void sent.push(el), logger: pino({ level: 'silent' }), host: config.host, admins: config.admins });
  new PresenceHandler({ config, requests, subscriptions: new SqliteSubscriptions(db), send: async (el) => void sent.push(el), clock }).register(router);
  let n = 0;
  /** One presence with a new request of `size` invitees (fresh addresses every time). */
  const flood = async (from: string, presences: number, size = 20) => {
    for (let p = 0; p < presences; p++) {
      const invitees = Array.from({ length: size }, () => xml('invitee', { email: `person${++n}@example.org` }));
      await router.handle(xml('presence', { from, to: COMPONENT }, xml('invite-request', { xmlns: NS, id: `r${n}` }, ...invitees)));
    }
  };
  const invitesOf = (jid: string) => (db.prepare('SELECT count(*) AS n FROM invites WHERE inviter = ?').get(jid) as { n: number }).n;
  const refusals = () => sent.filter((s) => s.name === 'presence' && s.attrs.type === 'error' && s.getChild('error')?.getChild('policy-violation'));
  return { flood, invitesOf, refusals, sent, advance: (ms: number) => (now += ms) };
}

describe('a flood of invite requests in presence', () => {
  it('is cut off by the default limits: 300 presences of 20 invitees make at most 50 invites', async () => {
    const s = setup();
    await s.flood('bob@localhost/script', 300);
    expect(s.invitesOf('bob@localhost')).toBe(50);
    // 10 requests a minute are processed; the other 290 are refused whole, with the limit named.
    expect(s.refusals()).toHaveLength(290);
    const text = s.refusals()[0].getChild('error')!.getChildText('text');
    expect(text).toMatch(/^Limit invite_requests_per_minute reached: at most 10 invite requests a minute; it frees at /);
    expect(s.refusals()[0].getChild('error')!.attrs.type).toBe('wait');
  });

  it('lets the same user send new requests again a minute later, still within the daily limit', async () => {
    const s = setup();
    await s.flood('bob@localhost/a', 2, 20);
    s.advance(61_000);
    await s.flood('bob@localhost/a', 2, 20);
    expect(s.invitesOf('bob@localhost')).toBe(50);
    expect(s.refusals()).toHaveLength(0);
  });

  it('leaves admins unaffected (exempt from the per-user limits)', async () => {
    const s = setup();
    await s.flood('admin@localhost/laptop', 30);
    expect(s.invitesOf('admin@localhost')).toBe(600);
    expect(s.refusals()).toHaveLength(0);
  });

  it('is not limited when every default is turned off with `off`', async () => {
    const s = setup({ limits: { per_user_open: 'off', per_user_per_day: 'off', invite_requests_per_minute: 'off' } });
    await s.flood('bob@localhost/script', 30);
    expect(s.invitesOf('bob@localhost')).toBe(600);
    expect(s.refusals()).toHaveLength(0);
  });
});

describe('a flood of New Invite commands', () => {
  it('stops at the default per_user_per_day, with policy-violation naming the limit; admins go on', async () => {
    const config = testConfig({ invites: { approval: 'none' } });
    const db = openTestStore();
    const invites = inviteServiceFor(config, db);
    const adhoc = new AdhocCommands({ jid: COMPONENT }).add(
      newInviteCommand({ config, invites, logger: pino({ level: 'silent' }), limits: limitsFor(config, db), commit: new GroupCommit(db) }),
    );
    const who = (full: string): Requester => ({ full, bare: bareOf(full), isLocal: true, isAdmin: full.startsWith('admin@') });
    const run = (full: string) => adhoc.execute(who(full), xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: NODES.newInvite }));
    const outcomes = await Promise.allSettled(Array.from({ length: 80 }, () => run('bob@localhost/script')));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(50);
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(refused).toHaveLength(30);
    expect(errorFor(refused[0].reason)?.getChild('policy-violation')).toBeDefined();
    expect(refused[0].reason.message).toMatch(/^Limit per_user_per_day reached: at most 50 invites a day/);
    const admin = await Promise.allSettled(Array.from({ length: 80 }, () => run('admin@localhost/laptop')));
    expect(admin.every((o) => o.status === 'fulfilled')).toBe(true);
  });
});
