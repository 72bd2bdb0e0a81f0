/**
 * The configuration of operations and integrations: metrics.listen, api.keys and webhooks, read
 * from YAML with `env:NAME`, every error reported with its path, secrets never quoted and masked.
 */
import { ConfigError, configSecrets, parseConfig, redactConfig, type Config } from '../../src/config';

const KEY = 'api-key-0123456789abcdefghijklmnopqrstuv';
const HOOK_SECRET = 'hook-secret-0123456789abcdefghijklmnopq';
const MINIMAL = `
component:
  domain: invites.example.com
  secret: component-secret-s3cr3t
host: example.com
token_key: token-key-0123456789abcdefghijklmnopq
web:
  public_url: https://invites.example.com
`;

const parse = (extra: string, env: NodeJS.ProcessEnv = {}): Config => parseConfig(MINIMAL + extra, { baseDir: '/srv', env });

function errorsOf(extra: string): { path: string; message: string }[] {
  try {
    parse(extra);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).errors;
  }
  throw new Error('expected the config to be refused');
}

it('reads keys, webhooks and the metrics listener, secrets from the environment', () => {
  const cfg = parse(
    `metrics:
  listen: 127.0.0.1:9464
api:
  keys:
    - name: website
      key: env:API_KEY
      scopes: [invites:read, invites:write]
webhooks:
  - url: https://hooks.example.org/invites
    secret: env:HOOK_SECRET
    events: [invite.created, invite.redeemed]
`,
    { API_KEY: KEY, HOOK_SECRET },
  );
  expect(cfg.metrics.listen).toEqual({ host: '127.0.0.1', port: 9464 });
  expect(cfg.api.keys).toEqual([{ name: 'website', key: KEY, scopes: ['invites:read', 'invites:write'] }]);
  expect(cfg.webhooks).toEqual([{ url: 'https://hooks.example.org/invites', secret: HOOK_SECRET, events: ['invite.created', 'invite.redeemed'] }]);
  expect(configSecrets(cfg)).toEqual(expect.arrayContaining([KEY, HOOK_SECRET]));
  const redacted = JSON.stringify(redactConfig(cfg));
  expect(redacted).not.toContain(KEY);
  expect(redacted).not.toContain(HOOK_SECRET);
});

it('is off and empty by default', () => {
  const cfg = parse('');
  expect(cfg.metrics.listen).toBeUndefined();
  expect(cfg.api.keys).toEqual([]);
  expect(cfg.webhooks).toEqual([]);
});

it('reports every mistake at its path, never quoting a secret', () => {
  const errors = errorsOf(`metrics:
  listen: everywhere
api:
  keys:
    - name: site
      key: short-key
      scopes: [invites:read, everything]
    - name: site
      key: ${KEY}
      scopes: []
    - key: ${KEY}x
      scopes: [admin]
webhooks:
  - url: ftp://hooks.example.org/
    secret: ${HOOK_SECRET}
    events: [invite.created, invite.exploded]
  - url: https://hooks.example.org/
    secret: ${HOOK_SECRET}
    colour: blue
`);
  const paths = errors.map((e) => e.path);
  expect(paths).toEqual(
    expect.arrayContaining([
      'metrics.listen',
      'api.keys[0].key',
      'api.keys[0].scopes[1]',
      'api.keys[1].name',
      'api.keys[1].scopes',
      'api.keys[2].name',
      'webhooks[0].url',
      'webhooks[0].events[1]',
      'webhooks[1].events',
    ]),
  );
  expect(errors.find((e) => e.path === 'api.keys[0].key')!.message).toMatch(/at least 32 characters/);
  expect(errors.find((e) => e.path === 'api.keys[1].name')!.message).toBe('is used by another key');
  expect(errors.find((e) => e.path === 'webhooks[0].events[1]')!.message).toMatch(/must be one of invite\.created, .*request\.verified/);
  expect(errors.some((e) => /colour/.test(e.path + e.message))).toBe(true);
  const text = JSON.stringify(errors);
  expect(text).not.toContain('short-key');
  expect(text).not.toContain(KEY);
});
