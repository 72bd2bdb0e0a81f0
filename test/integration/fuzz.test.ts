/**
 * Fuzz: more than ten thousand generated hostile inputs against the running service on a real
 * Prosody, from real client sessions (local users, an admin, a second resource, an odd resource, an
 * anonymous JID outside `host`) and over HTTP to the landing pages. Mutated XEP-0050 requests of
 * every node (actions, session ids, forms with wrong, missing or duplicate fields, list values that
 * are not options, huge values), invite requests in presence, messages, disco, XEP-0077 and XEP-0445
 * at the component, bridge IQs from senders that are not the server, strings with bidi overrides,
 * controls, non-characters and odd JIDs; characters XML forbids where they can arrive (HTTP forms;
 * on a client stream Prosody refuses them and closes that stream); HTTP paths, methods, bodies,
 * CSRF, tokens and header floods. A few valid inputs are mixed in, each with its expected effect.
 *
 * Invariants, checked round by round and at the end:
 * - every IQ get/set gets exactly one reply within the timeout (and no result or error we send
 *   gets any), never internal-server-error; no HTTP answer is a 5xx and none hangs;
 * - the component stays connected the whole time (no 'offline', no reconnect);
 * - a round of hostile inputs leaves every table of the database exactly as it was; a valid input
 *   makes exactly its expected change;
 * - the log (at debug) holds no secret: component secret, token_key, passwords, invite tokens;
 * - where the contract names the condition of a refusal (forbidden, conflict, not-acceptable,
 *   service-unavailable, bad-request), the reply carries it.
 * The run stops at the first lost stream, naming the inputs then in flight (and the outbox delivery
 * in hand): what follows a lost stream would only repeat it.
 *
 * FUZZ_SEED=N reproduces a run (the seed is printed); FUZZ_CASES sets the number of hostile cases;
 * FUZZ_EXCLUDE=fault,… leaves faults out to look past a known failure; FUZZ_TIMINGS=1 prints times.
 * A failed run prints the first errors the service logged; FUZZ_LOG=FILE writes the whole log there.
 */
import { openStoreOf } from '../support/engine';
import { readFileSync, writeFileSync } from 'node:fs';
import { TestClient, xml, type XmlElement } from '../support/client';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';
import { hasXmlForbidden, hostileString, oddJid, pool, rawHttp, Rng, snapshotAll, snapshotDiff, XML_FORBIDDEN } from '../support/fuzz';
import { OPERATOR, type Actor } from '../../src/domain/types';
import { NODES, NS } from '../../src/xmpp/ns';

/**
 * The command nodes the generators send mutated stages to (badForm knows their fields). Not yet
 * among them: #reset, #invite-to-rooms and #respond.
 */
const FUZZED_NODES: readonly string[] = [NODES.newInvite, NODES.createAccount, NODES.send, NODES.mine, NODES.pending, NODES.list, NODES.stats];

const rng = Rng.fromEnv();
/**
 * Faults to leave out (comma-separated, e.g. FUZZ_EXCLUDE=password-forbidden,existing), to look
 * past one known failure at the others; the default sends every fault.
 */
const EXCLUDE = new Set((process.env.FUZZ_EXCLUDE ?? '').split(',').filter(Boolean));
/** Picks a fault that is not excluded. */
function pickFault<T extends string>(faults: readonly T[]): T {
  const allowed = faults.filter((f) => !EXCLUDE.has(f));
  return rng.pick(allowed.length ? allowed : faults);
}
const HOSTILE_CASES = Number(process.env.FUZZ_CASES ?? 10_200);
const ROUNDS = 12;
const XMPP_CONCURRENCY = 48;
const HTTP_CONCURRENCY = 6;
const IQ_TIMEOUT_MS = 15_000;
/**
 * The run's own time limit: with both cores busy it took 105 s to over 180 s (the suite's default
 * limit) on PostgreSQL and 156 s on SQLite, so about twice that before calling it hung.
 */
const RUN_TIMEOUT_MS = 360_000;

/** Passwords carry a marker we look for in the log (a bare short password could appear by chance). */
const markers = new Set<string>();
const marker = () => {
  const m = `pw${rng.word(10)}`;
  markers.add(m);
  return m;
};
const PASSWORDS = { alice: marker(), bob: marker(), admin: marker(), victim: marker(), carol: marker(), dave: marker() };

let prosody: TestProsody;
let service: RunningService;
let web: string;
let webPort: number;
let csrf: { cookie: string; field: string };
let offline = 0;

interface Sender {
  name: string;
  client: TestClient;
  bare: string;
  local: boolean;
  admin: boolean;
}
const senders: Record<string, Sender> = {};
const throwaway: TestClient[] = [];

/** Every secret that must never reach the log. */
const secrets = new Set<string>();
/** What went wrong: one line per broken invariant, with the input that broke it. */
const violations: string[] = [];
const stats = { hostile: 0, refused: 0, refusedByProsody: 0, harmless: 0, valid: 0, iqs: 0, http: 0, stanzas: 0 };
let idSeq = 0;
/** What is being sent right now (to name the inputs in flight when the component loses its stream). */
const inFlight = new Set<string>();
/** Set when the component lost its stream: the run stops there, naming the inputs in flight. */
let aborted = false;

// ------------------------------------------------------------------------------------------------
// IQ bookkeeping: every IQ we send has a unique id; every reply is counted, whoever sent it.

/** id → replies seen */
const replies = new Map<string, number>();
/** ids of IQ get/set we sent (each must be answered once) and of results/errors (never answered) */
const sentRequests = new Map<string, string>();
const sentReplies = new Map<string, string>();
const waiting = new Map<string, (el: XmlElement) => void>();

function track(client: TestClient): void {
  client.tap((s) => {
    if (s.name !== 'iq' || (s.attrs.type !== 'result' && s.attrs.type !== 'error')) return;
    const id = String(s.attrs.id ?? '');
    if (!sentRequests.has(id) && !sentReplies.has(id)) return;
    replies.set(id, (replies.get(id) ?? 0) + 1);
    const w = waiting.get(id);
    if (w) {
      waiting.delete(id);
      w(s);
    }
  });
}

function show(el: XmlElement): string {
  const s = el.toString();
  return s.length > 400 ? `${s.slice(0, 400)}… (${s.length} chars)` : s;
}

/** Sends an IQ get/set; resolves with its reply, or undefined (a violation) after the timeout. */
async function ask(sender: Sender, iq: XmlElement, label: string): Promise<XmlElement | undefined> {
  const id = `fz${++idSeq}`;
  iq.attrs.id = id;
  sentRequests.set(id, label);
  stats.iqs++;
  const flight = `${label}: ${show(iq)}`;
  inFlight.add(flight);
  const reply = new Promise<XmlElement | undefined>((resolve) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      resolve(undefined);
    }, IQ_TIMEOUT_MS);
    waiting.set(id, (el) => {
      clearTimeout(timer);
      resolve(el);
    });
  });
  try {
    await sender.client.send(iq);
  } catch (err) {
    violations.push(`${label}: could not send (${(err as Error).message}) ${show(iq)}`);
    return undefined;
  }
  const got = await reply;
  inFlight.delete(flight);
  if (!got) violations.push(`${label}: no reply within ${IQ_TIMEOUT_MS} ms to ${show(iq)}`);
  else if (condition(got) === 'internal-server-error') violations.push(`${label}: internal-server-error for ${show(iq)}`);
  return got;
}

/** Sends a stanza that gets no reply of its own (presence, message, iq result/error). */
async function fire(sender: Sender, el: XmlElement, label: string): Promise<void> {
  el.attrs.id ??= `fz${++idSeq}`;
  if (el.name === 'iq') sentReplies.set(String(el.attrs.id), label);
  stats.stanzas++;
  try {
    await sender.client.send(el);
  } catch (err) {
    violations.push(`${label}: could not send (${(err as Error).message}) ${show(el)}`);
  }
}

function condition(el: XmlElement): string | undefined {
  if (el.attrs.type !== 'error') return undefined;
  return el.getChild('error')?.getChildElements().find((c) => c.attrs.xmlns === NS.stanzas && c.name !== 'text')?.name ?? 'undefined-condition';
}

/** A refusal must carry the condition the contract names for it. */
function expectCondition(label: string, reply: XmlElement | undefined, conditions: readonly string[]): void {
  // jid-malformed comes from Prosody (a `to` that resourceprep refuses), before the component sees it
  if (reply && !conditions.includes(condition(reply) ?? 'result') && condition(reply) !== 'jid-malformed') {
    violations.push(`${label}: expected ${conditions.join(' or ')}, got ${condition(reply) ?? 'a result'}: ${show(reply)}`);
  }
}

/** Whether a reply says no: an IQ error, or a command answered with an error or warning note. */
function refusedReply(el: XmlElement | undefined): boolean {
  if (!el) return false;
  if (el.attrs.type === 'error') return true;
  const cmd = el.getChild('command', NS.commands);
  return !!cmd && cmd.getChildren('note').some((n) => n.attrs.type === 'error' || n.attrs.type === 'warn');
}

