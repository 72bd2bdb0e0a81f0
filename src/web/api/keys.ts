/**
 * The API's bearer keys (`api.keys`). Only a SHA-256 hash of each key is kept once the service has
 * started; a presented key is hashed and compared with every configured hash in constant time
 * (`timingSafeEqual`, and no early exit), so neither the time taken nor a memory dump tells it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiScope } from '../../config-schema';

export interface ApiKey {
  name: string;
  scopes: ReadonlySet<ApiScope>;
}

interface Stored extends ApiKey {
  hash: Buffer;
}

const hash = (key: string) => createHash('sha256').update(key, 'utf8').digest();

export class ApiKeys {
  readonly #keys: Stored[];

  constructor(keys: readonly { name: string; key: string; scopes: readonly ApiScope[] }[]) {
    this.#keys = keys.map((k) => ({ name: k.name, scopes: new Set(k.scopes), hash: hash(k.key) }));
  }

  get size(): number {
    return this.#keys.length;
  }

  /** The key an `Authorization: Bearer KEY` header names; undefined when absent or unknown. */
  authenticate(header: string | undefined): ApiKey | undefined {
    const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header ?? '');
    if (!m) return undefined;
    const presented = hash(m[1]);
    let found: Stored | undefined;
    for (const k of this.#keys) if (timingSafeEqual(k.hash, presented) && !found) found = k;
    return found ? { name: found.name, scopes: found.scopes } : undefined;
  }
}

/** `admin` allows everything. */
export function allows(key: ApiKey, scope: ApiScope): boolean {
  return key.scopes.has('admin') || key.scopes.has(scope);
}
