import { InviteService, newInviteId, type InvitePolicy } from '../../src/domain/invites';
import { ID_ALPHABET, TokenCodec, TOKEN_LENGTH, isInviteId, randomIdChars } from '../../src/domain/tokens';
import type { Actor } from '../../src/domain/types';
import { readMigrations, type Db } from '../../src/store/database';
import { openTestStore } from '../support/engine';
import { openDatabase } from '../../src/store/database';
import { SqliteInviteStore } from '../../src/store/invites-repo';

const KEY = 'k'.repeat(40);
const DAY = 86_400_000;
const alice: Actor = { kind: 'user', jid: 'alice@example.com', isAdmin: false };
const admin: Actor = { kind: 'user', jid: 'admin@example.com', isAdmin: true };
const operator: Actor = { kind: 'operator' };

function setup(policy: Partial<InvitePolicy> = {}) {
  const db = openTestStore();
  let now = Date.UTC(2026, 10, 21, 12);
  const service = new InviteService({
    store: new SqliteInviteStore(db),
    policy: {
      host: 'example.com',
      publicUrl: 'https://invites.example.com',
      serverBridge: true,
      expiry: 7 * DAY,
      approval: 'non-admins',
      allowUserInvites: true,
      maxUses: 1,
      admins: ['admin@example.com', 'root@example.com'],
      ...policy,
    },
    tokenKey: KEY,
    clock: () => now,
  });
  return { db, service, advance: (ms: number) => (now += ms), now: () => now };
}

function dump(db: Db): string {
  return JSON.stringify(db.prepare('SELECT * FROM invites').all()) + JSON.stringify(db.prepare('SELECT * FROM events').all());
}

describe('tokens', () => {
  it('derives the same token from the same id and generation, and another after a resend', () => {
    const codec = new TokenCodec(KEY);
    const t = codec.render('abcdefghij', 0);
    expect(t).toHaveLength(TOKEN_LENGTH);
    expect(t).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(codec.render('abcdefghij', 0)).toBe(t);
    expect(codec.verify(t, 'abcdefghij', 0)).toBe(true);
    expect(codec.verify(t, 'abcdefghij', 1)).toBe(false);
    expect(new TokenCodec('x'.repeat(40)).verify(t, 'abcdefghij', 0)).toBe(false);
  });

  it('rejects strings that are not shaped like tokens', () => {
    const codec = new TokenCodec(KEY);
    for (const bad of ['', 'short', 'ABCDEFGHIJ' + 'a'.repeat(24), 'abcdefghij' + 'a'.repeat(23), 'abcdefghij' + '+'.repeat(24)]) {
      expect(codec.idOf(bad)).toBeUndefined();
    }
  });
});

describe('invite ids', () => {
  it('start with the second they were made in, so that ids of one moment sit together, and end at random', () => {
    // the start of a 2^20-second cycle of the prefix
    const t = Math.floor(Date.UTC(2026, 10, 21, 12) / 1000 / 2 ** 20) * 2 ** 20 * 1000;
    const same = Array.from({ length: 200 }, () => newInviteId(t + 999));
    expect(same.every(isInviteId)).toBe(true);
    expect(new Set(same.map((id) => id.slice(0, 4))).size).toBe(1);
    // 30 random bits: 200 ids of one second all differ
    expect(new Set(same).size).toBe(200);
    expect(new Set(same.map((id) => id.slice(4))).size).toBe(200);
    // later seconds sort later, until the 20-bit prefix comes round (about 12 days)
    const later = [1, 60, 3_600, 86_400, 11 * 86_400].map((s) => newInviteId(t + s * 1000).slice(0, 4));
    expect([same[0].slice(0, 4), ...later]).toEqual([same[0].slice(0, 4), ...later].sort());
    expect(newInviteId(t + 2 ** 20 * 1000).slice(0, 4)).toBe(same[0].slice(0, 4));
  });

  it('draws the random characters of ids evenly from the alphabet', () => {
    const drawn = randomIdChars(32_000);
    expect(drawn).toHaveLength(32_000);
    const counts = new Map<string, number>();
    for (const c of drawn) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect([...counts.keys()].sort().join('')).toBe(ID_ALPHABET);
    // 1,000 expected of each; a fair draw stays within ±20 % (over 6 standard deviations)
    expect(Math.min(...counts.values())).toBeGreaterThan(800);
    expect(Math.max(...counts.values())).toBeLessThan(1_200);
  });

  it('draws another id when the one drawn is taken', () => {
    const { service, db } = setup();
    const taken = service.create(admin, { kind: 'account', source: 'command' }).invite.id;
    const random = require('../../src/domain/random') as typeof import('../../src/domain/random');
    const realRandomBytes = random.secureRandomBytes;
    // The first draw of the id's random part repeats the taken id's (one byte per character, its
    // low five bits the index); the next is random again.
    const tail = taken.slice(4).split('').map((c) => ID_ALPHABET.indexOf(c));
    let repeated = false;
    const draw = jest.spyOn(random, 'secureRandomBytes').mockImplementation((n: number) => {
      if (repeated || n !== tail.length) return realRandomBytes(n);
      repeated = true;
      return Buffer.from(tail.map((v) => v + 32 * 5));
    });
    const made = service.create(admin, { kind: 'account', source: 'command' }).invite;
    draw.mockRestore();
    expect(repeated).toBe(true);
    expect(made.id).not.toBe(taken);
    expect(made.id.slice(0, 4)).toBe(taken.slice(0, 4));
    expect((db.prepare('SELECT count(*) AS n FROM invites').get() as { n: number }).n).toBe(2);
  });
});

