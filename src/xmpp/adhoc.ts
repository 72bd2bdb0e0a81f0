/**
 * XEP-0050 ad-hoc commands. Commands are declared as data (`CommandDef`); this file renders the
 * protocol: sessions, actions, notes, errors, and the disco listing.
 *
 * References: https://xmpp.org/extensions/xep-0050.html §3.4 (actions), §4.4 (sessions),
 * §4.6 (errors).
 */
import { randomBytes } from 'node:crypto';
import { NS } from './ns';
import { offeredOptions, SubmittedForm, type OfferedOptions } from './forms';
import type { Requester } from './requester';
import { StanzaFailure } from './stanza-errors';
import { xml, type Element } from './xml';

export type StageAction = 'prev' | 'next' | 'complete';
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
      /** carried to the next stage of this session */
      state?: unknown;
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

interface Session {
  id: string;
  node: string;
  /** the full JID the session is bound to */
  owner: string;
  /** its bare JID: the unit of the per-user cap */
  bare: string;
  state: unknown;
  actions: { allowed: StageAction[]; execute: StageAction };
  expiresAt: number;
  /** the options of the form this stage sent, to read the answer against */
  offered: OfferedOptions;
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
  now?: () => number;
}

const commandError = (condition: 'bad-action' | 'bad-sessionid' | 'session-expired' | 'malformed-action' | 'bad-payload') =>
  xml(condition, { xmlns: NS.commands });

export class AdhocCommands {
  readonly #commands = new Map<string, CommandDef>();
  /** by id, in the order they were last touched (which is also the order they expire in) */
  readonly #sessions = new Map<string, Session>();
  /** session ids per bare JID, oldest first */
  readonly #byBare = new Map<string, Set<string>>();
  /** ids of finished, cancelled and timed-out sessions (bounded), for session-expired */
  readonly #ended = new Map<string, string>();
  /** the ended ids kept per bare JID, oldest first: one user's many cannot push out another's */
  readonly #endedByBare = new Map<string, Set<string>>();
  readonly #ttl: number;
  readonly #perJid: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(private readonly opts: AdhocOptions) {
    this.#ttl = opts.sessionTtlMs ?? 10 * 60_000;
    this.#perJid = opts.maxSessionsPerJid ?? 10;
    this.#max = opts.maxSessions ?? 10_000;
    this.#now = opts.now ?? Date.now;
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

  get openSessions(): number {
    return this.#sessions.size;
  }

  /** Handles `<command/>` in an IQ set and returns the `<command/>` of the result. */
  async execute(req: Requester, command: Element): Promise<Element> {
    this.#sweep();
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
      return this.#respond(def, req, this.#newId(), step);
    }

    const session = this.#sessions.get(sessionId);
    if (!session || session.owner !== req.full || session.node !== node) {
      // A session of someone else is as unknown to this requester as one that never existed.
      if (this.#ended.has(sessionId) && (!session || session.owner === req.full)) {
        throw new StanzaFailure('not-allowed', 'This command session has ended', commandError('session-expired'));
      }
      throw new StanzaFailure('bad-request', 'Unknown command session', commandError('bad-sessionid'));
    }
    if (session.expiresAt <= this.#now()) {
      this.#end(session.id);
      throw new StanzaFailure('not-allowed', 'This command session has timed out', commandError('session-expired'));
    }
    if (action === 'cancel' || x?.attrs.type === 'cancel') {
      this.#end(session.id);
      return xml('command', { xmlns: NS.commands, node, sessionid: session.id, status: 'canceled' });
    }
    // XEP-0050 §3.4: "execute" (or no action) means the stage's default action.
    const effective: StageAction = action === 'execute' ? session.actions.execute : (action as StageAction);
    if (!session.actions.allowed.includes(effective)) {
      throw new StanzaFailure('bad-request', `Action ${effective} is not allowed at this stage`, commandError('bad-action'));
    }
    if (!def.next) throw new StanzaFailure('bad-request', 'This command has no further stage', commandError('bad-action'));
    const form = SubmittedForm.parse(x, session.offered);
    const step = await def.next(req, { action: effective, form, state: session.state });
    return this.#respond(def, req, session.id, step);
  }

  #respond(def: CommandDef, req: Requester, id: string, step: Step): Element {
    const reply = xml('command', { xmlns: NS.commands, node: def.node, sessionid: id, status: step.status });
    if (step.status === 'executing') {
      const offered = offeredOptions(step.form);
      this.#store({ id, node: def.node, owner: req.full, bare: req.bare, state: step.state, actions: step.actions, expiresAt: this.#now() + this.#ttl, offered });
      reply.append(
        xml('actions', { execute: step.actions.execute }, ...step.actions.allowed.map((a) => xml(a))),
      );
    } else {
      this.#end(id, req.bare);
    }
    for (const note of step.notes ?? []) reply.append(xml('note', { type: note.type }, note.text));
    if (step.form) reply.append(step.form);
    return reply;
  }

  #store(session: Session): void {
    this.#drop(session.id);
    const mine = this.#byBare.get(session.bare);
    // Each user's sessions are capped on their own: one user's many resources evict only theirs.
    if (mine && mine.size >= this.#perJid) this.#end(mine.values().next().value as string);
    if (this.#sessions.size >= this.#max) this.#end(this.#victim(session.bare));
    this.#sessions.set(session.id, session);
    let set = this.#byBare.get(session.bare);
    if (!set) this.#byBare.set(session.bare, (set = new Set()));
    set.add(session.id);
  }

  /**
   * The session to drop when the table is full: the oldest of the bare JID that holds the most, so
   * that nobody can push out the sessions of someone holding fewer. Among equals, the one whose
   * sessions began last (the newcomers of a flood churn among themselves); the requester's own
   * first.
   */
  #victim(requester: string): string {
    const since = (set: Set<string>) => this.#sessions.get(set.values().next().value as string)!.expiresAt;
    let most = this.#byBare.get(requester);
    for (const set of this.#byBare.values()) {
      if (!most || set.size > most.size || (set.size === most.size && most !== this.#byBare.get(requester) && since(set) > since(most))) most = set;
    }
    return most!.values().next().value as string;
  }

  #drop(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    const set = this.#byBare.get(session.bare);
    set?.delete(id);
    if (set?.size === 0) this.#byBare.delete(session.bare);
  }

  /** Ends a session (open or not: a one-stage command ends at once); `bare` is its owner's. */
  #end(id: string, bare = this.#sessions.get(id)?.bare ?? ''): void {
    this.#drop(id);
    this.#ended.set(id, bare);
    let mine = this.#endedByBare.get(bare);
    if (!mine) this.#endedByBare.set(bare, (mine = new Set()));
    mine.add(id);
    // Each user remembers their own last ended sessions; the table as a whole stays bounded too.
    if (mine.size > this.#perJid * 10) this.#forget(mine.values().next().value as string);
    if (this.#ended.size > this.#max * 2) this.#forget(this.#ended.keys().next().value as string);
  }

  #forget(id: string): void {
    const bare = this.#ended.get(id);
    this.#ended.delete(id);
    if (bare === undefined) return;
    const set = this.#endedByBare.get(bare);
    set?.delete(id);
    if (set?.size === 0) this.#endedByBare.delete(bare);
  }

  #sweep(): void {
    const now = this.#now();
    // Oldest first: stop at the first that is still alive.
    for (const s of this.#sessions.values()) {
      if (s.expiresAt > now) break;
      this.#end(s.id);
    }
  }

  #newId(): string {
    // 128 bits: unguessable, so a session cannot be taken over even by its bound JID's neighbours.
    return randomBytes(16).toString('base64url');
  }
}
