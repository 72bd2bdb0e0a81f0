/** Builds the web server of `serve` from the config: the site, the security settings, the routes. */
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { InviteService } from '../domain/invites';
import type { Respond } from '../domain/respond';
import type { RoomAnswers } from '../domain/room-answers';
import { registerLandingRoutes, type Health } from './landing';
import type { Site } from './pages';
import type { RateLimitOptions } from './rate-limit';
import { WebServer, type WebLimits } from './server';

export interface WebDeps {
  config: Config;
  invites: InviteService;
  respond: Respond;
  roomAnswers?: RoomAnswers;
  logger: Logger;
  health(): Health;
  /** overrides web.listen (tests: port 0) */
  listen?: { host: string; port: number };
  rateLimit?: RateLimitOptions;
  /** connection caps and timeouts (tests shorten them) */
  limits?: Partial<WebLimits>;
  clock?: () => number;
}

export function siteOf(config: Config): Site {
  return {
    name: config.siteName,
    host: config.host,
    base: new URL(config.web.publicUrl).pathname.replace(/\/+$/, ''),
    clients: config.web.clients,
    minPasswordLength: config.registration.minPasswordLength,
    serverBridge: config.registration.serverBridge,
  };
}

export function createWebServer(deps: WebDeps): WebServer {
  const { config } = deps;
  const site = siteOf(config);
  const web = new WebServer({
    listen: deps.listen ?? config.web.listen,
    trustedProxies: config.web.trustedProxies,
    tokenKey: config.tokenKey,
    secureCookies: config.web.publicUrl.startsWith('https:'),
    site,
    logger: deps.logger,
    rateLimit: deps.rateLimit,
    limits: deps.limits,
    clock: deps.clock,
  });
  registerLandingRoutes(web, { site, invites: deps.invites, respond: deps.respond, roomAnswers: deps.roomAnswers, health: deps.health, clock: deps.clock });
  return web;
}

export type { WebServer } from './server';