describe('invite service', () => {
  it('stores nothing from which the token can be recovered', () => {
    const { db, service } = setup();
    const { links } = service.create(admin, { kind: 'contact-account', source: 'command' });
    const everything = dump(db);
    expect(everything).not.toContain(links.token);
    expect(everything).not.toContain(links.token.slice(10));
    expect(service.findByToken(links.token)?.id).toBe(links.token.slice(0, 10));
  });

  it('gives an admin an open contact-account invite with ibr=y when the bridge is installed', () => {
    const { service } = setup();
    const { invite, links } = service.create(admin, { kind: service.newInviteKind(admin), source: 'command' });
    expect(invite.state).toBe('open');
    expect(links.uri).toBe(`xmpp:admin@example.com?roster;preauth=${links.token};ibr=y`);
    expect(links.landingUrl).toBe(`https://invites.example.com/i/${links.token}`);
  });

  it('holds a user invite for approval, with a contact-only URI until then', () => {
    const { service, advance, now } = setup();
    const { invite, links } = service.create(alice, { kind: 'contact-account', source: 'command' });
    expect(invite.state).toBe('pending');
    expect(links.uri).toBe(`xmpp:alice@example.com?roster;preauth=${links.token}`);
    advance(DAY);
    const approved = service.approve(admin, invite.id);
    expect(approved.changed).toBe(true);
    expect(approved.invite.expiresAt).toBe(now() + 7 * DAY);
    const after = service.links(service.get(invite.id)!);
    expect(after.token).toBe(links.token);
    expect(after.uri).toBe(`${links.uri};ibr=y`);
    expect(service.approve(admin, invite.id).changed).toBe(false);
    expect(service.events(invite.id).map((e) => e.type)).toEqual(['created', 'approved']);
  });

  it('never offers ibr=y without the bridge', () => {
    const { service } = setup({ serverBridge: false });
    const { links } = service.create(admin, { kind: 'contact-account', source: 'command' });
    expect(links.uri).not.toContain('ibr=y');
  });

  it('makes register URIs for account invites, with the username when locked', () => {
    const { service } = setup();
    const plain = service.create(admin, { kind: 'account', source: 'create-account' });
    expect(plain.links.uri).toBe(`xmpp:example.com?register;preauth=${plain.links.token}`);
    const locked = service.create(admin, { kind: 'account', username: 'Bob', source: 'create-account' });
    expect(locked.invite.kind).toBe('account-locked');
    expect(locked.links.uri).toBe(`xmpp:bob@example.com?register;preauth=${locked.links.token}`);
  });

  it('refuses a second invite reserving the same username until the first ends', () => {
    const { db, service, advance } = setup();
    service.create(admin, { kind: 'account-locked', username: 'bob', source: 'create-account' });
    const before = dump(db);
    expect(() => service.create(admin, { kind: 'account-locked', username: 'BOB', source: 'create-account' })).toThrow(
      expect.objectContaining({ code: 'conflict' }),
    );
    expect(dump(db)).toBe(before);
    advance(8 * DAY);
    expect(service.create(admin, { kind: 'account-locked', username: 'bob', source: 'create-account' }).invite.state).toBe('open');
  });

  it('refuses usernames outside the repertoire, stating the rule', () => {
    const { service } = setup();
    for (const bad of ['.bob', 'bob.', 'bo b', 'bób', 'x'.repeat(65), 'a@b']) {
      expect(() => service.create(admin, { kind: 'account-locked', username: bad, source: 'cli' })).toThrow(/1 to 64 characters/);
    }
  });

  it('makes user invites contact-only when user invites may not create accounts', () => {
    const { service } = setup({ allowUserInvites: false });
    expect(service.newInviteKind(alice)).toBe('contact');
    const { invite, links } = service.create(alice, { kind: 'contact', source: 'command' });
    expect(invite.state).toBe('open');
    expect(links.uri).not.toContain('ibr=y');
    expect(() => service.create(alice, { kind: 'contact-account', source: 'command' })).toThrow(
      expect.objectContaining({ code: 'forbidden' }),
    );
  });

  it('holds even admin invites under approval: all, and lets an admin approve only others', () => {
    const { service } = setup({ approval: 'all' });
    const mine = service.create(admin, { kind: 'account', source: 'create-account' });
    expect(mine.invite.state).toBe('pending');
    expect(() => service.approve(admin, mine.invite.id)).toThrow(expect.objectContaining({ code: 'forbidden' }));
    expect(service.approve({ kind: 'user', jid: 'root@example.com', isAdmin: true }, mine.invite.id).changed).toBe(true);
  });

  it('approves operator invites at creation', () => {
    const { service } = setup({ approval: 'all' });
    expect(service.create(operator, { kind: 'account', source: 'cli' }).invite.state).toBe('open');
  });

  it('lets an owner revoke their own invite but not see someone else’s', () => {
    const { service } = setup({ approval: 'none' });
    const { invite } = service.create(alice, { kind: 'contact-account', source: 'command' });
    const mallory: Actor = { kind: 'user', jid: 'mallory@example.com', isAdmin: false };
    expect(() => service.revoke(mallory, invite.id)).toThrow(expect.objectContaining({ code: 'invite-not-found' }));
    expect(service.revoke(alice, invite.id).invite.state).toBe('revoked');
    expect(service.revoke(alice, invite.id).changed).toBe(false);
  });

  it('voids the previous token on resend', () => {
    const { service } = setup({ approval: 'none' });
    const { invite, links } = service.create(alice, { kind: 'contact-account', source: 'command' });
    const again = service.resend(alice, invite.id);
    expect(again.links.token).not.toBe(links.token);
    expect(service.findByToken(links.token)).toBeUndefined();
    expect(service.findByToken(again.links.token)?.id).toBe(invite.id);
  });

  it('derives expired from pending or open past expiry when listing', () => {
    const { service, advance } = setup({ approval: 'none' });
    service.create(alice, { kind: 'contact-account', source: 'command' });
    advance(8 * DAY);
    expect(service.count({ state: 'expired' })).toBe(1);
    expect(service.count({ state: 'open' })).toBe(0);
  });

  it('never deletes invites or events', () => {
    const { db, service } = setup();
    service.create(admin, { kind: 'account', source: 'cli' });
    expect(() => db.prepare('DELETE FROM invites').run()).toThrow(/never deleted/);
    expect(() => db.prepare('DELETE FROM events').run()).toThrow(/never deleted/);
    expect(() => db.prepare("UPDATE events SET actor = 'x'").run()).toThrow(/never changed/);
  });
});

