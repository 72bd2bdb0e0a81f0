/**
 * The `xmpp-invites` command line. Subcommands other than `serve` act on the database only: they
 * write state and events (and, once delivery exists, outbox rows) and leave talking XMPP and SMTP to
 * the running service, so they are safe beside it. What only the server can say (whether an account
 * exists, for a reset link) they ask the running service through the database as well.
 * Exit codes: 0 ok; 1 runtime failure; 2 bad usage or a config that does not validate.
 */
import { ConsoleAuth } from './domain/console-auth';
import { NO_NOTICES } from './domain/notices';
import { SqliteConsoleStore } from './store/console-repo';
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import Database from 'better-sqlite3';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, parseDuration, type Config } from './config';
import { InviteError } from './errors';
import type { InviteService } from './domain/invites';
import { isInviteId } from './domain/tokens';
import { actorName, INVITE_KINDS, OPERATOR, SHOWN_STATES, type Invite, type InviteKind, type RoomInvitation, type ShownState } from './domain/types';
import { normalizeBareJid, emailKey } from './domain/jid';
import { parseEmailAddress } from './domain/email-address';
import { cleanText, trimSpace } from './domain/text';
import { openDatabase, type Db } from './store/database';
import { accountChecksFor, bouncesFor, databaseFor, inviteServiceFor, limitsFor, membershipFor, outboxFor, resetsFor, trustFor } from './services';
import { EjabberdApiProvisioner } from './provisioners/ejabberd-api';
import { ProvisionUnclear } from './domain/registration';
import { DEFAULT_CHECK_WAIT_MS } from './domain/account-checks';
import { normalizeUsername } from './domain/usernames';
import { isRequestId, REQUEST_STATES, type MembershipService, type RequestState } from './domain/membership';
import { requestJson, requestLine } from './present/request';
import { MAX_BOUNCE_BYTES, parseBounce } from './mail/dsn';
import type { Trust } from './domain/trust';
import { treeJson, treeLines } from './present/tree';
import type { OutboxRow, OutboxState } from './store/outbox-repo';
import type { Limits } from './domain/limits';
import { dateTime, emailDelivery, instant, inviteeLabel, inviteJson, inviterOf, roomAnswerLine, roomsJson, roomStatsLines, STATS_HEADINGS, statsLines } from './present/invite';

import { visibleText } from './terminal-text';
import { isPostgresUrl, redactUrl } from './store/pg/url';

export class UsageError extends Error {}

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** reads standard input to its end (`mail bounce`) */
  stdin?: () => Promise<Buffer>;
}

/**
 * What a subcommand writes to: `out` and `err` take one line for a person each, shown with every
 * control character visible, newlines included (terminal-text.ts: notes and reasons come from
 * strangers, and a line must not pass for two); `lines` prints the program's own multi-line text;
 * `json` writes machine-readable output exactly.
 */
interface CliIo extends Io {
  lines: (text: string, to?: 'out' | 'err') => void;
  json: (value: unknown) => void;
}

function cliIo(io: Io): CliIo {
  const out = (line: string) => io.out(visibleText(line));
  const err = (line: string) => io.err(visibleText(line));
  return {
    out,
    err,
    env: io.env,
    stdin: io.stdin,
    lines: (text, to = 'out') => text.split('\n').forEach(to === 'out' ? out : err),
    json: (value) => io.out(JSON.stringify(value, null, 2)),
  };
}

const USAGE = `Usage: xmpp-invites <command> [options]

  serve --config FILE                 run the component (and everything else) in one process
  config check --config FILE          validate a config file
  invite create --kind KIND [--username U] [--inviter JID] [--email E] [--jid JID]
                [--room ROOMJID]... [--expire 7d] [--uses N] [--note TEXT]
                KIND: account, account-locked, contact, contact-account, room
                (room: --jid and at least one --room; --room goes with any kind that creates an account)
  invite create --kind reset --username U [--expire 1d] [--wait 15s]
                a one-use link with which the account's owner sets a new password; made only
                for an account the server says exists (with XEP-0133 or the Prosody bridge the
                running service is asked, waiting up to --wait for its answer)
  invite list [--state S] [--inviter JID] [--json]
  invite show ID
  invite log ID
  invite approve ID...
  invite reject ID... --reason R
  invite revoke ID [--reason R]
  invite revoke --tree JID [--reason R]  revoke every pending or open invite of JID and the accounts below it
  invite resend ID
  request list [--state S] [--limit N] [--json]
                                      membership requests (S: unverified, pending, approved, rejected, expired)
  request show ID                     a membership request and its events
  request approve ID...               make its account invite and e-mail it to the verified address
  request reject ID... [--reason R]   e-mail the address the answer (with the reason when given)
  invite extend ID [--expire D] [--uses N]
                                      an open invite: valid for D from now, or N uses in all
  console revoke JID                  end every web console session of a user
  mail list [--state queued|sending|sent|failed] [--limit N] [--json]
  mail retry ID                       put a failed e-mail back in the queue
  mail bounce [--recipient ADDR]      read one bounce on stdin (an MTA's pipe) and record it
  mail unsuppress ADDR                invites to an address that bounced may be made again
  stats [--json]
  tree [JID] [--json]                 who invited whom: the tree below JID, or the whole forest
  user block JID --reason R           JID may not invite (told the reason)
  user unblock JID [--reason R]
  user blocked [--json]               the users blocked now
  db copy --from FILE --to URL        copy a SQLite store into an empty PostgreSQL database
  backup FILE                         an online, consistent copy of the SQLite store (safe beside serve)

Every command but db copy takes --config FILE, or reads the path from XMPP_INVITES_CONFIG.`;

const COMMON = { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function configPath(values: { config?: string }, env: NodeJS.ProcessEnv): string {
  const file = values.config ?? env.XMPP_INVITES_CONFIG;
  if (!file) throw new UsageError('No configuration: pass --config FILE or set XMPP_INVITES_CONFIG');
  return file;
}

function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`Unexpected argument: ${positionals[0]}`);
}

