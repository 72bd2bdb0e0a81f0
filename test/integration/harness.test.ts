/** The test harness itself: a real Prosody, real client sessions, a component connection. */
import { TestProsody, randomSecret } from '../support/prosody';
import { TestClient, xml, errorCondition } from '../support/client';
import { ensureProsody, prosodyInstalled } from '../../scripts/ensure-prosody';

const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';

describe('test harness', () => {
  let prosody: TestProsody;
  const clients: TestClient[] = [];
  const secret = randomSecret();

  async function login(opts: Parameters<typeof TestClient.connect>[0]): Promise<TestClient> {
    const c = await TestClient.connect(opts);
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    prosody = await TestProsody.start({
      components: [{ domain: 'invites.localhost', secret }],
      hostAdmins: ['invites.localhost'],
      anonymousHost: 'anon.localhost',
    });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });

  afterAll(async () => {
    await prosody?.stop();
  });

  test('ensureProsody is a no-op when Prosody is installed', async () => {
    expect(prosodyInstalled()).toBe(true);
    const said: string[] = [];
    await ensureProsody((s) => said.push(s));
    expect(said).toEqual([]);
  });

  test('starts on its own loopback ports and directory', () => {
    expect(prosody.pid).toBeGreaterThan(0);
    const { c2s, component, http } = prosody.ports;
    expect(new Set([c2s, component, http]).size).toBe(3);
    expect(prosody.componentUrl()).toBe(`xmpp://127.0.0.1:${component}`);
    expect(prosody.dir).toContain('.tmp');
  });

  test('registers a user, logs in with PLAIN, disco#info on the server', async () => {
    expect(await prosody.userExists('alice')).toBe(false);
    await prosody.register('alice', 'alice-password');
    expect(await prosody.userExists('alice')).toBe(true);
    expect(await prosody.userExists('alice@localhost')).toBe(true);

    const alice = await login({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password', resource: 'test' });
    expect(alice.jid).toBe('alice@localhost/test');

    const reply = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
    expect(reply.attrs.type).toBe('result');
    const features = reply.getChild('query', NS_DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
    expect(features).toContain(NS_DISCO_INFO);
    expect(features).toContain('http://jabber.org/protocol/commands');
  });

  test('a wrong password fails to log in', async () => {
    await prosody.register('bob', 'bob-password');
    await expect(
      TestClient.connect({ port: prosody.ports.c2s, domain: 'localhost', username: 'bob', password: 'nope' }),
    ).rejects.toThrow(/not-authorized/);
  });

  test('iq() resolves with error replies instead of throwing', async () => {
    await prosody.register('carol', 'carol-password');
    const carol = await login({ port: prosody.ports.c2s, domain: 'localhost', username: 'carol', password: 'carol-password' });
    // nothing listens at the component yet: Prosody bounces the IQ
    const reply = await carol.iq(xml('iq', { type: 'get', to: 'invites.localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
    expect(reply.attrs.type).toBe('error');
    expect(errorCondition(reply)).toBeDefined();
  });

  test('logs in anonymously on the anonymous host', async () => {
    const anon = await login({ port: prosody.ports.c2s, domain: 'anon.localhost', anonymous: true });
    expect(anon.jid).toMatch(/^[^@]+@anon\.localhost\/.+/);
    const reply = await anon.iq(xml('iq', { type: 'get', to: 'anon.localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
    expect(reply.attrs.type).toBe('result');
  });

  test('a component connects with the secret; clients reach it; unhandled client IQs get errors', async () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { component } = require('@xmpp/component');
    const comp = component({ service: prosody.componentUrl(), domain: 'invites.localhost', password: secret });
    comp.on('error', () => undefined);
    const seen: any[] = [];
    comp.on('stanza', (s: any) => seen.push(s));
    try {
      await comp.start();
      await prosody.register('dave', 'dave-password');
      const dave = await login({ port: prosody.ports.c2s, domain: 'localhost', username: 'dave', password: 'dave-password', resource: 'r1' });

      // client → component: @xmpp/component's own iq callee answers an unknown query
      const reply = await dave.iq(xml('iq', { type: 'get', to: 'invites.localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
      expect(['result', 'error']).toContain(reply.attrs.type);
      expect(seen.some((s) => s.attrs.from === 'dave@localhost/r1')).toBe(true);

      // component → client: a message to the bare JID reaches the session (initial presence sent)
      await comp.send(xml('message', { to: 'dave@localhost', from: 'invites.localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'hello')));
      const msg = await dave.waitFor((s) => s.name === 'message' && s.getChildText('body') === 'hello');
      expect(msg.attrs.from).toBe('invites.localhost');

      // component → client IQ that nobody handles: the library answers with an error
      const iqReply = await comp.iqCaller
        .request(xml('iq', { type: 'get', to: dave.jid, from: 'invites.localhost' }, xml('query', { xmlns: 'urn:example:nothing' })), 5000)
        .then(() => 'result', (err: any) => err.condition ?? err.message);
      expect(iqReply).toBe('service-unavailable');

      // waitFor also finds stanzas that arrived before it was called
      await comp.send(xml('message', { to: dave.jid, from: 'invites.localhost', id: 'm2' }, xml('body', {}, 'early')));
      await new Promise((r) => setTimeout(r, 300));
      const early = await dave.waitFor((s) => s.getChildText('body') === 'early', 100);
      expect(early.attrs.id).toBe('m2');
      await expect(dave.waitFor((s) => s.getChildText('body') === 'early', 200)).rejects.toThrow(/nothing matched/);
    } finally {
      await comp.stop().catch(() => undefined);
    }
  });

  test('pause and resume', async () => {
    await prosody.register('erin', 'erin-password');
    const erin = await login({ port: prosody.ports.c2s, domain: 'localhost', username: 'erin', password: 'erin-password' });
    prosody.pause();
    try {
      await expect(
        erin.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_INFO })), 500),
      ).rejects.toThrow(/no reply/);
    } finally {
      prosody.resume();
    }
    const reply = await erin.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
    expect(reply.attrs.type).toBe('result');
  });

  test('restart keeps ports and accounts', async () => {
    const before = { ...prosody.ports };
    const oldPid = prosody.pid;
    await prosody.restart();
    expect(prosody.ports).toEqual(before);
    expect(prosody.pid).not.toBe(oldPid);
    const alice = await login({ port: prosody.ports.c2s, domain: 'localhost', username: 'alice', password: 'alice-password' });
    const reply = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
    expect(reply.attrs.type).toBe('result');
    expect(prosody.log()).toMatch(/Hello and welcome to Prosody/);
  });

  test('stop ends the process', async () => {
    const second = await TestProsody.start({});
    const pid = second.pid;
    expect(second.ports.c2s).not.toBe(prosody.ports.c2s);
    await second.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(second.pid).toBe(0);
  });
});
