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
 * References: https://xmpp.org/extensions/xep-0133.html §4.1 (add-user), §4.19 (user-stats)
 */
import { ProvisionUnclear, type CreateOutcome, type Provisioner } from '../domain/registration';
import { dataForm } from '../xmpp/forms';
import { NS } from '../xmpp/ns';
import { xml, type Element } from '../xmpp/xml';

export type IqRequester = (iq: Element, timeoutMs?: number) => Promise<Element>;

/** An IQ error from the server: a definite answer (unlike a timeout). */
export interface IqErrorLike {
  condition: string;
  text?: string;
}

function isIqError(err: unknown): err is IqErrorLike & Error {
  return err instanceof Error && typeof (err as unknown as IqErrorLike).condition === 'string';
}

const ADD_USER = `${NS.adminCommands}#add-user`;
const USER_STATS = `${NS.adminCommands}#user-stats`;
const ALREADY_EXISTS = /already exists/i;
const DOES_NOT_EXIST = /does not exist|not found|no such user/i;

export class Xep0133Provisioner implements Provisioner {
  readonly name = 'xep-0133';

  constructor(
    private readonly request: IqRequester,
    private readonly host: string,
    private readonly timeoutMs = 30_000,
  ) {}

  async createAccount(username: string, password: string): Promise<CreateOutcome> {
    const form = dataForm({
      type: 'form',
      formType: NS.adminCommands,
      fields: [
        { var: 'accountjid', value: `${username}@${this.host}` },
        { var: 'password', value: password },
        { var: 'password-verify', value: password },
      ],
    });
    form.attrs.type = 'submit';
    let reply: Element;
    try {
      reply = await this.#command(ADD_USER, form);
    } catch (err) {
      if (isIqError(err)) {
        if (err.condition === 'conflict') return { kind: 'conflict' };
        return { kind: 'refused', reason: err.text ? `${err.condition}: ${err.text}` : err.condition };
      }
      throw new ProvisionUnclear(`add-user: ${(err as Error).message}`);
    }
    const error = errorNote(reply);
    if (error === undefined) return { kind: 'created' };
    if (ALREADY_EXISTS.test(error)) return { kind: 'conflict' };
    return { kind: 'refused', reason: error };
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
    if (error === undefined) return true;
    if (DOES_NOT_EXIST.test(error)) return false;
    throw new ProvisionUnclear(`user-stats: ${error}`);
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