function ids(positionals: string[], atLeast = 1): string[] {
  if (positionals.length < atLeast) throw new UsageError('Which invite? Give its id');
  for (const id of positionals) if (!isInviteId(id)) throw new UsageError(`Not an invite id: ${id}`);
  return positionals;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

class Context {
  readonly db: Db;
  readonly invites: InviteService;
  readonly limits: Limits;
  readonly #config: Config;
  #membership: MembershipService | undefined;
  readonly trust: Trust;
  constructor(readonly config: Config) {
    this.#config = config;
    this.db = databaseFor(config);
    this.invites = inviteServiceFor(config, this.db);
    this.limits = limitsFor(config, this.db);
    this.trust = trustFor(config, this.db, this.invites);
  }
  get membership(): MembershipService {
    return (this.#membership ??= membershipFor(this.#config, this.db, this.invites));
  }
  close(): void {
    this.db.close();
  }
}

function withContext<T>(values: { config?: string }, io: CliIo, fn: (ctx: Context) => T): T {
  const ctx = new Context(loadConfig(configPath(values, io.env), io.env));
  try {
    return fn(ctx);
  } finally {
    ctx.close();
  }
}

function printLinks(io: CliIo, invite: Invite, links: { uri: string; landingUrl: string }, rooms: readonly RoomInvitation[] = [], skipped: readonly { room: string; reason: string }[] = []): void {
  io.out(`id:       ${invite.id}`);
  io.out(`kind:     ${invite.kind}`);
  io.out(`state:    ${invite.state}`);
  io.out(`expires:  ${instant(invite.expiresAt)}`);
  io.out(`uri:      ${links.uri}`);
  io.out(`landing:  ${links.landingUrl}`);
  for (const r of rooms) io.out(`room:     ${visibleText(roomAnswerLine(r))}`);
  for (const r of skipped) io.out(`not room: ${visibleText(`${r.room}: ${r.reason}`)}`);
}

/**
 * `invite create --kind reset --username U [--expire D] [--wait D]`: a password reset link, made
 * only for an account the server says exists (contract, "Password reset invites"). With the
 * `ejabberd-api` provisioner the command line asks the server itself, over HTTP. With XEP-0133 or
 * the Prosody bridge the server is asked over XMPP, which only the running service speaks: the
 * command line asks it through the store they share (domain/account-checks.ts) and waits up to
 * `--wait` (15 s) for its answer. A missing account, a server that cannot say, or no answer in
 * time: exit 1, and no link is made (the question stays in account_checks, the log of them).
 */
async function resetCreate(values: Record<string, string | string[] | boolean | undefined>, io: CliIo): Promise<number> {
  for (const flag of ['inviter', 'email', 'uses', 'note', 'jid', 'room'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} does not apply to --kind reset`);
  }
  const username = values.username;
  if (typeof username !== 'string' || username === '') throw new UsageError('--kind reset needs --username U (the account whose password is reset)');
  let expiresIn: number | undefined;
  if (typeof values.expire === 'string') {
    try {
      expiresIn = parseDuration(values.expire);
    } catch {
      throw new UsageError(`--expire: not a duration: ${values.expire} (use 30m, 12h, 7d, 4w)`);
    }
  }
  const waitMs = typeof values.wait === 'string' ? checkWait(values.wait) : DEFAULT_CHECK_WAIT_MS;
  const config = loadConfig(configPath(values as { config?: string }, io.env), io.env);
  // A username the rules refuse is refused before anyone is asked (nothing recorded).
  const user = normalizeUsername(username);
  const jid = `${user}@${config.host}`;
  const notMade = (why: string) => new InviteError('unavailable', `${why}; no reset link made`);
  const ctx = new Context(config);
  try {
    let check: number | undefined;
    let exists: boolean;
    const { type, url } = config.registration.provisioner;
    if (type === 'ejabberd-api' && url) {
      try {
        exists = await new EjabberdApiProvisioner({ url, host: config.host }).accountExists(user);
      } catch (err) {
        if (!(err instanceof ProvisionUnclear)) throw err;
        throw notMade(`${config.host} could not say whether ${jid} exists: ${err.message}`);
      }
    } else {
      const asked = await accountChecksFor(ctx.db).ask(actorName(OPERATOR), user, { waitMs });
      const waited = `${Math.round(waitMs / 1000)} s`;
      switch (asked.kind) {
        case 'unanswered':
          throw notMade(
            asked.takenBy
              ? `the running service (instance ${asked.takenBy}) asked ${config.host} whether ${jid} exists but had no answer within ${waited}: try again, or wait longer with --wait`
              : `no running service answered within ${waited} whether ${jid} exists: start \`xmpp-invites serve\` (connected to ${config.host}) and try again`,
          );
        case 'unclear':
          throw notMade(`${config.host} could not say whether ${jid} exists: ${asked.reason}`);
      }
      exists = asked.kind === 'exists';
      check = asked.id;
    }
    let made;
    try {
      made = resetsFor(config, ctx.db).create(OPERATOR, user, exists, { expiresIn, check });
    } catch (err) {
      // The domain refuses a missing account: said with the account's JID, and that nothing was made.
      if (err instanceof InviteError && err.code === 'invalid-input') throw new InviteError(err.code, `${err.message}; no reset link made`);
      throw err;
    }
    const { reset, links } = made;
    io.out(`id:       ${reset.id}`);
    io.out('kind:     reset');
    io.out(`account:  ${reset.username}@${config.host}`);
    io.out('state:    open');
    io.out(`expires:  ${instant(reset.expiresAt)}`);
    io.out(`landing:  ${links.landingUrl}`);
    return 0;
  } finally {
    ctx.close();
  }
}

