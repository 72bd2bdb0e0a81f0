/**
 * Configuration: read the YAML file, validate it against the schema (config-schema.ts, where every
 * key, its default, type and meaning are declared once), report every error at once, and return a
 * deeply frozen `Config` (see config/xmpp-invites.example.yaml).
 *
 * Rules (contract, "Configuration"): snake_case keys; unknown keys are errors at every level; any
 * string value may be `env:NAME`; each error carries its path (`invites.expiry`,
 * `web.clients[1].platforms[0]`); secrets never appear in a message.
 */
import { isPostgresUrl, redactUrl } from './store/pg/url';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, schemaNodes, validate, type Config, type ParseContext, type Schema, type SchemaNode } from './config-schema';
import { describe, isPlainObject, urlPasswords } from './config-values';

export * from './config.types';
export { DEFAULT_CLIENTS } from './config-schema';
export { parseDuration } from './config-values';

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

  if (raw === undefined || raw === null) {
    throw new ConfigError([{ path: '(root)', message: 'the configuration is empty; see config/xmpp-invites.example.yaml' }], opts.source);
  }
  if (!isPlainObject(raw)) {
    throw new ConfigError([{ path: '(root)', message: `the configuration must be a mapping of keys to values, not ${describe(raw)}` }], opts.source);
  }

  const secrets = new Set<string>();
  const ctx: ParseContext = {
    env: opts.env ?? process.env,
    baseDir: path.resolve(opts.baseDir),
    // A safety net only (no reader quotes a secret); shorter values would mangle ordinary words.
    secret: (s) => {
      if (s.length >= 6) secrets.add(s);
    },
  };
  const result = validate(raw, ctx);
  if (!result.success) {
    const errors = issuesOf(configSchema, result.error.issues).map(({ path: at, message }) => {
      let m = message;
      for (const s of secrets) m = m.split(s).join(REDACTED);
      return { path: at, message: m };
    });
    throw new ConfigError(errors, opts.source);
  }
  return deepFreeze(result.data);
}

/** Every secret value in a config (for log redaction): component secret, token key, passwords. */
export function configSecrets(cfg: Config): string[] {
  const secrets = [cfg.component.secret, cfg.tokenKey];
  if (cfg.mail.transport.kind === 'smtp' && cfg.mail.transport.auth) secrets.push(cfg.mail.transport.auth.pass);
  secrets.push(...urlPasswords(cfg.registration.provisioner.url));
  if (isPostgresUrl(cfg.database)) secrets.push(...urlPasswords(cfg.database));
  for (const k of cfg.api.keys) secrets.push(k.key);
  for (const w of cfg.webhooks) secrets.push(w.secret);
  return [...new Set(secrets.filter((s) => s.length > 0))];
}

/** A plain (unfrozen) copy of the config that is safe to log: secrets become "[redacted]". */
export function redactConfig(cfg: Config): Config {
  const copy = structuredClone(cfg) as Config;
  copy.component.secret = REDACTED;
  copy.tokenKey = REDACTED;
  if (copy.mail.transport.kind === 'smtp' && copy.mail.transport.auth) copy.mail.transport.auth.pass = REDACTED;
  for (const k of copy.api.keys) k.key = REDACTED;
  for (const w of copy.webhooks) w.secret = REDACTED;
  const url = copy.registration.provisioner.url;
  if (url) {
    const u = new URL(url);
    if (u.password) copy.registration.provisioner.url = `${u.protocol}//${u.username}:${REDACTED}@${u.host}${u.pathname}`;
  }
  if (isPostgresUrl(copy.database)) copy.database = redactUrl(copy.database);
  return copy;
}

const REDACTED = '[redacted]';

// ---------------------------------------------------------------------------------------------
// From the schema's issues to ours

type Key = PropertyKey;

/**
 * Our issues, one per problem, in the order the keys are declared in the schema (unknown keys of a
 * mapping first), whatever order the validation met them in. Only paths and messages are kept:
 * zod's issues also hold the values, which may be secrets.
 */
function issuesOf(schema: Schema, issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const found: { at: Key[]; message: string; unknown: boolean }[] = [];
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      const allowed = Object.keys(nodeAt(schema, iss.path)?.shape ?? {});
      for (const key of iss.keys) found.push({ at: [...iss.path, key], message: unknownKey(key, allowed), unknown: true });
    } else {
      found.push({ at: iss.path, message: iss.message, unknown: false });
    }
  }
  const order = (f: (typeof found)[number]): number[] => {
    const out: number[] = [];
    let node: Schema | undefined = schema;
    f.at.forEach((key, i) => {
      const n: SchemaNode | undefined = node && schemaNodes.get(node);
      if (n?.kind === 'section') {
        const index = Object.keys(n.shape).indexOf(String(key));
        out.push(f.unknown && i === f.at.length - 1 ? -1 : index);
        node = n.shape[String(key)];
      } else {
        out.push(typeof key === 'number' ? key : 0);
        node = n?.kind === 'field' ? n.element : undefined;
      }
    });
    return out;
  };
  const keyed = found.map((f) => ({ f, o: order(f) }));
  keyed.sort((a, b) => compareOrder(a.o, b.o));
  return keyed.map(({ f }) => ({ path: formatPath(f.at), message: f.message }));
}

/** The section at a path of the document (through lists of sections), if there is one. */
function nodeAt(schema: Schema, at: readonly Key[]): { shape: Record<string, Schema> } | undefined {
  let node: Schema | undefined = schema;
  for (const key of at) {
    const n: SchemaNode | undefined = node && schemaNodes.get(node);
    if (n?.kind === 'section') node = n.shape[String(key)];
    else if (n?.kind === 'field' && typeof key === 'number') node = n.element;
    else return undefined;
  }
  const n: SchemaNode | undefined = node && schemaNodes.get(node);
  return n?.kind === 'section' ? n : undefined;
}

function compareOrder(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function formatPath(at: readonly Key[]): string {
  let out = '';
  for (const key of at) out += typeof key === 'number' ? `[${key}]` : out ? `.${String(key)}` : String(key);
  return out;
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
