/**
 * The configuration, declared once. Every key below carries its reader (type and checks), its
 * default and its one-line meaning; from this single declaration come the validation
 * (config.ts), the `Config` type, the defaults, and the documentation: the test
 * test/unit/config-docs.test.ts checks that config/xmpp-invites.example.yaml and README's table
 * (`npx tsx scripts/config-docs.ts` rewrites it) name every key with its default.
 *
 * Rules (contract, "Configuration"): snake_case keys in the file, camelCase in `Config`; unknown
 * keys are errors at every level; an empty value (`key:` or `~`) takes the default; any string
 * value may be `env:NAME`; every error is reported with its path; secrets never appear in a message.
 */
import { z } from 'zod';
import { forbiddenXmlCharacter } from './domain/text';
import type { LimitSettings } from './domain/limits';
import { WEBHOOK_EVENTS } from './domain/webhooks';
import {
  describe,
  isPlainObject,
  kind,
  parseBareJid,
  parseComponentServer,
  parseDomain,
  parseDuration,
  parseHttpUrl,
  parseIp,
  parseListen,
  parseBounceAddress,
  parseMailbox,
  parseOneLine,
  parseProvisionerUrl,
  parsePublicUrl,
  parseTransport,
  resolveDatabase,
  urlPasswords,
} from './config-values';

export type { MailAddress, MailTransport } from './config-values';

/** What one parse needs besides the document. */
export interface ParseContext {
  readonly env: NodeJS.ProcessEnv;
  /** absolute; relative paths in the file are resolved against it */
  readonly baseDir: string;
  /** records a secret met while reading, scrubbed from every message as a last safeguard */
  secret(value: string): void;
}

// ---------------------------------------------------------------------------------------------
// Readers: one value each, after `env:NAME`; they throw an Error whose message is the explanation

/** A value after `env:NAME` substitution; `env` names the variable it came from. */
interface Resolved {
  value: unknown;
  env?: string;
}

type Reader<T> = (r: Resolved, ctx: ParseContext) => T;

/** `env:NAME` substitution: any string value may name an environment variable. */
function resolveEnv(raw: unknown, ctx: ParseContext): Resolved {
  if (typeof raw !== 'string' || !raw.startsWith('env:')) return { value: raw };
  const name = raw.slice(4);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new Error(`${describe(raw)} does not name an environment variable (env:NAME, NAME of letters, digits and _)`);
  }
  const value = ctx.env[name];
  if (value === undefined) throw new Error(`environment variable ${name} is not set`);
  return { value, env: name };
}

/**
 * Text, under the one rule for text (src/domain/text.ts): a character XML forbids would break the
 * XMPP stream, so it is refused by code point, never quoting the value. `parse` normalises it.
 */
function text(opts?: { secret?: boolean; allowEmpty?: boolean }): Reader<string>;
function text<T>(opts: { secret?: boolean; allowEmpty?: boolean }, parse: (s: string, ctx: ParseContext) => T): Reader<T>;
function text<T>(
  opts: { secret?: boolean; allowEmpty?: boolean } = {},
  parse?: (s: string, ctx: ParseContext) => T,
): Reader<T | string> {
  return ({ value }, ctx) => {
    if (typeof value !== 'string') {
      const hint = typeof value === 'number' || typeof value === 'boolean' ? ' (put it in quotes)' : '';
      throw new Error(`must be a string, not ${opts.secret ? kind(value) : describe(value)}${hint}`);
    }
    if (opts.secret) ctx.secret(value);
    const bad = forbiddenXmlCharacter(value);
    if (bad) throw new Error(`holds a character XML does not allow (${bad})`);
    if (!opts.allowEmpty && value.trim() === '') throw new Error('must not be empty');
    return parse ? parse(value, ctx) : value;
  };
}

/** Policy: a value from the environment is text, so "12" counts as an integer there. */
function int(min: number, max = Number.MAX_SAFE_INTEGER): Reader<number> {
  return ({ value, env }) => {
    let v = value;
    if (env !== undefined && typeof v === 'string' && /^-?\d+$/.test(v.trim())) v = Number(v.trim());
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new Error(`must be an integer, not ${describe(v)}`);
    if (v < min) throw new Error(`must be at least ${min}, not ${v}`);
    if (v > max) throw new Error(`must be at most ${max}, not ${v}`);
    return v;
  };
}

