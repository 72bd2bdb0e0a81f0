/**
 * The component's side of the bridge protocol towards the server (bridge/PROTOCOL.md):
 * `create-account`, `account-exists`, `link-contacts`. As a provisioner it lets the component create
 * accounts without admin rights on the server.
 */
import { ProvisionUnclear, type CreateOutcome, type Provisioner } from '../domain/registration';
import type { SetPasswordOutcome } from '../domain/resets';
import { NS } from '../xmpp/ns';
import { xml, type Element } from '../xmpp/xml';
import { isIqError, wasNotSent } from './iq-error';
import type { IqProvisionerDeps, IqRequester } from './xep0133';


export class ProsodyBridgeClient implements Provisioner {
  readonly name = 'prosody-bridge';

  private readonly request: IqRequester;
  private readonly host: string;
  private readonly timeoutMs: number;

  constructor(deps: IqProvisionerDeps) {
    this.request = deps.request;
    this.host = deps.host;
    this.timeoutMs = deps.timeoutMs ?? 30_000;
  }

  #iq(type: 'get' | 'set', name: string, attrs: Record<string, string>): Promise<Element> {
    return this.request(xml('iq', { type, to: this.host }, xml(name, { xmlns: NS.bridge, version: '0', ...attrs })), this.timeoutMs);
  }

  async createAccount(username: string, password: string): Promise<CreateOutcome> {
    try {
      await this.#iq('set', 'create-account', { username, password });
      return { kind: 'created' };
    } catch (err) {
      if (wasNotSent(err)) return { kind: 'refused', reason: err.message };
      if (!isIqError(err)) throw new ProvisionUnclear(`create-account: ${(err as Error).message}`);
      if (err.condition === 'conflict') return { kind: 'conflict' };
      // A server that cannot be reached answers with a wait-type error: whether the account was
      // made is unknown only when the request may have reached the module.
      if (err.condition === 'remote-server-timeout') throw new ProvisionUnclear('create-account: the server timed out');
      return { kind: 'refused', reason: err.text ? `${err.condition}: ${err.text}` : err.condition };
    }
  }

  async accountExists(username: string): Promise<boolean> {
    let reply: Element;
    try {
      reply = await this.#iq('get', 'account-exists', { username });
    } catch (err) {
      throw new ProvisionUnclear(`account-exists: ${(err as Error).message}`);
    }
    const exists = reply.getChild('account-exists', NS.bridge)?.attrs.exists;
    if (exists !== 'true' && exists !== 'false') throw new ProvisionUnclear('account-exists: malformed answer');
    return exists === 'true';
  }

  /** The bridge's `set-password`: item-not-found when the account does not exist. */
  async setPassword(username: string, password: string): Promise<SetPasswordOutcome> {
    try {
      await this.#iq('set', 'set-password', { username, password });
      return { kind: 'done' };
    } catch (err) {
      if (wasNotSent(err)) return { kind: 'refused', reason: err.message };
      if (!isIqError(err)) throw new ProvisionUnclear(`set-password: ${(err as Error).message}`);
      if (err.condition === 'item-not-found') return { kind: 'no-account' };
      if (err.condition === 'remote-server-timeout') throw new ProvisionUnclear('set-password: the server timed out');
      return { kind: 'refused', reason: err.text ? `${err.condition}: ${err.text}` : err.condition };
    }
  }

  async linkContacts(a: string, b: string): Promise<void> {
    await this.#iq('set', 'link-contacts', { a, b });
  }

  /** Whether the server advertises the bridge module (disco#info on the host). */
  async installed(): Promise<boolean> {
    const reply = await this.request(xml('iq', { type: 'get', to: this.host }, xml('query', { xmlns: NS.discoInfo })), this.timeoutMs);
    return (reply.getChild('query', NS.discoInfo)?.getChildren('feature') ?? []).some((f) => f.attrs.var === NS.bridge);
  }
}
