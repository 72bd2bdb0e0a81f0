/**
 * The bridge's `settle` for a claim the component already released (its `done` came after the
 * claim lifetime): one use never makes two accounts. Against a real SQLite database, the real
 * Registration and BridgeHandler, and a fake server.
 */
import pino from 'pino';
import { Writable } from 'node:stream';
import type { Config } from '../../src/config';
import { InviteService } from '../../src/domain/invites';
import { Registration, type CreateOutcome, type Provisioner } from '../../src/domain/registration';
import { OPERATOR } from '../../src/domain/types';
import { BridgeHandler } from '../../src/handlers/bridge';
import { statsCommand } from '../../src/handlers/commands/stats';
import type { Services } from '../../src/handlers/services';
import { openTestStore } from '../support/engine';
import { SqliteClaimStore } from '../../src/store/claims-repo';
import { SqliteInviteStore } from '../../src/store/invites-repo';
import type { AdhocCommands } from '../../src/xmpp/adhoc';
import type { StanzaContext } from '../../src/xmpp/router';
import { requesterOf } from '../../src/xmpp/requester';
import { xml } from '../../src/xmpp/xml';

const DAY = 86_400_000;

class FakeServer implements Provisioner {
  readonly name = 'fake';
  accounts = new Set<string>();
  async createAccount(username: string): Promise<CreateOutcome> {
    this.accounts.add(username);
    return { kind: 'created' };
  }
  async accountExists(username: string): Promise<boolean> {
    return this.accounts.has(username);
  }
}

function setup() {
  const db = openTestStore();
  const invites = new InviteService({
    store: new SqliteInviteStore(db),
    policy: { host: 'example.com', publicUrl: 'https://x', serverBridge: true, expiry: 7 * DAY, approval: 'non-admins', allowUserInvites: true, maxUses: 1, admins: [] },
    tokenKey: 'k'.repeat(40),
  });
  const server = new FakeServer();
  const registration = new Registration({
    claims: new SqliteClaimStore(db),
    invites,
    provisioner: server,
    policy: { host: 'example.com', mode: 'invite-only', minPasswordLength: 8 },
    events: { joined: () => undefined },
  });
  const bridge = new BridgeHandler({
    config: { host: 'example.com' } as Config,
    invites,
    registration,
    adhoc: {} as AdhocCommands,
    redeemedBy: (id) => registration.redeemedUsernames(id),
  });
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  const ctx = {
    from: 'example.com',
    requester: requesterOf('example.com', { host: 'example.com', admins: [] }),
    to: 'invites.example.com',
    logger,
  } as StanzaContext;
  const claimAtServer = async (token: string, username: string) => {
    const reply = await bridge.claim(ctx, xml('claim', { xmlns: 'urn:xmpp-invites:bridge:0', version: '0', token, username }));
    return reply.attrs.id as string;
  };
  const settle = (claim: string, outcome: string) => bridge.settle(ctx, xml('settle', { xmlns: 'urn:xmpp-invites:bridge:0', version: '0', claim, outcome }));
  return { invites, registration, server, bridge, lines, claimAtServer, settle };
}


describe('a late done from the bridge', () => {
  it('answers a claim for an existing account with conflict, claiming nothing', async () => {
    const { invites, server, claimAtServer } = setup();
    const { invite, links } = invites.create(OPERATOR, { kind: 'account', source: 'cli' });
    server.accounts.add('victim');
    await expect(claimAtServer(links.token, 'victim')).rejects.toMatchObject({ code: 'conflict' });
    expect(invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
  });

  it('spends a released claim again when its use is still free, so no second account can use it', async () => {
    const { invites, registration, bridge, claimAtServer, settle, lines } = setup();
    const { invite, links } = invites.create(OPERATOR, { kind: 'account', source: 'cli' });
    const id = await claimAtServer(links.token, 'bob');
    // The claim lifetime passed with no account yet: reconciliation released it.
    await registration.reconcile(id);
    expect(invites.get(invite.id)).toMatchObject({ state: 'open', uses: 0, held: 0 });
    await settle(id, 'done');
    expect(invites.get(invite.id)).toMatchObject({ state: 'exhausted', uses: 1, held: 0 });
    expect(registration.redeemedUsernames(invite.id)).toEqual(['bob']);
    await expect(claimAtServer(links.token, 'carol')).rejects.toMatchObject({ code: 'invite-not-found' });
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(['A late settle spent a released claim again']);
    bridge.stop();
  });

  it('logs an error and counts the overrun in the statistics when the use went to someone else', async () => {
    const { invites, registration, bridge, claimAtServer, settle, lines } = setup();
    const { invite, links } = invites.create(OPERATOR, { kind: 'account', source: 'cli' });
    const id = await claimAtServer(links.token, 'bob');
    await registration.reconcile(id);
    // Meanwhile the freed use made carol's account.
    const carol = await claimAtServer(links.token, 'carol');
    await settle(carol, 'done');
    const before = JSON.stringify(invites.get(invite.id));
    await settle(id, 'done');
    // The bridge retries an unacknowledged settle: counted once.
    await settle(id, 'done');
    expect(JSON.stringify(invites.get(invite.id))).toBe(before);
    const errors = lines.filter((l) => l.level === 50).map((l) => l.msg);
    expect(errors).toEqual(['The server made an account for a released claim whose use went to another account: one use made two accounts']);
    expect(invites.stats().overruns).toBe(1);
    const result = await statsCommand({ invites } as unknown as Services).start!({} as never);
    const field = (result as { form: ReturnType<typeof xml> }).form.getChildren('field').find((f) => f.attrs.var === 'overruns');
    expect(field?.getChildText('value')).toBe('1');
    bridge.stop();
  });
});

describe('the statistics while a registration is not settled', () => {
  it('show the held claim and since when, on either engine (#stats answers, never a fault)', async () => {
    const { invites, bridge, claimAtServer } = setup();
    const { links } = invites.create(OPERATOR, { kind: 'account', source: 'cli' });
    const before = Date.now();
    await claimAtServer(links.token, 'bob');
    const held = invites.stats().heldClaims;
    expect(held).toEqual({ count: 1, oldestAt: expect.any(Number) });
    expect(held.oldestAt).toBeGreaterThanOrEqual(before - 1000);
    const result = await statsCommand({ invites } as unknown as Services).start!({} as never);
    const field = (result as { form: ReturnType<typeof xml> }).form.getChildren('field').find((f) => f.attrs.var === 'claims');
    expect(field?.getChildText('value')).toMatch(/^1 held, the oldest for \d+ s \(since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$/);
    bridge.stop();
  });
});
