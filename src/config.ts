/**
 * Configuration: read the YAML file, check every key, report every error at once, and return a
 * deeply frozen `Config` (see config.types.ts and config/xmpp-invites.example.yaml).
 *
 * Rules (contract, "Configuration"): snake_case keys; unknown keys are errors at every level; any
 * string value may be `env:NAME`; each error carries its path (`invites.expiry`,
 * `web.clients[1].platforms[0]`); secrets never appear in a message.
 */
import { nodeprep } from './domain/stringprep';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { forbiddenXmlCharacter } from './domain/text';
import type {
  ApprovalPolicy,
  ClientEntry,
  Config,
  LimitsConfig,
  MailAddress,
  MailTransport,
  Platform,
  ProvisionerType,
  RegistrationMode,
} from './config.types';

export * from './config.types';

// ---------------------------------------------------------------------------------------------
// Errors

export interface ConfigIssue {
  /** `invites.expiry`, `web.clients[1].url`; `(file)`, `(yaml)` or `(root)` for the document */
  path: string;
  message: string;
}

/** Every problem found in a configuration; `message` lists them one per line as `path: message`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly errors: ConfigIssue[];
  /** the file (or other label) the configuration came from, when known */
  readonly source?: string;

  constructor(errors: ConfigIssue[], source?: string) {
    super(errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
    this.errors = errors;
    this.source = source;
  }
}

// ---------------------------------------------------------------------------------------------
// Durations

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** Policy: nothing in this service needs more; it also keeps `Date` arithmetic far from overflow. */
const MAX_DURATION_MS = 100 * 365 * UNIT_MS.d;

/**
 * A duration in milliseconds: a whole number and one unit, `30s`, `30m`, `12h`, `7d` or `4w`.
 * Anything else (no unit, fractions, signs, spaces, upper case, combinations) throws.
 */
export function parseDuration(text: string): number {
  const m = /^(\d{1,12})([smhdw])$/.exec(text);
  if (!m) {
    throw new Error(
      `${JSON.stringify(clip(text))} is not a duration: write a whole number and a unit, as in 30s, 30m, 12h, 7d or 4w`,
    );
  }
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > MAX_DURATION_MS) throw new Error(`${JSON.stringify(text)} is longer than 100 years`);
  return ms;
}

// ---------------------------------------------------------------------------------------------
// Defaults

/** The clients shown on the landing page when `web.clients` is absent: well-known, maintained. */
export const DEFAULT_CLIENTS: readonly ClientEntry[] = deepFreeze([
  { name: 'Conversations', platforms: ['android'], url: 'https://conversations.im/' },
  { name: 'Cheogram', platforms: ['android'], url: 'https://cheogram.com/' },
  { name: 'Monal', platforms: ['ios', 'macos'], url: 'https://monal-im.org/' },
  { name: 'Siskin IM', platforms: ['ios'], url: 'https://siskin.im/' },
  { name: 'Beagle IM', platforms: ['macos'], url: 'https://beagle.im/' },
  { name: 'Dino', platforms: ['linux'], url: 'https://dino.im/' },
  { name: 'Gajim', platforms: ['linux', 'windows'], url: 'https://gajim.org/' },
  { name: 'Converse.js', platforms: ['web'], url: 'https://conversejs.org/' },
] satisfies ClientEntry[]);

const DEFAULTS = {
  componentServer: 'xmpp://127.0.0.1:5347',
  database: './data/invites.sqlite',
  expiry: '7d',
  maxUses: 1,
  minPasswordLength: 8,
  maxInvitees: 20,
  maxMessageLength: 1000,
  transport: 'file:./outbox',
  maxAttempts: 8,
  listen: '127.0.0.1:8080',
} as const;

/**
 * Limits that apply when their key is absent: far above what a person does on a small site, low
 * enough that one user's flood (a script sending invite requests in presence) stops at once.
 * Each can be lifted with `off` (README, "Limits"); every other limit is absent unless configured.
 */
export const DEFAULT_LIMITS = {
  perUserOpen: 100,
  perUserPerDay: 50,
  inviteRequestsPerMinute: 10,
} as const;

const TOKEN_KEY_MIN = 32;

const APPROVALS: readonly ApprovalPolicy[] = ['none', 'non-admins', 'all'];
const MODES: readonly RegistrationMode[] = ['invite-only', 'open'];
const PROVISIONERS: readonly ProvisionerType[] = ['xep-0133', 'ejabberd-api', 'prosody-bridge'];
const PLATFORMS: readonly Platform[] = ['android', 'ios', 'linux', 'macos', 'windows', 'web'];