/** Policy: YAML booleans only (`true`/`false`); from the environment, the text true or false. */
const bool: Reader<boolean> = ({ value, env }) => {
  let v = value;
  if (env !== undefined && (v === 'true' || v === 'false')) v = v === 'true';
  if (typeof v !== 'boolean') throw new Error(`must be true or false, not ${describe(v)}`);
  return v;
};

function oneOf<const T extends string>(values: readonly T[]): Reader<T> {
  return ({ value }) => {
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
      throw new Error(`must be one of ${values.join(', ')}, not ${describe(value)}`);
    }
    return value as T;
  };
}

/** A duration in ms (see parseDuration); `positive` refuses zero. */
function duration(positive: boolean): Reader<number> {
  return ({ value }) => {
    if (typeof value === 'number') {
      throw new Error(`must be a duration with a unit, as in 30s, 30m, 12h, 7d or 4w, not the bare number ${value}`);
    }
    if (typeof value !== 'string') throw new Error(`must be a duration such as 7d, not ${describe(value)}`);
    const ms = parseDuration(value);
    if (positive && ms === 0) throw new Error('must be longer than zero');
    return ms;
  };
}

/** `off`, read as `offValue`, or a value of `read`, whose messages then say that off is allowed. */
function orOff<T, O>(read: Reader<T>, offValue: O, what: string): Reader<T | O> {
  return (r, ctx) => {
    if (r.value === 'off') return offValue;
    try {
      return read(r, ctx);
    } catch (err) {
      throw new Error(`${(err as Error).message}; or off for ${what}`);
    }
  };
}

/** Policy: tokens are derived from this key; shorter keys are guessable. */
const TOKEN_KEY_MIN = 32;

const tokenKey = text({ secret: true, allowEmpty: true }, (s) => {
  const n = [...s].length;
  if (n < TOKEN_KEY_MIN) {
    throw new Error(`must be at least ${TOKEN_KEY_MIN} characters long (it has ${n}); generate one with: openssl rand -base64 33`);
  }
  return s;
});

// ---------------------------------------------------------------------------------------------
// Fields and sections: zod schemas built from readers, each registered with its documentation

/** What the documentation says of a key: its default as written in the file, and its meaning. */
export interface KeyDoc {
  /** `7d`, `[]`; or words: `required`, `the value of host`, `no limit` */
  default: string;
  /** true when `default` is a value as written in the file (not words) */
  literal: boolean;
  /** one line for README's table */
  summary: string;
}

/** The parts of the schema, for the documentation and for ordering errors as the keys are declared. */
export type SchemaNode =
  | { kind: 'section'; shape: Record<string, Schema> }
  | { kind: 'field'; doc: KeyDoc; element?: Schema };

/** A schema as the rest of the code sees it: what it reads to, not how it is built (cheap to type). */
export type Schema<T = unknown> = z.ZodType<T, unknown>;

/** What each schema built here is, by schema: the documentation and error ordering walk it. */
export const schemaNodes = new WeakMap<object, SchemaNode>();

function node<T>(schema: z.ZodType, n: SchemaNode): Schema<T> {
  schemaNodes.set(schema, n);
  return schema as unknown as Schema<T>;
}

type Defaultable = string | number | boolean;

