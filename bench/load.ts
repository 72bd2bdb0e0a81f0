/**
 * The client side of the benchmarks: real c2s sessions (@xmpp/client 0.13.1, through the test
 * harness's TestClient) that keep a fixed number of commands in flight each, pipelined on their
 * stream, and check every answer.
 */
import { TestClient, xml, NS_COMMANDS, NS_DATA, errorCondition, errorText, type XmlElement } from '../test/support/client';
import { closedLoop, type RoundResult } from './support';

export const NEW_INVITE = 'urn:xmpp:invite#invite';

export async function connectUsers(port: number, domain: string, users: { username: string; password: string }[]): Promise<TestClient[]> {
  return Promise.all(users.map((u) => TestClient.connect({ port, domain, username: u.username, password: u.password, presence: false, timeoutMs: 30_000 })));
}

export async function connectAnonymous(port: number, domain: string, n: number): Promise<TestClient[]> {
  return Promise.all(Array.from({ length: n }, () => TestClient.connect({ port, domain, anonymous: true, presence: false, timeoutMs: 30_000 })));
}

export async function stopAll(clients: TestClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.stop()));
}

/** undefined when the reply is a completed XEP-0401 result with an xmpp: `uri`; else what is wrong. */
export function checkInviteReply(reply: XmlElement): string | undefined {
  if (reply.attrs.type !== 'result') return `error ${errorCondition(reply) ?? '?'}: ${errorText(reply) ?? ''}`;
  const command = reply.getChild('command', NS_COMMANDS);
  if (command?.attrs.status !== 'completed') return `command status ${command?.attrs.status}`;
  const uri = command
    .getChild('x', NS_DATA)
    ?.getChildren('field')
    .find((f) => f.attrs.var === 'uri')
    ?.getChildText('value');
  if (!uri?.startsWith('xmpp:')) {
    const note = command.getChildren('note').map((n) => n.getText()).join('; ');
    return `no xmpp: uri in the result${note ? ` (${note})` : ''}`;
  }
  return undefined;
}

/** TestClient keeps every stanza it receives (for tests): forget them between rounds. */
async function forgetting<T>(clients: TestClient[], work: Promise<T>): Promise<T> {
  try {
    return await work;
  } finally {
    for (const c of clients) c.received.length = 0;
  }
}

/** "New Invite" from every session with `inFlight` commands outstanding on each. */
export function inviteRound(clients: TestClient[], to: string, inFlight: number, warmupMs: number, measureMs: number): Promise<RoundResult> {
  return forgetting(clients, closedLoop(clients.length * inFlight, warmupMs, measureMs, async (w) => {
    const client = clients[w % clients.length];
    const reply = await client.iq(xml('iq', { type: 'set', to }, xml('command', { xmlns: NS_COMMANDS, node: NEW_INVITE, action: 'execute' })), 60_000);
    return checkInviteReply(reply);
  }));
}

const REGISTER = 'jabber:iq:register';

/**
 * XEP-0077 registration at the component from anonymous sessions, one pre-made account invite per
 * account. The token travels in the registration itself (the service accepts it beside username
 * and password), so that one session can have several registrations in flight; a preauth is
 * bound to the session and would allow one at a time.
 */
export function registrationRound(
  clients: TestClient[],
  to: string,
  inFlight: number,
  warmupMs: number,
  measureMs: number,
  next: () => { username: string; token: string },
  password: string,
): Promise<RoundResult> {
  return forgetting(clients, closedLoop(clients.length * inFlight, warmupMs, measureMs, async (w) => {
    const client = clients[w % clients.length];
    const { username, token } = next();
    const reply = await client.iq(
      xml('iq', { type: 'set', to }, xml('query', { xmlns: REGISTER }, xml('username', {}, username), xml('password', {}, password), xml('token', {}, token))),
      60_000,
    );
    return reply.attrs.type === 'result' ? undefined : `register: ${errorCondition(reply) ?? '?'} ${errorText(reply) ?? ''}`;
  }));
}