/** `--wait D`: how long to wait for the running service's answer, 1 s to 10 min. */
function checkWait(text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw new UsageError(`--wait: not a duration: ${text} (use 15s, 1m)`);
  }
  if (ms < 1_000 || ms > 600_000) throw new UsageError(`--wait: ${text} is not between 1s and 10m`);
  return ms;
}

function inviteCreate(args: string[], io: CliIo): number | Promise<number> {
  const { values, positionals } = parse(args, {
    kind: { type: 'string' },
    username: { type: 'string' },
    inviter: { type: 'string' },
    email: { type: 'string' },
    expire: { type: 'string' },
    uses: { type: 'string' },
    note: { type: 'string' },
    jid: { type: 'string' },
    room: { type: 'string', multiple: true },
    wait: { type: 'string' },
  });
  noPositionals(positionals);
  const kind = values.kind;
  if (kind === 'reset') return resetCreate(values, io);
  if (values.wait !== undefined) throw new UsageError('--wait applies only to --kind reset');
  if (!kind) throw new UsageError(`--kind is required: ${INVITE_KINDS.join(', ')}, reset`);
  if (!(INVITE_KINDS as readonly string[]).includes(kind)) throw new UsageError(`--kind must be one of ${INVITE_KINDS.join(', ')}, reset`);
  const { expiresIn, maxUses } = lifetimeAndUses(values);
  const email = values.email === undefined ? undefined : parseEmailAddress(values.email);
  if (values.email !== undefined && email === undefined) {
    throw new UsageError(`--email: not a single e-mail address: ${values.email}`);
  }
  if (values.inviter !== undefined && !normalizeBareJid(values.inviter)?.includes('@')) {
    throw new UsageError(`--inviter: not a user JID: ${values.inviter}`);
  }
  if (values.jid !== undefined && !normalizeBareJid(values.jid)?.includes('@')) throw new UsageError(`--jid: not a user JID: ${values.jid}`);
  if (kind === 'room' && (values.jid === undefined || (values.room ?? []).length === 0)) throw new UsageError('--kind room needs --jid JID and at least one --room ROOMJID');
  return withContext(values, io, ({ invites, config }) => {
    if ((values.room ?? []).length > 0 && !config.rooms.service) throw new UsageError('--room: room invitations are off (rooms.service is not set)');
    // The operator is the highest authority: any room of rooms.service (its name is not asked of the
    // service, as the CLI never talks XMPP; the room's JID stands for it).
    const { invite, links, rooms, roomsSkipped } = invites.create(OPERATOR, {
      kind: kind as InviteKind,
      source: 'cli',
      username: values.username,
      inviter: values.inviter,
      email,
      jid: values.jid,
      rooms: (values.room ?? []).map((jid) => ({ jid })),
      expiresIn,
      maxUses,
      note: values.note,
    });
    printLinks(io, invite, links, rooms, roomsSkipped);
    return 0;
  });
}

function inviteList(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, {
    state: { type: 'string' },
    inviter: { type: 'string' },
    invitee: { type: 'string' },
    json: { type: 'boolean' },
  });
  noPositionals(positionals);
  if (values.state !== undefined && !(SHOWN_STATES as readonly string[]).includes(values.state)) {
    throw new UsageError(`--state must be one of ${SHOWN_STATES.join(', ')}`);
  }
  const inviter = values.inviter === undefined ? undefined : normalizeBareJid(values.inviter);
  if (values.inviter !== undefined && !inviter) throw new UsageError(`--inviter: not a JID: ${values.inviter}`);
  // E-mail keys and bare JIDs are both compared lower-cased.
  const invitee = values.invitee === undefined ? undefined : (normalizeBareJid(trimSpace(values.invitee)) ?? emailKey(trimSpace(values.invitee)));
  return withContext(values, io, ({ invites }) => {
    const now = Date.now();
    const list = invites.list({ state: values.state as ShownState | undefined, inviter, invitee });
    const roomsOf = new Map(list.map((i) => [i.id, invites.roomsOf(i.id)]));
    if (values.json) {
      io.json(list.map((i) => roomsJson(inviteJson(i, now), roomsOf.get(i.id)!)));
      return 0;
    }
    if (list.length === 0) {
      io.out('No invites.');
      return 0;
    }
    // A ROOMS column only when some invite listed names rooms: "team:accepted garden:open".
    const withRooms = list.some((i) => roomsOf.get(i.id)!.length > 0);
    const rows = list.map((i) => {
      const j = inviteJson(i, now);
      const cells = [j.id, j.kind, j.state, j.delivery, inviterOf(i), inviteeLabel(i), dateTime(i.createdAt), dateTime(i.expiresAt), `${j.uses}/${j.max_uses}`];
      if (withRooms) cells.push(roomsOf.get(i.id)!.map((r) => `${r.room.slice(0, r.room.indexOf('@'))}:${r.state}`).join(' '));
      // rendered before measuring, so that the columns line up as printed
      return cells.map(visibleText);
    });
    const head = ['ID', 'KIND', 'STATE', 'DELIVERY', 'INVITER', 'INVITEE', 'CREATED', 'EXPIRES', 'USES', ...(withRooms ? ['ROOMS'] : [])];
    const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
    for (const r of [head, ...rows]) io.out(r.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd());
    return 0;
  });
}