const PLATFORMS = ['android', 'ios', 'linux', 'macos', 'windows', 'web'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** The clients shown on the landing page when `web.clients` is absent: well-known, maintained. */
export const DEFAULT_CLIENTS: readonly { name: string; platforms: Platform[]; url: string }[] = [
  { name: 'Conversations', platforms: ['android'], url: 'https://conversations.im/' },
  { name: 'Cheogram', platforms: ['android'], url: 'https://cheogram.com/' },
  { name: 'Monal', platforms: ['ios', 'macos'], url: 'https://monal-im.org/' },
  { name: 'Siskin IM', platforms: ['ios'], url: 'https://siskin.im/' },
  { name: 'Beagle IM', platforms: ['macos'], url: 'https://beagle.im/' },
  { name: 'Dino', platforms: ['linux'], url: 'https://dino.im/' },
  { name: 'Gajim', platforms: ['linux', 'windows'], url: 'https://gajim.org/' },
  { name: 'Converse.js', platforms: ['web'], url: 'https://conversejs.org/' },
];
for (const c of DEFAULT_CLIENTS) Object.freeze(Object.freeze(c).platforms);
Object.freeze(DEFAULT_CLIENTS);

type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OptionalKeys<T> = { [K in keyof T]: undefined extends T[K] ? K : never }[keyof T];
/** A section's output: camelCase keys; a key whose value may be absent is left out when it is. */
type Camelized<T> = Simplify<
  { [K in Exclude<keyof T, OptionalKeys<T>> as Camel<K & string>]: T[K] } & {
    [K in OptionalKeys<T> as Camel<K & string>]?: Exclude<T[K], undefined>;
  }
>;

function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The checks that read several keys of a section; `add` reports at a path inside it. */
type CrossCheck = (value: Record<string, unknown>, add: (path: (string | number)[], message: string) => void) => void;

/** Reads the value of a key that another section's check needs, camelCase when that section was valid. */
function pick(section: unknown, key: string): unknown {
  if (!isPlainObject(section)) return undefined;
  return section[camel(key)] ?? section[key];
}

const LIST = {
  error: (iss: { code: string; input?: unknown }) => (iss.code === 'invalid_type' ? `must be a list, not ${describe(iss.input)}` : undefined),
};

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

// ---------------------------------------------------------------------------------------------
// The schema of the document

/**
 * The context of the parse under way. zod passes none to a schema, and the schema is built once
 * (building it per parse costs more than the parse), so `validate` sets it around the synchronous
 * `safeParse`, and only the readers read it.
 */
let active: ParseContext | undefined;

function context(): ParseContext {
  if (!active) throw new Error('the configuration schema is used through validate(), which gives it its context');
  return active;
}

/** Validates a document (the YAML as plain data) against the schema, in a context. */
export function validate(raw: unknown, ctx: ParseContext): ReturnType<typeof configSchema.safeParse> {
  if (active) throw new Error('configuration parses do not nest');
  active = ctx;
  try {
    return configSchema.safeParse(raw);
  } finally {
    active = undefined;
  }
}

/** Runs a reader on a value from the file, reporting its error at the value's path. */
function read<T>(raw: unknown, reader: Reader<T>, zc: z.RefinementCtx): T {
  const ctx = context();
  try {
    return reader(resolveEnv(raw, ctx), ctx);
  } catch (err) {
    zc.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
}

/** A key; `absent` decides what an absent or empty value means. */
function leaf<T>(reader: Reader<T>, absent: (zc: z.RefinementCtx) => T, doc: KeyDoc): Schema<T> {
  const schema = z
    .unknown()
    .optional()
    .transform((raw, zc) => (raw === undefined || raw === null ? absent(zc) : read(raw, reader, zc)));
  return node<T>(schema, { kind: 'field', doc });
}

/** A key that must be given. */
function required<T>(reader: Reader<T>, summary: string, note = '') {
  return leaf(reader, (zc): T => {
    zc.addIssue({ code: 'custom', message: 'is required' });
    return z.NEVER;
  }, { default: `required${note}`, literal: false, summary });
}

/** A key with a default, written as in the file and read like a value from the file. */
function withDefault<T>(reader: Reader<T>, value: Defaultable, summary: string) {
  return leaf(reader, (zc) => read(value, reader, zc), { default: String(value), literal: true, summary });
}

/** A key that may be absent; `absent` says in words what that means. */
function optional<T>(reader: Reader<T>, absent: string, summary: string) {
  return leaf(reader, (): T | undefined => undefined, { default: absent, literal: false, summary });
}

/** An item of a list: a value of `reader`, never empty. */
function item<T>(reader: Reader<T>) {
  return z.unknown().transform((raw, zc) => {
    if (raw === undefined || raw === null) {
      zc.addIssue({ code: 'custom', message: 'must not be empty' });
      return z.NEVER;
    }
    return read(raw, reader, zc);
  });
}

/** A list of values of `reader`; absent is the empty list; duplicates are dropped (they change nothing). */
function list<T>(reader: Reader<T>, summary: string): Schema<T[]> {
  const element = item(reader);
  const schema = z
    .array(element, LIST)
    .optional()
    .transform((xs) => unique(xs ?? []));
  return node<T[]>(schema, { kind: 'field', doc: { default: '[]', literal: true, summary }, element });
}

/**
 * A mapping with exactly these keys. Absent or empty, it is an empty mapping (so every key takes
 * its default); `cross` checks rules between its keys, and runs even when a key is invalid.
 */
function section<S extends Record<string, Schema>>(shape: S, cross?: CrossCheck): Schema<Camelized<{ [K in keyof S]: z.output<S[K]> }>> {
  const keys = Object.keys(shape);
  const object = z.strictObject(shape as Record<string, Schema>, {
    error: (iss) =>
      iss.code === 'invalid_type' ? `must be a mapping with the keys ${keys.join(', ')}, not ${describe(iss.input)}` : undefined,
  });
  const checked = cross
    ? object.superRefine(
        (value, zc) => {
          if (isPlainObject(value)) cross(value, (path, message) => zc.addIssue({ code: 'custom', path, message }));
        },
        { when: () => true },
      )
    : object;
  const schema = z
    .unknown()
    .optional()
    .transform((raw) => {
      if (raw === undefined || raw === null) return {};
      // an empty value means "absent", so the key takes its default
      if (isPlainObject(raw)) return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v ?? undefined]));
      return raw;
    })
    .pipe(checked)
    .transform((o) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(o)) if (v !== undefined) out[camel(k)] = v;
      return out;
    });
  return node(schema, { kind: 'section', shape });
}