// ------------------------------------------------------------------------------------------------
// The world as the generators see it at the start of a round.

interface Row {
  id: string;
  inviter: string | null;
  state: string;
  kind: string;
  invitee_key: string | null;
  max_uses: number;
}
interface World {
  rows: Row[];
  tokens: Map<string, string>;
  accountToken: string;
  lockedToken: string;
  personalOpen: Row[];
  pendingIds: Set<string>;
}

function rowsNow(): Row[] {
  const db = openStoreOf(service.config.database);
  try {
    return db.prepare('SELECT id, inviter, state, kind, invitee_key, max_uses FROM invites ORDER BY created_at, id').all() as Row[];
  } finally {
    db.close();
  }
}

function world(): World {
  const rows = rowsNow();
  const tokens = new Map<string, string>();
  for (const r of rows) {
    const invite = service.app.invites.get(r.id)!;
    const token = service.app.invites.links(invite).token;
    tokens.set(r.id, token);
    secrets.add(token);
  }
  return {
    rows,
    tokens,
    accountToken: seeds.accountToken,
    lockedToken: seeds.lockedToken,
    personalOpen: rows.filter((r) => r.state === 'open' && r.invitee_key && r.max_uses === 1),
    pendingIds: new Set(rows.filter((r) => r.state === 'pending').map((r) => r.id)),
  };
}

/** the shared account invite, a locked one, a contact-only invite and a revoked one */
const seeds = { accountToken: '', lockedToken: '', contactId: '', revokedId: '' };

// ------------------------------------------------------------------------------------------------
// Hostile values

const BAD_USERNAMES = [
  'Bad Name!', '.dot', 'dot.', 'a/b', 'a@b', 'ß', 'straße', 'ｆｕｌｌ', 'x'.repeat(65), 'a b', 'tab\there', 'new\nline',
  'bidi\u202Eevil', 'del\u007F', 'nel\u0085', 'zw\u200Bsp', 'emoji\uD83D\uDE00', 'İstanbul', 'σς', '\u00A0x\u00A0y', '..', 'a..', '"quoted"',
  '<tag>', '&amp;', 'x'.repeat(5000), 'csi\u009B', 'pad\u0080ded',
];
const BAD_EXPIRE = ['8d', '0', '7d7d', 'forever', '-7d', '1e9d', '７d', '7 d', 'x'.repeat(3000), '7d\u202E', '\u0085', '14d', '1h', '7d\u0085', '\u007F1d', '1\u009Bd'];
const EXISTING = ['alice', 'bob', 'admin', 'victim', 'ALICE', 'Victim'];

/** A string for a stanza: anything a client stream can carry (XML-forbidden characters are not). */
function s(max?: number): string {
  return hostileString(rng, { maxLength: max });
}

/** The same for an HTTP form, where every character arrives. */
function sHttp(max?: number): string {
  return hostileString(rng, { forbidden: true, maxLength: max });
}

function field(name: string, values: string[], type?: string): XmlElement {
  return xml('field', { var: name, type }, ...values.map((v) => xml('value', {}, v)));
}

function values(gen: () => string): string[] {
  return Array.from({ length: rng.weighted([[4, 1], [2, 0], [2, 2], [1, 5]] as const) }, gen);
}

/**
 * Characters a client stream carries that free-text cleaning removes (DEL, C1 controls): in an
 * identifier they must make it invalid, never turn it into another (`del` + DEL into `del`).
 */
const HIDDEN_IN_ID = ['\u007F', '\u0085', '\u009B', '\u0080'];

/** `id` with one such character put in somewhere. */
function disguised(id: string): string {
  const at = rng.int(id.length + 1);
  return id.slice(0, at) + rng.pick(HIDDEN_IN_ID) + id.slice(at);
}

/**
 * Ids a sender's form may carry back without any being one it may act on: others' ids, made-up
 * ones, and ids it may act on with a hidden character put in (which name no invite).
 */
function foreignIds(w: World, ok: (r: Row) => boolean): string[] {
  const pool = w.rows.filter((r) => !ok(r)).map((r) => r.id);
  const own = w.rows.filter(ok).map((r) => r.id);
  return [
    ...Array.from({ length: 1 + rng.int(3) }, () =>
      own.length && rng.chance(0.15) ? disguised(rng.pick(own))
      : pool.length && rng.chance(0.6) ? rng.pick(pool)
      : rng.pick([rng.word(10), s(40), 'x'.repeat(10), '', rng.word(10).toUpperCase()]),
    ),
  ];
}

// ------------------------------------------------------------------------------------------------
// XMPP cases

type Case = () => Promise<boolean>;

function anyLocal(): Sender {
  return rng.pick([senders.alice, senders.alice2, senders.bob, senders.odd, senders.admin]);
}
function anySender(): Sender {
  return rng.pick([senders.alice, senders.alice2, senders.bob, senders.odd, senders.admin, senders.anon]);
}
function toComponent(): string {
  return rng.weighted([
    [8, COMPONENT],
    [1, `${COMPONENT}/${rng.pick(['res', 'ｆｕｌｌ', 'ß', '\u202Eevil', 'a/b', rng.word(30)])}`],
  ] as const);
}

function command(node: string, attrs: Record<string, string | undefined>, ...children: XmlElement[]): XmlElement {
  return xml('command', { xmlns: NS.commands, node, ...attrs }, ...children);
}

function iqSet(payload: XmlElement, to = toComponent()): XmlElement {
  return xml('iq', { type: 'set', to }, payload);
}

/** Opens a session of `node` for `owner`; the session id, or undefined when the command completed at once. */
async function openSession(owner: Sender, node: string, label: string): Promise<string | undefined> {
  // New Invite completes at its first stage, creating an invite: never a session to open.
  if (node === NODES.newInvite) return rng.word(22);
  const reply = await ask(owner, iqSet(command(node, { action: 'execute' }), COMPONENT), `${label} (opening a session)`);
  const cmd = reply?.getChild('command', NS.commands);
  return cmd?.attrs.status === 'executing' ? cmd.attrs.sessionid : undefined;
}

/** A form for `node` with at least one value the command must refuse (or nothing it could act on). */
function badForm(node: string, sender: Sender, w: World): XmlElement {
  const fields: XmlElement[] = [];
  switch (node) {
    case NODES.createAccount: {
      const badRoster = rng.chance(0.3);
      if (badRoster) fields.push(field('roster-subscription', [rng.pick(['yes', '2', 'maybe', s(30) + 'x'])]));
      if (!badRoster || rng.chance(0.5)) fields.push(field('username', Array.from({ length: 1 + rng.int(2) }, () => rng.pick(BAD_USERNAMES))));
      if (badRoster && !fields.some((f) => f.attrs.var === 'username')) fields.push(field('username', [rng.pick([...BAD_USERNAMES, 'fine', ''])]));
      break;
    }
    case NODES.send: {
      const fault = rng.pick(['expire', 'emails', 'many', 'message', 'hidden']);
      const emails = () => s(200).replace(/[@＠﹫]/g, '');
      if (fault === 'expire') fields.push(field('expire', Array.from({ length: 1 + rng.int(2) }, () => rng.pick(BAD_EXPIRE))));
      if (fault === 'many') fields.push(field('emails', Array.from({ length: 51 + rng.int(100) }, (_, i) => `x${i}.${rng.word(4)}@example.net`)));
      else if (fault === 'emails') fields.push(field('emails', values(emails)));
      // addresses that cleaning would make valid: each must be refused as typed
      else if (fault === 'hidden') fields.push(field('emails', Array.from({ length: 1 + rng.int(3) }, () => disguised(`${rng.word(8)}@example.net`))));
      else fields.push(field('emails', [`${rng.word(8)}@example.net`]));
      if (fault === 'message') fields.push(field('message', ['m'.repeat(1001 + rng.int(5000)), s()]));
      else if (rng.chance(0.5)) fields.push(field('message', values(() => s())));
      break;
    }
    case NODES.mine: {
      const notMine = (r: Row) => r.inviter === sender.bare && (r.state === 'pending' || r.state === 'open');
      if (rng.chance(0.8)) fields.push(field('revoke', foreignIds(w, notMine)));
      if (rng.chance(0.5)) fields.push(field('resend', foreignIds(w, notMine)));
      break;
    }
    case NODES.pending: {
      const ids = [...w.pendingIds];
      if (ids.length && rng.chance(0.3)) {
        // an id in both lists is bad-request: nothing applied
        const both = rng.pick(ids);
        fields.push(field('approve', [both, ...foreignIds(w, (r) => r.state === 'pending')]), field('reject', [both]));
      } else {
        fields.push(field(rng.pick(['approve', 'reject']), foreignIds(w, (r) => r.state === 'pending')));
      }
      if (rng.chance(0.5)) fields.push(field('reason', [s()]));
      break;
    }
    case NODES.list: {
      fields.push(field('revoke', foreignIds(w, (r) => r.state === 'pending' || r.state === 'open')));
      if (rng.chance(0.5)) fields.push(field('reason', [s()]));
      if (rng.chance(0.3)) fields.push(field('state', [rng.pick(['open', 'any', 'bogus', s(20)])]), field('inviter', [oddJid(rng)]));
      break;
    }
    default:
      fields.push(field(rng.pick(['username', 'emails', 'x', '']), values(() => s())));
  }
  // Noise: unknown fields, FORM_TYPE of another form, fields without var.
  if (rng.chance(0.3)) fields.push(field(s(20) || 'noise', values(() => s())));
  if (rng.chance(0.2)) fields.push(field('FORM_TYPE', [rng.pick([NS.register, 'urn:other', s(30)])], 'hidden'));
  if (rng.chance(0.1)) fields.push(xml('field', {}, xml('value', {}, s())));
  if (rng.chance(0.2)) fields.reverse();
  return xml('x', { xmlns: NS.dataForms, type: rng.weighted([[6, 'submit'], [1, undefined], [1, 'form'], [1, 'result']] as const) }, ...fields);
}

