import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  ConfigError,
  DEFAULT_CLIENTS,
  configSecrets,
  loadConfig,
  parseConfig,
  parseDuration,
  redactConfig,
  type Config,
} from '../../src/config';

const EXAMPLE = path.join(__dirname, '..', '..', 'config', 'xmpp-invites.example.yaml');
const BASE = '/srv/xmpp-invites';
const SECRET = 'component-secret-s3cr3t';
const TOKEN_KEY = 'token-key-0123456789abcdefghijklmnopq';

const MINIMAL = `
component:
  domain: invites.example.com
  secret: ${SECRET}
host: example.com
token_key: ${TOKEN_KEY}
web:
  public_url: https://invites.example.com
`;

function parse(text: string, env: NodeJS.ProcessEnv = {}): Config {
  return parseConfig(text, { baseDir: BASE, env });
}

/** The errors of a config that must not validate. */
function errorsOf(text: string, env: NodeJS.ProcessEnv = {}): { path: string; message: string }[] {
  try {
    parse(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).errors;
  }
  throw new Error('the config validated');
}

function pathsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  return errorsOf(text, env).map((e) => e.path);
}

/** MINIMAL with extra YAML appended (later top-level sections are added, not merged). */
function withExtra(extra: string): string {
  return MINIMAL + extra;
}

/** MINIMAL with one `web:` section replaced. */
function withWeb(web: string): string {
  return MINIMAL.replace('web:\n  public_url: https://invites.example.com\n', web);
}

describe('the committed example', () => {
  it('validates as is, without any environment', () => {
    const cfg = loadConfig(EXAMPLE, {});
    expect(cfg.host).toBe('example.com');
    expect(cfg.component.domain).toBe('invites.example.com');
    expect(cfg.database).toBe(path.join(path.dirname(EXAMPLE), 'data', 'invites.sqlite'));
    expect(cfg.web.clients).toEqual(DEFAULT_CLIENTS);
    expect(cfg.limits).toEqual({ perUserOpen: 100, perUserPerDay: 50, inviteRequestsPerMinute: 10, requestsPerHour: 5, requestAfterReject: 30 * 86_400_000 });
  });

  it('names every key of the contract table', () => {
    const doc = parseYaml(fs.readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
    const keys: string[] = [];
    const walk = (o: Record<string, unknown>, prefix: string) => {
      for (const [k, v] of Object.entries(o)) {
        const p = prefix ? `${prefix}.${k}` : k;
        if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, p);
        else keys.push(p);
      }
    };
    walk(doc, '');
    expect(keys.sort()).toEqual(
      [
        'component.server', 'component.domain', 'component.secret', 'component.standby', 'host', 'admins', 'database',
        'site_name', 'token_key', 'invites.expiry', 'invites.allow_user_invites', 'invites.approval',
        'invites.max_uses', 'invites.reset_expiry', 'registration.mode', 'registration.requests', 'registration.request_reason',
        'registration.email_domains.allow', 'registration.email_domains.block', 'registration.requester_domains',
        'registration.server_bridge', 'registration.min_password_length',
        'registration.provisioner.type', 'registration.provisioner.url', 'presence.max_invitees',
        'presence.max_message_length', 'mail.from', 'mail.transport', 'mail.max_attempts',
        'mail.reminder_before', 'mail.bounce_address', 'mail.bounce_listen', 'web.listen', 'web.public_url', 'web.trusted_proxies', 'web.clients',
        'rooms.service', 'rooms.max_per_invite', 'limits.per_user_open', 'limits.per_user_per_day', 'limits.per_site_per_day',
        'limits.per_recipient_per_day', 'limits.registrations_per_hour',
        'limits.resend_after_no_answer', 'limits.reinvite_after_decline',
        'limits.invite_requests_per_minute', 'limits.requests_per_hour', 'limits.requests_per_day', 'limits.request_after_reject',
        'limits.min_account_age', 'limits.per_tree_open', 'limits.per_admin_per_day',
        'metrics.listen', 'api.keys', 'webhooks', 'limits.per_room_per_day',
      ].sort(),
    );
  });
});