function inviteShow(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, {});
  const [id] = ids(positionals);
  if (positionals.length > 1) throw new UsageError('invite show takes one id');
  return withContext(values, io, ({ invites, config, db }) => {
    const invite = invites.get(id);
    if (!invite) {
      // A password reset link (kind reset) is kept apart from invites.
      const resets = resetsFor(config, db);
      const reset = resets.get(id);
      if (!reset) throw new InviteError('invite-not-found', `No invite ${id}`);
      const lines: [string, string | null][] = [
        ['id', reset.id],
        ['kind', 'reset'],
        ['state', resets.shownState(reset)],
        ['account', `${reset.username}@${config.host}`],
        ['created', `${instant(reset.createdAt)} by ${reset.createdBy}`],
        ['expires', instant(reset.expiresAt)],
        ['ended', reset.endedAt === null ? null : instant(reset.endedAt)],
      ];
      for (const [k, v] of lines) if (v !== null) io.out(`${`${k}:`.padEnd(21)}${v}`);
      return 0;
    }
    const j = inviteJson(invite, Date.now());
    const lines: [string, unknown][] = [
      ['id', j.id],
      ['kind', j.kind],
      ['state', j.state],
      ['inviter', inviterOf(invite)],
      ['source', invite.source],
      ['invitee e-mail', j.invitee_email],
      ['invitee JID', j.invitee_jid],
      ['invitee name', invite.inviteeName],
      ['username', invite.username],
      ['note', invite.note],
      ['roster subscription', invite.rosterSubscription ? 'yes' : null],
      ['uses', `${invite.uses} of ${invite.maxUses}${invite.held ? ` (${invite.held} held)` : ''}`],
      ['created', instant(invite.createdAt)],
      ['approved', invite.approvedAt ? `${instant(invite.approvedAt)} by ${invite.approvedBy}` : null],
      ['expires', instant(invite.expiresAt)],
      ['e-mail delivery', emailDelivery(invite)],
      ['message delivery', invite.messageDelivery],
    ];
    for (const r of invites.roomsOf(invite.id)) lines.push(['room', roomAnswerLine(r)]);
    for (const [k, v] of lines) if (v !== null && v !== undefined) io.out(`${`${k}:`.padEnd(21)}${String(v)}`);
    return 0;
  });
}

function inviteLog(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  const [id] = ids(positionals);
  return withContext(values, io, ({ invites, config, db }) => {
    const reset = invites.get(id) ? undefined : resetsFor(config, db).get(id);
    if (!invites.get(id) && !reset) throw new InviteError('invite-not-found', `No invite ${id}`);
    const events: { at: number; type: string; actor: string; reason: string | null; data: Record<string, unknown> | null }[] = reset
      ? resetsFor(config, db).events(id)
      : invites.events(id);
    if (values.json) {
      io.json(events.map((e) => ({ at: iso(e.at), type: e.type, actor: e.actor, reason: e.reason, data: e.data })));
      return 0;
    }
    for (const e of events) {
      io.out(`${iso(e.at)}  ${e.type.padEnd(9)}  ${e.actor}${e.reason ? `  reason: ${e.reason}` : ''}${e.data ? `  ${JSON.stringify(e.data)}` : ''}`);
    }
    return 0;
  });
}

/** Applies `fn` to each id; reports each outcome; exit 1 when any failed. */
function eachId(args: string[], io: CliIo, extra: NonNullable<ParseArgsConfig['options']>, fn: (ctx: Context, id: string, values: Record<string, unknown>) => string, check?: (values: Record<string, unknown>) => void): number {
  const { values, positionals } = parse(args, extra);
  const list = ids(positionals);
  check?.(values);
  return withContext(values, io, (ctx) => {
    let failed = 0;
    for (const id of list) {
      try {
        io.out(fn(ctx, id, values));
      } catch (err) {
        if (!(err instanceof InviteError)) throw err;
        failed++;
        io.err(`${id}: ${err.message}`);
      }
    }
    return failed ? 1 : 0;
  });
}

const inviteApprove = (args: string[], io: CliIo) =>
  eachId(args, io, {}, ({ invites }, id) => (invites.approve(OPERATOR, id).changed ? `${id}: approved` : `${id}: already approved`));

const inviteReject = (args: string[], io: CliIo) =>
  eachId(
    args,
    io,
    { reason: { type: 'string' } },
    ({ invites }, id, v) => (invites.reject(OPERATOR, id, v.reason as string).changed ? `${id}: rejected` : `${id}: already rejected`),
    (v) => {
      if (typeof v.reason !== 'string' || cleanText(v.reason).trim() === '') throw new UsageError('invite reject needs --reason R (the inviter is told)');
    },
  );

function inviteRevoke(args: string[], io: CliIo): number {
  if (!args.some((a) => a === '--tree' || a.startsWith('--tree='))) {
    return eachId(args, io, { reason: { type: 'string' } }, ({ invites, config, db }, id, v) => {
      // A password reset link is revoked as an invite is (while open).
      const resets = invites.get(id) ? undefined : resetsFor(config, db);
      const reset = resets?.get(id);
      if (resets && reset) {
        if (resets.revoke(OPERATOR, id, (v.reason as string | undefined) ?? null)) return `${id}: revoked`;
        const state = resets.shownState(resets.get(id)!);
        if (state === 'revoked') return `${id}: already revoked`;
        throw new InviteError('wrong-state', `Reset link ${id} is ${state} and cannot be revoked`);
      }
      return invites.revoke(OPERATOR, id, (v.reason as string | undefined) ?? null).changed ? `${id}: revoked` : `${id}: already revoked`;
    });
  }
  const { values, positionals } = parse(args, { tree: { type: 'string' }, reason: { type: 'string' } });
  noPositionals(positionals);
  const root = userJid('--tree', values.tree);
  return withContext(values, io, ({ trust }) => {
    const revoked = trust.revokeTree(OPERATOR, root, values.reason ?? null);
    for (const i of revoked) io.out(`${i.id}: revoked (${inviterOf(i)} → ${inviteeLabel(i)})`);
    io.out(`${revoked.length} ${revoked.length === 1 ? 'invite' : 'invites'} revoked in the tree of ${root}`);
    return 0;
  });
}

function userJid(what: string, text: string | undefined): string {
  if (text === undefined) throw new UsageError(`${what}: which user? Give a JID`);
  const jid = normalizeBareJid(trimSpace(text));
  if (!jid || !jid.includes('@')) throw new UsageError(`${what}: not a user JID: ${text}`);
  return jid;
}

