/**
 * JIDs compared as the servers compare them (nodeprep, nameprep, resourceprep): the stringprep
 * profiles on vectors, then the three rules that depend on it (opt-out, duplicate, per-recipient
 * limit) with addresses that differ only in what the server folds away.
 */
import Database from 'better-sqlite3';
import { normalizeBareJid, parseBareJid } from '../../src/domain/jid';
import { nameprep, nodeprep, resourceprep } from '../../src/domain/stringprep';
import type { Actor } from '../../src/domain/types';
import { inviteServiceFor } from '../../src/services';
import { TokenCodec } from '../../src/domain/tokens';
import { migrate, openDatabase, readMigrations } from '../../src/store/database';
import { openTestStore } from '../support/engine';
import { testConfig } from '../support/fixtures';

describe('nodeprep', () => {
  test.each([
    ['Bob', 'bob'],
    ['straße', 'strasse'],
    ['STRASSE', 'strasse'],
    // final sigma and capital sigma fold to σ
    ['σοφος', 'σοφοσ'],
    ['ΣΟΦΟΣ', 'σοφοσ'],
    // full-width letters (NFKC) and full-width capitals (B.2, then NFKC)
    ['ｂｏｂ', 'bob'],
    ['ＢＯＢ', 'bob'],
    ['ﬁnn', 'finn'],
    // B.1: soft hyphen and zero-width space map to nothing
    ['bo\u00adb\u200b', 'bob'],
    // B.2 of U+0130 and NFKC closure: ℡ ㏆ 𝞻 (RFC 3491 test vectors)
    ['\u0130', 'i\u0307'],
    ['\u2121\u33c6\u{1d7bb}', 'telc\u2215kg\u03c3'],
    ['\u1fb7', '\u1fb6\u03b9'],
    // right-to-left text alone is fine
    ['\u05d0\u05d1', '\u05d0\u05d1'],
  ])('%s is %s', (input, output) => {
    expect(nodeprep(input)).toBe(output);
  });

  test.each([
    ['a space', 'a b'],
    ['a no-break space (C.1.2)', 'a\u00a0b'],
    ['an ASCII control', 'a\u0001'],
    ['DEL', 'a\u007f'],
    ['a C1 control', 'a\u0085'],
    ['a bidi override (C.8)', 'a\u202eb'],
    ['private use (C.3)', 'a\ue000'],
    ['a non-character (C.4)', 'a\ufffe'],
    ['a lone surrogate (C.5)', 'a\ud800'],
    ['a tag character (C.9)', 'a\u{e0041}'],
    ['" & \' / : < > @', 'a@b'],
    ['right-to-left mixed with left-to-right', '\u05d0a\u05d1'],
    ['right-to-left text ending in a digit', '\u05d0\u05d11'],
  ])('refuses %s', (_what, input) => {
    expect(nodeprep(input)).toBeUndefined();
  });
});

test('printable ASCII gives what the tables give (it takes a shorter path)', () => {
  for (const prep of [nodeprep, nameprep, resourceprep]) {
    for (let cp = 0x20; cp <= 0x7e; cp++) {
      const ch = String.fromCharCode(cp);
      const alone = prep(ch);
      // é maps to itself and is left-to-right, so it only forces the walk through the tables
      expect(prep(`${ch}é`)).toBe(alone === undefined ? undefined : `${alone}é`);
    }
  }
});

describe('nameprep and resourceprep', () => {
  test('nameprep folds case and width, and allows what nodeprep forbids in a domain label', () => {
    expect(nameprep('ＥＸＡＭＰＬＥ.Org')).toBe('example.org');
    expect(nameprep('Bücher.example')).toBe('bücher.example');
    expect(nameprep('a\u202eb')).toBeUndefined();
  });

  test('resourceprep keeps case and spaces, and refuses controls', () => {
    expect(resourceprep('Home Phone')).toBe('Home Phone');
    expect(resourceprep('ｐｈｏｎｅ')).toBe('phone');
    expect(resourceprep('phone\u0007')).toBeUndefined();
  });
});