/** The allowed keys of every mapping, by level. */
const KEYS = {
  root: [
    'component', 'host', 'admins', 'database', 'site_name', 'token_key',
    'invites', 'registration', 'presence', 'mail', 'web', 'limits',
  ],
  component: ['server', 'domain', 'secret', 'standby'],
  invites: ['expiry', 'allow_user_invites', 'approval', 'max_uses'],
  registration: ['mode', 'requester_domains', 'server_bridge', 'min_password_length', 'provisioner'],
  provisioner: ['type', 'url'],
  presence: ['max_invitees', 'max_message_length'],
  mail: ['from', 'transport', 'max_attempts', 'reminder_before'],
  web: ['listen', 'public_url', 'trusted_proxies', 'clients'],
  client: ['name', 'platforms', 'url'],
  limits: [
    'per_user_open', 'per_user_per_day', 'per_site_per_day', 'per_recipient_per_day',
    'registrations_per_hour', 'resend_after_no_answer', 'reinvite_after_decline',
    'invite_requests_per_minute',
  ],
} as const;

// ---------------------------------------------------------------------------------------------
// Entry points

/** Reads and validates a config file; relative paths in it are resolved against its directory. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${file}: ${fileReason(err)}` }], file);
  }
  return parseConfig(text, { baseDir: path.dirname(abs), env, source: file });
}

/** Validates YAML text; `baseDir` anchors relative paths (database, `file:` outbox). */
export function parseConfig(
  text: string,
  opts: { baseDir: string; env?: NodeJS.ProcessEnv; source?: string },
): Config {
  const lineCounter = new LineCounter();
  // YAML 1.2 core schema: only true/false are booleans (`yes`, `off` stay strings); duplicate
  // keys are errors.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, version: '1.2' });
  if (doc.errors.length > 0) {
    // Our own message, without yaml's excerpt of the source line, which could hold a secret.
    const errors = doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return { path: '(yaml)', message: `line ${line}, column ${col}: ${e.message.split('\n')[0]}` };
    });
    throw new ConfigError(errors, opts.source);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([{ path: '(yaml)', message: (err as Error).message.split('\n')[0] }], opts.source);
  }

  const check = new Checker(opts.env ?? process.env, path.resolve(opts.baseDir));
  const config = buildConfig(check, raw);
  if (check.errors.length > 0 || !config) throw new ConfigError(check.scrubbedErrors(), opts.source);
  return deepFreeze(config);
}

/** Every secret value in a config (for log redaction): component secret, token key, passwords. */
export function configSecrets(cfg: Config): string[] {
  const secrets = [cfg.component.secret, cfg.tokenKey];
  if (cfg.mail.transport.kind === 'smtp' && cfg.mail.transport.auth) secrets.push(cfg.mail.transport.auth.pass);
  secrets.push(...urlPasswords(cfg.registration.provisioner.url));
  return [...new Set(secrets.filter((s) => s.length > 0))];
}

/** A plain (unfrozen) copy of the config that is safe to log: secrets become "[redacted]". */
export function redactConfig(cfg: Config): Config {
  const copy = structuredClone(cfg) as Config;
  copy.component.secret = REDACTED;
  copy.tokenKey = REDACTED;
  if (copy.mail.transport.kind === 'smtp' && copy.mail.transport.auth) copy.mail.transport.auth.pass = REDACTED;
  const url = copy.registration.provisioner.url;
  if (url) {
    const u = new URL(url);
    if (u.password) copy.registration.provisioner.url = `${u.protocol}//${u.username}:${REDACTED}@${u.host}${u.pathname}`;
  }
  return copy;
}

const REDACTED = '[redacted]';

// ---------------------------------------------------------------------------------------------
// The checker: reads raw values, records errors, never throws

type Obj = Record<string, unknown>;

/** A value after `env:NAME` substitution; `env` names the variable it came from. */
interface Resolved {
  value: unknown;
  env?: string;
}

class Checker {
  readonly errors: ConfigIssue[] = [];
  /** raw secret values met while checking, scrubbed from every message as a last safeguard */
  private readonly secrets = new Set<string>();

  constructor(
    readonly env: NodeJS.ProcessEnv,
    readonly baseDir: string,
  ) {}

  error(at: string, message: string): undefined {
    this.errors.push({ path: at, message });
    return undefined;
  }

  secret(value: string): void {
    // A safety net only (no parser quotes a secret); shorter values would mangle ordinary words.
    if (value.length >= 6) this.secrets.add(value);
  }

  scrubbedErrors(): ConfigIssue[] {
    return this.errors.map(({ path: at, message }) => {
      let m = message;
      for (const s of this.secrets) m = m.split(s).join(REDACTED);
      return { path: at, message: m };
    });
  }

