import { Writable } from 'node:stream';
import { createLogger, maskSecrets } from '../../src/logger';

const TOKEN = 'abcdefghij0123456789ABCDEFGHIJklmn';
const SECRET = 'component-Secret-42';
const TOKEN_KEY = 'token-key-0123456789';

/** A logger writing JSON lines into memory (pino writes synchronously to a plain stream). */
function memoryLogger(secrets = [SECRET, TOKEN_KEY], level = 'debug') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ level, secrets, destination });
  return { logger, lines, text: () => lines.join('\n'), records: () => lines.map((l) => JSON.parse(l)) };
}

describe('maskSecrets', () => {
  test('replaces every occurrence of a configured secret', () => {
    expect(maskSecrets(`a ${SECRET} b ${SECRET}`, [SECRET])).toBe('a [redacted] b [redacted]');
  });

  test('masks the longer of two overlapping secrets whole', () => {
    expect(maskSecrets('x abcdef y', ['abc', 'abcdef'])).toBe('x [redacted] y');
  });

  test('masks the percent-encoded form of a secret (secrets inside URLs)', () => {
    expect(maskSecrets('smtp://u:p%40ss%2Fw@mail', ['p@ss/w'])).toBe('smtp://u:[redacted]@mail');
  });

  test('ignores empty secrets', () => {
    expect(maskSecrets('nothing to hide', ['', SECRET])).toBe('nothing to hide');
  });

  test('masks the token of preauth= in xmpp: URIs', () => {
    expect(maskSecrets(`xmpp:alice@localhost?roster;preauth=${TOKEN};ibr=y`, [])).toBe(
      'xmpp:alice@localhost?roster;preauth=[redacted];ibr=y',
    );
    expect(maskSecrets(`xmpp:localhost?register;preauth=${TOKEN}`, [])).toBe('xmpp:localhost?register;preauth=[redacted]');
  });

  test("masks token='…' and token=\"…\"", () => {
    expect(maskSecrets(`<preauth token='${TOKEN}'/>`, [])).toBe(`<preauth token='[redacted]'/>`);
    expect(maskSecrets(`<preauth token="${TOKEN}" x="1"/>`, [])).toBe(`<preauth token="[redacted]" x="1"/>`);
  });

  test('masks the token in landing URLs and keeps the query', () => {
    expect(maskSecrets(`https://invites.example.org/i/${TOKEN}?lang=de`, [])).toBe(
      'https://invites.example.org/i/[redacted]?lang=de',
    );
  });

  test('masks token= in query strings', () => {
    expect(maskSecrets(`/register?user=hank&token=${TOKEN}&x=1`, [])).toBe('/register?user=hank&token=[redacted]&x=1');
  });

  test('is idempotent', () => {
    const once = maskSecrets(`preauth=${TOKEN} /i/${TOKEN} ${SECRET}`, [SECRET]);
    expect(maskSecrets(once, [SECRET])).toBe(once);
  });
});

describe('createLogger', () => {
  test('masks a secret in the message and in printf arguments', () => {
    const { logger, text } = memoryLogger();
    logger.info(`connecting with ${SECRET}`);
    logger.info('key %s and %j', TOKEN_KEY, { nested: SECRET });
    expect(text()).not.toContain(SECRET);
    expect(text()).not.toContain(TOKEN_KEY);
    expect(text()).toContain('connecting with [redacted]');
  });

  test('masks secrets in nested values of the merging object without mutating it', () => {
    const { logger, text, records } = memoryLogger();
    const obj = { config: { url: `xmpp://x?${SECRET}`, list: [`a ${TOKEN_KEY}`] } };
    logger.warn(obj, 'config');
    expect(text()).not.toContain(SECRET);
    expect(text()).not.toContain(TOKEN_KEY);
    expect(records()[0].config.url).toBe('xmpp://x?[redacted]');
    expect(obj.config.url).toBe(`xmpp://x?${SECRET}`);
  });

  test('redacts values under known secret keys even when they are not configured secrets', () => {
    const { logger, records, text } = memoryLogger([]);
    logger.info(
      {
        secret: 'a1',
        password: 'a2',
        token: 'a3',
        tokenKey: 'a4',
        component: { secret: 'a5' },
        config: { mail: { transport: { auth: { pass: 'a6' } } } },
        user: { password: 'a7' },
      },
      'cfg',
    );
    const [rec] = records();
    expect(rec.secret).toBe('[redacted]');
    expect(rec.component.secret).toBe('[redacted]');
    expect(rec.user.password).toBe('[redacted]');
    for (const v of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7']) expect(text()).not.toContain(`"${v}"`);
  });

  test('masks secrets in error messages and stacks, and keeps the error type', () => {
    const { logger, text, records } = memoryLogger();
    class ConnectError extends Error {}
    const err = new ConnectError(`refused ${SECRET}`);
    logger.error({ err }, 'failed');
    logger.error(err);
    expect(text()).not.toContain(SECRET);
    const [first, second] = records();
    expect(first.err.type).toBe('ConnectError');
    expect(first.err.message).toBe('refused [redacted]');
    expect(first.err.stack).toContain('refused [redacted]');
    expect(second.msg).toBe('refused [redacted]');
    expect(err.message).toBe(`refused ${SECRET}`);
  });

  test('masks secrets in child logger bindings', () => {
    const { logger, text } = memoryLogger();
    const child = logger.child({ module: 'x', url: `https://h/?k=${TOKEN_KEY}` });
    child.info('hello');
    child.child({ peer: `user:${SECRET}` }).info('grandchild');
    child.setBindings({ later: SECRET });
    child.info('rebound');
    expect(text()).not.toContain(TOKEN_KEY);
    expect(text()).not.toContain(SECRET);
    expect(text()).toContain('"module":"x"');
    expect(text()).toContain('"peer":"user:[redacted]"');
  });

  test('masks invite tokens in logged strings', () => {
    const { logger, text } = memoryLogger([]);
    logger.info({ uri: `xmpp:alice@localhost?roster;preauth=${TOKEN}` }, `sent https://i.example/i/${TOKEN}`);
    expect(text()).not.toContain(TOKEN);
  });

  test('copes with circular objects', () => {
    const { logger, text } = memoryLogger();
    const a: Record<string, unknown> = { s: SECRET };
    a.self = a;
    logger.info(a, 'circular');
    expect(text()).not.toContain(SECRET);
    expect(text()).toContain('[Circular]');
  });

  test('honours the level', () => {
    const { logger, lines } = memoryLogger([], 'info');
    logger.debug('hidden');
    logger.info('shown');
    expect(lines).toHaveLength(1);
  });
});

describe('XML that reaches a log line as a string', () => {
  test('password and token element text and quoted password attributes are masked', () => {
    const text = `<query><password>hunter2</password><token xmlns='x'>tok-123</token></query><create-account password="pw-9"/>`;
    expect(maskSecrets(text)).toBe(`<query><password>[redacted]</password><token xmlns='x'>[redacted]</token></query><create-account password="[redacted]"/>`);
  });
});