// --- the document ----------------------------------------------------------------------

const client = section({
  name: required(text({}, parseOneLine), 'shown on the landing page'),
  platforms: z
    .array(item(oneOf(PLATFORMS)), LIST)
    .optional()
    .superRefine((xs, zc) => {
      if (xs === undefined) zc.addIssue({ code: 'custom', message: 'is required' });
      else if (xs.length === 0) zc.addIssue({ code: 'custom', message: 'must name at least one platform' });
    })
    .transform((xs) => unique(xs ?? [])) as Schema<Platform[]>,
  url: required(text({}, (s) => parseHttpUrl(s, 'https://conversations.im/', false)), 'http:// or https://'),
});
const clientItem = z
  .unknown()
  .superRefine((raw, zc) => {
    if (raw === undefined || raw === null) zc.addIssue({ code: 'custom', message: 'must not be empty' });
  })
  .pipe(client);
const clients = node<z.output<typeof client>[]>(
  z
    .array(clientItem, LIST)
    .optional()
    .transform((xs) => xs ?? DEFAULT_CLIENTS.map((c) => ({ ...c, platforms: [...c.platforms] }))),
  {
  kind: 'field',
  doc: { default: 'the built-in list', literal: false, summary: 'clients shown on the landing page; a list replaces the built-in one' },
    element: client,
  },
);

/** A list of mappings of `element` (each reported at its index); absent is the empty list. */
function mappings<T>(element: Schema<T>, summary: string): Schema<T[]> {
  const itemSchema = z
    .unknown()
    .superRefine((raw, zc) => {
      if (raw === undefined || raw === null) zc.addIssue({ code: 'custom', message: 'must not be empty' });
    })
    .pipe(element);
  return node<T[]>(
    z
      .array(itemSchema, LIST)
      .optional()
      .transform((xs) => (xs ?? []) as T[]),
    { kind: 'field', doc: { default: '[]', literal: true, summary }, element },
  );
}

/** Policy: API keys and webhook secrets are long random strings, like token_key. */
const API_SECRET_MIN = 32;
function longSecret(min: number) {
  return text({ secret: true }, (s) => {
    const n = [...s].length;
    if (n < min) throw new Error(`must be at least ${min} characters long (it has ${n}); generate one with: openssl rand -base64 33`);
    return s;
  });
}

export const API_SCOPES = ['invites:read', 'invites:write', 'requests:write', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

const nonEmptyList = <T>(reader: Reader<T>) =>
  z
    .array(item(reader), LIST)
    .optional()
    .superRefine((xs, zc) => {
      if (xs === undefined) zc.addIssue({ code: 'custom', message: 'is required' });
      else if (xs.length === 0) zc.addIssue({ code: 'custom', message: 'must name at least one' });
    })
    .transform((xs) => unique(xs ?? [])) as Schema<T[]>;

const apiKey = section({
  name: required(text({}, (s) => {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(s)) throw new Error('must be 1 to 64 letters, digits, dots, dashes or underscores');
    return s;
  }), 'names the key in logs and in the event log (`api:NAME`)'),
  key: required(longSecret(API_SECRET_MIN), 'the bearer key (use env:NAME)'),
  scopes: nonEmptyList(oneOf(API_SCOPES)),
});

