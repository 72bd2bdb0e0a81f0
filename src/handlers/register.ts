/**
 * Registration at the component JID: XEP-0077 in-band registration after an optional XEP-0445
 * preauth, for users of `registration.requester_domains` (an anonymous VirtualHost: unauthenticated
 * clients cannot reach a component). The account is created on `host` through the provisioner.
 *
 * References: https://xmpp.org/extensions/xep-0077.html §3.1, https://xmpp.org/extensions/xep-0445.html §3
 */
import type { Config } from '../config';
import { parseBareJid } from '../domain/jid';
import { INVITE_ONLY, type Registration } from '../domain/registration';
import { trimSpace } from '../domain/text';
import { passwordRule, USERNAME_RULE } from '../domain/usernames';
import { dataForm, SubmittedForm } from '../xmpp/forms';
import { NS } from '../xmpp/ns';
import type { Router, StanzaContext } from '../xmpp/router';
import { StanzaFailure } from '../xmpp/stanza-errors';
import { xml, type Element } from '../xmpp/xml';

/** How long a successful preauth stays with the requester's session. */
const PREAUTH_TTL_MS = 30 * 60_000;
const MAX_PREAUTHS = 10_000;

export interface ComponentRegistrationDeps {
  config: Config;
  registration: Registration;
  clock?: () => number;
}

export class ComponentRegistration {
  /** full JID → token that passed preauth, and when */
  readonly #preauth = new Map<string, { token: string; at: number }>();
  private readonly config: Config;
  private readonly registration: Registration;
  private readonly now: () => number;

  constructor(deps: ComponentRegistrationDeps) {
    this.config = deps.config;
    this.registration = deps.registration;
    this.now = deps.clock ?? Date.now;
  }

  register(router: Router): void {
    router.iq('set', 'preauth', NS.pars, (ctx, el) => this.preauth(ctx, el));
    router.iq('get', 'query', NS.register, (ctx) => this.form(ctx));
    router.iq('set', 'query', NS.register, (ctx, query) => this.submit(ctx, query));
  }

  /** Advertised only to those who may register here, so that no client offers others a Register button that ends in a refusal. */
  features(bare: string): string[] {
    return this.mayRegister(bare) ? [NS.register, NS.pars] : [];
  }

  /** Registration at the component is for users of `registration.requester_domains` (in either mode). */
  mayRegister(bare: string): boolean {
    const jid = parseBareJid(bare);
    return jid !== undefined && this.config.registration.requesterDomains.includes(jid.domain);
  }

  #requireRequester(ctx: StanzaContext): void {
    if (!this.mayRegister(ctx.requester.bare)) {
      throw new StanzaFailure('forbidden', 'Registration here is only for the sign-up domains of this server');
    }
  }

  /** XEP-0445 §3: "the server MUST check the token … If the token is invalid, item-not-found". */
  preauth(ctx: StanzaContext, el: Element): true {
    this.#requireRequester(ctx);
    const token = el.attrs.token;
    if (!token) throw new StanzaFailure('bad-request', 'The preauth element carries a token attribute');
    this.registration.usableInvite(token);
    if (this.#preauth.size >= MAX_PREAUTHS) this.#preauth.delete(this.#preauth.keys().next().value as string);
    this.#preauth.set(ctx.from, { token, at: this.now() });
    return true;
  }

  form(ctx: StanzaContext): Element {
    this.#requireRequester(ctx);
    const preauthed = this.#currentPreauth(ctx.from) !== undefined;
    const instructions = `Choose a username and a password for your account on ${this.config.host}.` +
      (preauthed || this.config.registration.mode === 'open' ? '' : ' Registration is by invitation: give the token of your invite.');
    return xml(
      'query',
      { xmlns: NS.register },
      xml('instructions', {}, instructions),
      xml('username'),
      xml('password'),
      dataForm({
        type: 'form',
        title: `Create an account on ${this.config.host}`,
        // The rules as lines of their own: some clients show field descriptions only on hover.
        instructions: [instructions, `${USERNAME_RULE}.`, `${passwordRule(this.config.registration.minPasswordLength)}.`],
        formType: NS.register,
        fields: [
          { var: 'username', type: 'text-single', label: 'Username', desc: USERNAME_RULE, required: true },
          { var: 'password', type: 'text-private', label: 'Password', desc: passwordRule(this.config.registration.minPasswordLength), required: true },
          ...(preauthed ? [] : [{ var: 'token', type: 'text-single' as const, label: 'Invite token', required: this.config.registration.mode !== 'open' }]),
        ],
      }),
    );
  }

  async submit(ctx: StanzaContext, query: Element): Promise<true> {
    this.#requireRequester(ctx);
    if (query.getChild('remove')) throw new StanzaFailure('not-allowed', 'Accounts are not removed here');
    const form = SubmittedForm.parse(query.getChild('x', NS.dataForms));
    // Identifiers as sent (less the space around them): never cleaned into another username or token.
    const username = form ? form.value('username') : trimSpace(query.getChildText('username') ?? '') || undefined;
    const password = form ? form.secret('password') : (query.getChildText('password') ?? undefined);
    if (!username || password === undefined || password === '') {
      throw new StanzaFailure('bad-request', 'A registration carries a username and a password');
    }
    const preauth = this.#currentPreauth(ctx.from);
    const given = form ? form.value('token') : trimSpace(query.getChildText('token') ?? '') || undefined;
    const token = given || preauth?.token;
    if (!token && this.config.registration.mode !== 'open') throw new StanzaFailure('not-acceptable', INVITE_ONLY);
    const { jid } = await this.registration.register({
      token: token || undefined,
      username,
      password,
      door: 'component',
      requester: ctx.from,
      preauthed: token !== undefined && token === preauth?.token,
    });
    this.#preauth.delete(ctx.from);
    ctx.logger.info({ jid }, 'account created at the component');
    return true;
  }

  #currentPreauth(from: string): { token: string; at: number } | undefined {
    const p = this.#preauth.get(from);
    if (p && this.now() - p.at > PREAUTH_TTL_MS) {
      this.#preauth.delete(from);
      return undefined;
    }
    return p;
  }
}