/** A later stage of a command with a fault: a session that is not the sender's, a bad action, or a bad form. */
function adhocStageCase(w: World): Case {
  return async () => {
    const node = rng.pick([NODES.createAccount, NODES.send, NODES.mine, NODES.pending, NODES.list, NODES.newInvite, NODES.stats]);
    const adminNode = node === NODES.createAccount || node === NODES.pending || node === NODES.list || node === NODES.stats;
    const sender = adminNode ? rng.weighted([[5, senders.admin], [1, anySender()]] as const) : anySender();
    const fault = rng.pick(['session', 'session', 'action', 'form', 'form', 'form']);
    const label = `adhoc ${node} stage (${fault}) by ${sender.name}`;
    let sessionid: string | undefined;
    let action: string | undefined = rng.pick([undefined, 'execute', 'complete', 'next']);
    let form: XmlElement | undefined = rng.chance(0.8) ? badForm(node, sender, w) : undefined;
    if (fault === 'session') {
      const mode = rng.pick(['random', 'other-sender', 'other-node', 'ended', 'odd']);
      if (mode === 'random') sessionid = rng.word(22);
      else if (mode === 'odd') sessionid = s(300) || 'x';
      else if (mode === 'other-sender') {
        // a session of another full JID (also the sender's own other resource)
        const owner = rng.pick(Object.values(senders).filter((o) => o !== sender && o.local));
        sessionid = (await openSession(owner, owner.admin ? node : NODES.send, label)) ?? rng.word(22);
      } else if (mode === 'other-node') {
        sessionid = (await openSession(sender, NODES.send, label)) ?? rng.word(22);
        if (node === NODES.send) sessionid = rng.word(22);
      } else {
        sessionid = await openSession(sender, node, label);
        if (sessionid) await ask(sender, iqSet(command(node, { sessionid, action: 'cancel' }), COMPONENT), `${label} (cancelling)`);
        else sessionid = rng.word(22);
      }
    } else {
      sessionid = await openSession(sender, node, label);
      if (!sessionid) {
        sessionid = rng.word(22); // the node completes at once (or refused the sender): any follow-up is unknown
      } else if (fault === 'action') {
        action = rng.pick(['prev', 'bogus', '', 'EXECUTE', 'complete ', 'destroy', 'next\u202E']);
        if (action === 'prev' && node === NODES.list) action = 'bogus'; // prev is a real step there
        if (node === NODES.pending && action === 'next') action = 'bogus';
        if (node === NODES.list || node === NODES.pending) form = badForm(node, sender, w);
      } else if (node === NODES.list && rng.chance(0.5)) {
        // through the filter stage to the results, where revoke applies
        await ask(sender, iqSet(command(node, { sessionid, action: 'next' }, xml('x', { xmlns: NS.dataForms, type: 'submit' }, field('state', ['any']))), COMPONENT), `${label} (filter)`);
        form = badForm(node, sender, w);
        action = rng.pick([undefined, 'complete', 'execute']);
      } else {
        form = badForm(node, sender, w);
      }
    }
    const reply = await ask(sender, iqSet(command(node, { sessionid, action }, ...(form ? [form] : []))), label);
    return refusedReply(reply);
  };
}

/** A first stage with something wrong: forbidden sender, unknown node, an action that cannot start, a stray form. */
function adhocStartCase(): Case {
  return async () => {
    const sender = anySender();
    const nodes = FUZZED_NODES;
    let node = rng.weighted([[6, rng.pick(nodes)], [1, s(60)], [1, `${rng.pick(nodes)}${rng.pick(['x', '\u202E', ' ', '#'])}`], [1, '']] as const);
    let action: string | undefined = rng.pick([undefined, 'execute', 'complete', 'next', 'prev', 'cancel', 'bogus', '']);
    const form = rng.chance(0.3) ? badForm(node, sender, currentWorld) : undefined;
    // New Invite with execute (or none) creates an invite: a valid input, not this case's.
    const creates = (node === NODES.newInvite && sender.local && (action === undefined || action === 'execute'));
    if (creates) action = rng.pick(['complete', 'next', 'prev', 'bogus']);
    if (node === NODES.newInvite && !sender.local) action = rng.pick([undefined, 'execute']);
    const label = `adhoc start ${JSON.stringify(node.slice(0, 60))} action=${String(action)} by ${sender.name}`;
    const reply = await ask(sender, iqSet(command(node, { action }, ...(form ? [form] : []))), label);
    // "Commands and presence requests from JIDs outside `host` get `forbidden`."
    if (!sender.local) expectCondition(label, reply, ['forbidden']);
    return refusedReply(reply);
  };
}

/** XEP-0077 / XEP-0445 at the component, with every fault there is (and from senders it is not for). */
function registerCase(w: World): Case {
  return async () => {
    const sender = rng.weighted([[5, senders.anon], [1, anyLocal()]] as const);
    const kind = rng.pick(['get', 'preauth', 'set', 'set', 'set', 'set-form']);
    const label = `register ${kind} by ${sender.name}`;
    if (kind === 'get') {
      return refusedReply(await ask(sender, xml('iq', { type: 'get', to: toComponent() }, xml('query', { xmlns: NS.register })), label));
    }
    if (kind === 'preauth') {
      const token = rng.pick([rng.word(34), s(60), '', w.accountToken.slice(0, -1) + 'A', undefined as unknown as string]);
      return refusedReply(await ask(sender, iqSet(xml('preauth', { xmlns: NS.pars, token })), label));
    }
    const fault = pickFault(['username', 'password', 'existing', 'token', 'none', 'remove', 'missing', 'reserved', 'password-chars'] as const);
    const pw = marker();
    secrets.add(pw);
    let username = `fz${rng.word(8)}`;
    let password = `${pw}-${s(20)}`;
    let token: string | undefined = w.accountToken;
    if (fault === 'username') username = rng.pick(BAD_USERNAMES);
    if (fault === 'password') password = rng.pick(['', 'short', '1234567', '\u202E\u202E\u202E']);
    // Prosody applies SASLprep: controls, bidi overrides and non-characters make a password it refuses.
    if (fault === 'password-chars') password = `${pw}${rng.pick(['\u007F', '\u0085', '\u202E', '\uFDD0', '\u200F', '\u2028'])}x`;
    if (fault === 'existing') username = rng.pick(EXISTING);
    if (fault === 'reserved') username = 'reserved1';
    if (fault === 'token') token = rng.pick([rng.word(34), s(80), w.tokens.get(seeds.contactId)!, w.tokens.get(seeds.revokedId)!, disguised(w.accountToken)]);
    if (fault === 'none') token = undefined;
    let query: XmlElement;
    if (fault === 'remove') query = xml('query', { xmlns: NS.register }, xml('remove'));
    else if (kind === 'set-form') {
      const fields = [field('FORM_TYPE', [NS.register], 'hidden')];
      if (fault !== 'missing' || rng.chance(0.5)) fields.push(field('username', [username]));
      if (fault !== 'missing') fields.push(field('password', [password]));
      if (token !== undefined) fields.push(field('token', [token]));
      query = xml('query', { xmlns: NS.register }, xml('x', { xmlns: NS.dataForms, type: 'submit' }, ...fields));
    } else {
      query = xml(
        'query',
        { xmlns: NS.register },
        fault === 'missing' && rng.chance(0.5) ? null : xml('username', {}, username),
        fault === 'missing' ? null : xml('password', {}, password),
        token === undefined ? null : xml('token', {}, token),
      );
    }
    const reply = await ask(sender, iqSet(query), `${label} (${fault})`);
    if (sender.local) expectCondition(`${label} (${fault})`, reply, ['forbidden']);
    // Issue 14: an existing account is a conflict before anything is claimed; a password the
    // server's SASLprep refuses is not-acceptable. The password is checked first (no question to
    // the server for a form that fails anyway), so a taken username with a password that holds
    // more than printable ASCII may get either refusal: nothing changes in both cases.
    else if (fault === 'existing' || fault === 'reserved') {
      expectCondition(`${label} (${fault})`, reply, /^[\x20-\x7e]*$/.test(password) ? ['conflict'] : ['conflict', 'not-acceptable']);
    }
    else if (fault === 'password-chars') expectCondition(`${label} (${fault})`, reply, ['not-acceptable']);
    // A username it may not hold, hidden characters included, is refused as typed: never cleaned into another.
    else if (fault === 'username') expectCondition(`${label} (${fault})`, reply, ['not-acceptable']);
    return refusedReply(reply);
  };
}