function treeCommand(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  if (positionals.length > 1) throw new UsageError('tree takes at most one JID');
  const root = positionals.length === 1 ? userJid('tree', positionals[0]) : undefined;
  return withContext(values, io, ({ trust }) => {
    const forest = trust.tree(root);
    if (values.json) io.json(root === undefined ? forest.map(treeJson) : treeJson(forest[0]));
    else if (forest.length === 0) io.out('Nobody has invited anyone yet.');
    else for (const line of treeLines(forest)) io.out(line);
    return 0;
  });
}

function userBlock(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { reason: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('user block takes one JID');
  const jid = userJid('user block', positionals[0]);
  if (values.reason === undefined || cleanText(values.reason).trim() === '') throw new UsageError('user block needs --reason R (the user is shown it)');
  return withContext(values, io, ({ trust }) => {
    trust.block(OPERATOR, jid, values.reason!);
    io.out(`${jid}: blocked from inviting`);
    return 0;
  });
}

function userUnblock(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { reason: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('user unblock takes one JID');
  const jid = userJid('user unblock', positionals[0]);
  return withContext(values, io, ({ trust }) => {
    io.out(trust.unblock(OPERATOR, jid, values.reason ?? null) ? `${jid}: may invite again` : `${jid}: was not blocked`);
    return 0;
  });
}

function userBlocked(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  noPositionals(positionals);
  return withContext(values, io, ({ trust }) => {
    const blocks = trust.blocked();
    if (values.json) io.json(blocks.map((b) => ({ jid: b.jid, reason: b.reason, by: b.actor, at: iso(b.at) })));
    else if (blocks.length === 0) io.out('Nobody is blocked.');
    else for (const b of blocks) io.out(`${b.jid}  blocked ${instant(b.at)} by ${b.actor}: ${b.reason ?? ''}`);
    return 0;
  });
}

function inviteResend(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, {});
  const [id] = ids(positionals);
  if (positionals.length > 1) throw new UsageError('invite resend takes one id');
  return withContext(values, io, ({ invites }) => {
    const { invite, links } = invites.resend(OPERATOR, id);
    printLinks(io, invite, links);
    return 0;
  });
}

/** `--expire` and `--uses` as `invite create` reads them. */
function lifetimeAndUses(values: { expire?: string; uses?: string }): { expiresIn?: number; maxUses?: number } {
  let expiresIn: number | undefined;
  if (values.expire !== undefined) {
    try {
      expiresIn = parseDuration(values.expire);
    } catch {
      throw new UsageError(`--expire: not a duration: ${values.expire} (use 30m, 12h, 7d, 4w)`);
    }
  }
  if (values.uses !== undefined && (!/^\d{1,9}$/.test(values.uses) || Number(values.uses) < 1)) {
    throw new UsageError('--uses must be a whole number of at least 1');
  }
  return { expiresIn, maxUses: values.uses === undefined ? undefined : Number(values.uses) };
}

function inviteExtend(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { expire: { type: 'string' }, uses: { type: 'string' } });
  const [id] = ids(positionals);
  if (positionals.length > 1) throw new UsageError('invite extend takes one id');
  const change = lifetimeAndUses(values);
  if (change.expiresIn === undefined && change.maxUses === undefined) throw new UsageError('invite extend needs --expire D, --uses N or both');
  return withContext(values, io, ({ invites }) => {
    const { invite, changed } = invites.extend(OPERATOR, id, change);
    io.out(changed ? `${id}: extended` : `${id}: unchanged`);
    io.out(`expires:  ${instant(invite.expiresAt)}`);
    io.out(`uses:     ${invite.uses}/${invite.maxUses}`);
    return 0;
  });
}

/** Ends every web console session of a user (a lost device): they sign in again with a new link. */
function consoleRevoke(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, {});
  if (positionals.length !== 1) throw new UsageError('console revoke takes one JID');
  const jid = normalizeBareJid(positionals[0]);
  if (!jid || !jid.includes('@')) throw new UsageError(`Not a user JID: ${positionals[0]}`);
  return withContext(values, io, ({ config, db }) => {
    const auth = new ConsoleAuth({ store: new SqliteConsoleStore(db), tokenKey: config.tokenKey, host: config.host, publicUrl: config.web.publicUrl, notices: NO_NOTICES });
    const n = auth.revokeAll(jid);
    io.out(`${jid}: ${n} session${n === 1 ? '' : 's'} ended`);
    return 0;
  });
}

function statsCommandCli(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  noPositionals(positionals);
  return withContext(values, io, (ctx) => {
    const stats = ctx.invites.stats(1000);
    const rooms = ctx.invites.roomStats(1000);
    if (values.json) {
      io.json({ ...stats, rooms, requests: ctx.membership.stats() });
      return 0;
    }
    const lines = statsLines(stats, ctx.limits);
    io.out(`${STATS_HEADINGS.states}:`);
    for (const l of lines.states) io.out(`  ${l}`);
    io.out(`${STATS_HEADINGS.delivery}:`);
    for (const l of lines.delivery) io.out(`  ${l}`);
    io.out(`${STATS_HEADINGS.funnel}:`);
    for (const l of lines.funnel.length ? lines.funnel : ['(none yet)']) io.out(`  ${l}`);
    io.out(`${STATS_HEADINGS.overruns}: ${stats.overruns}`);
    io.out(`${STATS_HEADINGS.claims}: ${lines.claims}`);
    const r = ctx.membership.stats();
    io.out('Membership requests by state:');
    for (const [state, n] of Object.entries(r.states)) io.out(`  ${state}: ${n}`);
    io.out(`Membership requests (requested → verified → approved → joined): ${r.funnel.requested} → ${r.funnel.verified} → ${r.funnel.approved} → ${r.funnel.joined}`);
    if (rooms.length) {
      io.out(`${STATS_HEADINGS.rooms}:`);
      for (const l of roomStatsLines(rooms)) io.out(`  ${l}`);
    }
    return 0;
  });
}

