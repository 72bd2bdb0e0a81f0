/**
 * The CLI, run in-process against a real SQLite file: output, --json shape, exit codes, and that a
 * refused command leaves the database unchanged.
 */
import { cleanText } from '../../src/domain/text';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { run } from '../../src/cli';
import { rawTestConfig, TEST_TOKEN_KEY, TEST_SECRET } from '../support/fixtures';

let dir: string;
let configFile: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xmpp-invites-cli-'));
  configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, stringify(rawTestConfig({ database: './invites.sqlite' })));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function dump(): string {
  const db = new Database(join(dir, 'invites.sqlite'), { readonly: true });
  try {
    return JSON.stringify(db.prepare('SELECT * FROM invites ORDER BY id').all()) + JSON.stringify(db.prepare('SELECT * FROM events ORDER BY id').all());
  } finally {
    db.close();
  }
}

describe('xmpp-invites CLI', () => {
  it('creates an approved account invite and prints its URI and landing URL', async () => {
    const r = await cli('invite', 'create', '--config', configFile, '--kind', 'account', '--uses', '3');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^uri: +xmpp:localhost\?register;preauth=[A-Za-z0-9_-]{34}$/m);
    expect(r.out).toMatch(/^landing: +https:\/\/invites\.example\.org\/i\/[A-Za-z0-9_-]{34}$/m);
    expect(r.out).toMatch(/^state: +open$/m);
  });

  it('lists invites with the words of the commands: the operator, the invitee, dates in UTC', async () => {
    await cli('invite', 'create', '--config', configFile, '--kind', 'account-locked', '--username', 'carol');
    await cli('invite', 'create', '--config', configFile, '--kind', 'contact', '--inviter', 'alice@localhost', '--email', 'bob@example.org');
    const lines = (await cli('invite', 'list', '--config', configFile)).out.split('\n');
    expect(lines[0].split(/ {2,}/)).toEqual(['ID', 'KIND', 'STATE', 'DELIVERY', 'INVITER', 'INVITEE', 'CREATED', 'EXPIRES', 'USES']);
    const date = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC';
    expect(lines).toHaveLength(3);
    expect(lines.find((l) => l.includes(' contact '))).toMatch(new RegExp(`^[a-z2-9]{10} +contact +open +queued +alice@localhost +bob@example\\.org +${date} +${date} +0/1$`));
    expect(lines.find((l) => l.includes(' account-locked '))).toMatch(new RegExp(`^[a-z2-9]{10} +account-locked +open +none +the operator +account carol +${date} +${date} +0/1$`));
  });

  it('accepts options anywhere after the subcommand', async () => {
    const r = await cli('invite', '--kind', 'account-locked', 'create', '--username', 'bob', '--config', configFile);
    // "create" stands after an option here: it is not a subcommand, so usage is wrong.
    expect(r.code).toBe(2);
    const ok = await cli('invite', 'create', '--username', 'bob', '--config', configFile, '--kind', 'account-locked');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/xmpp:bob@localhost\?register;preauth=/);
  });

  it('lists invites as JSON with the contract’s fields and never a token', async () => {
    const created = await cli('invite', 'create', '--config', configFile, '--kind', 'contact', '--inviter', 'Alice@Localhost', '--email', 'bob@example.org', '--note', 'hi');
    const token = /preauth=([A-Za-z0-9_-]+)/.exec(created.out)![1];
    const r = await cli('invite', 'list', '--json', '--config', configFile);
    expect(r.code).toBe(0);
    const list = JSON.parse(r.out);
    expect(list).toHaveLength(1);
    expect(Object.keys(list[0]).sort()).toEqual(
      ['id', 'kind', 'state', 'delivery', 'inviter', 'invitee_email', 'invitee_jid', 'created', 'expires', 'uses', 'max_uses'].sort(),
    );
    expect(list[0]).toMatchObject({ kind: 'contact', state: 'open', inviter: 'alice@localhost', invitee_email: 'bob@example.org', uses: 0, max_uses: 1 });
    expect(r.out).not.toContain(token);
    expect(r.out).not.toContain(token.slice(10));
  });

  it('filters the list by state and inviter', async () => {
    await cli('invite', 'create', '--config', configFile, '--kind', 'contact', '--inviter', 'alice@localhost');
    await cli('invite', 'create', '--config', configFile, '--kind', 'account');
    expect(JSON.parse((await cli('invite', 'list', '--json', '--inviter', 'alice@localhost', '--config', configFile)).out)).toHaveLength(1);
    expect(JSON.parse((await cli('invite', 'list', '--json', '--state', 'revoked', '--config', configFile)).out)).toHaveLength(0);
    expect((await cli('invite', 'list', '--state', 'gone', '--config', configFile)).code).toBe(2);
  });

  it('shows an invite and its log, and revokes it once', async () => {
    const created = await cli('invite', 'create', '--config', configFile, '--kind', 'account');
    const id = /^id: +(\S+)$/m.exec(created.out)![1];
    expect((await cli('invite', 'show', id, '--config', configFile)).out).toMatch(/^state: +open$/m);
    const revoked = await cli('invite', 'revoke', id, '--reason', 'sent to the wrong person', '--config', configFile);
    expect(revoked).toMatchObject({ code: 0, out: `${id}: revoked` });
    const log = await cli('invite', 'log', id, '--config', configFile);
    expect(log.out).toMatch(/created +operator/);
    expect(log.out).toMatch(/revoked +operator +reason: sent to the wrong person/);
    expect((await cli('invite', 'revoke', id, '--config', configFile)).out).toBe(`${id}: already revoked`);
  });

  it('stores notes and reasons from the command line without control characters; a reason of nothing else is missing', async () => {
    const created = await cli('invite', 'create', '--config', configFile, '--kind', 'account', '--note', 'for \u001b[31mBob\u0007');
    const id = /^id: +(\S+)$/m.exec(created.out)![1];
    expect((await cli('invite', 'show', id, '--config', configFile)).out).toMatch(/^note: +for \[31mBob$/m);
    const before = dump();
    const r = await cli('invite', 'reject', id, '--reason', '\u001b\u0007', '--config', configFile);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/needs --reason/);
    expect(dump()).toBe(before);
    await cli('invite', 'revoke', id, '--reason', 'wrong\u0000 person\u009b', '--config', configFile);
    expect((await cli('invite', 'log', id, '--config', configFile)).out).toMatch(/reason: wrong person$/m);
  });

  it('approves and rejects pending invites; reject needs a reason', async () => {
    const created = await cli('invite', 'create', '--config', configFile, '--kind', 'account');
    const id = /^id: +(\S+)$/m.exec(created.out)![1];
    const before = dump();
    expect((await cli('invite', 'reject', id, '--config', configFile)).code).toBe(2);
    expect(dump()).toBe(before);
    const r = await cli('invite', 'reject', id, '--reason', 'no', '--config', configFile);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is open and cannot be rejected/);
    expect(dump()).toBe(before);
  });

  it('resends with a new token and voids the old one', async () => {
    const created = await cli('invite', 'create', '--config', configFile, '--kind', 'account');
    const id = /^id: +(\S+)$/m.exec(created.out)![1];
    const again = await cli('invite', 'resend', id, '--config', configFile);
    expect(again.code).toBe(0);
    expect(/preauth=(\S+)/.exec(again.out)![1]).not.toBe(/preauth=(\S+)/.exec(created.out)![1]);
  });

  it.each([
    [['invite', 'create', '--kind', 'nonsense'], /--kind must be one of/],
    [['invite', 'create'], /--kind is required/],
    [['invite', 'create', '--kind', 'account', '--expire', '7x'], /--expire: not a duration/],
    [['invite', 'create', '--kind', 'account', '--uses', '0'], /--uses must be/],
    [['invite', 'create', '--kind', 'account', '--email', 'a@x.org, b@y.org'], /not a single e-mail address/],
    [['invite', 'create', '--kind', 'account', '--bogus'], /Unknown option/],
    [['invite', 'show'], /Which invite/],
    [['invite', 'show', 'not-an-id!'], /Not an invite id/],
    [['invite', 'frobnicate'], /unknown command/],
  ])('refuses %j with exit 2 and changes nothing', async (argv, message) => {
    await cli('invite', 'create', '--config', configFile, '--kind', 'account');
    const before = dump();
    const r = await cli(...argv, '--config', configFile);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(dump()).toBe(before);
  });

  it('refuses a contact invite without an inviter with exit 1, changing nothing', async () => {
    await cli('invite', 'create', '--config', configFile, '--kind', 'account');
    const before = dump();
    const r = await cli('invite', 'create', '--kind', 'contact', '--config', configFile);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/needs an inviter/);
    expect(dump()).toBe(before);
  });

  it('reports an unknown invite id with exit 1', async () => {
    const r = await cli('invite', 'show', 'abcdefghij', '--config', configFile);
    expect(r).toMatchObject({ code: 1, err: expect.stringMatching(/No invite abcdefghij/) });
  });

  it('needs a config: exit 2 naming --config and XMPP_INVITES_CONFIG', async () => {
    const r = await cli('invite', 'list');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--config FILE or set XMPP_INVITES_CONFIG/);
    const serve = await cli('serve');
    expect(serve.code).toBe(2);
  });

  it('reads the config path from XMPP_INVITES_CONFIG', async () => {
    const out: string[] = [];
    const code = await run(['config', 'check'], { out: (l) => out.push(l), err: () => {}, env: { XMPP_INVITES_CONFIG: configFile } });
    expect(code).toBe(0);
    expect(out.join()).toMatch(/valid/);
  });

  it('lists every config error at once with exit 2 and never prints a secret', async () => {
    writeFileSync(
      configFile,
      stringify({ ...rawTestConfig(), token_key: 'short', bogus: 1, invites: { expiry: '7x' }, host: undefined }),
    );
    const r = await cli('config', 'check', '--config', configFile);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/token_key/);
    expect(r.err).toMatch(/bogus/);
    expect(r.err).toMatch(/invites\.expiry/);
    expect(r.err).toMatch(/host/);
    expect(r.err).not.toContain(TEST_SECRET);
    expect(r.err).not.toContain(TEST_TOKEN_KEY);
  });

  it('validates the committed example config', async () => {
    const r = await cli('config', 'check', '--config', join(__dirname, '../../config/xmpp-invites.example.yaml'));
    expect(r.code).toBe(0);
  });

  describe('text from strangers reaches the terminal visibly, never as control sequences', () => {
    // SGR colour, an OSC 8 hyperlink, a C1 CSI (U+009B), DEL, a newline forging a line, a bidi override.
    const HOSTILE = '\x1b[31mred\x1b[0m \x1b]8;;https://evil.example/\x07click\x1b]8;;\x07 \u009b2J del\x7f\nstate:    approved \u202egnp.exe';
    /** C0, DEL, C1, line separators or bidi controls within a printed line. */
    const RAW = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
    const rawLines = (printed: string) => printed.split('\n').filter((line) => RAW.test(line));

    async function hostileInvite() {
      const created = await cli('invite', 'create', '--config', configFile, '--kind', 'contact', '--inviter', 'alice@localhost', '--note', HOSTILE);
      expect(created.code).toBe(0);
      return /^id: +(\S+)$/m.exec(created.out)![1];
    }

    it('invite show renders the note with \\x and U+ notation, on one line', async () => {
      const id = await hostileInvite();
      const r = await cli('invite', 'show', id, '--config', configFile);
      expect(r.code).toBe(0);
      expect(rawLines(r.out)).toEqual([]);
      const note = r.out.split('\n').filter((l) => l.startsWith('note:'));
      expect(note).toEqual([
        // the door removed what XML forbids (ESC, BEL, C1, DEL); what it keeps is shown visibly
        'note:                [31mred[0m ]8;;https://evil.example/click]8;; 2J del\\x0astate:    approved <U+202E>gnp.exe',
      ]);
      // the forged line is not a line of its own
      expect(r.out.split('\n').filter((l) => l.startsWith('state:'))).toHaveLength(1);
    });

    it('invite log renders reasons visibly, and --json keeps them exact', async () => {
      const id = await hostileInvite();
      expect((await cli('invite', 'revoke', id, '--reason', HOSTILE, '--config', configFile)).code).toBe(0);
      const r = await cli('invite', 'log', id, '--config', configFile);
      expect(rawLines(r.out)).toEqual([]);
      expect(r.out).toContain('reason: [31mred[0m');
      expect(r.out).toContain('del\\x0astate:    approved <U+202E>gnp.exe');
      expect(r.out.split('\n')).toHaveLength(2);
      const json = await cli('invite', 'log', id, '--json', '--config', configFile);
      const events = JSON.parse(json.out) as { type: string; reason: string | null }[];
      expect(events.find((e) => e.type === 'revoked')!.reason).toBe(cleanText(HOSTILE));
    });

    it('an error message carrying controls is rendered visibly too', async () => {
      const r = await cli('invite', 'create', '--config', configFile, '--kind', 'contact', '--inviter', 'x\x1b]0;pwned\x07@localhost');
      expect(r.code).toBe(2);
      expect(rawLines(r.err)).toEqual([]);
      expect(r.err).toContain('\\x1b]0;pwned\\x07');
    });
  });
});