/** Bridge requests from senders that are not the server: always forbidden. */
function bridgeCase(w: World): Case {
  return async () => {
    const sender = anySender();
    const [type, name] = rng.pick([['get', 'check'], ['set', 'claim'], ['set', 'settle'], ['set', 'subscription'], ['get', 'commands'], ['set', 'check'], ['get', 'bogus']] as const);
    const attrs: Record<string, string> = { xmlns: NS.bridge, version: rng.pick(['0', '1', '', s(10)]) };
    if (rng.chance(0.7)) attrs.token = rng.pick([w.accountToken, rng.word(34), s(40)]);
    if (rng.chance(0.5)) attrs.username = rng.pick([...EXISTING, `fz${rng.word(6)}`, ...BAD_USERNAMES]);
    if (rng.chance(0.3)) attrs.claim = rng.word(16);
    if (rng.chance(0.3)) attrs.outcome = rng.pick(['done', 'released', 'bogus']);
    if (rng.chance(0.3)) attrs.from = oddJid(rng);
    if (rng.chance(0.3)) attrs.to = oddJid(rng);
    if (rng.chance(0.3)) attrs.for = rng.pick(['admin@localhost', oddJid(rng)]);
    const label = `bridge ${type} ${name} by ${sender.name}`;
    const reply = await ask(sender, xml('iq', { type, to: toComponent() }, xml(name, attrs)), label);
    const routed = ['get check', 'set claim', 'set settle', 'set subscription', 'get commands'].includes(`${type} ${name}`);
    expectCondition(label, reply, [routed ? 'forbidden' : 'service-unavailable']);
    return refusedReply(reply);
  };
}

/** IQs of every other shape: disco, ping, unknown namespaces, zero or two children, results and errors. */
function miscIqCase(): Case {
  return async () => {
    const sender = anySender();
    const shape = rng.pick(['disco-info', 'disco-items', 'ping', 'unknown', 'empty', 'two', 'swapped', 'result', 'version']);
    const label = `iq ${shape} by ${sender.name}`;
    const node = rng.pick([undefined, NS.commands, ...FUZZED_NODES, s(60), '']);
    let iq: XmlElement;
    switch (shape) {
      case 'disco-info':
        iq = xml('iq', { type: 'get', to: toComponent() }, xml('query', { xmlns: NS.discoInfo, node }));
        break;
      case 'disco-items':
        iq = xml('iq', { type: 'get', to: toComponent() }, xml('query', { xmlns: NS.discoItems, node }, rng.chance(0.2) ? xml('item', { jid: oddJid(rng) }) : null));
        break;
      case 'ping':
        iq = xml('iq', { type: 'get', to: toComponent() }, xml('ping', { xmlns: NS.ping }));
        break;
      case 'unknown':
        iq = xml('iq', { type: rng.pick(['get', 'set']), to: toComponent() }, xml(rng.pick(['query', 'x', 'vCard', 'time']), { xmlns: rng.pick(['jabber:iq:roster', 'vcard-temp', 'urn:xmpp:time', s(40) || 'urn:x']) }, s()));
        break;
      case 'empty':
        iq = xml('iq', { type: rng.pick(['get', 'set']), to: toComponent() }, rng.chance(0.5) ? s() : null);
        break;
      case 'two':
        iq = xml('iq', { type: 'get', to: toComponent() }, xml('ping', { xmlns: NS.ping }), xml('query', { xmlns: NS.discoInfo }));
        break;
      case 'swapped':
        iq = xml('iq', { type: 'set', to: toComponent() }, xml('query', { xmlns: rng.pick([NS.discoInfo, NS.discoItems]) }));
        break;
      case 'version':
        iq = xml('iq', { type: 'get', to: toComponent(), 'xml:lang': rng.pick(['en', s(20), '']) }, xml('query', { xmlns: NS.version }));
        break;
      default: {
        // results and errors are never answered (RFC 6120 §8.2.3)
        const el = xml('iq', { type: rng.pick(['result', 'error']), to: toComponent() }, rng.chance(0.5) ? xml('command', { xmlns: NS.commands, node: NODES.newInvite, status: 'completed' }) : null);
        if (el.attrs.type === 'error') el.append(xml('error', { type: 'cancel' }, xml('bad-request', { xmlns: NS.stanzas })));
        await fire(sender, el, label);
        return false;
      }
    }
    const reply = await ask(sender, iq, label);
    if (shape === 'unknown' || shape === 'swapped') expectCondition(label, reply, ['service-unavailable']);
    if (shape === 'empty' || shape === 'two') expectCondition(label, reply, ['bad-request']);
    return refusedReply(reply);
  };
}

/** Invite requests carried in presence that must store nothing: structural faults, other domains, replays, wrong types. */
function presenceCase(w: World): Case {
  return async () => {
    const fault = rng.pick(['none', 'unknown', 'many', 'message', 'two', 'both', 'neither', 'remote', 'remote', 'type', 'ns', 'replay', 'subscribe-remote']);
    const sender = fault === 'remote' || fault === 'subscribe-remote' ? senders.anon : fault === 'replay' ? senders.dave : anyLocal();
    const label = `presence ${fault} by ${sender.name}`;
    const invitee = () =>
      xml('invitee', { xmlns: NS.project, ...(rng.chance(0.5) ? { email: s(80) } : { jid: oddJid(rng) }), ...(rng.chance(0.3) ? { name: s(100) } : {}) });
    let children: XmlElement[] = [];
    if (fault !== 'none') children = Array.from({ length: 1 + rng.int(3) }, invitee);
    if (fault === 'unknown') children.push(xml(rng.pick(['bogus', 'invitee']), { xmlns: rng.pick([NS.project, 'urn:other']) }, s()));
    if (fault === 'many') children = Array.from({ length: 21 + rng.int(40) }, invitee);
    if (fault === 'message') children.push(xml('message', { xmlns: NS.project }, 'm'.repeat(1001 + rng.int(3000))));
    if (fault === 'both') children.push(xml('invitee', { xmlns: NS.project, email: 'x@example.net', jid: 'x@example.net' }));
    if (fault === 'neither') children.push(xml('invitee', { xmlns: NS.project, name: s(40) }));
    if (rng.chance(0.3) && fault !== 'message') children.push(xml('message', { xmlns: NS.project }, s(200)));
    let id: string | undefined = rng.chance(0.5) ? `${rng.word(8)}${s(20)}` : undefined;
    // nothing to replay yet for this sender: an empty request instead
    const replayId = replayIds.get(sender.bare);
    if (fault === 'replay' && replayId) id = replayId;
    if (fault === 'replay' && !replayId) children = [];
    const request = xml('invite-request', { xmlns: fault === 'ns' ? rng.pick(['urn:xmpp-invites:1', 'urn:other', '']) : NS.project, id }, ...children);
    let type: string | undefined;
    if (fault === 'type') type = rng.pick(['unavailable', 'bogus', 'unsubscribed', 'subscribed']);
    if (fault === 'subscribe-remote') type = rng.pick(['subscribe', 'subscribed', 'unsubscribe', 'probe', 'error', 'unavailable']);
    // a local user's subscription presences change the component's subscription record: valid, not here
    if (fault === 'type' && (type === 'unsubscribed' || type === 'subscribed')) type = 'unavailable';
    const presence = xml('presence', { to: toComponent(), type }, request, rng.chance(0.2) ? xml('status', {}, s()) : null);
    if (fault === 'two') presence.append(xml('invite-request', { xmlns: NS.project }, invitee()));
    if (fault === 'replay' && replayId) {
      // the same id with other content: still the request already processed
      presence.getChild('invite-request')!.children = [xml('invitee', { xmlns: NS.project, email: `${rng.word(6)}@example.net` })];
    }
    await fire(sender, presence, label);
    presenceSent.set(String(presence.attrs.id), fault);
    return false; // counted as refused once the error presence arrives (see the round's tally)
  };
}
const replayIds = new Map<string, string>();
const presenceSent = new Map<string, string>();
const presenceErrors = new Set<string>();

