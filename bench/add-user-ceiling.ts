/**
 * The ceiling of registration through XEP-0133: a bare component on @xmpp/component 0.13.1 that
 * sends `add-user` straight to the server (one-shot, action='complete', the same form the service's
 * provisioner sends), with the same number of commands in flight as the registering clients. The
 * server's own cost of creating an account (password hashing, storage) bounds every registration
 * that goes through it.
 *
 * A child of bench/run.ts: started with an IPC channel and arguments SERVICE DOMAIN SECRET HOST;
 * answers {ready: true} once online, then each {warmupMs, measureMs, concurrency, prefix, password}
 * with a RoundResult.
 */
import { component, xml } from '@xmpp/component';
import { closedLoop } from './support';

const [service, domain, password, host] = process.argv.slice(2);
const NS_COMMANDS = 'http://jabber.org/protocol/commands';
const ADD_USER = 'http://jabber.org/protocol/admin#add-user';

type Caller = { request(iq: ReturnType<typeof xml>, timeout?: number): Promise<ReturnType<typeof xml>> };
const entity = component({ service, domain, password }) as ReturnType<typeof component> & { iqCaller: Caller };
entity.on('error', (err: Error) => console.error('add-user-ceiling:', err.message));
entity.reconnect.stop();

function addUser(username: string, pw: string) {
  const field = (v: string, value: string, type?: string) => xml('field', { var: v, type }, xml('value', {}, value));
  return xml(
    'iq',
    { type: 'set', to: host },
    xml(
      'command',
      { xmlns: NS_COMMANDS, node: ADD_USER, action: 'complete' },
      xml(
        'x',
        { xmlns: 'jabber:x:data', type: 'submit' },
        field('FORM_TYPE', 'http://jabber.org/protocol/admin', 'hidden'),
        field('accountjid', `${username}@${host}`),
        field('password', pw),
        field('password-verify', pw),
      ),
    ),
  );
}

interface RunRequest {
  warmupMs: number;
  measureMs: number;
  concurrency: number;
  prefix: string;
  password: string;
}

process.on('message', (msg: RunRequest) => {
  let n = 0;
  void closedLoop(msg.concurrency, msg.warmupMs, msg.measureMs, async () => {
    const reply = await entity.iqCaller.request(addUser(`${msg.prefix}${n++}`, msg.password), 30_000);
    const command = reply.getChild('command', NS_COMMANDS);
    const error = command?.getChildren('note').find((note) => note.attrs.type === 'error');
    if (command?.attrs.status !== 'completed') return 'add-user: not completed';
    return error ? `add-user: ${error.text()}` : undefined;
  }).then((result) => process.send!(result));
});

process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {
  void entity.stop().finally(() => process.exit(0));
});

entity.start().then(
  () => process.send!({ ready: true }),
  (err: Error) => {
    console.error('add-user-ceiling: cannot connect:', err.message);
    process.exit(1);
  },
);
