import { ConfigError, parseConfig, type Config } from '../../src/config';
import { configKeys, configSchema } from '../../src/config-schema';

const MINIMAL = `
component:
  domain: invites.example.com
  secret: component-secret-s3cr3t
host: example.com
token_key: token-key-0123456789abcdefghijklmnopq
web:
  public_url: https://invites.example.com
`;

function parse(text: string, env: NodeJS.ProcessEnv = {}): Config {
  return parseConfig(text, { baseDir: '/srv/xmpp-invites', env });
}

function errorsOf(text: string, env: NodeJS.ProcessEnv = {}): { path: string; message: string }[] {
  try {
    parse(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).errors;
  }
  throw new Error('the config validated');
}

describe('errors of the schema', () => {
  it('come in the order the keys are declared, unknown keys of a mapping first', () => {
    const errors = errorsOf(
      'limits:\n  per_user_open: -1\ninvites:\n  expiry: 7\n  bogus: 1\ncolour: blue\n' +
        MINIMAL.replace('host: example.com', 'host: invites.example.com'),
    );
    expect(errors.map((e) => e.path)).toEqual(['colour', 'component.domain', 'invites.bogus', 'invites.expiry', 'limits.per_user_open']);
    expect(errors[1].message).toMatch(/must differ from host/);
  });

  it('include the rules between keys even when another key of the section is invalid', () => {
    expect(errorsOf(MINIMAL + 'registration:\n  mode: closed\n  provisioner:\n    type: ejabberd-api\n').map((e) => e.path)).toEqual([
      'registration.mode',
      'registration.provisioner.url',
    ]);
    expect(errorsOf(MINIMAL + 'mail:\n  max_attempts: 0\n  transport: smtp://localhost\n').map((e) => e.path)).toEqual([
      'mail.from',
      'mail.max_attempts',
    ]);
  });

  it("never carry zod's own wording, whatever the shape of the mistake", () => {
    const docs = [
      'component: [a]\nhost: [b]\ntoken_key: {a: 1}\nweb: 3\n',
      MINIMAL + 'admins: {a: 1}\nlimits: []\ninvites: ~\nregistration:\n  provisioner: 7\n  requester_domains: 3\n',
      MINIMAL.replace('web:\n  public_url: https://invites.example.com\n', 'web:\n  public_url: https://invites.example.com\n  clients: {a: 1}\n'),
      MINIMAL.replace('web:\n  public_url: https://invites.example.com\n', 'web:\n  public_url: https://invites.example.com\n  clients: [{platforms: a}, [], 3]\n'),
    ];
    for (const doc of docs) {
      for (const e of errorsOf(doc)) {
        expect(e.message).not.toMatch(/^Invalid|expected|received|Unrecognized/);
        expect(e.path).not.toBe('');
      }
    }
  });
});

describe('limits', () => {
  it('take off from the environment for waits as for counts, and say so when the value is wrong', () => {
    const cfg = parse(MINIMAL + 'limits:\n  resend_after_no_answer: env:WAIT\n  per_user_open: env:OPEN\n', { WAIT: 'off', OPEN: 'off' });
    expect(cfg.limits).toEqual({ perUserPerDay: 50, inviteRequestsPerMinute: 10, requestsPerHour: 5, requestAfterReject: 30 * 86_400_000 });
    expect(errorsOf(MINIMAL + 'limits:\n  reinvite_after_decline: never\n')).toEqual([
      { path: 'limits.reinvite_after_decline', message: expect.stringMatching(/is not a duration.*; or off for no wait$/) },
    ]);
  });
});

describe('rooms', () => {
  it('are off unless a MUC service is named, and an invitation names at most 10 by default', () => {
    expect(parse(MINIMAL).rooms).toEqual({ maxPerInvite: 10 });
    expect(parse(MINIMAL + 'rooms:\n  service: Conference.Example.com\n  max_per_invite: 3\n').rooms).toEqual({ service: 'conference.example.com', maxPerInvite: 3 });
  });

  it('refuses a service that is not a domain and a maximum below 1', () => {
    expect(errorsOf(MINIMAL + 'rooms:\n  service: team@conference.example.com\n  max_per_invite: 0\n').map((e) => e.path)).toEqual([
      'rooms.service',
      'rooms.max_per_invite',
    ]);
  });
});

describe('the schema is the one declaration', () => {
  it('gives every documented key, camelCased, to the validated config', () => {
    const cfg = parse(
      MINIMAL +
        'site_name: Chat\nmail:\n  from: invites@example.com\n  bounce_address: bounces@example.com\n  bounce_listen: 127.0.0.1:2424\nregistration:\n  provisioner:\n    url: http://127.0.0.1:5280/api\n' +
        'limits:\n  requests_per_day: 1\n  per_site_per_day: 1\n  per_recipient_per_day: 1\n  registrations_per_hour: 1\n  resend_after_no_answer: 1d\n  reinvite_after_decline: 1d\n  per_room_per_day: 1\n' +
        '  min_account_age: 3d\n  per_tree_open: 20\n  per_admin_per_day: 100\n' +
        'rooms:\n  service: conference.example.com\n' +
        'metrics:\n  listen: 127.0.0.1:9464\n',
    );
    const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    for (const { key } of configKeys()) {
      let v: unknown = cfg;
      for (const part of key.split('.')) v = (v as Record<string, unknown>)[camel(part)];
      expect([key, v]).not.toEqual([key, undefined]);
    }
  });

  it('is read only through validate(), which gives it the environment and base directory', () => {
    expect(() => configSchema.safeParse({ host: 'example.com' })).toThrow(/validate\(\)/);
  });
});

describe('bounces', () => {
  it('refuses a bounce address with a name or a "+", and a listener without an address', () => {
    expect(errorsOf(MINIMAL + 'mail:\n  bounce_address: Bounces <b@example.com>\n').map((e) => e.path)).toEqual(['mail.bounce_address']);
    expect(errorsOf(MINIMAL + 'mail:\n  bounce_address: b+x@example.com\n').map((e) => e.message)).toEqual([
      expect.stringContaining('must not hold "+" in its local part'),
    ]);
    expect(errorsOf(MINIMAL + 'mail:\n  bounce_listen: 127.0.0.1:2424\n')).toEqual([
      { path: 'mail.bounce_listen', message: expect.stringContaining('needs mail.bounce_address') },
    ]);
    expect(parse(MINIMAL + 'mail:\n  bounce_address: bounces@Example.COM\n  bounce_listen: 0.0.0.0:2424\n').mail).toMatchObject({
      bounceAddress: 'bounces@example.com',
      bounceListen: { host: '0.0.0.0', port: 2424 },
    });
  });
});