const webhook = section({
  url: required(text({}, (s) => parseHttpUrl(s, 'https://example.org/hooks/invites', false)), 'where events are POSTed'),
  secret: required(longSecret(API_SECRET_MIN), 'the HMAC-SHA-256 key of the signature (use env:NAME)'),
  events: nonEmptyList(oneOf(WEBHOOK_EVENTS)),
});

/** Limits have a number or `off`; an absent limit takes its default, if it has one, or none. */
const count = orOff(int(0), undefined, 'no limit');
const wait = orOff(duration(false), undefined, 'no wait');

const document = section(
  {
    component: section({
      server: withDefault(text({}, parseComponentServer), 'xmpp://127.0.0.1:5347', 'where the server accepts components (XEP-0114)'),
      domain: required(text({}, (s) => parseDomain(s, 'invites.example.com')), "this component's JID"),
      secret: required(text({ secret: true }), 'component secret'),
      standby: withDefault(bool, false, 'when another instance holds the component (`conflict`), wait and take over when it goes rather than exit'),
    }),
    host: required(text({}, (s) => parseDomain(s, 'example.com')), 'the XMPP domain whose accounts are handed out'),
    admins: list(text({}, parseBareJid), 'bare JIDs of admins'),
    database: withDefault(text({}, (s, c) => resolveDatabase(s, c.baseDir)), './data/invites.sqlite', 'SQLite file, or a PostgreSQL URL (`postgresql://user:password@host:5432/name`) for several instances on one database'),
    site_name: optional(text({}, parseOneLine), 'the value of `host`', 'shown on pages, e-mails and messages'),
    token_key: required(tokenKey, 'secret from which tokens are derived; changing it voids every link', ` (≥ ${TOKEN_KEY_MIN} chars)`),
    invites: section({
      expiry: withDefault(duration(true), '7d', 'lifetime: from creation, and again from approval'),
      allow_user_invites: withDefault(bool, true, 'user invites may create accounts; when false they are contact-only'),
      approval: withDefault(oneOf(['none', 'non-admins', 'all']), 'non-admins', 'which account-capable invites wait for an admin: `none`, `non-admins`, `all`'),
      max_uses: withDefault(int(1), 1, 'default uses of an account invite'),
      reset_expiry: withDefault(duration(true), '1d', 'lifetime of a password reset invite'),
    }),
    registration: section(
      {
        mode: withDefault(oneOf(['invite-only', 'open']), 'invite-only', '`open`: the component also creates accounts without a token'),
        requester_domains: list(text({}, (s) => parseDomain(s, 'anon.example.com')), 'domains whose users may register at the component JID'),
        server_bridge: withDefault(bool, false, 'the Prosody bridge module is installed (decides the URIs)'),
        min_password_length: withDefault(int(1, 1024), 8, 'for new accounts'),
        requests: withDefault(oneOf(['off', 'approval', 'open']), 'off', 'membership requests at `/request`: `off`, `approval` (an admin decides after the address is verified), `open` (an account invite as soon as the address is verified)'),
        request_reason: withDefault(oneOf(['required', 'optional', 'off']), 'optional', 'the reason field of `/request`: `required`, `optional`, `off`'),
        email_domains: section({
          allow: list(text({}, (s) => parseDomain(s, 'example.org')), 'only addresses of these domains may request membership (empty: any domain)'),
          block: list(text({}, (s) => parseDomain(s, 'spam.example')), 'addresses of these domains may not request membership'),
        }),
        provisioner: section({
          type: withDefault(oneOf(['xep-0133', 'ejabberd-api', 'prosody-bridge']), 'xep-0133', '`xep-0133`, `ejabberd-api`, `prosody-bridge`'),
          // Policy: a url with another type is accepted and ignored, so switching type is one edit.
          url: optional(
            text({ secret: true }, (s, c) => {
              const url = parseProvisionerUrl(s);
              for (const p of urlPasswords(url)) c.secret(p);
              return url;
            }),
            'none',
            'ejabberd `mod_http_api` base URL; required with `ejabberd-api`',
          ),
        }),
      },
      (reg, add) => {
        const type = pick(reg.provisioner, 'type');
        if (type === 'ejabberd-api' && pick(reg.provisioner, 'url') === undefined) {
          add(['provisioner', 'url'], 'is required when registration.provisioner.type is ejabberd-api (the mod_http_api base URL, such as http://127.0.0.1:5280/api)');
        }
        if (type === 'prosody-bridge' && reg.server_bridge === false) {
          add(['provisioner', 'type'], 'prosody-bridge needs registration.server_bridge: true (install the bridge module, bridge/mod_xmpp_invites.lua, on the server)');
        }
      },
    ),
    presence: section({
      max_invitees: withDefault(int(1), 20, 'per invite request'),
      max_message_length: withDefault(int(1), 1000, 'characters'),
    }),
    mail: section(
      {
        from: optional(text({}, parseMailbox), 'xmpp-invites@{host} with `file:`; required with SMTP', '`Name <addr>` or `addr`'),
        transport: withDefault(
          text({ secret: true }, (s, c) => parseTransport(s, c.baseDir, (p) => c.secret(p))),
          'file:./outbox',
          '`file:DIR`, `smtp://…` or `smtps://…`',
        ),
        max_attempts: withDefault(int(1), 8, 'temporary failures before `failed`'),
        reminder_before: withDefault(orOff(duration(true), null, 'no reminder'), 'off', 'one reminder this long before expiry'),
        bounce_address: optional(text({}, parseBounceAddress), 'the From address', 'VERP base: e-mails leave with the envelope sender `bounces+{id}-{mac}@…`; route that address to `mail bounce` or `mail.bounce_listen`'),
        bounce_listen: optional(text({}, parseListen), 'off', 'host:port of an LMTP listener for bounces (needs `bounce_address`)'),
      },
      (mail, add) => {
        // Policy: with a file: outbox (development), the mail code supplies xmpp-invites@{host}.
        if (pick(mail.transport, 'kind') === 'smtp' && mail.from === undefined) {
          add(['from'], 'is required when mail.transport is an smtp:// or smtps:// URL (as in "Example Chat <invites@example.com>")');
        }
        if (mail.bounce_listen !== undefined && mail.bounce_address === undefined) {
          add(['bounce_listen'], 'needs mail.bounce_address: bounces are told apart by the VERP address they come back to');
        }
      },
    ),
    web: section({
      listen: withDefault(text({}, parseListen), '127.0.0.1:8080', 'address of the web server'),
      public_url: required(text({}, parsePublicUrl), 'base of landing links'),
      trusted_proxies: list(text({}, parseIp), 'whose `X-Forwarded-For` is believed'),
      clients,
    }),
    metrics: section({
      listen: optional(text({}, parseListen), 'off', 'host:port of `GET /metrics` (Prometheus text format); keep it on loopback or a private network'),
    }),
    api: section(
      {
        keys: mappings(apiKey, '`{name, key, scopes}`: bearer keys of the HTTP API (`/api/v1/`); scopes `invites:read`, `invites:write`, `requests:write`, `admin`'),
      },
      (api, add) => {
        const keys = Array.isArray(api.keys) ? api.keys : [];
        const seen = new Set<unknown>();
        keys.forEach((k, i) => {
          const name = isPlainObject(k) ? k.name : undefined;
          if (name !== undefined && seen.has(name)) add(['keys', i, 'name'], 'is used by another key');
          seen.add(name);
        });
      },
    ),
    webhooks: mappings(webhook, '`{url, secret, events}`: events POSTed as signed JSON through the outbox (README, "Webhooks")'),
    rooms: section({
      service: optional(text({}, (s) => parseDomain(s, 'conference.example.com')), 'no room invitations', 'JID of the MUC service whose rooms people are invited to; the component must be its admin (README, "Rooms (set-up)")'),
      max_per_invite: withDefault(int(1), 10, 'rooms one invitation may name'),
    }),
    // Shipped defaults: far above what a person does on a small site, low enough that one user's
    // flood (a script sending invite requests in presence) stops at once (README, "Limits").
    limits: section({
      per_user_open: withDefault(count, 100, 'open invites per user (admins exempt)'),
      per_user_per_day: withDefault(count, 50, 'invites per user per day (admins exempt)'),
      per_site_per_day: optional(count, 'no limit', 'invites by users per day, whole site'),
      per_recipient_per_day: optional(count, 'no limit', 'invites to one recipient per day'),
      registrations_per_hour: optional(count, 'no limit', 'accounts created per hour: per invite, in all at the component, per client address on the web and through the bridge'),
      resend_after_no_answer: optional(wait, 'no wait', 'before an unanswered invite may be resent'),
      reinvite_after_decline: optional(wait, 'no wait', 'before a declined invitee may be invited again'),
      invite_requests_per_minute: withDefault(count, 10, 'invite requests in presence per user per minute'),
      requests_per_hour: withDefault(count, 5, 'membership requests per client address per hour (`/request`)'),
      requests_per_day: optional(count, 'no limit', 'membership requests per day, whole site'),
      request_after_reject: withDefault(wait, '30d', 'before a rejected address may request membership again'),
      min_account_age: optional(wait, 'no wait', 'accounts made through the service cannot invite before they are this old (admins exempt)'),
      per_tree_open: optional(count, 'no limit', 'open invites in one invitation subtree: an account let in by one invitation and every account below it (admins exempt)'),
      per_admin_per_day: optional(count, 'no limit', 'invites per admin per day'),
      per_room_per_day: optional(count, 'no limit', 'room invitations to one room per day, all inviters'),
    }),
  },
  (root, add) => {
    const host = root.host;
    const domain = pick(root.component, 'domain');
    if (typeof host === 'string' && host === domain) {
      add(['component', 'domain'], `must differ from host (${host}): the component needs its own name, such as invites.${host}`);
    }
    const expiry = pick(root.invites, 'expiry');
    const before = pick(root.mail, 'reminder_before');
    if (typeof before === 'number' && typeof expiry === 'number' && before >= expiry) {
      add(['mail', 'reminder_before'], 'must be shorter than invites.expiry, or off');
    }
  },
);
// site_name defaults to host; keys keep the order they are declared in
const withSiteName = document.transform(({ component, host, admins, database, siteName, ...rest }) => ({
  component, host, admins, database, siteName: siteName ?? host, ...rest,
}));
/** The schema of the whole document. Validate through `validate`, which gives the readers their context. */
export const configSchema = node<z.output<typeof withSiteName>>(withSiteName, schemaNodes.get(document)!);