describe('parseBareJid', () => {
  test('normalises localpart and domain and drops a valid resource', () => {
    expect(normalizeBareJid('Straße@ＥＬＳＥＷＨＥＲＥ.net/Ｐhone')).toBe('strasse@elsewhere.net');
    expect(normalizeBareJid('ΣΟΦΟΣ@example.org.')).toBe('σοφοσ@example.org');
  });

  test('refuses a JID whose parts the profiles refuse, or that is empty where it may not be', () => {
    for (const bad of ['a b@example.org', 'carol@exa mple.org', 'carol@example.org/\u0000', 'carol@example.org/', '@example.org', 'carol@', 'x\u202e@example.org', '\u00ad@example.org']) {
      expect(parseBareJid(bad)).toBeUndefined();
    }
  });
});

describe('rules keyed on a JID match it as the server does', () => {
  const alice: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
  const admin: Actor = { kind: 'user', jid: 'admin@localhost', isAdmin: true };
  // Each pair: what was stored first, and a spelling the server delivers to the same account.
  const SAME = [
    ['strasse@elsewhere.net', 'Straße@elsewhere.net'],
    ['σοφοσ@elsewhere.net', 'ΣΟΦΟς@elsewhere.net'],
    ['bob@elsewhere.net', 'ｂｏｂ@ＥＬＳＥＷＨＥＲＥ.net'],
    ['carol@elsewhere.net', 'CaRoL@ElseWhere.Net'],
  ];

  function setup(limits: Record<string, unknown> = {}) {
    const db = openTestStore();
    const invites = inviteServiceFor(testConfig({ invites: { approval: 'none' }, limits }), db, { clock: () => Date.UTC(2026, 10, 21, 12) });
    const create = (who: Actor, jid: string) => invites.create(who, { kind: 'contact', source: 'presence', jid });
    return { db, invites, create, rows: () => JSON.stringify(db.prepare('SELECT * FROM invites').all()) };
  }

  test.each(SAME)('an opt-out of %s refuses %s', (first, second) => {
    const { invites, create, rows } = setup();
    invites.decline(create(alice, first).links.token, null, true);
    const before = rows();
    expect(() => create(admin, second)).toThrow(expect.objectContaining({ code: 'opted-out' }));
    expect(rows()).toBe(before);
  });

  test.each(SAME)('an open invite to %s makes one to %s a duplicate', (first, second) => {
    const { create, rows } = setup();
    create(alice, first);
    const before = rows();
    expect(() => create(alice, second)).toThrow(expect.objectContaining({ code: 'duplicate' }));
    expect(rows()).toBe(before);
  });

  test.each(SAME)('the per-recipient limit counts %s and %s as one recipient', (first, second) => {
    const { create, rows } = setup({ per_recipient_per_day: 1 });
    create(alice, first);
    const before = rows();
    expect(() => create(admin, second)).toThrow(expect.objectContaining({ code: 'limit-reached' }));
    expect(rows()).toBe(before);
  });

  test('the stored invitee is the normalised JID', () => {
    const { create } = setup();
    expect(create(alice, 'Straße@ＥＬＳＥＷＨＥＲＥ.net/phone').invite).toMatchObject({
      inviteeJid: 'strasse@elsewhere.net',
      inviteeKey: 'strasse@elsewhere.net',
      activeKey: 'alice@localhost|strasse@elsewhere.net',
    });
  });
});

test('admins in the config are compared as the server sends their JIDs', () => {
  expect(testConfig({ admins: ['Straße@localhost', 'ＡＤＭＩＮ@localhost'] }).admins).toEqual(['strasse@localhost', 'admin@localhost']);
});