describe('migrations', () => {
  it('numbers migrations in order and records the version', () => {
    const db = openDatabase(':memory:');
    expect(db.pragma('user_version', { simple: true })).toBe(readMigrations().length);
  });

  it('refuses a database newer than the program', () => {
    const db = openDatabase(':memory:');
    db.pragma('user_version = 999');
    const { migrate } = jest.requireActual('../../src/store/database');
    expect(() => migrate(db)).toThrow(/newer than this program/);
  });
});

describe('duplicates, declines and opt-outs', () => {
  it('refuses a second pending or open invite from the same inviter to the same invitee, whatever the door', () => {
    const { service, db } = setup({ approval: 'none' });
    const first = service.create(alice, { kind: 'contact-account', source: 'command', email: 'Bob@Example.ORG' });
    const before = dump(db);
    expect(() => service.create(alice, { kind: 'contact-account', source: 'presence', email: 'BOB@example.org' })).toThrow(
      expect.objectContaining({ code: 'duplicate', detail: { id: first.invite.id, state: 'open' } }),
    );
    expect(dump(db)).toBe(before);
    // Another inviter may invite the same person.
    expect(service.create(admin, { kind: 'contact-account', source: 'command', email: 'bob@example.org' }).invite.state).toBe('open');
  });

  it('compares JID invitees by their normalised bare JID', () => {
    const { service } = setup({ approval: 'none' });
    service.create(alice, { kind: 'contact', source: 'presence', jid: 'Carol@Elsewhere.NET/phone' });
    expect(() => service.create(alice, { kind: 'contact', source: 'command', jid: 'carol@elsewhere.net' })).toThrow(
      expect.objectContaining({ code: 'duplicate' }),
    );
  });

  it('allows a new invite once the previous one expired, was revoked or declined', () => {
    const { service, advance } = setup({ approval: 'none' });
    const first = service.create(alice, { kind: 'contact-account', source: 'command', email: 'bob@example.org' });
    advance(8 * DAY);
    const second = service.create(alice, { kind: 'contact-account', source: 'command', email: 'bob@example.org' });
    expect(service.events(first.invite.id).map((e) => e.type)).toEqual(['created', 'expired']);
    service.revoke(alice, second.invite.id);
    const third = service.create(alice, { kind: 'contact-account', source: 'command', email: 'bob@example.org' });
    service.decline(third.links.token, 'not now');
    expect(service.create(alice, { kind: 'contact-account', source: 'command', email: 'bob@example.org' }).invite.state).toBe('open');
  });

  it('enforces the rule in the database itself', () => {
    const { db, service } = setup({ approval: 'none' });
    service.create(alice, { kind: 'contact-account', source: 'command', email: 'bob@example.org' });
    expect(() =>
      db.prepare(`INSERT INTO invites (id, kind, state, source, created_at, expires_at, active_key) VALUES ('zzzzzzzzzz', 'contact', 'open', 'cli', 0, 1, 'alice@example.com|bob@example.org')`).run(),
    ).toThrow(/UNIQUE|unique constraint/);
  });

  it('declines an invite with a known invitee, telling the inviter, but not a shared link', () => {
    const { service } = setup({ approval: 'none' });
    const shared = service.create(alice, { kind: 'contact-account', source: 'command' });
    expect(() => service.decline(shared.links.token, null)).toThrow(expect.objectContaining({ code: 'forbidden' }));
    const personal = service.create(alice, { kind: 'contact-account', source: 'send', email: 'bob@example.org' });
    expect(service.decline(personal.links.token, 'I use Signal').state).toBe('declined');
    expect(service.events(personal.invite.id).at(-1)).toMatchObject({ type: 'declined', actor: 'bob@example.org', reason: 'I use Signal' });
  });

  it('honours "never invite me again" for every inviter, storing only a keyed hash', () => {
    const { service, db } = setup({ approval: 'none' });
    const personal = service.create(alice, { kind: 'contact-account', source: 'send', email: 'Bob@example.org' });
    service.decline(personal.links.token, null, true);
    expect(JSON.stringify(db.prepare('SELECT * FROM opt_outs').all())).not.toMatch(/bob/i);
    for (const who of [alice, admin]) {
      expect(() => service.create(who, { kind: 'contact-account', source: 'send', email: 'BOB@example.org' })).toThrow(
        expect.objectContaining({ code: 'opted-out' }),
      );
    }
  });
});

describe('approval and opt-outs', () => {
  it('refuses to approve an invite whose invitee opted out while it waited', () => {
    const { service } = setup();
    const waiting = service.create(alice, { kind: 'contact-account', source: 'send', email: 'bob@example.org' });
    const other = service.create(admin, { kind: 'contact-account', source: 'send', email: 'bob@example.org' });
    service.decline(other.links.token, null, true);
    expect(() => service.approve(admin, waiting.invite.id)).toThrow(expect.objectContaining({ code: 'opted-out' }));
    expect(service.get(waiting.invite.id)?.state).toBe('pending');
  });
});
