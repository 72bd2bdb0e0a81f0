/**
 * The root logger (pino), created once at start and passed down; modules take
 * `logger.child({ module })`. Two layers keep secrets out of the logs:
 * - `redact` blanks values under known secret keys (`secret`, `password`, `token`, ...);
 * - a log-method hook masks, in every logged string (message, arguments, nested object values,
 *   error messages and stacks, child bindings), the configured secret strings and invite tokens
 *   (`preauth=TOKEN`, `token='TOKEN'`, `/i/TOKEN`).
 * Stanzas must be logged through `sanitizeStanza` (src/xmpp/sanitize.ts), which knows where XMPP
 * carries passwords and tokens and applies the same `maskSecrets` on top.
 */
import pino from 'pino';

export const REDACTED = '[redacted]';

export interface LoggerOptions {
  /** pino level; default 'info' */
  level?: string;
  /** Literal strings that must never appear in a log line (component secret, token key, SMTP password...). */
  secrets?: string[];
  /** Default: stdout. */
  destination?: pino.DestinationStream | NodeJS.WritableStream;
}

const SECRET_KEYS = ['secret', 'password', 'pass', 'token', 'tokenKey', 'token_key', 'authorization', 'cookie'];

/** Paths blanked by pino's redact: the keys at the top level and up to four levels down. */
export const REDACT_PATHS: string[] = SECRET_KEYS.flatMap((key) =>
  [0, 1, 2, 3, 4].map((depth) => [...Array<string>(depth).fill('*'), key].join('.')),
);

/** Invite tokens (and quoted passwords) in the places they travel: XEP-0379/0401 URIs, quoted attributes, landing URLs, query strings. */
const TOKEN_PATTERNS: Array<[RegExp, string]> = [
  // xmpp:alice@example.org?roster;preauth=TOKEN, xmpp:example.org?register;preauth=TOKEN
  [/(preauth=)[^\s;&#"'<>]+/gi, `$1${REDACTED}`],
  // token='TOKEN', token="TOKEN", password='…' (XML attributes, messages quoting them: the bridge's
  // create-account carries the password as an attribute)
  [/(\b(?:token|password|passwd)\s*=\s*)(["'])(?:(?!\2)[^\n])*\2/gi, `$1$2${REDACTED}$2`],
  // <password>…</password>, <token>…</token> in serialised XML that reached a log line as a string
  [/(<(password|token|secret)\b[^>]*>)[^<]*(<\/\2>)/gi, `$1${REDACTED}$3`],
  // ?token=TOKEN&..., ;token=TOKEN
  [/([?&;]token=)[^\s;&#"'<>]+/gi, `$1${REDACTED}`],
  // landing pages: https://invites.example.org/i/TOKEN
  [/(\/i\/)[^\s/?#"'<>]+/g, `$1${REDACTED}`],
  // the web console's sign-in links: https://invites.example.org/login/CODE
  [/(\/login\/)[^\s/?#"'<>]+/g, `$1${REDACTED}`],
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A secret as it may appear: raw, XML-escaped, percent-encoded, JSON-escaped. */
function variants(secret: string): string[] {
  const all = [secret, escapeXml(secret), encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)];
  return [...new Set(all)];
}

/** Builds a masking function once for a list of secrets (the logger's hot path). */
export function createMasker(secrets: readonly string[] = []): (text: string) => string {
  const literals = [...new Set(secrets.filter((s) => typeof s === 'string' && s.length > 0).flatMap(variants))]
    // longest first, so that a secret containing another is masked whole
    .sort((a, b) => b.length - a.length);
  const secretPattern = literals.length > 0 ? new RegExp(literals.map(escapeRegExp).join('|'), 'g') : undefined;
  return (text: string): string => {
    let out = secretPattern ? text.replace(secretPattern, REDACTED) : text;
    for (const [pattern, replacement] of TOKEN_PATTERNS) out = out.replace(pattern, replacement);
    return out;
  };
}

/** Replaces every configured secret string and every invite token in `text` with `[redacted]`. */
export function maskSecrets(text: string, secrets: readonly string[] = []): string {
  return createMasker(secrets)(text);
}

const MAX_DEPTH = 10;

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** An ltx element logged by mistake (use sanitizeStanza): at least mask its serialisation. */
function isXmlElement(value: object): value is { toString(): string } {
  const v = value as { name?: unknown; attrs?: unknown; children?: unknown };
  return typeof v.name === 'string' && typeof v.attrs === 'object' && Array.isArray(v.children);
}

/** A masked copy of `value`; never mutates it. Class instances other than errors pass through. */
export function maskValue(value: unknown, mask: (text: string) => string, seen = new WeakSet<object>(), depth = 0): unknown {
  if (typeof value === 'string') return mask(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return '[Circular]';
  if (depth > MAX_DEPTH) return '[Too deep]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => maskValue(v, mask, seen, depth + 1));
    if (value instanceof Error) {
      // keep the prototype so pino's err serializer still reports the right type
      const copy = Object.create(Object.getPrototypeOf(value)) as Record<string, unknown>;
      for (const key of Object.getOwnPropertyNames(value)) {
        const desc = Object.getOwnPropertyDescriptor(value, key);
        if (!desc || !('value' in desc)) continue;
        Object.defineProperty(copy, key, { ...desc, value: maskValue(desc.value, mask, seen, depth + 1) });
      }
      return copy;
    }
    if (isXmlElement(value)) return mask(value.toString());
    if (!isPlainObject(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[key] = maskValue(v, mask, seen, depth + 1);
    return out;
  } finally {
    seen.delete(value);
  }
}

export function createLogger(opts: LoggerOptions = {}): pino.Logger {
  const mask = createMasker(opts.secrets ?? []);
  const options: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    formatters: {
      // the root's bindings; pino does not apply this formatter to children (see below)
      bindings: (bindings) => maskValue(bindings, mask) as pino.Bindings,
    },
    hooks: {
      // message, printf arguments and the merging object, before pino serialises them
      logMethod(args, method) {
        const masked = args.map((arg) => maskValue(arg, mask)) as Parameters<pino.LogFn>;
        return method.apply(this, masked);
      },
    },
  };
  const logger = opts.destination ? pino(options, opts.destination as pino.DestinationStream) : pino(options);
  // pino resets formatters.bindings for child loggers, so mask child bindings here; children are
  // created with Object.create(parent) and inherit these overrides.
  type ChildFn = (this: pino.Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => pino.Logger;
  type SetBindingsFn = (this: pino.Logger, bindings: pino.Bindings) => void;
  const rawChild = logger.child as unknown as ChildFn;
  const rawSetBindings = logger.setBindings as SetBindingsFn;
  const child: ChildFn = function (bindings, childOptions) {
    return rawChild.call(this, maskValue(bindings, mask) as pino.Bindings, childOptions);
  };
  const setBindings: SetBindingsFn = function (bindings) {
    rawSetBindings.call(this, maskValue(bindings, mask) as pino.Bindings);
  };
  logger.child = child as unknown as typeof logger.child;
  logger.setBindings = setBindings;
  return logger;
}