describe('a minimal config', () => {
  it('gets every default of the contract table', () => {
    const cfg = parse(MINIMAL);
    expect(cfg).toEqual({
      component: { server: 'xmpp://127.0.0.1:5347', domain: 'invites.example.com', secret: SECRET, standby: false },
      host: 'example.com',
      admins: [],
      database: '/srv/xmpp-invites/data/invites.sqlite',
      siteName: 'example.com',
      tokenKey: TOKEN_KEY,
      invites: { expiry: 7 * 86_400_000, allowUserInvites: true, approval: 'non-admins', maxUses: 1, resetExpiry: 86_400_000 },
      registration: {
        mode: 'invite-only',
        requesterDomains: [],
        serverBridge: false,
        minPasswordLength: 8,
        requests: 'off',
        requestReason: 'optional',
        emailDomains: { allow: [], block: [] },
        provisioner: { type: 'xep-0133' },
      },
      presence: { maxInvitees: 20, maxMessageLength: 1000 },
      mail: { transport: { kind: 'file', dir: '/srv/xmpp-invites/outbox' }, maxAttempts: 8, reminderBefore: null },
      web: {
        listen: { host: '127.0.0.1', port: 8080 },
        publicUrl: 'https://invites.example.com',
        trustedProxies: [],
        clients: DEFAULT_CLIENTS,
      },
      metrics: {},
      api: { keys: [] },
      webhooks: [],
      rooms: { maxPerInvite: 10 },
      limits: { perUserOpen: 100, perUserPerDay: 50, inviteRequestsPerMinute: 10, requestsPerHour: 5, requestAfterReject: 30 * 86_400_000 },
    });
  });

  it('is deeply frozen', () => {
    const cfg = parse(MINIMAL);
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.web.listen)).toBe(true);
    expect(Object.isFrozen(cfg.web.clients[0].platforms)).toBe(true);
    expect(() => {
      (cfg.invites as { maxUses: number }).maxUses = 5;
    }).toThrow(TypeError);
  });

  it('treats an empty value as absent, so the key takes its default', () => {
    const cfg = parse(withExtra('admins:\ninvites:\n  expiry:\n'));
    expect(cfg.admins).toEqual([]);
    expect(cfg.invites.expiry).toBe(7 * 86_400_000);
  });
});

