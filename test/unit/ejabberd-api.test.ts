/**
 * EjabberdApiProvisioner.linkContacts against a fake mod_http_api that answers add_rosteritem as
 * ejabberd 23.01 (`group`, a string) or 24.12 (`groups`, a list) does: the provisioner finds the form
 * the server takes and keeps using it. (test/integration/ejabberd.test.ts runs it against both.)
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EjabberdApiProvisioner } from '../../src/provisioners/ejabberd-api';

type Form = 'group' | 'groups';

/** A fake API taking one form; records the argument names of every add_rosteritem call. */
async function fakeApi(takes: Form): Promise<{ url: string; calls: string[][]; close(): Promise<void> }> {
  const calls: string[][] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const args = JSON.parse(body) as Record<string, unknown>;
      calls.push(Object.keys(args).sort());
      const other: Form = takes === 'group' ? 'groups' : 'group';
      res.setHeader('content-type', 'application/json');
      if (!(takes in args)) {
        res.statusCode = 400;
        res.end(JSON.stringify(`Request have missing argument: ${takes}`));
      } else if (other in args) {
        res.statusCode = 400;
        res.end(JSON.stringify(`Request have unknown arguments: [${other}]`));
      } else {
        res.end('0');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/api`, calls, close: () => new Promise((r) => server.close(() => r())) };
}

const ARGS = (form: Form) => ['host', 'localhost', 'localuser', 'nick', 'subs', 'user', form].sort();

it.each<[Form]>([['groups'], ['group']])('links contacts on a server that takes `%s`, and remembers the form', async (takes) => {
  const api = await fakeApi(takes);
  try {
    const p = new EjabberdApiProvisioner({ url: api.url, host: 'localhost', timeoutMs: 5_000 });
    await p.linkContacts('alice@localhost', 'bob@localhost');
    await p.linkContacts('carol@localhost', 'bob@localhost');
    const tried = takes === 'groups' ? [ARGS('groups')] : [ARGS('groups'), ARGS('group')];
    // first link: a→b (after finding the form), b→a; second link: both in the known form at once
    expect(api.calls).toEqual([...tried, ARGS(takes), ARGS(takes), ARGS(takes)]);
  } finally {
    await api.close();
  }
});

it('does not retry on other refusals', async () => {
  const server = http.createServer((_req, res) => {
    res.statusCode = 400;
    res.end(JSON.stringify('Request have unknown arguments: [nick]'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  let requests = 0;
  server.on('request', () => requests++);
  try {
    const p = new EjabberdApiProvisioner({ url: `http://127.0.0.1:${port}/api`, host: 'localhost', timeoutMs: 5_000 });
    await expect(p.linkContacts('alice@localhost', 'bob@localhost')).rejects.toThrow('add_rosteritem: HTTP 400');
    expect(requests).toBe(1);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
