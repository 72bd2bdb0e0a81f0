/**
 * The `xmpp-invites` command line. Subcommands other than `serve` act on the database only: they
 * write state and events (and, once delivery exists, outbox rows) and leave talking XMPP and SMTP to
 * the running service, so they are safe beside it.
 * Exit codes: 0 ok; 1 runtime failure; 2 bad usage or a config that does not validate.
 */
import { existsSync, statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, parseDuration, type Config } from './config';
import { InviteError } from './errors';
import type { InviteService } from './domain/invites';
import { isInviteId } from './domain/tokens';
import { INVITE_KINDS, OPERATOR, SHOWN_STATES, shownState, type Invite, type InviteKind, type RoomInvitation, type ShownState } from './domain/types';
import { normalizeBareJid, emailKey } from './domain/jid';
import { parseEmailAddress } from './domain/email-address';
import { cleanText, trimSpace } from './domain/text';
import { openDatabase, type Db } from './store/database';
import { databaseFor, inviteServiceFor, limitsFor, outboxFor } from './services';
import type { OutboxRow, OutboxState } from './store/outbox-repo';
import type { Limits } from './domain/limits';
import { dateTime, delivery, instant, inviteeLabel, inviterOf, roomAnswerLine, roomStatsLines, STATS_HEADINGS, statsLines } from './present/invite';
import { visibleText } from './terminal-text';
import { isPostgresUrl, redactUrl } from './store/pg/url';

export class UsageError extends Error {}

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
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
  invite list [--state S] [--inviter JID] [--json]
  invite show ID
  invite log ID
  invite approve ID...
  invite reject ID... --reason R
  invite revoke ID [--reason R]
  invite resend ID
  mail list [--state queued|sending|sent|failed] [--limit N] [--json]
  mail retry ID                       put a failed e-mail back in the queue
  stats [--json]
  db copy --from FILE --to URL        copy a SQLite store into an empty PostgreSQL database

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

export function inviteJson(invite: Invite, now: number) {
  return {
    id: invite.id,
    kind: invite.kind,
    state: shownState(invite, now),
    delivery: delivery(invite),
    inviter: invite.inviter,
    invitee_email: invite.inviteeEmail,
    invitee_jid: invite.inviteeJid,
    created: iso(invite.createdAt),
    expires: iso(invite.expiresAt),
    uses: invite.uses,
    max_uses: invite.maxUses,
  };
}

class Context {
  readonly db: Db;
  readonly invites: InviteService;
  readonly limits: Limits;
  constructor(readonly config: Config) {
    this.db = databaseFor(config);
    this.invites = inviteServiceFor(config, this.db);
    this.limits = limitsFor(config, this.db);
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

function inviteCreate(args: string[], io: CliIo): number {
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
  });
  noPositionals(positionals);
  const kind = values.kind;
  if (!kind) throw new UsageError(`--kind is required: ${INVITE_KINDS.join(', ')}`);
  if (!(INVITE_KINDS as readonly string[]).includes(kind)) throw new UsageError(`--kind must be one of ${INVITE_KINDS.join(', ')}`);
  let expiresIn: number | undefined;
  if (values.expire !== undefined) {
    try {
      expiresIn = parseDuration(values.expire);
    } catch {
      throw new UsageError(`--expire: not a duration: ${values.expire} (use 30m, 12h, 7d, 4w)`);
    }
  }
  let maxUses: number | undefined;
  if (values.uses !== undefined) {
    if (!/^\d+$/.test(values.uses) || Number(values.uses) < 1) throw new UsageError('--uses must be a whole number of at least 1');
    maxUses = Number(values.uses);
  }
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
  return withContext(values, io, ({ invites }) => {
    const invite = invites.get(id);
    if (!invite) throw new InviteError('invite-not-found', `No invite ${id}`);
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
      ['e-mail delivery', invite.emailDelivery],
      ['message delivery', invite.messageDelivery],
    ];
    for (const r of invites.roomsOf(invite.id)) lines.push(['room', roomAnswerLine(r)]);
    for (const [k, v] of lines) if (v !== null && v !== undefined) io.out(`${`${k}:`.padEnd(21)}${String(v)}`);
    return 0;
  });
}

/** The `--json` fields, and `rooms` (each room's JID, name and answer) when the invite names rooms. */
function roomsJson<T extends object>(j: T, rooms: readonly RoomInvitation[]): T & { rooms?: { room: string; name: string | null; state: string; member: string | null }[] } {
  return rooms.length ? { ...j, rooms: rooms.map((r) => ({ room: r.room, name: r.roomName, state: r.state, member: r.memberJid })) } : j;
}

function inviteLog(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  const [id] = ids(positionals);
  return withContext(values, io, ({ invites }) => {
    if (!invites.get(id)) throw new InviteError('invite-not-found', `No invite ${id}`);
    const events = invites.events(id);
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

const inviteRevoke = (args: string[], io: CliIo) =>
  eachId(args, io, { reason: { type: 'string' } }, ({ invites }, id, v) =>
    invites.revoke(OPERATOR, id, (v.reason as string | undefined) ?? null).changed ? `${id}: revoked` : `${id}: already revoked`,
  );

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

function statsCommandCli(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  noPositionals(positionals);
  return withContext(values, io, (ctx) => {
    const stats = ctx.invites.stats(1000);
    const rooms = ctx.invites.roomStats(1000);
    if (values.json) {
      io.json({ ...stats, rooms });
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
    if (rooms.length) {
      io.out(`${STATS_HEADINGS.rooms}:`);
      for (const l of roomStatsLines(rooms)) io.out(`  ${l}`);
    }
    return 0;
  });
}

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
  'mail list': mailList,
  'mail retry': mailRetry,
  stats: statsCommandCli,
  'db copy': dbCopy,
};

export async function run(argv: string[], rawIo: Io): Promise<number> {
  const io = cliIo(rawIo);
  const [first, second] = argv;
  const two = `${first} ${second}`;
  const name = COMMANDS[two] ? two : COMMANDS[first] && !['config', 'invite', 'mail', 'db'].includes(first) ? first : undefined;
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
  }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`xmpp-invites: ${visibleText(String(err))}\n`);
      process.exit(1);
    },
  );
}