/** Messages: nothing of a message may change anything. */
function messageCase(): Case {
  return async () => {
    const sender = anySender();
    const type = rng.pick([undefined, 'chat', 'normal', 'headline', 'groupchat', 'error', 'bogus']);
    const payload = rng.pick([
      () => xml('body', {}, s()),
      () => xml('invite-request', { xmlns: NS.project }, xml('invitee', { xmlns: NS.project, email: `${rng.word(6)}@example.net` })),
      () => xml('x', { xmlns: NS.dataForms, type: 'submit' }, field('username', [s()])),
      () => xml('command', { xmlns: NS.commands, node: NODES.newInvite }),
      () => xml('notification', { xmlns: NS.project, kind: 'approved', invite: rng.word(10) }),
    ])();
    await fire(sender, xml('message', { to: toComponent(), type }, payload, rng.chance(0.3) ? xml('thread', {}, s(40)) : null), `message ${type} by ${sender.name}`);
    return false;
  };
}

// ------------------------------------------------------------------------------------------------
// HTTP cases

async function http(method: string, path: string, opts: { body?: string | Buffer; headers?: Record<string, string>; ip?: string; label?: string } = {}): Promise<number | 'closed'> {
  stats.http++;
  const flight = `${opts.label ?? 'http'}: ${method} ${path.slice(0, 100)} ${String(opts.body ?? '').slice(0, 300)}`;
  inFlight.add(flight);
  try {
    const res = await fetch(`${web}${path}`, {
      method,
      body: opts.body,
      redirect: 'manual',
      headers: { 'X-Forwarded-For': opts.ip ?? randomIp(), ...(opts.headers ?? {}) },
      signal: AbortSignal.timeout(15_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    if (e.name === 'TimeoutError') return 'closed';
    return 'closed';
  } finally {
    inFlight.delete(flight);
  }
}

function randomIp(): string {
  return rng.chance(0.8) ? `198.18.${rng.int(256)}.${rng.int(256)}` : `2001:db8:${rng.int(65536).toString(16)}::${rng.int(65536).toString(16)}`;
}

/** Lone surrogates cannot be percent-encoded by encodeURIComponent: write their UTF-8 bytes (as a browser with a broken encoder might). */
function encodeLoose(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return Array.from(Buffer.from(v, 'utf8'))
      .map((b) => `%${b.toString(16).padStart(2, '0')}`)
      .join('');
  }
}

function formBody(fields: [string, string][]): string {
  return fields.map(([k, v]) => `${encodeLoose(k)}=${encodeLoose(v)}`).join('&');
}

function httpCase(w: World): Case {
  return async () => {
    const kind = rng.weighted([
      [3, 'path'],
      [2, 'method'],
      [6, 'register'],
      [3, 'decline'],
      [2, 'csrf'],
      [1, 'type'],
      [1, 'oversize'],
      [1, 'raw'],
    ] as const);
    let status: number | 'closed' | undefined;
    let label = `http ${kind}`;
    const personal = w.personalOpen.length ? w.tokens.get(rng.pick(w.personalOpen).id)! : w.accountToken;
    const token = () => rng.weighted([[3, w.accountToken], [2, personal], [1, w.lockedToken], [1, rng.word(34)], [1, encodeLoose(sHttp(60)) || 'x']] as const);
    const post = (path: string, fields: [string, string][], headers: Record<string, string> = {}) =>
      http('POST', path, { body: formBody(fields), headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: csrf.cookie, ...headers }, label });
    switch (kind) {
      case 'path': {
        const path = rng.pick([
          `/i/${rng.word(34)}`, `/i/${token()}/${rng.pick(['', 'x', 'register/x', '..'])}`, '/i/', '/i', '/%ZZ', '/i/%00', '/i/%E0%A4%A', '/i/..%2f..%2fetc%2fpasswd',
          `/${'a'.repeat(6000)}`, `/i/${rng.word(10)}?${'q=1&'.repeat(300)}`, '/healthz?x', `/${encodeLoose(sHttp(80))}`, '//i//', '/i/%2e%2e', '/static/../../x',
          `/i/${w.accountToken}/register`, `/i/${w.accountToken}/decline`,
        ]);
        label += ` GET ${path.slice(0, 80)}`;
        status = await http(rng.pick(['GET', 'HEAD']), path);
        break;
      }
      case 'method': {
        const method = rng.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'FOO', 'get', 'post']);
        const path = rng.pick([`/i/${w.accountToken}`, `/i/${w.accountToken}/register`, '/healthz', '/', `/i/${personal}/decline`]);
        label += ` ${method} ${path.replace(/\/i\/[^/]+/, '/i/T')}`;
        // fetch sends 'get' and 'post' as GET and POST: the form must fail whatever the method becomes
        status = await http(method, path, { body: method === 'OPTIONS' || method === 'get' ? undefined : formBody([['csrf', csrf.field], ['username', rng.pick(BAD_USERNAMES)], ['password', 'p'.repeat(10)], ['reason', 'r'.repeat(1001)]]), headers: { Cookie: csrf.cookie, 'Content-Type': 'application/x-www-form-urlencoded' } });
        break;
      }
      case 'register': {
        const fault = pickFault(['username', 'password', 'password-forbidden', 'password-saslprep', 'existing', 'reserved', 'missing', 'token', 'reason', 'choices'] as const);
        const pw = marker();
        secrets.add(pw);
        let username = `fz${rng.word(8)}`;
        let password = `${pw}-${rng.word(6)}`;
        let tok = rng.pick([w.accountToken, personal]);
        if (fault === 'username' || fault === 'choices') username = rng.pick([...BAD_USERNAMES, sHttp(100) + '!']);
        if (fault === 'password') password = rng.pick(['', 'short', '1234567']);
        // Issue 14 item 1: a character XML forbids (here in a password) is a form error, never sent to the server.
        if (fault === 'password-forbidden') password = `${pw}${rng.pick(XML_FORBIDDEN)}x`;
        if (fault === 'password-saslprep') password = `${pw}${rng.pick(['\u007F', '\u0085', '\u202E', '\uFDD0', '\u200F'])}x`;
        if (fault === 'existing') username = rng.pick(EXISTING);
        if (fault === 'reserved') username = 'reserved1';
        if (fault === 'token') tok = rng.pick([rng.word(34), w.tokens.get(seeds.contactId)!, w.tokens.get(seeds.revokedId)!, encodeLoose(sHttp(40)) || 'x', encodeURIComponent(disguised(w.accountToken))]);
        const fields: [string, string][] = [['csrf', csrf.field]];
        if (fault !== 'missing' || rng.chance(0.5)) fields.push(['username', username]);
        if (fault !== 'missing') fields.push(['password', password]);
        if (fault === 'reason') fields.push(['reason', 'r'.repeat(1001 + rng.int(2000))]);
        else if (rng.chance(0.3)) fields.push(['reason', sHttp(200)]);
        if (fault === 'choices') {
          // choices for invites that are not the page's companions, with a username that fails anyway
          for (const r of w.rows.slice(0, 3)) fields.push([`choice-${r.id}`, rng.pick(['accept', 'decline', 'later', sHttp(10)])]);
        }
        if (rng.chance(0.2)) fields.reverse();
        label += ` (${fault})`;
        status = await post(`/i/${tok}/register`, fields);
        break;
      }
      case 'decline': {
        const fault = rng.pick(['reason', 'token', 'shared', 'also']);
        const route = rng.pick(['decline', 'opt-out']);
        let tok = personal;
        const fields: [string, string][] = [['csrf', csrf.field]];
        if (fault === 'reason') fields.push(['reason', sHttp(1) + 'r'.repeat(1001 + rng.int(3000))]);
        if (fault === 'token') tok = rng.pick([rng.word(34), encodeLoose(sHttp(40)) || 'y']);
        if (fault === 'shared') tok = w.accountToken; // a shared link cannot be declined for everyone
        if (fault === 'also') {
          fields.push(['reason', 'r'.repeat(1001)], ...w.rows.slice(0, 5).map((r): [string, string] => ['also', r.id]));
        }
        if (fault !== 'reason' && fault !== 'also' && rng.chance(0.5)) fields.push(['reason', sHttp(300)]);
        label += ` ${route} (${fault})`;
        status = await post(`/i/${tok}/${route}`, fields);
        break;
      }
      case 'csrf': {
        const fault = rng.pick(['none', 'bad', 'cookie-only', 'other-cookie', 'huge-cookie']);
        const fields: [string, string][] = [['username', `fz${rng.word(8)}`], ['password', `${marker()}xxxx`]];
        const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded' };
        // one character off the real value (never the same character again)
        const flipped = csrf.field.slice(0, -1) + (csrf.field.endsWith('A') ? 'B' : 'A');
        if (fault === 'bad') fields.push(['csrf', rng.pick([rng.word(43), sHttp(60), flipped])]);
        if (fault !== 'none') headers.Cookie = csrf.cookie;
        if (fault === 'cookie-only') headers.Cookie = csrf.cookie;
        if (fault === 'other-cookie') {
          headers.Cookie = `xi_csrf=${rng.word(24)}`;
          fields.push(['csrf', csrf.field]);
        }
        if (fault === 'huge-cookie') headers.Cookie = `${'a=b; '.repeat(2000)}${csrf.cookie}`;
        label += ` (${fault})`;
        status = await http('POST', `/i/${rng.pick([w.accountToken, personal])}/${rng.pick(['register', 'decline', 'opt-out'])}`, { body: formBody(fields), headers });
        break;
      }
      case 'type': {
        const type = rng.pick(['text/plain', 'application/json', 'multipart/form-data; boundary=x', '', 'application/x-www-form-urlencoded; charset=utf-7', 'APPLICATION/X-WWW-FORM-URLENCODED']);
        label += ` ${type}`;
        const body = type.startsWith('application/json') ? JSON.stringify({ csrf: csrf.field, username: 'fz', password: 'x'.repeat(12) }) : `csrf=${csrf.field}&username=${encodeLoose(sHttp(30))}&password=short`;
        status = await http('POST', `/i/${w.accountToken}/register`, { body, headers: { 'Content-Type': type, Cookie: csrf.cookie } });
        break;
      }
      case 'oversize': {
        const size = rng.pick([17 * 1024, 64 * 1024, 512 * 1024]);
        label += ` ${size} bytes`;
        status = await http('POST', `/i/${rng.pick([w.accountToken, personal])}/${rng.pick(['register', 'decline'])}`, {
          body: `csrf=${csrf.field}&reason=${'r'.repeat(size)}`,
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: csrf.cookie },
        });
        break;
      }
      default: {
        const shape = rng.pick(['header-flood', 'huge-header', 'bad-line', 'smuggle', 'bad-chunk', 'http09', 'nul', 'bad-length']);
        label += ` ${shape}`;
        const host = `Host: 127.0.0.1:${webPort}\r\n`;
        const req: Record<string, string> = {
          'header-flood': `GET /healthz HTTP/1.1\r\n${host}${Array.from({ length: 3000 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')}\r\n`,
          'huge-header': `GET /i/${rng.word(34)} HTTP/1.1\r\n${host}X-Big: ${'a'.repeat(70_000)}\r\n\r\n`,
          'bad-line': `${rng.pick(['GET', 'G\u0001T', 'POST'])} ${rng.pick(['/ /', 'no-slash', '/\u0000'])} HTTP/1.1\r\n${host}\r\n`,
          smuggle: `POST /i/${w.accountToken}/register HTTP/1.1\r\n${host}Content-Length: 4\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\nCookie: ${csrf.cookie}\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\n${host}\r\n`,
          'bad-chunk': `POST /i/${w.accountToken}/register HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
          http09: `GET /healthz\r\n\r\n`,
          nul: `GET /i/\u0000${rng.word(10)} HTTP/1.1\r\n${host}\r\n`,
          'bad-length': `POST /i/${w.accountToken}/register HTTP/1.1\r\n${host}Content-Length: -5\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nabc`,
        };
        stats.http++;
        const r = await rawHttp(webPort, Buffer.from(req[shape], 'latin1'));
        if (r.timedOut) violations.push(`${label}: no answer and no close within 10 s`);
        status = r.status ?? 'closed';
      }
    }
    if (typeof status === 'number' && status >= 500) violations.push(`${label}: HTTP ${status}`);
    return status === 'closed' || (typeof status === 'number' && status >= 400);
  };
}

/** Characters XML forbids, written raw to a client stream: Prosody closes that stream; the component sees nothing. */
async function forbiddenOnStream(): Promise<boolean> {
  const payload = rng.pick(['\u0001', '&#1;', '&#x1B;', '\uFFFE', '&#xFFFE;', '&#xD800;', '&#0;']);
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'carol', password: PASSWORDS.carol, presence: false });
  throwaway.push(c);
  stats.stanzas++;
  c.sendRaw(`<iq type='set' to='${COMPONENT}' id='fz-raw-${++idSeq}'><command xmlns='${NS.commands}' node='${NODES.newInvite}'><x xmlns='${NS.dataForms}' type='submit'><field var='username'><value>a${payload}b</value></field></x></command></iq>`);
  for (let i = 0; i < 100 && c.connected; i++) await new Promise((r) => setTimeout(r, 20));
  if (c.connected) violations.push(`raw ${JSON.stringify(payload)} on a client stream: Prosody kept the stream open`);
  await c.stop();
  return !c.connected;
}

/**
 * Oversize stanzas: 200 KB reaches the component (a message longer than the rule allows, refused
 * with the form again); above Prosody's 256 KiB c2s limit, Prosody closes that client's stream.
 */
async function oversize(big: boolean): Promise<boolean> {
  if (!big) {
    const sessionid = await openSession(senders.alice, NODES.send, 'oversize');
    const form = xml('x', { xmlns: NS.dataForms, type: 'submit' }, field('emails', [`${rng.word(8)}@example.net`]), field('message', ['ß'.repeat(100_000)]));
    return refusedReply(await ask(senders.alice, iqSet(command(NODES.send, { sessionid, action: 'complete' }, form), COMPONENT), 'oversize 200 KB form'));
  }
  const c = await TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'carol', password: PASSWORDS.carol, presence: false });
  throwaway.push(c);
  stats.stanzas++;
  await c.send(xml('message', { to: COMPONENT }, xml('body', {}, 'x'.repeat(300 * 1024)))).catch(() => undefined);
  for (let i = 0; i < 100 && c.connected; i++) await new Promise((r) => setTimeout(r, 20));
  if (c.connected) violations.push('a 300 KB stanza on a client stream: Prosody kept the stream open');
  await c.stop();
  return !c.connected;
}

// ------------------------------------------------------------------------------------------------
// Valid inputs and what each must change

interface Valid {
  label: string;
  run(): Promise<void>;
  /** new invites it makes */
  newInvites: number;
  /** checked after the round, once the outbox is quiet */
  check(): void;
}

function validInputs(round: number, w: World): Valid[] {
  const out: Valid[] = [];
  const adhocReply: { el?: XmlElement } = {};
  // dave's invites stay few (six in a run), below any per-user limit a small site would set
  if (round % 6 === 0) {
    out.push({
      label: 'New Invite by dave',
      newInvites: 1,
      run: async () => {
        adhocReply.el = await ask(senders.dave, iqSet(command(NODES.newInvite, { action: 'execute' }), COMPONENT), 'valid New Invite');
      },
      check: () => {
        if (adhocReply.el?.getChild('command', NS.commands)?.attrs.status !== 'completed') violations.push(`valid New Invite: not completed: ${adhocReply.el && show(adhocReply.el)}`);
      },
    });
  }
  if (round % 3 === 1) {
    const id = `fz-valid-${round}-${rng.word(6)}`;
    const email = `valid${round}.${rng.word(5)}@example.net`;
    const name = `Bo\u202Eb ${s(20)}`.slice(0, 100);
    if (round % 6 === 4) out.push({
      label: 'invite request from dave',
      newInvites: 1,
      run: async () => {
        await fire(senders.dave, xml('presence', { to: COMPONENT }, xml('invite-request', { xmlns: NS.project, id }, xml('invitee', { xmlns: NS.project, email, name }), xml('message', {}, 'hello \u202E there'))), 'valid invite request');
        replayIds.set(senders.dave.bare, id);
        await settle();
      },
      check: () => {
        const mine = service.app.invites.list({ inviter: 'dave@localhost', limit: 100 }).filter((i) => i.inviteeEmail === email);
        if (mine.length !== 1) violations.push(`valid invite request: ${mine.length} invites for ${email}`);
      },
    });
    // Issue 14 item 4: straße and strasse are one JID under nodeprep: the second is a duplicate.
    const local = `stra${rng.word(4)}`;
    if (round % 6 === 1) out.push({
      label: 'invite requests for ß and ss',
      newInvites: 1,
      run: async () => {
        await fire(senders.dave, xml('presence', { to: COMPONENT }, xml('invite-request', { xmlns: NS.project, id: `${id}-a` }, xml('invitee', { xmlns: NS.project, jid: `${local}ße@elsewhere.net` }))), 'valid ß');
        await settle();
        await fire(senders.dave, xml('presence', { to: COMPONENT }, xml('invite-request', { xmlns: NS.project, id: `${id}-b` }, xml('invitee', { xmlns: NS.project, jid: `${local.toUpperCase()}SSE@Elsewhere.NET` }))), 'valid SS');
        replayIds.set(senders.dave.bare, `${id}-b`);
        await settle();
      },
      check: () => {
        const made = service.app.invites.list({ inviter: 'dave@localhost', limit: 500 }).filter((i) => i.inviteeJid?.startsWith(`${local}`) || i.inviteeJid?.startsWith(local.toUpperCase()));
        if (made.length !== 1) violations.push(`invite requests to ${local}ße@ and ${local.toUpperCase()}SSE@: ${made.length} invites (${made.map((i) => i.inviteeJid).join(', ')}); nodeprep makes them one JID, so the second is a duplicate`);
      },
    });
  }
  if (round % 3 === 2 && w.personalOpen.length && !EXCLUDE.has('decline-controls')) {
    // Issue 14 item 1: a decline note with characters XML forbids is stored without them, and the
    // declined message reaches the inviter without breaking the component's stream.
    const target = w.personalOpen[0];
    const tok = w.tokens.get(target.id)!;
    const reason = `no\u0001 thanks\u001B[31m red\uFFFE`;
    let status: number | 'closed' = 0;
    out.push({
      label: 'decline with a note holding controls',
      newInvites: 0,
      run: async () => {
        status = await http('POST', `/i/${tok}/decline`, { label: 'valid decline', body: formBody([['csrf', csrf.field], ['reason', reason]]), headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: csrf.cookie } });
      },
      check: () => {
        const after = service.app.invites.get(target.id);
        if (status !== 200 || after?.state !== 'declined') violations.push(`valid decline: HTTP ${status}, state ${after?.state}`);
        const stored = service.app.invites.events(target.id).find((e) => e.type === 'declined')?.reason ?? '';
        if (hasXmlForbidden(stored)) violations.push(`valid decline: the stored note keeps characters XML forbids: ${JSON.stringify(stored)}`);
      },
    });
  }
  {
    // A registration on the web and one at the component, with fresh usernames: accounts made.
    const webUser = `fzweb${round}${rng.word(4)}`;
    const pw = `${marker()}-ok`;
    secrets.add(pw);
    let status: number | 'closed' = 0;
    if (round % 2 === 1) out.push({
      label: `web registration of ${webUser}`,
      newInvites: 0,
      run: async () => {
        status = await http('POST', `/i/${w.accountToken}/register`, { body: formBody([['csrf', csrf.field], ['username', webUser], ['password', pw]]), headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: csrf.cookie }, ip: `203.0.113.${round + 1}` });
      },
      check: () => {
        if (status !== 200) violations.push(`valid web registration of ${webUser}: HTTP ${status}`);
      },
    });
    if (round % 4 === 0) {
      const compUser = `fzxmpp${round}${rng.word(4)}`;
      const pw2 = `${marker()}-ok`;
      secrets.add(pw2);
      let reply: XmlElement | undefined;
      out.push({
        label: `component registration of ${compUser}`,
        newInvites: 0,
        run: async () => {
          reply = await ask(senders.anon, iqSet(xml('query', { xmlns: NS.register }, xml('username', {}, compUser), xml('password', {}, pw2), xml('token', {}, w.accountToken)), COMPONENT), 'valid component registration');
        },
        check: () => {
          if (reply?.attrs.type !== 'result') violations.push(`valid component registration of ${compUser}: ${reply ? show(reply) : 'no reply'}`);
        },
      });
    }
  }
  if (round % 4 === 3 && w.pendingIds.size) {
    const id = [...w.pendingIds][0];
    out.push({
      label: `admin approves ${id}`,
      newInvites: 0,
      run: async () => {
        const sessionid = await openSession(senders.admin, NODES.pending, 'valid approval');
        await ask(senders.admin, iqSet(command(NODES.pending, { sessionid, action: 'complete' }, xml('x', { xmlns: NS.dataForms, type: 'submit' }, field('approve', [id]), field('reason', ['ok \u202E']))), COMPONENT), 'valid approval');
      },
      check: () => {
        if (service.app.invites.get(id)?.state !== 'open') violations.push(`valid approval of ${id}: state ${service.app.invites.get(id)?.state}`);
      },
    });
  }
  return out;
}

// ------------------------------------------------------------------------------------------------

/**
 * Waits until the router has handled every stanza, the outbox has delivered what is due, and no
 * registration is in progress: a claim whose account the server was slow to create (the service
 * answered "try to log in in a minute") is settled by reconciliation outside the router, and would
 * otherwise change the store in the middle of the next round.
 */
async function settle(): Promise<void> {
  const idle = () => service.app.router.busy === 0 && dueOutbox() === 0 && service.app.registration.heldClaims().length === 0;
  for (let i = 0; i < 600; i++) {
    if (idle()) {
      await new Promise((r) => setTimeout(r, 30));
      if (idle()) return;
    }
    service.app.worker.poke();
    await new Promise((r) => setTimeout(r, 25));
  }
  violations.push(
    `the service did not settle within 15 s: ${service.app.router.busy} stanzas in hand, ${dueOutbox()} due outbox rows, ${service.app.registration.heldClaims().length} held claims`,
  );
}

function dueOutbox(): number {
  const db = openStoreOf(service.config.database);
  try {
    return (db.prepare(`SELECT count(*) AS n FROM outbox WHERE state IN ('queued', 'sending') AND not_before <= ?`).get(Date.now()) as { n: number }).n;
  } finally {
    db.close();
  }
}

/** A ping from each sender, answered after everything it sent before (Prosody keeps a session's order). */
async function drainSenders(): Promise<void> {
  await Promise.all(Object.values(senders).map((sd) => ask(sd, xml('iq', { type: 'get', to: COMPONENT }, xml('ping', { xmlns: NS.ping })), `drain ping by ${sd.name}`)));
  await settle();
}

let currentWorld: World;
const timings: string[] = [];
const familyTime: Record<string, { n: number; ms: number }> = {};

beforeAll(async () => {
  console.log(`fuzz: seed ${rng.seed} (FUZZ_SEED=${rng.seed} reproduces this run)`);
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT], anonymousHost: 'anon.localhost', logLevel: 'info' });
  for (const [u, pw] of Object.entries(PASSWORDS)) {
    await prosody.register(u, pw);
    secrets.add(pw);
  }
  service = await startService(
    serviceConfig(prosody, {
      admins: ['admin@localhost'],
      registration: { requester_domains: ['anon.localhost'] },
      web: { public_url: 'https://chat.example.org', trusted_proxies: ['127.0.0.1'] },
    }),
    { provisionTimeoutMs: 10_000 },
  );
  secrets.add(COMPONENT_SECRET);
  secrets.add(service.config.tokenKey);
  web = service.app.web.url;
  webPort = Number(new URL(web).port);
  service.app.connection.on('offline', () => {
    offline++;
    if (aborted) return;
    aborted = true;
    const reason = service.logs.lines.filter((l) => l.includes('Lost the connection')).at(-1) ?? '';
    // What the service itself was sending: outbox rows being delivered at that moment.
    const db = openStoreOf(service.config.database);
    const sending = db.prepare(`SELECT kind, recipient, params FROM outbox WHERE state = 'sending' OR (state = 'sent' AND sent_at >= ?)`).all(Date.now() - 2_000);
    db.close();
    violations.push(
      `the component lost its stream (${/"reason":"([^"]*)"/.exec(reason)?.[1] ?? 'see the log'}); the run stops here. In flight:\n      ` +
        // web requests and deliveries first: they carry what XMPP cannot
        [...sending.map((r) => `outbox delivery: ${JSON.stringify(r)}`), ...[...inFlight].sort((a, b) => Number(b.startsWith('http')) - Number(a.startsWith('http'))).map((f) => f.slice(0, 300))]
          .slice(0, 12)
          .join('\n      '),
    );
  });

  const login = async (name: string, user: string, opts: { resource?: string; anonymous?: boolean } = {}) => {
    const client = await TestClient.connect({
      port: prosody.ports.c2s,
      domain: opts.anonymous ? 'anon.localhost' : 'localhost',
      ...(opts.anonymous ? { anonymous: true } : { username: user, password: PASSWORDS[user as keyof typeof PASSWORDS] }),
      resource: opts.resource,
    });
    track(client);
    const bare = client.bareJid;
    senders[name] = { name, client, bare, local: bare.endsWith('@localhost'), admin: bare === 'admin@localhost' };
  };
  await login('alice', 'alice', { resource: 'phone' });
  await login('alice2', 'alice', { resource: 'laptop' });
  await login('bob', 'bob');
  await login('admin', 'admin');
  await login('odd', 'carol', { resource: 'ｆｕｌｌ ßΣ\u00A0ǅ' });
  await login('anon', '', { anonymous: true });
  // dave sends only valid inputs (so that no rate of his is spent by hostile ones), and replays of them
  await login('dave', 'dave');

  // The invites the inputs aim at.
  const inv = service.app.invites;
  const alice: Actor = { kind: 'user', jid: 'alice@localhost', isAdmin: false };
  const bob: Actor = { kind: 'user', jid: 'bob@localhost', isAdmin: false };
  const account = inv.create(OPERATOR, { kind: 'account', source: 'cli', maxUses: 1000 });
  seeds.accountToken = account.links.token;
  seeds.lockedToken = inv.create(OPERATOR, { kind: 'account-locked', username: 'reserved1', source: 'cli' }).links.token;
  inv.create(alice, { kind: 'contact-account', source: 'send', email: 'pending@example.net', note: 'hi' });
  for (let i = 0; i < 8; i++) {
    const { invite } = inv.create(bob, { kind: 'contact-account', source: 'send', email: `personal${i}@example.net` });
    inv.approve(OPERATOR, invite.id);
  }
  seeds.contactId = inv.create(bob, { kind: 'contact', source: 'command' }).invite.id;
  seeds.revokedId = inv.create(alice, { kind: 'contact-account', source: 'command' }).invite.id;
  inv.revoke(OPERATOR, seeds.revokedId);

  // A CSRF cookie and its form value, as a browser gets them from a landing page.
  const res = await fetch(`${web}/i/${seeds.accountToken}`, { headers: { 'X-Forwarded-For': '203.0.113.250' } });
  const html = await res.text();
  csrf = { cookie: (res.headers.get('set-cookie') ?? '').split(';')[0], field: /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '' };
  expect(csrf.cookie).toMatch(/^xi_csrf=/);
  await settle();
});

