/**
 * XEP-0050 ad-hoc commands. Commands are declared as data (`CommandDef`); this file renders the
 * protocol: sessions, actions, notes, errors, and the disco listing.
 *
 * References: https://xmpp.org/extensions/xep-0050.html §3.4 (actions), §4.4 (sessions),
 * §4.6 (errors).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { secureRandomBytes } from '../domain/random';
import { NS } from './ns';
import { MemorySessions, type CommandSessions, type JsonValue, type OfferedOption, type SessionAction, type SessionLimits } from '../domain/command-sessions';
import { offeredOptions, SubmittedForm } from './forms';
import type { Requester } from './requester';
import { StanzaFailure } from './stanza-errors';
import { xml, type Element } from './xml';

export type StageAction = SessionAction;
export type NoteType = 'info' | 'warn' | 'error';

export interface Note {
  type: NoteType;
  text: string;
}

/** What a stage answers: more to do (`executing`) or done (`completed`). */
export type Step =
  | {
      status: 'executing';
      form: Element;
      notes?: Note[];
      /** allowed actions and the one `execute` means; XEP-0050 §3.4 */
      actions: { allowed: StageAction[]; execute: StageAction };
      /**
       * carried to the next stage of this session: plain data (JSON), since the next stage may be
       * answered by another instance of the service
       */
      state?: JsonValue;
    }
  | { status: 'completed'; form?: Element; notes?: Note[] };

export interface StageInput {
  action: StageAction;
  form: SubmittedForm | undefined;
  state: unknown;
}

export interface CommandDef {
  node: string;
  name: string;
  /** whether the requester may see and run the command; checked at every stage */
  allowed(req: Requester): boolean;
  start(req: Requester): Step | Promise<Step>;
  /** a later stage: the form submitted with `action` */
  next?(req: Requester, input: StageInput): Step | Promise<Step>;
}

export interface AdhocOptions {
  /** the component JID, used in disco items */
  jid: string;
  /** how long an idle session lives (default 10 min) */
  sessionTtlMs?: number;
  /** open sessions per bare JID, all its resources together (default 10; its own oldest is dropped) */
  maxSessionsPerJid?: number;
  /**
   * open sessions in all (default 10,000). When full, the oldest session of the bare JID holding the
   * most is dropped, so a user who opens many can only ever push out their own.
   */
  maxSessions?: number;
  /**
   * where sessions are kept between stages (default: in this process, under the two caps above);
   * the service keeps them in its store, which every instance shares (store/command-sessions-repo.ts)
   */
  sessions?: (limits: SessionLimits) => CommandSessions;
  /**
   * The MAC of the ids of sessions that end at their first stage (New Invite): such an id proves by
   * itself that it was given to this owner for this command and ended at once, so it is answered
   * `session-expired` on every instance that shares the key, and nothing is written for it. The
   * service keys it from token_key, under a label of its own (TokenCodec.sessionIdMac); by default a
   * key of this process.
   */
  sessionIdMac?: (data: string) => Buffer;
  now?: () => number;
}

/** The default caps (AdhocOptions). */
export const SESSION_LIMITS: Readonly<SessionLimits> = { perJid: 10, max: 10_000 };

/** A one-stage id: 16 random characters, then 16 of their MAC (96 bits each, base64url). */
const ONE_STAGE_ID = /^[A-Za-z0-9_-]{32}$/;
const ONE_STAGE_HALF = 16;
/** How often timed-out sessions are swept (AdhocCommands.execute). */
const SWEEP_EVERY_MS = 1000;

/** A MAC of this process only (AdhocOptions.sessionIdMac). */
function processMac(): (data: string) => Buffer {
  const key = secureRandomBytes(32);
  return (data) => createHmac('sha256', key).update(data).digest();
}

const commandError = (condition: 'bad-action' | 'bad-sessionid' | 'session-expired' | 'malformed-action' | 'bad-payload') =>
  xml(condition, { xmlns: NS.commands });

export class AdhocCommands {
  readonly #commands = new Map<string, CommandDef>();
  readonly #sessions: CommandSessions;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #mac: (data: string) => Buffer;
  #nextSweep = -Infinity;

  constructor(private readonly opts: AdhocOptions) {
    this.#ttl = opts.sessionTtlMs ?? 10 * 60_000;
    const limits = { perJid: opts.maxSessionsPerJid ?? SESSION_LIMITS.perJid, max: opts.maxSessions ?? SESSION_LIMITS.max };
    this.#sessions = (opts.sessions ?? ((l) => new MemorySessions(l)))(limits);
    this.#now = opts.now ?? Date.now;
    this.#mac = opts.sessionIdMac ?? processMac();
  }

  add(def: CommandDef): this {
    this.#commands.set(def.node, def);
    return this;
  }

  get(node: string): CommandDef | undefined {
    return this.#commands.get(node);
  }