function requestIds(positionals: string[]): string[] {
  if (positionals.length < 1) throw new UsageError('Which request? Give its id');
  for (const id of positionals) if (!isRequestId(id)) throw new UsageError(`Not a request id: ${id}`);
  return positionals;
}

function requestList(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { state: { type: 'string' }, json: { type: 'boolean' }, limit: { type: 'string' } });
  noPositionals(positionals);
  const state = values.state;
  if (state !== undefined && !(REQUEST_STATES as readonly string[]).includes(state)) throw new UsageError(`--state must be one of ${REQUEST_STATES.join(', ')}`);
  if (values.limit !== undefined && !/^[1-9]\d*$/.test(values.limit)) throw new UsageError('--limit must be a whole number of at least 1');
  return withContext(values, io, ({ membership }) => {
    const limit = values.limit === undefined ? 1000 : Number(values.limit);
    // `expired` is derived for unverified requests past their 24 hours: listed by their shown state.
    const stored: RequestState | undefined = state === 'expired' || state === 'unverified' ? undefined : (state as RequestState | undefined);
    const all = membership.list({ state: stored, limit: state === 'expired' || state === 'unverified' ? 100_000 : limit });
    const shown = all.map((r) => ({ r, s: membership.shownState(r) })).filter((x) => state === undefined || x.s === state).slice(0, limit);
    if (values.json) {
      io.json(shown.map((x) => requestJson(x.r, x.s)));
      return 0;
    }
    if (shown.length === 0) io.out('(no requests)');
    for (const x of shown) io.out(requestLine({ ...x.r, state: x.s }));
    return 0;
  });
}

function requestShow(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  const [id] = requestIds(positionals);
  if (positionals.length > 1) throw new UsageError('request show takes one id');
  return withContext(values, io, ({ membership }) => {
    const r = membership.get(id);
    if (!r) throw new InviteError('invite-not-found', `No request ${id}`);
    const events = membership.events(id);
    if (values.json) {
      io.json({ ...requestJson(r, membership.shownState(r)), events: events.map((e) => ({ at: iso(e.at), type: e.type, actor: e.actor, reason: e.reason, data: e.data })) });
      return 0;
    }
    const j = requestJson(r, membership.shownState(r));
    for (const [k, v] of Object.entries(j)) if (v !== null && v !== undefined) io.out(`${`${k.replace('_', ' ')}:`.padEnd(17)}${String(v)}`);
    io.out('events:');
    for (const e of events) io.out(`  ${iso(e.at)}  ${e.type.padEnd(12)}  ${e.actor}${e.reason ? `  reason: ${e.reason}` : ''}${e.data ? `  ${JSON.stringify(e.data)}` : ''}`);
    return 0;
  });
}

/** Applies `fn` to each request id; reports each outcome; exit 1 when any failed. */
function eachRequest(args: string[], io: CliIo, extra: NonNullable<ParseArgsConfig['options']>, fn: (m: MembershipService, id: string, values: Record<string, unknown>) => string): number {
  const { values, positionals } = parse(args, extra);
  const list = requestIds(positionals);
  return withContext(values, io, ({ membership }) => {
    let failed = 0;
    for (const id of list) {
      try {
        io.out(fn(membership, id, values));
      } catch (err) {
        if (!(err instanceof InviteError)) throw err;
        failed++;
        io.err(`${id}: ${err.message}`);
      }
    }
    return failed ? 1 : 0;
  });
}

const requestApprove = (args: string[], io: CliIo) =>
  eachRequest(args, io, {}, (m, id) => {
    const done = m.approve(OPERATOR, id);
    return done.changed ? `${id}: approved (invite ${done.invite?.id ?? '?'}, e-mailed to ${done.request.email})` : `${id}: already approved`;
  });

const requestReject = (args: string[], io: CliIo) =>
  eachRequest(args, io, { reason: { type: 'string' } }, (m, id, v) => (m.reject(OPERATOR, id, (v.reason as string | undefined) ?? null).changed ? `${id}: rejected` : `${id}: already rejected`));

const OUTBOX_STATES: readonly OutboxState[] = ['queued', 'sending', 'sent', 'failed'];

/** An e-mail of the outbox as `mail list --json` prints it: who, what, how it went; never a token. */
export function mailJson(row: OutboxRow) {
  return {
    id: row.id,
    kind: row.kind,
    recipient: row.recipient,
    state: row.state,
    attempts: row.attempts,
    last_error: row.lastError,
    created: iso(row.createdAt),
    sent: iso(row.sentAt),
    next_attempt: row.state === 'queued' ? iso(row.notBefore) : null,
    message_id: row.messageId,
    invites: row.inviteIds,
  };
}

function mailList(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { state: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
  noPositionals(positionals);
  if (values.state !== undefined && !(OUTBOX_STATES as readonly string[]).includes(values.state)) {
    throw new UsageError(`--state must be one of ${OUTBOX_STATES.join(', ')}`);
  }
  if (values.limit !== undefined && (!/^\d+$/.test(values.limit) || Number(values.limit) < 1)) throw new UsageError('--limit must be a whole number of at least 1');
  return withContext(values, io, ({ config, db }) => {
    const rows = outboxFor(config, db).list({ channel: 'email', state: values.state as OutboxState | undefined, limit: Number(values.limit ?? 100) });
    if (values.json) {
      io.json(rows.map(mailJson));
      return 0;
    }
    if (rows.length === 0) {
      io.out('No e-mails.');
      return 0;
    }
    const head = ['ID', 'KIND', 'STATE', 'ATTEMPTS', 'RECIPIENT', 'CREATED', 'SENT', 'LAST ERROR'];
    const table = rows.map((r) => {
      const j = mailJson(r);
      return [String(j.id), j.kind, j.state, String(j.attempts), j.recipient, j.created!.slice(0, 16), j.sent?.slice(0, 16) ?? '-', j.last_error ?? ''].map(visibleText);
    });
    const widths = head.map((h, c) => Math.max(h.length, ...table.map((r) => r[c].length)));
    for (const r of [head, ...table]) io.out(r.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd());
    return 0;
  });
}

function mailRetry(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, {});
  if (positionals.length !== 1) throw new UsageError('mail retry takes one id (see mail list)');
  const [text] = positionals;
  if (!/^\d+$/.test(text)) throw new UsageError(`Not an e-mail id: ${text}`);
  const id = Number(text);
  return withContext(values, io, ({ config, db }) => {
    const outbox = outboxFor(config, db);
    const row = outbox.get(id);
    if (!row || row.channel !== 'email') {
      io.err(`xmpp-invites mail retry: no e-mail ${id}`);
      return 1;
    }
    // Only a failed e-mail goes back: a queued or sending one is in hand, a sent one is done.
    if (!outbox.retry(id)) {
      io.err(`xmpp-invites mail retry: e-mail ${id} is ${row.state}, not failed`);
      return 1;
    }
    io.out(`${id}: queued again for ${row.recipient} (the running service sends it)`);
    return 0;
  });
}