  /**
   * A mapping whose keys must all be in `keys`. Absent or null means an empty mapping (so every
   * key takes its default); anything else that is not a mapping is an error (undefined).
   */
  mapping(raw: unknown, at: string, keys: readonly string[]): Obj | undefined {
    if (raw === undefined || raw === null) return {};
    if (!isPlainObject(raw)) return this.error(at, `must be a mapping with the keys ${keys.join(', ')}, not ${describe(raw)}`);
    for (const key of Object.keys(raw)) {
      if (!keys.includes(key)) this.error(join(at, key), unknownKey(key, keys));
    }
    return raw;
  }

  /** Records "is required" when the raw value is absent; true when present. */
  required(raw: unknown, at: string): boolean {
    if (raw === undefined || raw === null) {
      this.error(at, 'is required');
      return false;
    }
    return true;
  }

  /**
   * `env:NAME` substitution. Policy: a null value counts as absent (an empty `key:` in YAML takes
   * the default), so `undefined` means "absent" or "unset variable, already reported".
   */
  resolve(raw: unknown, at: string): Resolved | undefined {
    if (raw === undefined || raw === null) return undefined;
    if (typeof raw !== 'string' || !raw.startsWith('env:')) return { value: raw };
    const name = raw.slice(4);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      return this.error(at, `${JSON.stringify(clip(raw))} does not name an environment variable (env:NAME, NAME of letters, digits and _)`);
    }
    const value = this.env[name];
    if (value === undefined) return this.error(at, `environment variable ${name} is not set`);
    return { value, env: name };
  }

  string(raw: unknown, at: string, opts: { secret?: boolean; allowEmpty?: boolean } = {}): string | undefined {
    const r = this.resolve(raw, at);
    if (!r) return undefined;
    if (typeof r.value !== 'string') {
      const hint = typeof r.value === 'number' || typeof r.value === 'boolean' ? ' (put it in quotes)' : '';
      return this.error(at, `must be a string, not ${opts.secret ? kind(r.value) : describe(r.value)}${hint}`);
    }
    if (opts.secret) this.secret(r.value);
    // The one rule for text (src/domain/text.ts): such a value would break the XMPP stream.
    const bad = forbiddenXmlCharacter(r.value);
    if (bad) return this.error(at, `holds a character XML does not allow (${bad})`);
    if (!opts.allowEmpty && r.value.trim() === '') return this.error(at, 'must not be empty');
    return r.value;
  }

  /** Policy: a value from the environment is text, so "12" counts as an integer there. */
  int(raw: unknown, at: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const r = this.resolve(raw, at);
    if (!r) return undefined;
    let value = r.value;
    if (r.env !== undefined && typeof value === 'string' && /^-?\d+$/.test(value.trim())) value = Number(value.trim());
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) return this.error(at, `must be an integer, not ${describe(value)}`);
    if (value < min) return this.error(at, `must be at least ${min}, not ${value}`);
    if (value > max) return this.error(at, `must be at most ${max}, not ${value}`);
    return value;
  }

  /** Policy: YAML booleans only (`true`/`false`); from the environment, the text true or false. */
  bool(raw: unknown, at: string): boolean | undefined {
    const r = this.resolve(raw, at);
    if (!r) return undefined;
    let value = r.value;
    if (r.env !== undefined && (value === 'true' || value === 'false')) value = value === 'true';
    if (typeof value !== 'boolean') return this.error(at, `must be true or false, not ${describe(value)}`);
    return value;
  }

  oneOf<T extends string>(raw: unknown, at: string, values: readonly T[]): T | undefined {
    const r = this.resolve(raw, at);
    if (!r) return undefined;
    if (typeof r.value !== 'string' || !(values as readonly string[]).includes(r.value)) {
      return this.error(at, `must be one of ${values.join(', ')}, not ${describe(r.value)}`);
    }
    return r.value as T;
  }

  /** A duration in ms (see parseDuration); `positive` refuses zero. */
  duration(raw: unknown, at: string, positive: boolean): number | undefined {
    const r = this.resolve(raw, at);
    if (!r) return undefined;
    if (typeof r.value === 'number') {
      return this.error(at, `must be a duration with a unit, as in 30s, 30m, 12h, 7d or 4w, not the bare number ${r.value}`);
    }
    if (typeof r.value !== 'string') return this.error(at, `must be a duration such as 7d, not ${describe(r.value)}`);
    let ms: number;
    try {
      ms = parseDuration(r.value);
    } catch (err) {
      return this.error(at, (err as Error).message);
    }
    if (positive && ms === 0) return this.error(at, 'must be longer than zero');
    return ms;
  }

  /** A list; each item read by `item` (which reports its own errors). Absent → undefined. */
  list<T>(raw: unknown, at: string, item: (raw: unknown, at: string) => T | undefined): T[] | undefined {
    if (raw === undefined || raw === null) return undefined;
    if (!Array.isArray(raw)) return this.error(at, `must be a list, not ${describe(raw)}`);
    const out: T[] = [];
    raw.forEach((v, i) => {
      const at2 = `${at}[${i}]`;
      if (v === undefined || v === null) {
        this.error(at2, 'must not be empty');
        return;
      }
      const got = item(v, at2);
      if (got !== undefined) out.push(got);
    });
    return out;
  }

  /** A string checked by `parse`, which returns the value or throws an Error with a message. */
  parsed<T>(raw: unknown, at: string, parse: (s: string) => T, opts: { secret?: boolean } = {}): T | undefined {
    const s = this.string(raw, at, opts);
    if (s === undefined) return undefined;
    try {
      return parse(s);
    } catch (err) {
      return this.error(at, (err as Error).message);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The document

function buildConfig(c: Checker, raw: unknown): Config | undefined {
  if (raw === undefined || raw === null) {
    c.error('(root)', 'the configuration is empty; see config/xmpp-invites.example.yaml');
    return undefined;
  }
  if (!isPlainObject(raw)) {
    c.error('(root)', `the configuration must be a mapping of keys to values, not ${describe(raw)}`);
    return undefined;
  }
  const root = c.mapping(raw, '', KEYS.root)!;

  // component
  const comp = c.mapping(root.component, 'component', KEYS.component);
  let componentServer: string | undefined;
  let componentDomain: string | undefined;
  let componentSecret: string | undefined;
  let componentStandby: boolean | undefined;
  if (comp) {
    componentServer = c.parsed(comp.server ?? DEFAULTS.componentServer, 'component.server', parseComponentServer);
    if (c.required(comp.domain, 'component.domain')) {
      componentDomain = c.parsed(comp.domain, 'component.domain', (s) => parseDomain(s, 'invites.example.com'));
    }
    if (c.required(comp.secret, 'component.secret')) componentSecret = c.string(comp.secret, 'component.secret', { secret: true });
    componentStandby = c.bool(comp.standby, 'component.standby');
  }

  const host = c.required(root.host, 'host') ? c.parsed(root.host, 'host', (s) => parseDomain(s, 'example.com')) : undefined;
  if (host !== undefined && componentDomain !== undefined && host === componentDomain) {
    c.error('component.domain', `must differ from host (${host}): the component needs its own name, such as invites.${host}`);
  }

  // Policy: duplicates are dropped silently; they change nothing.
  const admins = unique(c.list(root.admins, 'admins', (v, at) => c.parsed(v, at, parseBareJid)) ?? []);
  const database = c.parsed(root.database ?? DEFAULTS.database, 'database', (s) => resolveDatabase(s, c.baseDir));
  const siteName = root.site_name === undefined || root.site_name === null
    ? host
    : c.parsed(root.site_name, 'site_name', parseOneLine);

  let tokenKey: string | undefined;
  if (c.required(root.token_key, 'token_key')) {
    tokenKey = c.string(root.token_key, 'token_key', { secret: true, allowEmpty: true });
    if (tokenKey !== undefined && [...tokenKey].length < TOKEN_KEY_MIN) {
      c.error('token_key', `must be at least ${TOKEN_KEY_MIN} characters long (it has ${[...tokenKey].length}); generate one with: openssl rand -base64 33`);
      tokenKey = undefined;
    }
  }

  // invites
  const inv = c.mapping(root.invites, 'invites', KEYS.invites);
  const invites = inv && {
    expiry: c.duration(inv.expiry ?? DEFAULTS.expiry, 'invites.expiry', true),
    allowUserInvites: c.bool(inv.allow_user_invites, 'invites.allow_user_invites') ?? true,
    approval: c.oneOf(inv.approval, 'invites.approval', APPROVALS) ?? 'non-admins',
    maxUses: c.int(inv.max_uses, 'invites.max_uses', 1) ?? DEFAULTS.maxUses,
  };

  // registration
  const reg = c.mapping(root.registration, 'registration', KEYS.registration);
  let registration: Config['registration'] | undefined;
  if (reg) {
    // false when absent; undefined only when invalid (reported), which skips the check below
    const serverBridge = reg.server_bridge === undefined || reg.server_bridge === null
      ? false
      : c.bool(reg.server_bridge, 'registration.server_bridge');
    const prov = c.mapping(reg.provisioner, 'registration.provisioner', KEYS.provisioner);
    let provisioner: Config['registration']['provisioner'] | undefined;
    if (prov) {
      const type = c.oneOf(prov.type, 'registration.provisioner.type', PROVISIONERS);
      // Policy: a url with another type is accepted and ignored, so switching type is one edit.
      const url = c.parsed(prov.url, 'registration.provisioner.url', parseProvisionerUrl, { secret: true });
      const effectiveType = type ?? (prov.type === undefined || prov.type === null ? 'xep-0133' : undefined);
      if (effectiveType === 'ejabberd-api' && url === undefined && (prov.url === undefined || prov.url === null)) {
        c.error('registration.provisioner.url', 'is required when registration.provisioner.type is ejabberd-api (the mod_http_api base URL, such as http://127.0.0.1:5280/api)');
      }
      if (effectiveType === 'prosody-bridge' && serverBridge === false) {
        c.error('registration.provisioner.type', 'prosody-bridge needs registration.server_bridge: true (install the bridge module, bridge/mod_xmpp_invites.lua, on the server)');
      }
      if (url !== undefined) {
        for (const p of urlPasswords(url)) c.secret(p);
      }
      provisioner = effectiveType === undefined ? undefined : url === undefined ? { type: effectiveType } : { type: effectiveType, url };
    }
    registration = {
      mode: c.oneOf(reg.mode, 'registration.mode', MODES) ?? 'invite-only',
      requesterDomains: unique(
        c.list(reg.requester_domains, 'registration.requester_domains', (v, at) => c.parsed(v, at, (s) => parseDomain(s, 'anon.example.com'))) ?? [],
      ),
      serverBridge: serverBridge ?? false,
      minPasswordLength: c.int(reg.min_password_length, 'registration.min_password_length', 1, 1024) ?? DEFAULTS.minPasswordLength,
      provisioner: provisioner ?? { type: 'xep-0133' },
    };
  }

  // presence
  const pres = c.mapping(root.presence, 'presence', KEYS.presence);
  const presence = pres && {
    maxInvitees: c.int(pres.max_invitees, 'presence.max_invitees', 1) ?? DEFAULTS.maxInvitees,
    maxMessageLength: c.int(pres.max_message_length, 'presence.max_message_length', 1) ?? DEFAULTS.maxMessageLength,
  };

  // mail
  const ml = c.mapping(root.mail, 'mail', KEYS.mail);
  let mail: Config['mail'] | undefined;
  if (ml) {
    const transport = c.parsed(ml.transport ?? DEFAULTS.transport, 'mail.transport', (s) => parseTransport(s, c.baseDir, (p) => c.secret(p)), { secret: true });
    const from = c.parsed(ml.from, 'mail.from', parseMailbox);
    // Policy: with a file: outbox (development), the mail code supplies xmpp-invites@{host}.
    if (transport?.kind === 'smtp' && (ml.from === undefined || ml.from === null)) {
      c.error('mail.from', 'is required when mail.transport is an smtp:// or smtps:// URL (as in "Example Chat <invites@example.com>")');
    }
    let reminderBefore: number | null | undefined = null;
    const rb = c.resolve(ml.reminder_before, 'mail.reminder_before');
    if (rb && rb.value !== 'off') {
      const before = c.errors.length;
      reminderBefore = c.duration(ml.reminder_before, 'mail.reminder_before', true);
      // say that `off` is allowed too
      if (c.errors.length > before) c.errors[before].message += '; or off for no reminder';
    }
    if (typeof reminderBefore === 'number' && invites?.expiry !== undefined && reminderBefore >= invites.expiry) {
      c.error('mail.reminder_before', 'must be shorter than invites.expiry, or off');
    }
    mail = {
      ...(from !== undefined ? { from } : {}),
      transport: transport!,
      maxAttempts: c.int(ml.max_attempts, 'mail.max_attempts', 1) ?? DEFAULTS.maxAttempts,
      reminderBefore: reminderBefore ?? null,
    };
  }

  // web
  const w = c.mapping(root.web, 'web', KEYS.web);
  let web: Config['web'] | undefined;
  if (w) {
    const publicUrl = c.required(w.public_url, 'web.public_url') ? c.parsed(w.public_url, 'web.public_url', parsePublicUrl) : undefined;
    web = {
      listen: c.parsed(w.listen ?? DEFAULTS.listen, 'web.listen', parseListen)!,
      publicUrl: publicUrl!,
      trustedProxies: unique(c.list(w.trusted_proxies, 'web.trusted_proxies', (v, at) => c.parsed(v, at, parseIp)) ?? []),
      clients: c.list(w.clients, 'web.clients', (v, at) => readClient(c, v, at)) ?? DEFAULT_CLIENTS.map((x) => ({ ...x, platforms: [...x.platforms] })),
    };
  }

  // limits: absent keys take DEFAULT_LIMITS where there is one and mean "no limit" / "no wait"
  // otherwise (left out of the object); `off` turns a limit off.
  const lim = c.mapping(root.limits, 'limits', KEYS.limits);
  const limits: LimitsConfig = {};
  if (lim) {
    const ints = [
      ['per_user_open', 'perUserOpen'],
      ['per_user_per_day', 'perUserPerDay'],
      ['per_site_per_day', 'perSitePerDay'],
      ['per_recipient_per_day', 'perRecipientPerDay'],
      ['registrations_per_hour', 'registrationsPerHour'],
      ['invite_requests_per_minute', 'inviteRequestsPerMinute'],
    ] as const;
    for (const [key, prop] of ints) {
      const fallback = (DEFAULT_LIMITS as Partial<Record<typeof prop, number>>)[prop];
      if (lim[key] === undefined || lim[key] === null) {
        if (fallback !== undefined) limits[prop] = fallback;
        continue;
      }
      const r = c.resolve(lim[key], `limits.${key}`);
      if (!r || r.value === 'off') continue;
      const before = c.errors.length;
      const v = c.int(lim[key], `limits.${key}`, 0);
      if (c.errors.length > before) c.errors[before].message += '; or off for no limit';
      if (v !== undefined) limits[prop] = v;
    }
    const durations = [
      ['resend_after_no_answer', 'resendAfterNoAnswer'],
      ['reinvite_after_decline', 'reinviteAfterDecline'],
    ] as const;
    for (const [key, prop] of durations) {
      if (lim[key] === 'off') continue;
      const v = c.duration(lim[key], `limits.${key}`, false);
      if (v !== undefined) limits[prop] = v;
    }
  }

  if (c.errors.length > 0) return undefined;
  return {
    component: { server: componentServer!, domain: componentDomain!, secret: componentSecret!, standby: componentStandby ?? false },
    host: host!,
    admins,
    database: database!,
    siteName: siteName!,
    tokenKey: tokenKey!,
    invites: { ...invites!, expiry: invites!.expiry! },
    registration: registration!,
    presence: presence!,
    mail: mail!,
    web: web!,
    limits,
  };
}

function readClient(c: Checker, raw: unknown, at: string): ClientEntry | undefined {
  if (!isPlainObject(raw)) return c.error(at, `must be a mapping with the keys name, platforms, url, not ${describe(raw)}`);
  const m = c.mapping(raw, at, KEYS.client)!;
  const name = c.required(m.name, `${at}.name`) ? c.parsed(m.name, `${at}.name`, parseOneLine) : undefined;
  let platforms: Platform[] | undefined;
  if (c.required(m.platforms, `${at}.platforms`)) {
    platforms = c.list(m.platforms, `${at}.platforms`, (v, at2) => c.oneOf(v, at2, PLATFORMS));
    if (platforms && Array.isArray(m.platforms) && m.platforms.length === 0) c.error(`${at}.platforms`, 'must name at least one platform');
    platforms = platforms && unique(platforms);
  }
  const url = c.required(m.url, `${at}.url`) ? c.parsed(m.url, `${at}.url`, (s) => parseHttpUrl(s, 'https://conversations.im/', false)) : undefined;
  if (name === undefined || platforms === undefined || url === undefined) return undefined;
  return { name, platforms, url };
}

// ---------------------------------------------------------------------------------------------
// Value parsers: return the normalised value or throw an Error whose message is the explanation

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A DNS name of ASCII letters, digits and hyphens, lower-cased (IDNs: write the xn-- form). */
function parseDomain(text: string, example: string): string {
  const d = text.toLowerCase();
  const hint = `must be a domain such as ${example}`;
  if (d.includes('://')) throw new Error(`${hint}, without a scheme, not ${describe(text)}`);
  if (d.includes('@')) throw new Error(`${hint}, without a user part, not ${describe(text)}`);
  if (d.includes(':') || d.includes('/')) throw new Error(`${hint}, without a port or path, not ${describe(text)}`);
  if (d.length > 253 || !d.split('.').every((l) => LABEL.test(l))) {
    throw new Error(`${hint} (labels of letters, digits and hyphens, separated by dots), not ${describe(text)}`);
  }
  return d;
}

/** A bare JID `local@domain`, its user part as the server compares it (nodeprep). */
function parseBareJid(text: string): string {
  const hint = 'must be a bare JID such as admin@example.com';
  if (text.includes('/')) throw new Error(`${hint}, without a resource, not ${describe(text)}`);
  const at = text.lastIndexOf('@');
  if (at <= 0) throw new Error(`${hint}, not ${describe(text)}`);
  const local = nodeprep(text.slice(0, at));
  if (!local || Buffer.byteLength(local) > 1023) throw new Error(`${hint}; its user part has a forbidden character: ${describe(text)}`);
  const domain = parseDomain(text.slice(at + 1), 'example.com');
  return `${local}@${domain}`;
}

/** A host as written in a URL authority: a domain, an IPv4 address or a bracketed IPv6 address. */
function validUrlHost(host: string): boolean {
  if (host.startsWith('[') && host.endsWith(']')) return net.isIPv6(host.slice(1, -1));
  try {
    parseDomain(host, 'example.com');
    return true;
  } catch {
    return false;
  }
}

/**
 * `xmpp://host:port` or `tcp://host:port`. Policy: normalised to `xmpp://` because xmpp.js
 * connects only for that scheme; both mean a plain TCP connection (XEP-0114).
 */
function parseComponentServer(text: string): string {
  const hint = 'must be xmpp://host:port (or tcp://host:port), as in xmpp://127.0.0.1:5347';
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`${hint}, not ${describe(text)}`);
  }
  if (u.protocol !== 'xmpp:' && u.protocol !== 'tcp:') throw new Error(`${hint}; ${u.protocol}// is not allowed`);
  const host = u.hostname.toLowerCase();
  if (!host || !validUrlHost(host)) throw new Error(`${hint}; the host is not valid in ${describe(text)}`);
  if (!u.port || Number(u.port) < 1) throw new Error(`${hint}; a port is needed in ${describe(text)}`);
  if (u.username || u.password || (u.pathname !== '' && u.pathname !== '/') || u.search || u.hash) {
    throw new Error(`${hint}, with nothing after the port`);
  }
  return `xmpp://${host}:${u.port}`;
}