afterAll(async () => {
  for (const sd of Object.values(senders)) await sd.client.stop();
  for (const c of throwaway) await c.stop();
  await service?.stop();
  await prosody?.stop();
});

it('survives more than ten thousand hostile inputs: connected, every IQ answered once, nothing changed but by valid inputs, no secret logged', async () => {
  const started = Date.now();
  const perRound = Math.ceil(HOSTILE_CASES / ROUNDS);
  const dbFile = service.config.database;
  for (let round = 0; round < ROUNDS; round++) {
    // A round of hostile inputs: the database must come out exactly as it went in.
    currentWorld = world();
    const w = currentWorld;
    await settle();
    const before = snapshotAll(dbFile);
    const xmppCases: Case[] = [];
    const httpCases: Case[] = [];
    for (let i = 0; i < perRound; i++) {
      const family = rng.weighted([
        [26, 'stage'],
        [8, 'start'],
        [10, 'register'],
        [6, 'bridge'],
        [10, 'iq'],
        [10, 'presence'],
        [5, 'message'],
        [30, 'http'],
      ] as const);
      const c =
        family === 'stage' ? adhocStageCase(w)
        : family === 'start' ? adhocStartCase()
        : family === 'register' ? registerCase(w)
        : family === 'bridge' ? bridgeCase(w)
        : family === 'iq' ? miscIqCase()
        : family === 'presence' ? presenceCase(w)
        : family === 'message' ? messageCase()
        : httpCase(w);
      const timed: Case = async () => {
        const t = Date.now();
        try {
          return await c();
        } finally {
          const f = (familyTime[family] ??= { n: 0, ms: 0 });
          f.n++;
          f.ms += Date.now() - t;
        }
      };
      (family === 'http' ? httpCases : xmppCases).push(timed);
    }
    const tally = async (c: Case) => {
      stats.hostile++;
      if (await c()) stats.refused++;
      else stats.harmless++;
    };
    const t0 = Date.now();
    let tx = 0;
    let th = 0;
    await Promise.all([
      pool(xmppCases, XMPP_CONCURRENCY, tally, () => aborted).then(() => (tx = Date.now() - t0)),
      pool(httpCases, HTTP_CONCURRENCY, tally, () => aborted).then(() => (th = Date.now() - t0)),
    ]);
    timings.push(`round ${round}: ${xmppCases.length} XMPP cases ${tx} ms, ${httpCases.length} HTTP cases ${th} ms`);
    if (round % 4 === 0) {
      stats.hostile++;
      if (await forbiddenOnStream()) {
        stats.refused++;
        stats.refusedByProsody++;
      }
    }
    for (const big of round % 6 === 5 ? [false, true] : [false]) {
      stats.hostile++;
      if (await oversize(big)) {
        stats.refused++;
        if (big) stats.refusedByProsody++;
      }
    }
    await drainSenders();
    const diff = snapshotDiff(before, snapshotAll(dbFile));
    if (diff.length) violations.push(`round ${round}: hostile inputs changed the database:\n    ${diff.join('\n    ')}`);
    if (aborted) break;

    // A few valid inputs: each makes its expected change, and only as many invites as expected.
    const valid = validInputs(round, world());
    const count = rowsNow().length;
    for (const v of valid) {
      await v.run();
      await settle();
      stats.valid++;
    }
    await drainSenders();
    for (const v of valid) v.check();
    const made = rowsNow().length - count;
    const expected = valid.reduce((n, v) => n + v.newInvites, 0);
    if (made !== expected) violations.push(`round ${round}: valid inputs (${valid.map((v) => v.label).join('; ')}) made ${made} invites, expected ${expected}`);
  }
  // Late or duplicate replies.
  await new Promise((r) => setTimeout(r, 500));
  for (const [id, label] of sentRequests) {
    const n = replies.get(id) ?? 0;
    if (n !== 1) violations.push(`${label}: ${n} replies to IQ ${id} (exactly one expected)`);
  }
  for (const [id, label] of sentReplies) {
    if (replies.has(id)) violations.push(`${label}: an IQ ${id} of type result/error was answered`);
  }
  for (const sd of Object.values(senders)) {
    for (const st of sd.client.received) {
      if (st.name === 'presence' && st.attrs.type === 'error' && presenceSent.has(String(st.attrs.id))) presenceErrors.add(String(st.attrs.id));
    }
  }
  // Presence faults answered with an error presence count as refused.
  stats.refused += presenceErrors.size;
  stats.harmless -= presenceErrors.size;

  // Still up, still serving.
  if (!service.app.connection.online) violations.push('the component is not connected at the end');
  const health = (await (await fetch(`${web}/healthz`)).json()) as { status?: string; xmpp?: string };
  if (health.status !== 'ok' || health.xmpp !== 'online') violations.push(`/healthz at the end: ${JSON.stringify(health)}`);
  for (const line of service.logs.lines.filter((l) => l.includes('Lost the connection')).slice(0, 5)) violations.push(`service log: ${line.slice(0, 300)}`);

  // No secret in the log: the configured ones, every password marker, every token of every invite.
  world();
  const log = service.logs.text();
  // Markers are many (one per password sent): found in one pass over the log, then looked up.
  const seen = new Set(log.match(/pw[a-z0-9]{10}/g) ?? []);
  const leaked = [...[...markers].filter((m) => seen.has(m)), ...[...secrets].filter((x) => x.length >= 8 && !markers.has(x.slice(0, 12)) && log.includes(x))];
  for (const x of leaked) {
    const line = service.logs.lines.find((l) => l.includes(x)) ?? '';
    violations.push(`a secret (${x.length} chars) reached the log: ${line.split(x).join('<SECRET>').slice(0, 600)}`);
  }

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `fuzz: ${stats.hostile} hostile inputs tried, ${stats.refused} refused (${stats.refusedByProsody} of them by Prosody closing the client stream; ` +
      `${stats.harmless} answered harmlessly or ignored); ${stats.valid} valid inputs applied; ${stats.iqs} IQs, ${stats.stanzas} other stanzas, ` +
      `${stats.http} HTTP requests in ${seconds} s; seed ${rng.seed}`,
  );
  if (process.env.FUZZ_TIMINGS) {
    const [utime, stime] = readFileSync(`/proc/${prosody.pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).map(Number);
    const cpu = process.cpuUsage();
    timings.push(`CPU: test process and service ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, Prosody ${((utime + stime) / 100).toFixed(1)} s`);
  }
  if (process.env.FUZZ_TIMINGS) console.log([...timings, ...Object.entries(familyTime).map(([f, t]) => `${f}: ${t.n} cases, ${(t.ms / t.n).toFixed(1)} ms each`)].join('\n'));
  if (violations.length) {
    // the same failure from many inputs is shown once, with how often it happened
    const kinds = new Map<string, { first: string; n: number }>();
    for (const v of violations) {
      const key = v.replace(/fz\d+/g, 'fz#').replace(/(got [a-z-]+|HTTP \d+|changed the database).*/s, '$1').slice(0, 160);
      const k = kinds.get(key);
      if (k) k.n++;
      else kinds.set(key, { first: v, n: 1 });
    }
    console.log(`fuzz: ${violations.length} violations, ${kinds.size} kinds:\n${[...kinds.values()].slice(0, 40).map((k) => `(${k.n}×) ${k.first.slice(0, 4000)}`).join('\n')}`);
    // What the service logged as errors (pino level 50 and up): the cause of an internal-server-error.
    const errors = service.logs.lines.filter((l) => /"level":(5\d|60)\b/.test(l));
    if (errors.length) console.log(`fuzz: the service logged ${errors.length} errors; the first ones:\n${errors.slice(0, 10).map((l) => l.slice(0, 2000)).join('\n')}`);
    if (process.env.FUZZ_LOG) writeFileSync(process.env.FUZZ_LOG, service.logs.text());
  }
  expect(violations).toEqual([]);
  expect(offline).toBe(0);
  expect(stats.hostile).toBeGreaterThanOrEqual(Math.min(HOSTILE_CASES, 10_000));
}, RUN_TIMEOUT_MS);
