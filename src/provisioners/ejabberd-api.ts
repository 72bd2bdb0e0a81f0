/**
 * Accounts created through ejabberd's mod_http_api: `register` (409 = the username is taken),
 * `check_account`, and `add_rosteritem` for the contact rule. Restrict the API to loopback and to
 * these three commands with `api_permissions` (see the README).
 *
 * Answers of ejabberd 23.01 (checked): `register` → 200 and a message, 409 when the username is
 * taken, 500 with a JSON error for other refusals (e.g. a malformed username); `check_account` →
 * 200 with `0` (exists) or `1` (does not); `add_rosteritem` (arguments `group`, a string, in
 * 23.01; `groups`, a list, from 24.02 on; each answers the other form with 400) →
 * 200 with `0`, or `1` when it failed. A 404 means the URL is not mod_http_api
 * ("Endpoint not found"), 403 that api_permissions refuses the command, 400 bad arguments: none of
 * them says anything about the account.
 *
 * References: https://docs.ejabberd.im/developer/ejabberd-api/admin-api/
 */
import type { SetPasswordOutcome } from '../domain/resets';
import { ProvisionUnclear, type CreateOutcome, type Provisioner } from '../domain/registration';

/** add_rosteritem's group argument: `groups` from ejabberd 24.02 on, `group` before. */
const ROSTER_GROUP_ARGS = { groups: { groups: [] as string[] }, group: { group: '' } };

export interface EjabberdApiDeps {
  /** the API's base URL, credentials (Basic) in its user part */
  url: string;
  /** the VirtualHost the accounts are made on */
  host: string;
  /** how long to wait for an answer (default 30 s) */
  timeoutMs?: number;
}

export class EjabberdApiProvisioner implements Provisioner {
  readonly name = 'ejabberd-api';
  readonly #base: string;
  readonly #auth: string | undefined;
  /** Which form of add_rosteritem's group argument the server took last. */
  #rosterForm: keyof typeof ROSTER_GROUP_ARGS = 'groups';

  private readonly host: string;
  private readonly timeoutMs: number;

  constructor(deps: EjabberdApiDeps) {
    this.host = deps.host;
    this.timeoutMs = deps.timeoutMs ?? 30_000;
    const u = new URL(deps.url);
    this.#auth = u.username ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` : undefined;
    u.username = '';
    u.password = '';
    this.#base = u.toString().replace(/\/$/, '');
  }

  async createAccount(username: string, password: string): Promise<CreateOutcome> {
    const res = await this.#call('register', { user: username, host: this.host, password });
    if (res.status === 200) return { kind: 'created' };
    if (res.status === 409) return { kind: 'conflict' };
    if (res.status >= 400 && res.status < 500) return { kind: 'refused', reason: `HTTP ${res.status}: ${res.body.slice(0, 200)}` };
    // A 5xx may come after the account was written: unclear.
    throw new ProvisionUnclear(`register: HTTP ${res.status}`);
  }

  async accountExists(username: string): Promise<boolean> {
    const res = await this.#call('check_account', { user: username, host: this.host });
    // check_account is a rescode command: 0 when the account exists, 1 when it does not. Anything
    // else (a 404 from a wrong URL, a 403 from api_permissions, a proxy's page) is no answer.
    if (res.status === 200) {
      const code = res.body.trim();
      if (code === '0') return true;
      if (code === '1') return false;
    }
    throw new ProvisionUnclear(`check_account: HTTP ${res.status}: ${res.body.slice(0, 200)}`);
  }

  /** mod_http_api `change_password` (a rescode command: 0 done); checked with check_account first. */
  async setPassword(username: string, password: string): Promise<SetPasswordOutcome> {
    if (!(await this.accountExists(username))) return { kind: 'no-account' };
    const res = await this.#call('change_password', { user: username, host: this.host, newpass: password });
    if (res.status === 200 && res.body.trim() === '0') return { kind: 'done' };
    if (res.status >= 400 && res.status < 500) return { kind: 'refused', reason: `HTTP ${res.status}: ${res.body.slice(0, 200)}` };
    if (res.status === 200) return { kind: 'refused', reason: `change_password answered ${res.body.trim().slice(0, 50)}` };
    throw new ProvisionUnclear(`change_password: HTTP ${res.status}`);
  }

  async linkContacts(a: string, b: string): Promise<void> {
    for (const [owner, contact] of [
      [a, b],
      [b, a],
    ]) {
      const [localuser, localhost] = owner.split('@');
      const [user, host] = contact.split('@');
      const base = { localuser, localhost, user, host, nick: '', subs: 'both' };
      // ejabberd 24.02 replaced the argument `group` (a string) with `groups` (a list); each version
      // refuses the other form with 400 ("missing argument: group", "unknown arguments: [group]"):
      // try the form that worked last, then the other.
      let res = await this.#call('add_rosteritem', { ...base, ...ROSTER_GROUP_ARGS[this.#rosterForm] });
      if (res.status === 400 && /(missing|unknown) arguments?\b.*\bgroups?\b/i.test(res.body)) {
        this.#rosterForm = this.#rosterForm === 'groups' ? 'group' : 'groups';
        res = await this.#call('add_rosteritem', { ...base, ...ROSTER_GROUP_ARGS[this.#rosterForm] });
      }
      // A rescode command: HTTP 200 with 1 means it failed.
      if (res.status !== 200 || res.body.trim() !== '0') throw new Error(`add_rosteritem: HTTP ${res.status}: ${res.body.slice(0, 200)}`);
    }
  }

  async #call(command: string, body: Record<string, string | string[]>): Promise<{ status: number; body: string }> {
    try {
      const res = await fetch(`${this.#base}/${command}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.#auth ? { authorization: this.#auth } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      return { status: res.status, body: await res.text() };
    } catch (err) {
      throw new ProvisionUnclear(`${command}: ${(err as Error).message}`);
    }
  }
}