/**
 * One message on standard input, delivered by an MTA's pipe to the VERP address under
 * `mail.bounce_address` (`--recipient` names that address when the MTA passes it, e.g. Postfix's
 * `${recipient}` or Exim's `$local_part@$domain`; otherwise the message's Delivered-To, X-Original-To,
 * Envelope-To or To header is read). Exit 0 when it is handled or ignored (a forged bounce, not a
 * bounce, not ours: the MTA must not retry those), 1 when it could not be recorded (the MTA retries).
 */
async function mailBounce(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { recipient: { type: 'string' } });
  noPositionals(positionals);
  if (!io.stdin) throw new UsageError('mail bounce reads the message on standard input');
  const config = loadConfig(configPath(values, io.env), io.env);
  if (!config.mail.bounceAddress) throw new UsageError('mail bounce needs mail.bounce_address in the configuration');
  const raw = await io.stdin();
  if (raw.length > MAX_BOUNCE_BYTES) {
    io.err(`xmpp-invites mail bounce: ignored: the message is larger than ${MAX_BOUNCE_BYTES} bytes`);
    return 0;
  }
  const report = await parseBounce(raw).catch(() => undefined);
  const ctx = new Context(config);
  try {
    const outcome = bouncesFor(config, ctx.db, ctx.invites)!.bounces.handle(report, values.recipient ? [values.recipient] : [], 'pipe');
    if (outcome.kind === 'bounced') io.out(`e-mail ${outcome.outboxId} to ${outcome.recipient} bounced (${outcome.status}${outcome.diagnostic ? `: ${outcome.diagnostic}` : ''}); the address is suppressed${outcome.invites.length ? `; invites ${outcome.invites.join(', ')}` : ''}`);
    else if (outcome.kind === 'transient') io.out(`e-mail ${outcome.outboxId}: transient failure ${outcome.status} recorded`);
    else if (outcome.reason === 'forged') io.err(`xmpp-invites mail bounce: ignored: the VERP address does not check (forged or mangled)`);
    else io.out(`ignored: ${outcome.reason}`);
    return 0;
  } finally {
    ctx.close();
  }
}

function mailUnsuppress(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, {});
  if (positionals.length !== 1) throw new UsageError('mail unsuppress takes one e-mail address');
  const address = parseEmailAddress(positionals[0]);
  if (address === undefined) throw new UsageError(`not a single e-mail address: ${positionals[0]}`);
  return withContext(values, io, ({ invites }) => {
    io.out(invites.unsuppress(OPERATOR, address) ? `${address}: may be invited again` : `${address}: was not suppressed`);
    return 0;
  });
}

/**
 * Copies the SQLite store FILE into the empty PostgreSQL database URL (`env:NAME` reads it from the
 * environment, keeping a password off the command line), then compares the counts of every table.
 */
async function dbCopy(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { from: { type: 'string' }, to: { type: 'string' } });
  noPositionals(positionals);
  if (!values.from) throw new UsageError('--from FILE is required: the SQLite database to copy');
  if (!values.to) throw new UsageError('--to URL is required: an empty PostgreSQL database (postgresql://…)');
  let url = values.to;
  if (url.startsWith('env:')) {
    const name = url.slice(4);
    if (io.env[name] === undefined) throw new UsageError(`--to ${url}: environment variable ${name} is not set`);
    url = io.env[name]!;
  }
  if (!isPostgresUrl(url)) throw new UsageError(`--to must be a PostgreSQL URL (postgres://… or postgresql://…), not ${redactUrl(url)}`);
  if (!existsSync(values.from)) throw new UsageError(`--from: no such file: ${values.from}`);
  if (!statSync(values.from).isFile()) throw new UsageError(`--from: not a file: ${values.from}`);
  const { copySqliteToPostgres } = await import('./store/pg/copy-from-sqlite');
  const { openPool } = await import('./store/pg/pool');
  const source = openDatabase(values.from, { readonly: true });
  const pool = openPool(url, { max: 1 });
  try {
    io.out(`Copying ${values.from} into ${redactUrl(url)}`);
    const result = await copySqliteToPostgres(source, values.from, pool, {
      progress: ({ table, rows }) => io.out(`  ${table.padEnd(16)} ${String(rows).padStart(9)} rows`),
    });
    if (result.nulRemovedCount > 0) {
      io.out(`U+0000 removed from ${result.nulRemovedCount} text ${result.nulRemovedCount === 1 ? 'value' : 'values'} (PostgreSQL text cannot hold it):`);
      for (const { table, column, rowid } of result.nulRemoved) io.out(`  ${table}.${column} of rowid ${rowid}`);
      if (result.nulRemovedCount > result.nulRemoved.length) io.out(`  and ${result.nulRemovedCount - result.nulRemoved.length} more`);
    }
    io.out(`Copied ${result.rows} rows at schema version ${result.version} in ${(result.ms / 1000).toFixed(1)} s; the counts of every table match.`);
    return 0;
  } finally {
    source.close();
    await pool.end();
  }
}

