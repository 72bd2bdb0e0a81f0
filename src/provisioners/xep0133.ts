/**
 * Accounts created with XEP-0133 service administration commands sent from the component to
 * `host`: `add-user` to create, `user-stats` to ask whether an account exists. The component must
 * be an admin of that host (Prosody: listed in the VirtualHost's `admins`; ejabberd: ACL + the
 * `configure` access rule).
 *
 * Reply shapes differ (checked on Prosody 0.12 and ejabberd 23.01):
 * - Prosody answers every outcome with a completed command; failures carry `<note type='error'>`:
 *   "Account already exists", "Failed to write data to disk", "Invalid data…", "User does not exist".
 * - ejabberd answers success with a completed command without a note, and a duplicate with the IQ
 *   error `conflict`.
 * Only "Account already exists" and `conflict` mean the username is taken.
 *
 * Whether an account exists: Prosody's `user-stats` answers "User does not exist" for a missing
 * account. ejabberd 23.01's `user-stats` does not look the account up at all: it answers a missing
 * account with the same completed form (roster size 0, no resources) as an existing one. So a
 * `user-stats` without an error note is confirmed with ejabberd's own list of the host's users
 * (mod_configure's disco#items node `all users`, which it shows to the same admins); a server
 * without that node (Prosody answers `item-not-found`) is taken at its `user-stats` word.
 *
 * References: https://xmpp.org/extensions/xep-0133.html §4.1 (add-user), §4.7 (change-user-password), §4.19 (user-stats)
 */
import { ProvisionUnclear, type CreateOutcome, type Provisioner } from '../domain/registration';
import type { SetPasswordOutcome } from '../domain/resets';
import { dataForm } from '../xmpp/forms';
import { NS } from '../xmpp/ns';
import { xml, type Element } from '../xmpp/xml';
import { isIqError, wasNotSent } from './iq-error';

export type IqRequester = (iq: Element, timeoutMs?: number) => Promise<Element>;

/** What the provisioners that speak XMPP to the server need. */
export interface IqProvisionerDeps {
  /** sends an IQ to the server and resolves with its result */
  request: IqRequester;
  /** the VirtualHost the accounts are made on */
  host: string;
  /** how long to wait for an answer (default 30 s) */
  timeoutMs?: number;
}



const ADD_USER = `${NS.adminCommands}#add-user`;
const USER_STATS = `${NS.adminCommands}#user-stats`;
const CHANGE_PASSWORD = `${NS.adminCommands}#change-user-password`;
const ALREADY_EXISTS = /already exists/i;

/** What a submitted command came to (`reason`: for the event log and the person). */
type Submitted =
  | { kind: 'done' }
  | { kind: 'iq-error'; condition: string; reason: string }
  | { kind: 'note'; reason: string }
  | { kind: 'not-sent'; reason: string };
const DOES_NOT_EXIST = /does not exist|not found|no such user/i;
/** ejabberd's (mod_configure) disco node listing the host's users. */
const ALL_USERS = 'all users';
/** Answers of a server that has no such node. */
const NO_USER_LIST = new Set(['item-not-found', 'feature-not-implemented', 'service-unavailable']);

export class Xep0133Provisioner implements Provisioner {
  readonly name = 'xep-0133';

  private readonly request: IqRequester;
  private readonly host: string;
  private readonly timeoutMs: number;

  constructor(deps: IqProvisionerDeps) {
    this.request = deps.request;
    this.host = deps.host;
    this.timeoutMs = deps.timeoutMs ?? 30_000;
  }

