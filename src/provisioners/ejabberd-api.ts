/**
 * Accounts created through ejabberd's mod_http_api: `register` (409 = the username is taken),
 * `check_account`, and `add_rosteritem` for the contact rule. Restrict the API to loopback and to
 * these three commands with `api_permissions` (see the README).
 *
 * References: https://docs.ejabberd.im/developer/ejabberd-api/admin-api/
 */
import { ProvisionUnclear, type CreateOutcome, type Provisioner } from '../domain/registration';

export class EjabberdApiProvisioner implements Provisioner {
  readonly name = 'ejabberd-api';
  readonly #base: string;
  readonly #auth: string | undefined;

  constructor(
    url: string,
    private readonly host: string,
    private readonly timeoutMs = 30_000,
  ) {
    const u = new URL(url);
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
    // check_account is a rescode command: 0 when the account exists, 1 when it does not.
    if (res.status === 200) return res.body.trim() === '0';
    if (res.status === 404) return false;
    throw new ProvisionUnclear(`check_account: HTTP ${res.status}`);
  }

  async linkContacts(a: string, b: string): Promise<void> {
    for (const [owner, contact] of [
      [a, b],
      [b, a],
    ]) {
      const [localuser, localhost] = owner.split('@');
      const [user, host] = contact.split('@');
      const res = await this.#call('add_rosteritem', { localuser, localhost, user, host, nick: '', group: '', subs: 'both' });
      if (res.status !== 200) throw new Error(`add_rosteritem: HTTP ${res.status}`);
    }
  }

  async #call(command: string, body: Record<string, string>): Promise<{ status: number; body: string }> {
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