/**
 * An online, consistent copy of the SQLite store into FILE, safe beside the running service:
 * SQLite's online backup API copies every page in one step, inside one read transaction (in WAL
 * mode the service keeps writing meanwhile), so the copy is the database as it was at one instant.
 * It is written under a temporary name, checked (`PRAGMA quick_check`), then renamed into place.
 */
async function backupCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {});
  if (positionals.length !== 1) throw new UsageError('backup takes one argument: the file to write');
  const target = resolvePath(positionals[0]);
  const config = loadConfig(configPath(values, io.env), io.env);
  if (isPostgresUrl(config.database)) {
    io.err('xmpp-invites backup: the database is PostgreSQL: back it up with pg_dump (e.g. pg_dump --format=custom --file=FILE URL)');
    return 1;
  }
  if (config.database === ':memory:') throw new UsageError('the database is :memory:, there is nothing to back up');
  if (!existsSync(config.database)) {
    io.err(`xmpp-invites backup: no database at ${config.database}`);
    return 1;
  }
  if (existsSync(target)) throw new UsageError(`${target} exists: give a new file (a backup never overwrites)`);
  if (resolvePath(config.database) === target) throw new UsageError('the backup must be another file than the database');
  const started = performance.now();
  const partial = `${target}.partial-${process.pid}`;
  const source = openDatabase(config.database, { readonly: true });
  try {
    // One step for all pages: one read transaction, so the copy is of one instant (a copy made in
    // several steps starts again whenever the service writes in between).
    await source.backup(partial, { progress: () => 0x7fffffff });
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  } finally {
    source.close();
  }
  // The copy is one self-contained file (the store runs in WAL mode, which the copy inherits).
  const copy = new Database(partial);
  let summary: { check: string; version: number; invites: number; events: number };
  try {
    copy.pragma('journal_mode = DELETE');
    summary = {
      check: String(copy.pragma('quick_check', { simple: true })),
      version: Number(copy.pragma('user_version', { simple: true })),
      invites: Number((copy.prepare('SELECT count(*) AS n FROM invites').get() as { n: number }).n),
      events: Number((copy.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n),
    };
  } finally {
    copy.close();
  }
  if (summary.check !== 'ok') {
    rmSync(partial, { force: true });
    io.err(`xmpp-invites backup: the copy does not check (${summary.check}); nothing was written`);
    return 1;
  }
  renameSync(partial, target);
  const mb = (statSync(target).size / 1_048_576).toFixed(1);
  io.out(
    `Backed up ${config.database} to ${target}: ${summary.invites} invites, ${summary.events} events, schema version ${summary.version}, ${mb} MB, in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return 0;
}

function configCheck(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, {});
  noPositionals(positionals);
  const file = configPath(values, io.env);
  const config = loadConfig(file, io.env);
  io.out(`${file}: valid (component ${config.component.domain} for ${config.host}, database ${config.database})`);
  return 0;
}

async function serveCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {});
  noPositionals(positionals);
  const config = loadConfig(configPath(values, io.env), io.env);
  const { serve } = await import('./main');
  const code = await serve(config);
  if (code !== 0) io.err('xmpp-invites: stopped with errors (see the log above)');
  return code;
}

type Handler = (args: string[], io: CliIo) => number | Promise<number>;

const COMMANDS: Record<string, Handler> = {
  serve: serveCommand,
  'config check': configCheck,
  'invite create': inviteCreate,
  'invite list': inviteList,
  'invite show': inviteShow,
  'invite log': inviteLog,
  'invite approve': inviteApprove,
  'invite reject': inviteReject,
  'invite revoke': inviteRevoke,
  'invite resend': inviteResend,
  'request list': requestList,
  'request show': requestShow,
  'request approve': requestApprove,
  'request reject': requestReject,
  'invite extend': inviteExtend,
  'console revoke': consoleRevoke,
  'mail list': mailList,
  'mail retry': mailRetry,
  'mail bounce': mailBounce,
  'mail unsuppress': mailUnsuppress,
  stats: statsCommandCli,
  tree: treeCommand,
  'user block': userBlock,
  'user unblock': userUnblock,
  'user blocked': userBlocked,
  'db copy': dbCopy,
  backup: backupCommand,
};

export async function run(argv: string[], rawIo: Io): Promise<number> {
  const io = cliIo(rawIo);
  const [first, second] = argv;
  const two = `${first} ${second}`;
  const name = COMMANDS[two] ? two : COMMANDS[first] && !['config', 'invite', 'request', 'mail', 'db', 'console', 'user'].includes(first) ? first : undefined;
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    io.lines(USAGE);
    return first ? 0 : 2;
  }
  if (!name) {
    io.err(`xmpp-invites: unknown command: ${argv.slice(0, 2).join(' ')}`);
    io.lines(`\n${USAGE}`, 'err');
    return 2;
  }
  const rest = argv.slice(name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) {
    io.lines(USAGE);
    return 0;
  }
  try {
    return await COMMANDS[name](rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`xmpp-invites ${name}: ${err.message}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      io.lines(`xmpp-invites: the configuration is not valid:\n${err.message}`, 'err');
      return 2;
    }
    if (err instanceof InviteError) {
      io.err(`xmpp-invites ${name}: ${err.message}`);
      return 1;
    }
    io.err(`xmpp-invites ${name}: ${(err as Error).message ?? String(err)}`);
    return 1;
  }
}

if (require.main === module) {
  run(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    stdin: async () => {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of process.stdin) {
        chunks.push(chunk as Buffer);
        size += (chunk as Buffer).length;
        // Read past the limit only far enough to know it was passed.
        if (size > MAX_BOUNCE_BYTES) break;
      }
      return Buffer.concat(chunks);
    },
  }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`xmpp-invites: ${visibleText(String(err))}\n`);
      process.exit(1);
    },
  );
}
