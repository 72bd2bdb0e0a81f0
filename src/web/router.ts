/**
 * A tiny router: method + path pattern (`/i/:token/register`) → handler, with 404 for an unknown
 * path and 405 (with the allowed methods) for a known path and another method.
 */

export type Params = Record<string, string>;

interface Route<H> {
  method: string;
  segments: string[];
  handler: H;
}

export type Match<H> = { kind: 'found'; handler: H; params: Params } | { kind: 'method'; allowed: string[] } | { kind: 'none' };

export class Router<H> {
  readonly #routes: Route<H>[] = [];

  add(method: string, pattern: string, handler: H): this {
    this.#routes.push({ method, segments: pattern.split('/').slice(1), handler });
    return this;
  }

  match(method: string, path: string): Match<H> {
    const parts = path.split('/').slice(1);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      // HEAD is GET without a body (Node's http leaves the body out by itself).
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { kind: 'found', handler: route.handler, params };
      allowed.push(route.method);
    }
    return allowed.length > 0 ? { kind: 'method', allowed: [...new Set(allowed)] } : { kind: 'none' };
  }
}

function matchSegments(pattern: string[], parts: string[]): Params | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Params = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith(':')) {
      if (parts[i] === '') return undefined;
      let value: string;
      try {
        value = decodeURIComponent(parts[i]);
      } catch {
        return undefined;
      }
      params[pattern[i].slice(1)] = value;
    } else if (pattern[i] !== parts[i]) {
      return undefined;
    }
  }
  return params;
}