  async createAccount(username: string, password: string): Promise<CreateOutcome> {
    const answer = await this.#submit(ADD_USER, 'add-user', [
      { var: 'accountjid', value: `${username}@${this.host}` },
      { var: 'password', value: password },
      { var: 'password-verify', value: password },
    ]);
    if (answer.kind === 'done') return { kind: 'created' };
    if (answer.kind === 'iq-error' ? answer.condition === 'conflict' : answer.kind === 'note' && ALREADY_EXISTS.test(answer.reason)) return { kind: 'conflict' };
    return { kind: 'refused', reason: answer.reason };
  }

  /**
   * XEP-0133 §4.7 change-user-password. Prosody answers a completed command, with an error note
   * "User does not exist" for a missing account; ejabberd answers an IQ error for a missing one.
   */
  async setPassword(username: string, password: string): Promise<SetPasswordOutcome> {
    const answer = await this.#submit(CHANGE_PASSWORD, 'change-user-password', [
      { var: 'accountjid', value: `${username}@${this.host}` },
      { var: 'password', value: password },
    ]);
    if (answer.kind === 'done') return { kind: 'done' };
    if (answer.kind === 'iq-error' ? answer.condition === 'item-not-found' : answer.kind === 'note' && DOES_NOT_EXIST.test(answer.reason)) return { kind: 'no-account' };
    return { kind: 'refused', reason: answer.reason };
  }

  /**
   * Submits the form of command `node` at once. A request that never left, an IQ error and an
   * error note are answers (the server said no, or was never asked); no answer within the time, or
   * an answer that cannot be read, is unclear (thrown as ProvisionUnclear, named `name`).
   */
  async #submit(node: string, name: string, fields: { var: string; value: string }[]): Promise<Submitted> {
    const form = dataForm({ type: 'form', formType: NS.adminCommands, fields });
    form.attrs.type = 'submit';
    let reply: Element;
    try {
      reply = await this.#command(node, form);
    } catch (err) {
      if (wasNotSent(err)) return { kind: 'not-sent', reason: err.message };
      if (isIqError(err)) return { kind: 'iq-error', condition: err.condition, reason: err.text ? `${err.condition}: ${err.text}` : err.condition };
      throw new ProvisionUnclear(`${name}: ${(err as Error).message}`);
    }
    const error = errorNote(reply);
    return error === undefined ? { kind: 'done' } : { kind: 'note', reason: error };
  }

  async accountExists(username: string): Promise<boolean> {
    const form = dataForm({ type: 'form', formType: NS.adminCommands, fields: [{ var: 'accountjid', value: `${username}@${this.host}` }] });
    form.attrs.type = 'submit';
    let reply: Element;
    try {
      reply = await this.#command(USER_STATS, form);
    } catch (err) {
      if (isIqError(err) && err.condition === 'item-not-found') return false;
      throw new ProvisionUnclear(`user-stats: ${(err as Error).message}`);
    }
    const error = errorNote(reply);
    if (error !== undefined) {
      if (DOES_NOT_EXIST.test(error)) return false;
      throw new ProvisionUnclear(`user-stats: ${error}`);
    }
    return (await this.#inUserList(username)) ?? true;
  }

  /**
   * Is the account in ejabberd's `all users` list? undefined when the server has no such list.
   *
   * ejabberd lists up to 100 users as items (`jid`); above that it lists ranges of the sorted list
   * (node `all users/@FROM-TO`, name `first@host -- last@host`), each a node of its own. Users
   * are sorted by localpart, byte by byte. The top list is one snapshot, so a username that no
   * range brackets does not exist; a range is fetched in a second request, and an absence there
   * counts only when the fetched items still bracket the username (registrations in between shift
   * the positions): otherwise the lookup starts again.
   */
  async #inUserList(username: string): Promise<boolean | undefined> {
    const target = Buffer.from(username, 'utf8');
    const isTarget = (jid: string | undefined) => {
      const user = splitJid(jid);
      return !!user && user.domain === this.host.toLowerCase() && user.local.equals(target);
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      let top: Element[];
      try {
        top = await this.#items(ALL_USERS);
      } catch (err) {
        if (isIqError(err) && NO_USER_LIST.has(err.condition)) return undefined;
        throw new ProvisionUnclear(`${ALL_USERS}: ${(err as Error).message}`);
      }
      const ranges = top.filter((i) => i.attrs.node?.startsWith(`${ALL_USERS}/`));
      if (ranges.length === 0) return top.some((i) => isTarget(i.attrs.jid));
      const range = ranges.find((r) => {
        const [first, last] = String(r.attrs.name ?? '').split(' -- ').map(splitJid);
        return !!first && !!last && Buffer.compare(first.local, target) <= 0 && Buffer.compare(target, last.local) <= 0;
      });
      if (!range) return false;
      let items: Element[];
      try {
        items = await this.#items(range.attrs.node!);
      } catch (err) {
        throw new ProvisionUnclear(`${range.attrs.node}: ${(err as Error).message}`);
      }
      if (items.some((i) => isTarget(i.attrs.jid))) return true;
      const locals = items.map((i) => splitJid(i.attrs.jid)?.local).filter((l): l is Buffer => !!l);
      if (locals.length > 0 && Buffer.compare(locals[0], target) < 0 && Buffer.compare(target, locals[locals.length - 1]) < 0) return false;
    }
    throw new ProvisionUnclear(`${ALL_USERS}: the list kept changing`);
  }

  async #items(node: string): Promise<Element[]> {
    const reply = await this.request(xml('iq', { type: 'get', to: this.host }, xml('query', { xmlns: NS.discoItems, node })), this.timeoutMs);
    const query = reply.getChild('query', NS.discoItems);
    if (!query) throw new ProvisionUnclear(`${node}: malformed answer`);
    return query.getChildren('item');
  }

  /**
   * One-shot execution with the form and action `complete`; a server that insists on stages
   * (answers `executing`) gets the form again in its session.
   */
  async #command(node: string, form: Element): Promise<Element> {
    const send = (attrs: Record<string, string>) =>
      this.request(
        xml('iq', { type: 'set', to: this.host }, xml('command', { xmlns: NS.commands, node, action: 'complete', ...attrs }, form)),
        this.timeoutMs,
      );
    let reply = await send({});
    let command = reply.getChild('command', NS.commands);
    if (command?.attrs.status === 'executing' && command.attrs.sessionid) {
      reply = await send({ sessionid: command.attrs.sessionid });
      command = reply.getChild('command', NS.commands);
    }
    if (command?.attrs.status !== 'completed') throw new ProvisionUnclear(`${node}: unexpected reply`);
    return command;
  }
}

/** The text of the first error note of a completed command, if any. */
function errorNote(command: Element): string | undefined {
  const note = command.getChildren('note').find((n) => n.attrs.type === 'error');
  return note ? note.text().trim() : undefined;
}

/** `local@domain` → the localpart as UTF-8 bytes (how ejabberd sorts) and the lower-cased domain. */
function splitJid(jid: string | undefined): { local: Buffer; domain: string } | undefined {
  if (!jid) return undefined;
  const at = jid.indexOf('@');
  if (at <= 0) return undefined;
  const slash = jid.indexOf('/', at);
  return { local: Buffer.from(jid.slice(0, at), 'utf8'), domain: jid.slice(at + 1, slash < 0 ? undefined : slash).toLowerCase() };
}