describe('xmpp-invites stats', () => {
  it('shows the held claims and the age of the oldest', async () => {
    expect((await cli('stats', '--config', configFile)).out).toMatch(/^Registrations not settled yet: none held$/m);
    const db = new Database(join(dir, 'invites.sqlite'));
    const at = Date.now() - 90 * 60_000;
    db.prepare(`INSERT INTO claims (id, invite_id, username, door, state, created_at) VALUES ('c1', NULL, 'zed', 'web', 'held', ?)`).run(at);
    db.close();
    const r = await cli('stats', '--config', configFile);
    expect(r.out).toMatch(/^Registrations not settled yet: 1 held, the oldest for 1 h 30 min \(since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$/m);
    expect(JSON.parse((await cli('stats', '--json', '--config', configFile)).out).heldClaims).toEqual({ count: 1, oldestAt: at });
  });
});

describe('invite create --kind reset with the ejabberd-api provisioner (the CLI asks the server itself)', () => {
  it('makes no link when the server cannot be asked, saying why', async () => {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    writeFileSync(
      configFile,
      stringify(rawTestConfig({ database: './invites.sqlite', registration: { provisioner: { type: 'ejabberd-api', url: 'http://127.0.0.1:9/api' } } })),
    );
    const r = await cli('invite', 'create', '--config', configFile, '--kind', 'reset', '--username', 'alice');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^xmpp-invites invite create: localhost could not say whether alice@localhost exists: .+; no reset link made$/);
    const db = new Database(join(dir, 'invites.sqlite'), { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM password_resets').get()).toEqual({ n: 0 });
      // Asked directly: no question to the running service.
      expect(db.prepare('SELECT count(*) AS n FROM account_checks').get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});