  /** The commands this requester may run, for disco#items (XEP-0050 §2.2). */
  visibleTo(req: Requester): CommandDef[] {
    return [...this.#commands.values()].filter((c) => req.isLocal && c.allowed(req));
  }

  discoItems(req: Requester): Element[] {
    return this.visibleTo(req).map((c) => xml('item', { jid: this.opts.jid, node: c.node, name: c.name }));
  }

  /** How many sessions are open (in the store: on every instance). */
  async openSessions(): Promise<number> {
    return this.#sessions.openCount();
  }

  /** Handles `<command/>` in an IQ set and returns the `<command/>` of the result. */
  async execute(req: Requester, command: Element): Promise<Element> {
    // Sessions past their time are ended at most once a second: a stage finds its own session's
    // expiry anyway, and a query per stanza was 3 % of New Invite's time under load.
    const now = this.#now();
    if (now >= this.#nextSweep || now < this.#nextSweep - SWEEP_EVERY_MS) {
      this.#nextSweep = now + SWEEP_EVERY_MS;
      await this.#sessions.sweep(now);
    }
    if (!req.isLocal) throw new StanzaFailure('forbidden', 'These commands are for users of this server');
    const node = command.attrs.node ?? '';
    const def = this.#commands.get(node);
    if (!def) throw new StanzaFailure('item-not-found', `No command ${node}`);
    if (!def.allowed(req)) throw new StanzaFailure('forbidden', `You may not run ${def.name}`);

    const action = command.attrs.action ?? 'execute';
    if (!['execute', 'cancel', 'prev', 'next', 'complete'].includes(action)) {
      throw new StanzaFailure('bad-request', `Unknown action ${action}`, commandError('malformed-action'));
    }
    const x = command.getChild('x', NS.dataForms);
    const sessionId = command.attrs.sessionid;

    if (!sessionId) {
      if (action !== 'execute') {
        throw new StanzaFailure('bad-request', `A new command starts with execute, not ${action}`, commandError('bad-action'));
      }
      const step = await def.start(req);
      const id = step.status === 'completed' ? this.#oneStageId(req, node) : this.#newId();
      return this.#respond(def, req, id, step, false);
    }

    if (this.#isOneStage(sessionId, req, node)) {
      throw new StanzaFailure('not-allowed', 'This command session has ended', commandError('session-expired'));
    }
    const session = await this.#sessions.find(sessionId);
    if (session === 'ended') throw new StanzaFailure('not-allowed', 'This command session has ended', commandError('session-expired'));
    // A session of someone else is as unknown to this requester as one that never existed.
    if (!session || session.owner !== req.full || session.node !== node) {
      throw new StanzaFailure('bad-request', 'Unknown command session', commandError('bad-sessionid'));
    }
    if (session.expiresAt <= this.#now()) {
      await this.#sessions.end(session);
      throw new StanzaFailure('not-allowed', 'This command session has timed out', commandError('session-expired'));
    }
    if (action === 'cancel' || x?.attrs.type === 'cancel') {
      await this.#sessions.end(session);
      return xml('command', { xmlns: NS.commands, node, sessionid: session.id, status: 'canceled' });
    }
    // XEP-0050 §3.4: "execute" (or no action) means the stage's default action.
    const effective: StageAction = action === 'execute' ? session.actions.execute : (action as StageAction);
    if (!session.actions.allowed.includes(effective)) {
      throw new StanzaFailure('bad-request', `Action ${effective} is not allowed at this stage`, commandError('bad-action'));
    }
    if (!def.next) throw new StanzaFailure('bad-request', 'This command has no further stage', commandError('bad-action'));
    const form = SubmittedForm.parse(x, new Map(session.offered));
    const step = await def.next(req, { action: effective, form, state: session.state });
    return this.#respond(def, req, session.id, step, true);
  }

  /** `opened`: the session was saved at an earlier stage. */
  async #respond(def: CommandDef, req: Requester, id: string, step: Step, opened: boolean): Promise<Element> {
    const reply = xml('command', { xmlns: NS.commands, node: def.node, sessionid: id, status: step.status });
    if (step.status === 'executing') {
      const offered = [...offeredOptions(step.form)].map(([name, options]): [string, OfferedOption[]] => [name, [...options]]);
      await this.#sessions.save({ id, node: def.node, owner: req.full, bare: req.bare, state: step.state, actions: step.actions, expiresAt: this.#now() + this.#ttl, offered });
      reply.append(
        xml('actions', { execute: step.actions.execute }, ...step.actions.allowed.map((a) => xml(a))),
      );
    } else if (opened) {
      await this.#sessions.end({ id, node: def.node, owner: req.full, bare: req.bare });
    }
    for (const note of step.notes ?? []) reply.append(xml('note', { type: note.type }, note.text));
    if (step.form) reply.append(step.form);
    return reply;
  }

  #newId(): string {
    // 128 bits: unguessable, so a session cannot be taken over even by its bound JID's neighbours.
    return secureRandomBytes(16).toString('base64url');
  }

  /**
   * The id of a session that ends at its first stage: random, then its MAC with the owner and the
   * command. Storing such ids (to answer `session-expired` later) cost a row, a delete beyond the
   * cap and their index updates in every New Invite's transaction; this costs one HMAC.
   */
  #oneStageId(req: Requester, node: string): string {
    const random = secureRandomBytes(12).toString('base64url');
    return random + this.#oneStageMac(random, req, node);
  }

  /** Whether `id` is a one-stage id given to this requester (full JID) for this command. */
  #isOneStage(id: string, req: Requester, node: string): boolean {
    if (!ONE_STAGE_ID.test(id)) return false;
    const given = Buffer.from(id.slice(ONE_STAGE_HALF));
    const expected = Buffer.from(this.#oneStageMac(id.slice(0, ONE_STAGE_HALF), req, node));
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  #oneStageMac(random: string, req: Requester, node: string): string {
    return this.#mac(`${random}\0${req.full}\0${node}`).subarray(0, 12).toString('base64url');
  }
}