/** An http(s) URL; the result is normalised and has no trailing slash when `stripSlash`. */
function parseHttpUrl(text: string, example: string, stripSlash: boolean): string {
  const hint = `must be an http:// or https:// URL such as ${example}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`${hint}, not ${describe(text)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${hint}; ${u.protocol}// is not allowed`);
  if (!u.hostname) throw new Error(`${hint}; it has no host`);
  if (u.hash) throw new Error(`${hint}, without a #fragment`);
  return stripSlash ? u.href.replace(/\/+$/, '') : u.href;
}

/** Base of landing links: http(s), no credentials, query or fragment; no trailing slash. */
function parsePublicUrl(text: string): string {
  const url = parseHttpUrl(text, 'https://invites.example.com', true);
  const u = new URL(url);
  if (u.username || u.password) throw new Error('must not carry a user or password');
  if (u.search) throw new Error('must not have a ?query: it is the base of landing links');
  return url;
}

/**
 * ejabberd mod_http_api base URL. It may carry `user:password@` for the API's basic auth; that
 * password is a secret, so messages never quote this value.
 */
function parseProvisionerUrl(text: string): string {
  let url: string;
  try {
    url = parseHttpUrl(text, 'http://127.0.0.1:5280/api', true);
  } catch {
    throw new Error('must be an http:// or https:// URL such as http://127.0.0.1:5280/api');
  }
  if (new URL(url).search) throw new Error('must not have a ?query');
  return url;
}

/** The password of a URL, as written (percent-encoded) and decoded. */
function urlPasswords(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const p = new URL(url).password;
    if (!p) return [];
    return [...new Set([p, safeDecode(p)])];
  } catch {
    return [];
  }
}