describe('values are normalised', () => {
  it('lower-cases domains and admin JIDs and removes duplicate admins', () => {
    const cfg = parse(
      MINIMAL.replace('host: example.com', 'host: Example.COM') +
        'admins: [Admin@Example.com, admin@example.com, boss@example.org]\n',
    );
    expect(cfg.host).toBe('example.com');
    expect(cfg.siteName).toBe('example.com');
    expect(cfg.admins).toEqual(['admin@example.com', 'boss@example.org']);
  });

  it('strips the trailing slash of web.public_url and parses web.listen', () => {
    const cfg = parse(withWeb('web:\n  public_url: https://example.com/invites/\n  listen: "[::1]:8443"\n'));
    expect(cfg.web.publicUrl).toBe('https://example.com/invites');
    expect(cfg.web.listen).toEqual({ host: '::1', port: 8443 });
  });

  it('accepts web.listen port 0, which binds any free port', () => {
    const cfg = parse(withWeb('web:\n  public_url: https://invites.example.com\n  listen: "127.0.0.1:0"\n'));
    expect(cfg.web.listen).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it('writes a tcp:// component server as xmpp://', () => {
    const cfg = parse(MINIMAL.replace('component:\n', 'component:\n  server: tcp://LocalHost:5275\n'));
    expect(cfg.component.server).toBe('xmpp://localhost:5275');
  });

  it('takes component.standby as a boolean, also from the environment', () => {
    expect(parse(MINIMAL.replace('component:\n', 'component:\n  standby: true\n')).component.standby).toBe(true);
    expect(parse(MINIMAL.replace('component:\n', 'component:\n  standby: env:STANDBY\n'), { STANDBY: 'true' }).component.standby).toBe(true);
    expect(errorsOf(MINIMAL.replace('component:\n', 'component:\n  standby: "yes"\n'))).toEqual([
      { path: 'component.standby', message: expect.stringMatching(/true or false/) },
    ]);
  });

  it('resolves the database and the file outbox against the base directory, absolute paths as given', () => {
    const cfg = parse(withExtra('database: /var/lib/x/db.sqlite\nmail:\n  transport: file:../spool\n'));
    expect(cfg.database).toBe('/var/lib/x/db.sqlite');
    expect(cfg.mail.transport).toEqual({ kind: 'file', dir: '/srv/spool' });
  });

  it('takes a PostgreSQL URL as the database as is, and keeps its password out of logs', () => {
    const cfg = parse(withExtra('database: postgresql://invites:s3cret@db.example.com:5432/invites\n'));
    expect(cfg.database).toBe('postgresql://invites:s3cret@db.example.com:5432/invites');
    expect(configSecrets(cfg)).toContain('s3cret');
    expect(JSON.stringify(redactConfig(cfg))).not.toContain('s3cret');
  });

  it('refuses a PostgreSQL URL without a database name, and other URLs, never showing a password', () => {
    const noName = errorsOf(withExtra('database: postgres://invites:s3cret@db.example.com\n'));
    expect(noName).toEqual([{ path: 'database', message: expect.stringMatching(/must name the database/) }]);
    expect(JSON.stringify(noName)).not.toContain('s3cret');
    const other = errorsOf(withExtra('database: mysql://invites:s3cret@db.example.com/invites\n'));
    expect(other).toEqual([{ path: 'database', message: expect.stringMatching(/SQLite file path or a PostgreSQL URL/) }]);
    expect(JSON.stringify(other)).not.toContain('s3cret');
  });

  it('keeps :memory: as the database', () => {
    expect(parse(withExtra('database: ":memory:"\n')).database).toBe(':memory:');
  });

  it('parses an smtps URL with credentials', () => {
    const cfg = parse(withExtra('mail:\n  from: Example Chat <invites@Example.com>\n  transport: smtps://bob%40example.com:p%40ss@mail.example.com\n'));
    expect(cfg.mail.from).toEqual({ name: 'Example Chat', address: 'invites@example.com' });
    expect(cfg.mail.transport).toEqual({
      kind: 'smtp', host: 'mail.example.com', port: 465, secure: true, requireTls: false, tlsNone: false,
      auth: { user: 'bob@example.com', pass: 'p@ss' },
    });
  });

  it('requires TLS for smtp with credentials unless ?tls=none', () => {
    const strict = parse(withExtra('mail:\n  from: invites@example.com\n  transport: smtp://u:p@mail.example.com:2525\n'));
    expect(strict.mail.transport).toMatchObject({ kind: 'smtp', port: 2525, secure: false, requireTls: true, tlsNone: false });
    const plain = parse(withExtra('mail:\n  from: invites@example.com\n  transport: smtp://u:p@127.0.0.1:25?tls=none\n'));
    expect(plain.mail.transport).toMatchObject({ requireTls: false, tlsNone: true });
    const anonymous = parse(withExtra('mail:\n  from: invites@example.com\n  transport: smtp://localhost\n'));
    expect(anonymous.mail.transport).toEqual({
      kind: 'smtp', host: 'localhost', port: 587, secure: false, requireTls: false, tlsNone: false,
    });
  });

  it('reads off as no reminder and a duration as one', () => {
    expect(parse(withExtra('mail:\n  reminder_before: off\n')).mail.reminderBefore).toBeNull();
    expect(parse(withExtra('mail:\n  reminder_before: 1d\n')).mail.reminderBefore).toBe(86_400_000);
  });

  it('keeps the limits that are set, and the shipped defaults of the others', () => {
    const cfg = parse(withExtra('limits:\n  per_user_open: 0\n  reinvite_after_decline: 4w\n'));
    expect(cfg.limits).toEqual({ perUserOpen: 0, perUserPerDay: 50, inviteRequestsPerMinute: 10, reinviteAfterDecline: 4 * 604_800_000, requestsPerHour: 5, requestAfterReject: 30 * 86_400_000 });
  });

  it('turns a limit off with off, also from the environment', () => {
    const cfg = parse(withExtra('limits:\n  per_user_open: off\n  per_user_per_day: env:PER_DAY\n  invite_requests_per_minute: off\n  per_site_per_day: off\n  reinvite_after_decline: off\n  requests_per_hour: off\n  request_after_reject: off\n'), { PER_DAY: 'off' });
    expect(cfg.limits).toEqual({});
  });

  it('replaces the built-in clients with the configured list', () => {
    const cfg = parse(withWeb('web:\n  public_url: https://invites.example.com\n  clients:\n    - name: Dino\n      platforms: [linux]\n      url: https://dino.im/\n'));
    expect(cfg.web.clients).toEqual([{ name: 'Dino', platforms: ['linux'], url: 'https://dino.im/' }]);
  });
});

describe('each kind of bad config is reported with its path', () => {
  const cases: [string, string, string, RegExp][] = [
    ['an unknown top-level key', 'colour: blue\n', 'colour', /unknown key/],
    ['an unknown nested key', 'invites:\n  expiery: 7d\n', 'invites.expiery', /did you mean expiry/],
    ['an unknown key in limits', 'limits:\n  per_hour: 3\n', 'limits.per_hour', /unknown key/],
    ['a wrong type', 'invites:\n  max_uses: many\n', 'invites.max_uses', /must be an integer/],
    ['a string for a boolean', 'invites:\n  allow_user_invites: "yes"\n', 'invites.allow_user_invites', /true or false/],
    ['a list where a mapping belongs', 'invites: [1, 2]\n', 'invites', /must be a mapping/],
    ['a bad duration', 'invites:\n  expiry: 7x\n', 'invites.expiry', /not a duration/],
    ['a bare number as a duration', 'invites:\n  expiry: 7\n', 'invites.expiry', /with a unit/],
    ['a zero expiry', 'invites:\n  expiry: 0d\n', 'invites.expiry', /longer than zero/],
    ['an integer out of range', 'invites:\n  max_uses: 0\n', 'invites.max_uses', /at least 1/],
    ['a negative limit', 'limits:\n  per_site_per_day: -1\n', 'limits.per_site_per_day', /at least 0/],
    ['a word for a limit', 'limits:\n  per_user_open: none\n', 'limits.per_user_open', /must be an integer.*; or off for no limit/],
    ['a bad enum', 'invites:\n  approval: admins\n', 'invites.approval', /none, non-admins, all/],
    ['a bad JID in admins', 'admins:\n  - admin@example.com\n  - admin@example.com/phone\n', 'admins[1]', /bare JID/],
    ['a domain JID in admins', 'admins: [example.com]\n', 'admins[0]', /bare JID/],
    ['a scheme in a domain', 'registration:\n  requester_domains: [https://anon.example.com]\n', 'registration.requester_domains[0]', /without a scheme/],
    ['a bad mail.from', 'mail:\n  from: "a@example.com, b@example.com"\n', 'mail.from', /single address/],
    ['a bad reminder', 'mail:\n  reminder_before: 8d\n', 'mail.reminder_before', /shorter than invites.expiry/],
    ['a bad trusted proxy', 'web:\n  public_url: https://invites.example.com\n  trusted_proxies: [10.0.0.0/8]\n', 'web.trusted_proxies[0]', /IPv4 or IPv6/],
    ['a bad component server', 'component:\n  domain: invites.example.com\n  secret: x\n  server: http://localhost:5347\n', 'component.server', /xmpp:\/\//],
    ['a component server without a port', 'component:\n  domain: invites.example.com\n  secret: x\n  server: xmpp://localhost\n', 'component.server', /port/],
  ];
  it.each(cases)('%s', (_what, extra, at, message) => {
    // Later sections are appended: drop MINIMAL's section of the same name when the case has one.
    let base = MINIMAL;
    const section = /^([a-z_]+):/.exec(extra)?.[1];
    if (section === 'web') base = withWeb('');
    if (section === 'component') base = MINIMAL.replace(`component:\n  domain: invites.example.com\n  secret: ${SECRET}\n`, '');
    const errors = errorsOf(base + extra);
    expect(errors).toContainEqual({ path: at, message: expect.stringMatching(message) });
  });

  it('names the path of a bad platform inside web.clients', () => {
    const errors = errorsOf(
      withWeb(
        'web:\n  public_url: https://invites.example.com\n  clients:\n    - {name: A, platforms: [android], url: "https://a.example"}\n    - {name: B, platforms: [amiga], url: "https://b.example", colour: red}\n',
      ),
    );
    expect(errors).toEqual([
      { path: 'web.clients[1].colour', message: expect.stringMatching(/unknown key/) },
      { path: 'web.clients[1].platforms[0]', message: expect.stringMatching(/android, ios, linux, macos, windows, web/) },
    ]);
  });

  it('lists every missing required key', () => {
    expect(pathsOf('site_name: Example\n')).toEqual([
      'component.domain',
      'component.secret',
      'host',
      'token_key',
      'web.public_url',
    ]);
  });

  it('refuses a short token_key', () => {
    const errors = errorsOf(MINIMAL.replace(TOKEN_KEY, 'short-key-only-20chr'));
    expect(errors).toEqual([{ path: 'token_key', message: expect.stringMatching(/at least 32 characters/) }]);
  });

  it.each([
    ['localhost'],
    ['127.0.0.1'],
    ['127.0.0.1:65536'],
    ['example.com:80'],
    ['[::zz]:80'],
    ['::1:80'],
  ])('refuses web.listen %s', (listen) => {
    expect(pathsOf(withWeb(`web:\n  public_url: https://invites.example.com\n  listen: "${listen}"\n`))).toEqual(['web.listen']);
  });

  it.each([
    ['ftp://mail.example.com'],
    ['smtp://mail.example.com?starttls=yes'],
    ['smtp://mail.example.com?tls=always'],
    ['smtps://u:p@mail.example.com?tls=none'],
    ['smtp://user@mail.example.com'],
    ['smtp://mail.example.com/path'],
    ['file:'],
  ])('refuses mail.transport %s', (transport) => {
    expect(pathsOf(withExtra(`mail:\n  from: invites@example.com\n  transport: "${transport}"\n`))).toEqual(['mail.transport']);
  });

  it('requires mail.from with an smtp transport', () => {
    expect(errorsOf(withExtra('mail:\n  transport: smtp://localhost:25\n'))).toEqual([
      { path: 'mail.from', message: expect.stringMatching(/required when mail.transport is an smtp/) },
    ]);
  });

  it('refuses prosody-bridge without server_bridge', () => {
    expect(errorsOf(withExtra('registration:\n  provisioner:\n    type: prosody-bridge\n'))).toEqual([
      { path: 'registration.provisioner.type', message: expect.stringMatching(/server_bridge: true/) },
    ]);
    expect(parse(withExtra('registration:\n  server_bridge: true\n  provisioner:\n    type: prosody-bridge\n')).registration.provisioner)
      .toEqual({ type: 'prosody-bridge' });
  });

  it('refuses ejabberd-api without a url', () => {
    expect(errorsOf(withExtra('registration:\n  provisioner:\n    type: ejabberd-api\n'))).toEqual([
      { path: 'registration.provisioner.url', message: expect.stringMatching(/required when registration.provisioner.type is ejabberd-api/) },
    ]);
    expect(parse(withExtra('registration:\n  provisioner:\n    type: ejabberd-api\n    url: http://127.0.0.1:5280/api/\n')).registration.provisioner)
      .toEqual({ type: 'ejabberd-api', url: 'http://127.0.0.1:5280/api' });
  });

  it('refuses a component domain equal to host', () => {
    expect(pathsOf(MINIMAL.replace('domain: invites.example.com', 'domain: example.com'))).toEqual(['component.domain']);
  });

  it('refuses a document that is not a mapping', () => {
    expect(pathsOf('- a\n- b\n')).toEqual(['(root)']);
    expect(pathsOf('')).toEqual(['(root)']);
  });

  it('reports YAML syntax errors with their line', () => {
    const errors = errorsOf('host: example.com\ninvites:\n  expiry: [7d\n');
    expect(errors[0].path).toBe('(yaml)');
    expect(errors[0].message).toMatch(/^line \d+, column \d+: /);
  });

  it('reports a duplicate key as a YAML error', () => {
    expect(errorsOf(withExtra('host: example.org\n'))[0]).toEqual({ path: '(yaml)', message: expect.stringMatching(/^line 9, column 1: /) });
  });
});

describe('several errors', () => {
  it('are reported at once, one per line of the message', () => {
    let error: ConfigError | undefined;
    try {
      parse(withExtra('colour: blue\ninvites:\n  expiry: 7\n  approval: maybe\nlimits:\n  per_user_open: -1\n'));
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.errors.map((e) => e.path)).toEqual(['colour', 'invites.expiry', 'invites.approval', 'limits.per_user_open']);
    expect(error!.message.split('\n')).toEqual(error!.errors.map((e) => `${e.path}: ${e.message}`));
  });
});

describe('env:NAME', () => {
  it('replaces a value by the environment variable, for strings, numbers and booleans', () => {
    const cfg = parse(
      MINIMAL.replace(`secret: ${SECRET}`, 'secret: env:XI_SECRET').replace(`token_key: ${TOKEN_KEY}`, 'token_key: env:XI_KEY') +
        'invites:\n  max_uses: env:XI_USES\n  allow_user_invites: env:XI_USER\nadmins: [env:XI_ADMIN]\n',
      { XI_SECRET: 'from-env', XI_KEY: 'k'.repeat(40), XI_USES: '3', XI_USER: 'false', XI_ADMIN: 'Root@Example.com' },
    );
    expect(cfg.component.secret).toBe('from-env');
    expect(cfg.tokenKey).toBe('k'.repeat(40));
    expect(cfg.invites.maxUses).toBe(3);
    expect(cfg.invites.allowUserInvites).toBe(false);
    expect(cfg.admins).toEqual(['root@example.com']);
  });

  it('reports an unset variable with the path and the variable name', () => {
    expect(errorsOf(MINIMAL.replace(`secret: ${SECRET}`, 'secret: env:XI_MISSING'))).toEqual([
      { path: 'component.secret', message: 'environment variable XI_MISSING is not set' },
    ]);
  });

  it('refuses a string holding a character XML does not allow, naming its code point and never the value', () => {
    expect(errorsOf(withExtra('site_name: "Chat\\u0001 Site"\n'))).toEqual([
      { path: 'site_name', message: 'holds a character XML does not allow (U+0001)' },
    ]);
    const errors = errorsOf(MINIMAL.replace(`secret: ${SECRET}`, 'secret: env:XI_SECRET'), { XI_SECRET: 'secret\u001bvalue' });
    expect(errors).toEqual([{ path: 'component.secret', message: 'holds a character XML does not allow (U+001B)' }]);
  });

  it('reads the process environment by default', () => {
    process.env.XI_TEST_SITE = 'Site From Env';
    try {
      expect(parseConfig(withExtra('site_name: env:XI_TEST_SITE\n'), { baseDir: BASE }).siteName).toBe('Site From Env');
    } finally {
      delete process.env.XI_TEST_SITE;
    }
  });
});

describe('secrets', () => {
  it('never appear in error messages', () => {
    const smtpPassword = 'smtp-pa55word-xyz';
    const shortKey = 'tiny-token-key-31-characters-xx';
    const message = (() => {
      try {
        parse(
          MINIMAL.replace(TOKEN_KEY, shortKey).replace(`secret: ${SECRET}`, 'secret: 123456789') +
            `mail:\n  transport: smtp://user:${smtpPassword}@mail.example.com?bogus=1\n` +
            `registration:\n  provisioner:\n    type: ejabberd-api\n    url: "ftp://admin:${smtpPassword}@localhost"\n`,
        );
      } catch (err) {
        return (err as ConfigError).message;
      }
      throw new Error('validated');
    })();
    expect(message).toMatch(/token_key/);
    expect(message).toMatch(/component\.secret/);
    expect(message).toMatch(/mail\.transport/);
    expect(message).toMatch(/registration\.provisioner\.url/);
    for (const secret of [shortKey, '123456789', smtpPassword]) expect(message).not.toContain(secret);
  });

  it('are listed by configSecrets and hidden by redactConfig', () => {
    const cfg = parse(
      withExtra(
        'mail:\n  from: invites@example.com\n  transport: smtps://u:smtp-pass@mail.example.com\n' +
          'registration:\n  provisioner:\n    type: ejabberd-api\n    url: http://admin:api%20pass@localhost:5280/api\n',
      ),
    );
    expect(configSecrets(cfg).sort()).toEqual([SECRET, TOKEN_KEY, 'smtp-pass', 'api%20pass', 'api pass'].sort());
    const redacted = JSON.stringify(redactConfig(cfg));
    for (const s of configSecrets(cfg)) expect(redacted).not.toContain(s);
    expect(redactConfig(cfg)).toMatchObject({
      component: { secret: '[redacted]' },
      tokenKey: '[redacted]',
      mail: { transport: { auth: { user: 'u', pass: '[redacted]' } } },
      registration: { provisioner: { url: 'http://admin:[redacted]@localhost:5280/api' } },
    });
    expect(cfg.component.secret).toBe(SECRET);
  });
});

describe('loadConfig', () => {
  it('reports a missing file under (file)', () => {
    try {
      loadConfig('/nonexistent/xmpp-invites.yaml', {});
      throw new Error('loaded');
    } catch (err) {
      expect((err as ConfigError).errors).toEqual([
        { path: '(file)', message: 'cannot read /nonexistent/xmpp-invites.yaml: no such file' },
      ]);
    }
  });

  it('resolves relative paths against the directory of the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xi-config-'));
    try {
      const file = path.join(dir, 'conf.yaml');
      fs.writeFileSync(file, withExtra('database: db/x.sqlite\n'));
      expect(loadConfig(file, {}).database).toBe(path.join(dir, 'db', 'x.sqlite'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['30m', 1_800_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['4w', 2_419_200_000],
    ['0s', 0],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([['7'], ['7x'], ['-1d'], ['1.5d'], ['7D'], [' 7d'], ['7 d'], ['1d12h'], [''], ['d'], ['99999w']])(
    'refuses %j',
    (text) => {
      expect(() => parseDuration(text)).toThrow(/duration|100 years/);
    },
  );
});
