/** Builds the web server of `serve` from the config: the site, the security settings, the routes. */
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { InviteService } from '../domain/invites';
import type { Respond } from '../domain/respond';
import { registerLandingRoutes, type Health, type ResetsPort } from './landing';
import { registerMembershipRoutes } from './membership';
import type { MembershipService } from '../domain/membership';
import type { ConsoleAuth } from '../domain/console-auth';
import { registerConsoleRoutes, SESSION_COOKIE } from './console';
import type { RoomAnswers } from '../domain/room-answers';
import type { Trust } from '../domain/trust';
import type { RoomsPort } from '../domain/rooms';
import type { Site } from './pages';
import type { RateLimitOptions } from './rate-limit';
import { WebServer, type WebLimits } from './server';
import { API_PREFIX, apiHandler } from './api';

export interface WebDeps {
  config: Config;
  invites: InviteService;
  respond: Respond;
  /** membership requests: the /request pages (which say so when registration.requests is off) and the API's /requests */
  membership: MembershipService;
  /** password reset links (landing page /i/{token} of kind reset) */
  resets?: ResetsPort;
  /** the web console's sign-ins and sessions */
  auth: ConsoleAuth;
  /** answers to room invitations (absent: room invitations are off) */
  roomAnswers?: RoomAnswers;
  /** the invitation tree (the console's /admin/tree) */
  trust: Trust;
  /** the MUC service (absent: room invitations are off): the API asks it who may invite to a room */
  rooms?: RoomsPort;
  logger: Logger;
  health(): Health;
  /** overrides web.listen (tests: port 0) */
  listen?: { host: string; port: number };
  rateLimit?: RateLimitOptions;
  /** overrides the per-user limit on POSTs of signed-in users */
  sessionRateLimit?: RateLimitOptions;
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
  const secureCookies = config.web.publicUrl.startsWith('https:');
  const web = new WebServer({
    listen: deps.listen ?? config.web.listen,
    trustedProxies: config.web.trustedProxies,
    tokenKey: config.tokenKey,
    secureCookies,
    site,
    logger: deps.logger,
    rateLimit: deps.rateLimit,
    sessionUser: (cookies) => deps.auth.session(cookies.get(SESSION_COOKIE))?.jid,
    sessionRateLimit: deps.sessionRateLimit,
    limits: deps.limits,
    clock: deps.clock,
  });
  // The JSON API has its own discipline (bearer keys, JSON errors): src/web/api.
  web.mount(API_PREFIX, apiHandler({ config, invites: deps.invites, membership: deps.membership, rooms: deps.rooms, logger: deps.logger.child({ module: 'api' }) }));
  registerLandingRoutes(web, { site, invites: deps.invites, respond: deps.respond, roomAnswers: deps.roomAnswers, health: deps.health, clock: deps.clock, resets: deps.resets });
  registerMembershipRoutes(web, { site, membership: deps.membership, invites: deps.invites, logger: deps.logger, clock: deps.clock });
  registerConsoleRoutes(web, {
    site,
    invites: deps.invites,
    auth: deps.auth,
    admins: config.admins,
    policy: {
      expiry: config.invites.expiry,
      maxUses: config.invites.maxUses,
      allowUserInvites: config.invites.allowUserInvites,
      maxMessage: config.presence.maxMessageLength,
    },
    secureCookies,
    trust: deps.trust,
    membership: deps.membership,
    requestsOn: config.registration.requests !== 'off',
    roomAnswers: deps.roomAnswers,
  });
  return web;
}

export type { WebServer } from './server';