/** Listen address: IPv4, `localhost` or `[IPv6]`, then `:port`. */
function parseListen(text: string): { host: string; port: number } {
  // Port 0 binds any free port (tests; the bound address is logged at start).
  const hint = 'must be host:port with an IPv4 address, localhost or [IPv6] and a port from 0 to 65535, as in 127.0.0.1:8080';
  const m = /^(\[[^\]]*\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) throw new Error(`${hint}, not ${describe(text)}`);
  let host = m[1];
  const port = Number(m[2]);
  if (host.startsWith('[')) {
    host = host.slice(1, -1).toLowerCase();
    if (!net.isIPv6(host)) throw new Error(`${hint}; ${describe(m[1])} is not an IPv6 address`);
  } else if (host !== 'localhost' && !net.isIPv4(host)) {
    throw new Error(`${hint}; ${describe(host)} is not an IPv4 address or localhost`);
  }
  if (port > 65535) throw new Error(`${hint}; the port is ${port}`);
  return { host, port };
}

/** Policy: single addresses only (no ranges), as the web code compares addresses. */
function parseIp(text: string): string {
  if (!net.isIP(text)) throw new Error(`must be an IPv4 or IPv6 address (ranges are not supported), not ${describe(text)}`);
  return text.toLowerCase();
}

