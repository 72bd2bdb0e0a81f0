/**
 * The ceiling of the "New Invite" path: an external component on the same library as the service
 * (@xmpp/component 0.13.1, used directly) that answers every `urn:xmpp:invite#invite` execute with
 * a fixed completed XEP-0401 form of the same shape and size as the service's (with the note a
 * user's invite carries while it waits for approval), and stores nothing.
 * Whatever the service does on top of this (database, tokens, sessions, routing) is its own cost.
 *
 *   node --import tsx bench/echo-component.ts xmpp://127.0.0.1:PORT echo.localhost SECRET
 *
 * Prints "online" once the stream is up; SIGTERM closes it.
 */
import { component, xml } from '@xmpp/component';
import { PENDING_NOTE } from '../src/handlers/commands/new-invite';

const [service, domain, password] = process.argv.slice(2);
if (!service || !domain || !password) {
  console.error('usage: echo-component.ts SERVICE DOMAIN SECRET');
  process.exit(2);
}

const NS_COMMANDS = 'http://jabber.org/protocol/commands';
const NODE = 'urn:xmpp:invite#invite';
// A token as long as the service's (34 characters); the form is the service's, value for value.
const TOKEN = 'abcdefghij' + 'A'.repeat(24);

function form(inviter: string) {
  const field = (v: string, label: string, value: string) => xml('field', { var: v, type: 'text-single', label }, xml('value', {}, value));
  return xml(
    'x',
    { xmlns: 'jabber:x:data', type: 'result' },
    xml('title', {}, 'Your invite has been created'),
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'urn:xmpp:invite#invitation')),
    field('uri', 'Invite URI', `xmpp:${inviter}?roster;preauth=${TOKEN}`),
    field('landing-url', 'Invite web page', `https://invites.example.org/i/${TOKEN}`),
    field('expire', 'Valid until', '2030-01-01T00:00:00Z'),
  );
}

/** What @xmpp/iq's callee hands a handler: `element` is the iq's payload (here the <command/>). */
type Ctx = { from: { bare(): { toString(): string } }; element: { attrs: Record<string, string | undefined> } };

const entity = component({ service, domain, password }) as ReturnType<typeof component> & {
  iqCallee: { set(ns: string, name: string, handler: (ctx: Ctx) => unknown): void };
};
entity.on('error', (err: Error) => console.error('echo-component:', err.message));
entity.reconnect.stop();

entity.iqCallee.set(NS_COMMANDS, 'command', (ctx) => {
  if (ctx.element.attrs.node !== NODE) return undefined; // the library answers service-unavailable
  // The service's answer to a user's New Invite, byte for byte in shape: a session id as long as its
  // (fixed here: nothing to continue), the note that the invite waits for an admin, the form.
  return xml(
    'command',
    { xmlns: NS_COMMANDS, node: NODE, sessionid: 'echo-session-012345678', status: 'completed' },
    xml('note', { type: 'info' }, PENDING_NOTE),
    form(ctx.from.bare().toString()),
  );
});

entity.start().then(
  () => console.log('online'),
  (err: Error) => {
    console.error('echo-component: cannot connect:', err.message);
    process.exit(1);
  },
);

// Started by bench/run.ts with an IPC channel: go when it goes.
if (process.send) process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {
  void entity.stop().finally(() => process.exit(0));
});
