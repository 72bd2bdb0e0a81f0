/**
 * /healthz on the real service against a real Prosody: 503 with the reason when the XMPP link has
 * been down past its grace period and when the database file becomes read-only, and 200 again when
 * each recovers.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { TestProsody } from '../support/prosody';
import { COMPONENT, COMPONENT_SECRET, serviceConfig, startService, type RunningService } from '../support/service';

let prosody: TestProsody;
let service: RunningService;

beforeAll(async () => {
  prosody = await TestProsody.start({ components: [{ domain: COMPONENT, secret: COMPONENT_SECRET }], hostAdmins: [COMPONENT] });
  service = await startService(serviceConfig(prosody), { xmppGraceMs: 1_500 });
});

afterAll(async () => {
  await service?.stop();
  await prosody?.stop();
});

async function healthz(): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${service.app.web.url}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function until(what: string, fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('turns 503 when the XMPP link is down past its grace period, and 200 once it is back', async () => {
  expect(await healthz()).toMatchObject({ status: 200, body: { status: 'ok', xmpp: 'online' } });
  const halted = (prosody as unknown as { halt(): Promise<void>; launch(): Promise<void> });
  await halted.halt();
  try {
    await until('the link to drop', async () => (await healthz()).body.xmpp === 'offline');
    // within the grace period: still 200
    const early = await healthz();
    expect(early).toMatchObject({ status: 200, body: { status: 'ok', xmpp: 'offline' } });
    await until('503', async () => (await healthz()).status === 503);
    expect((await healthz()).body).toMatchObject({ status: 'error', xmpp: 'offline', reason: expect.stringMatching(/^the XMPP link has been down for \d+ s$/) });
  } finally {
    await halted.launch();
  }
  await until('the link to come back', async () => (await healthz()).status === 200);
  expect((await healthz()).body).toMatchObject({ status: 'ok', xmpp: 'online' });
});

it('turns 503 when the database file becomes read-only, and 200 once it is writable again', async () => {
  const file = service.config.database;
  const root = process.getuid?.() === 0;
  // root ignores permissions: the file is made immutable instead
  if (root) execFileSync('chattr', ['+i', file]);
  else chmodSync(file, 0o444);
  try {
    const { status, body } = await healthz();
    expect(status).toBe(503);
    expect(body).toMatchObject({ status: 'error', database: 'unwritable', reason: expect.stringMatching(/invites\.sqlite is not writable/) });
  } finally {
    if (root) execFileSync('chattr', ['-i', file]);
    else chmodSync(file, 0o644);
  }
  await until('200 again', async () => (await healthz()).status === 200);
});