/** Text shown to people (site and client names): one line, no control characters. */
function parseOneLine(text: string): string {
  if (/\p{Cc}/u.test(text)) throw new Error('must be one line without control characters');
  return text.trim();
}

/** A database path; `:memory:` (tests) is kept as is. */
function resolveDatabase(text: string, baseDir: string): string {
  return text === ':memory:' ? text : path.resolve(baseDir, text);
}

const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const DOT_ATOM = new RegExp(`^${ATOM}(?:\\.${ATOM})*$`);

/** `Name <addr>` or `addr`: a single addr-spec (dot-atom local part), one line. */
function parseMailbox(text: string): MailAddress {
  const hint = 'must be "Name <address>" or "address", with a single address such as invites@example.com';
  if (/[\r\n]/.test(text)) throw new Error(`${hint}, on one line`);
  if (/\p{Cc}/u.test(text)) throw new Error(`${hint}, without control characters`);
  const t = text.trim();
  let name: string | undefined;
  let addr = t;
  const m = /^([^<>]*)<([^<>]*)>$/.exec(t);
  if (m) {
    name = m[1].trim();
    const quoted = /^"(.*)"$/.exec(name);
    if (quoted) name = quoted[1];
    if (name.includes('"')) throw new Error(`${hint}; the name has a stray quote`);
    addr = m[2].trim();
  }
  const at = addr.lastIndexOf('@');
  if (at <= 0 || !DOT_ATOM.test(addr.slice(0, at))) throw new Error(`${hint}, not ${describe(text)}`);
  let domain: string;
  try {
    domain = parseDomain(addr.slice(at + 1), 'example.com');
  } catch {
    throw new Error(`${hint}; the domain of ${describe(addr)} is not valid`);
  }
  const address = `${addr.slice(0, at)}@${domain}`;
  return name ? { name, address } : { address };
}