// ---------------------------------------------------------------------------------------------
// Documentation, from the schema

/** Every key of the file, in the order declared, with what its documentation must say. */
export function configKeys(): ({ key: string } & KeyDoc)[] {
  const keys: ({ key: string } & KeyDoc)[] = [];
  const walk = (schema: Schema, at: string): void => {
    const n = schemaNodes.get(schema);
    if (n?.kind === 'section') for (const [k, v] of Object.entries(n.shape)) walk(v, at ? `${at}.${k}` : k);
    else if (n?.kind === 'field') keys.push({ key: at, ...n.doc });
  };
  walk(configSchema, '');
  return keys;
}

/** README's table of keys (section "Configuration"), one row a key. */
export function configTable(): string {
  const rows = configKeys().map((k) => `| \`${k.key}\` | ${k.literal ? `\`${k.default}\`` : k.default} | ${k.summary} |`);
  return ['| key | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Types, all derived from the schema

/** The validated, frozen configuration: camelCase keys, durations in milliseconds. */
export type Config = z.output<typeof configSchema>;
export type ApprovalPolicy = Config['invites']['approval'];
export type RegistrationMode = Config['registration']['mode'];
export type ProvisionerType = Config['registration']['provisioner']['type'];
export type ClientEntry = Config['web']['clients'][number];
/** The `limits:` section; its rules live in src/domain/limits.ts. */
export type LimitsConfig = Config['limits'];

// The domain declares what it needs of the limits; the schema must give exactly that.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const limitsMatchTheDomain: Same<LimitsConfig, LimitSettings> = true;
void limitsMatchTheDomain;