describe('migration 10 rebuilds the stored JID keys', () => {
  const config = testConfig({ invites: { approval: 'none' } });
  const tokens = new TokenCodec(config.tokenKey);
  const context = { addressHash: (key: string) => tokens.addressHash(key) };

  /** A database at version 9 holding invites keyed the old way (NFKC and lower-case only). */
  function oldDatabase() {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, readMigrations().slice(0, 9));
    const insert = db.prepare(
      `INSERT INTO invites (id, kind, state, inviter, source, invitee_jid, invitee_key, active_key, created_at, expires_at)
       VALUES (?, 'contact', ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const now = Date.now();
    const later = now + 86_400_000;
    // declined with "never again": the opt-out holds the hash of the old key
    insert.run('2222222222', 'declined', 'alice@localhost', 'presence', 'straße@elsewhere.net', 'straße@elsewhere.net', null, now, later);
    db.prepare('INSERT INTO opt_outs (address_hash, created_at, invite_id) VALUES (?, ?, ?)').run(tokens.addressHash('straße@elsewhere.net'), now, '2222222222');
    // two live invites from one inviter that name one person once keys are rebuilt
    insert.run('3333333333', 'open', 'alice@localhost', 'presence', 'σοφος@elsewhere.net', 'σοφος@elsewhere.net', 'alice@localhost|σοφος@elsewhere.net', now, later);
    insert.run('4444444444', 'open', 'alice@localhost', 'command', 'σοφοσ@elsewhere.net', 'σοφοσ@elsewhere.net', 'alice@localhost|σοφοσ@elsewhere.net', now + 1, later);
    // made by the CLI with --inviter, normalised the old way
    insert.run('5555555555', 'open', 'ｂｅｒｔ@localhost'.normalize('NFKC'), 'cli', 'ｃａｒｌ@elsewhere.net'.normalize('NFKC'), 'carl@elsewhere.net', 'bert@localhost|carl@elsewhere.net', now, later);
    insert.run('6666666666', 'open', 'maß@localhost', 'cli', 'dora@elsewhere.net', 'dora@elsewhere.net', 'maß@localhost|dora@elsewhere.net', now, later);
    return db;
  }

  const keys = (db: ReturnType<typeof oldDatabase>) =>
    db.prepare('SELECT id, inviter, invitee_jid, invitee_key, active_key FROM invites ORDER BY id').all();

  test('keys follow nodeprep; the older of two live invites keeps the pair; the opt-out holds', () => {
    const db = oldDatabase();
    migrate(db, readMigrations().slice(0, 10), context);
    expect(db.pragma('user_version', { simple: true })).toBe(10);
    expect(keys(db)).toEqual([
      { id: '2222222222', inviter: 'alice@localhost', invitee_jid: 'strasse@elsewhere.net', invitee_key: 'strasse@elsewhere.net', active_key: null },
      { id: '3333333333', inviter: 'alice@localhost', invitee_jid: 'σοφοσ@elsewhere.net', invitee_key: 'σοφοσ@elsewhere.net', active_key: null },
      { id: '4444444444', inviter: 'alice@localhost', invitee_jid: 'σοφοσ@elsewhere.net', invitee_key: 'σοφοσ@elsewhere.net', active_key: 'alice@localhost|σοφοσ@elsewhere.net' },
      { id: '5555555555', inviter: 'bert@localhost', invitee_jid: 'carl@elsewhere.net', invitee_key: 'carl@elsewhere.net', active_key: 'bert@localhost|carl@elsewhere.net' },
      { id: '6666666666', inviter: 'mass@localhost', invitee_jid: 'dora@elsewhere.net', invitee_key: 'dora@elsewhere.net', active_key: 'mass@localhost|dora@elsewhere.net' },
    ]);
    migrate(db, readMigrations(), context);
    const invites = inviteServiceFor(config, db);
    const bob: Actor = { kind: 'user', jid: 'bob@localhost', isAdmin: false };
    for (const jid of ['strasse@elsewhere.net', 'Straße@elsewhere.net']) {
      expect(() => invites.create(bob, { kind: 'contact', source: 'presence', jid })).toThrow(expect.objectContaining({ code: 'opted-out' }));
    }
    expect(() => invites.create({ kind: 'user', jid: 'alice@localhost', isAdmin: false }, { kind: 'contact', source: 'presence', jid: 'ΣΟΦΟς@elsewhere.net' })).toThrow(
      expect.objectContaining({ code: 'duplicate' }),
    );
  });

  test('without the token key it refuses to run where an opt-out must be carried over, and changes nothing', () => {
    const db = oldDatabase();
    const before = JSON.stringify(keys(db));
    expect(() => migrate(db, readMigrations().slice(0, 10))).toThrow(/needs the token key/);
    expect(db.pragma('user_version', { simple: true })).toBe(9);
    expect(JSON.stringify(keys(db))).toBe(before);
  });

  test('a database without invites migrates without the token key', () => {
    expect(openDatabase(':memory:').pragma('user_version', { simple: true })).toBe(readMigrations().length);
  });
});