/**
 * `file:DIR` (DIR resolved against the config's directory) or `smtp[s]://[user:pass@]host[:port]`
 * with an optional `?tls=none`. The value can hold a password: messages never quote it.
 * Policy: default ports follow nodemailer, 587 for smtp:// and 465 for smtps://.
 */
function parseTransport(text: string, baseDir: string, secret: (s: string) => void): MailTransport {
  if (text.startsWith('file:')) {
    const dir = text.slice('file:'.length);
    if (dir.trim() === '') throw new Error('file: needs a directory, as in file:./outbox');
    return { kind: 'file', dir: path.resolve(baseDir, dir) };
  }
  const hint = 'must be file:DIR or an smtp:// or smtps:// URL, as in smtps://user:password@mail.example.com';
  if (!/^smtps?:\/\//i.test(text)) throw new Error(hint);
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`${hint} (this URL cannot be parsed)`);
  }
  if (u.password) {
    secret(u.password);
    secret(safeDecode(u.password));
  }
  const secure = u.protocol === 'smtps:';
  const host = u.hostname.toLowerCase();
  if (!host || !validUrlHost(host)) throw new Error(`${hint}; the host is not valid`);
  if ((u.pathname !== '' && u.pathname !== '/') || u.hash) throw new Error(`${hint}, with nothing after the host and port but ?tls=none`);
  let tlsNone = false;
  for (const [key, value] of u.searchParams) {
    if (key !== 'tls') throw new Error(`unknown query parameter ${JSON.stringify(clip(key))}: only ?tls=none is allowed`);
    if (value !== 'none') throw new Error('?tls= accepts only none');
    tlsNone = true;
  }
  if (secure && tlsNone) throw new Error('smtps:// always uses TLS; ?tls=none contradicts it (use smtp:// for a plain connection)');
  const user = safeDecode(u.username);
  const pass = safeDecode(u.password);
  if (user && !pass) throw new Error('has a user but no password (write smtp://user:password@host)');
  if (pass && !user) throw new Error('has a password but no user (write smtp://user:password@host)');
  const port = u.port ? Number(u.port) : secure ? 465 : 587;
  if (port < 1) throw new Error(`${hint}; the port must be from 1 to 65535`);
  return {
    kind: 'smtp',
    host: host.startsWith('[') ? host.slice(1, -1) : host,
    port,
    secure,
    // Contract: smtp with credentials requires TLS (STARTTLS) unless ?tls=none says otherwise.
    requireTls: !secure && !!user && !tlsNone,
    tlsNone,
    ...(user ? { auth: { user, pass } } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function join(base: string, key: string): string {
  return base ? `${base}.${key}` : key;
}

function isPlainObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function kind(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isPlainObject(v)) return 'a mapping';
  if (typeof v === 'string') return 'text';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return typeof v;
}

/** A value for a message: strings quoted and clipped, others by kind. Never used for secrets. */
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(clip(v));
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return kind(v);
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function unknownKey(key: string, keys: readonly string[]): string {
  const near = keys.find((k) => editDistance(k, key) <= 2);
  return near
    ? `unknown key (did you mean ${near}?)`
    : `unknown key; allowed here: ${keys.join(', ')}`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function fileReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return (err as Error).message;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
