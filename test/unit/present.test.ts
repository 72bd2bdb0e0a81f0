/**
 * How an invite reads (src/present/invite.ts), pinned whole: the dates, the people, the lines of
 * the commands and the statistics; and that the doors say an invite's expiry with the same words.
 */
import type { Invite } from '../../src/domain/types';
import type { InviteStats } from '../../src/domain/ports';
import { renderEmail } from '../../src/mail/render-email';
import { renderNotice } from '../../src/outbox/render';
import { html, joined, trusted } from '../../src/present/html';
import {
  approvalLine,
  invitationTitle,
  dateTime,
  endedReason,
  heldClaimsLine,
  instant,
  inviteeLabel,
  inviteeOf,
  inviterForInvitee,
  inviterLabel,
  inviterOf,
  listLine,
  longDate,
  optionLabel,
  shortDate,
  statsLines,
  summary,
} from '../../src/present/invite';

const CREATED = Date.UTC(2026, 10, 21, 12, 3, 59, 999);
const DAY = 86_400_000;

function invite(over: Partial<Invite> = {}): Invite {
  return {
    id: 'k3x9q2m7ab',
    kind: 'contact-account',
    state: 'open',
    inviter: 'alice@example.com',
    source: 'command',
    inviteeEmail: null,
    inviteeEmailKey: null,
    inviteeJid: null,
    inviteeName: null,
    inviteeKey: null,
    activeKey: null,
    remindedAt: null,
    username: null,
    note: null,
    rosterSubscription: false,
    maxUses: 1,
    uses: 0,
    held: 0,
    generation: 0,
    createdAt: CREATED,
    expiresAt: CREATED + 7 * DAY,
    approvedAt: CREATED,
    approvedBy: 'admin@example.com',
    endedAt: null,
    expiryRecorded: false,
    emailDelivery: 'none',
    messageDelivery: 'none',
    ...over,
  };
}

const link = invite();
const byMail = invite({ id: 'b2b2b2b2b2', inviteeEmail: 'bob@example.org', emailDelivery: 'sent', note: 'Come\n  and   chat' });
const byJid = invite({ id: 'c3c3c3c3c3', kind: 'contact', inviter: 'erin@other.example', inviteeJid: 'dave@example.net', messageDelivery: 'queued' });
const locked = invite({ id: 'd4d4d4d4d4', kind: 'account-locked', inviter: null, username: 'carol', state: 'pending', approvedAt: null });

describe('dates', () => {
  it('reads a time in minutes with its zone, and to the second where it is copied', () => {
    expect(dateTime(CREATED)).toBe('2026-11-21 12:03 UTC');
    expect(shortDate(CREATED)).toBe('21 Nov 12:03');
    expect(longDate(CREATED)).toBe('21 November 2026 at 12:03 UTC');
    expect(instant(CREATED)).toBe('2026-11-21T12:03:59Z');
  });

  it('writes the long date exactly as Intl’s en-GB long date and short time, in UTC, without loading Intl', () => {
    const intl = new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' });
    // Every month, single- and double-digit days and hours, midnight, the last minute of a year, leap days, far years.
    const moments = [
      ...Array.from({ length: 12 }, (_, m) => Date.UTC(2026, m, 1 + m * 2, m * 2, m * 5)),
      Date.UTC(2026, 0, 1, 0, 0),
      Date.UTC(2026, 11, 31, 23, 59, 59, 999),
      Date.UTC(2028, 1, 29, 9, 7),
      Date.UTC(1999, 6, 4, 12, 0),
      Date.UTC(2100, 9, 10, 18, 30),
    ];
    for (const ms of moments) expect(longDate(ms)).toBe(`${intl.format(ms)} UTC`);
  });
});

describe('people', () => {
  it('names the invitee by what the invite knows, in a sentence and in a label', () => {
    expect([link, byMail, byJid, locked].map(inviteeOf)).toEqual(['anyone with the link', 'bob@example.org', 'dave@example.net', 'the account carol']);
    expect([link, byMail, byJid, locked].map(inviteeLabel)).toEqual(['link', 'bob@example.org', 'dave@example.net', 'account carol']);
  });

  it('titles an invitation by its inviter, or says that one is invited', () => {
    expect(invitationTitle('alice@example.com', 'Example Chat')).toBe('alice@example.com invites you to Example Chat');
    expect(invitationTitle(null, 'Example Chat')).toBe('You are invited to Example Chat');
  });

  it('names the inviter: the operator to admins, the site to the invitee, the user name alone in a label', () => {
    expect([link, byJid, locked].map(inviterOf)).toEqual(['alice@example.com', 'erin@other.example', 'the operator']);
    expect([link, byJid, locked].map((i) => inviterLabel(i, 'example.com'))).toEqual(['alice', 'erin@other.example', 'the operator']);
    expect([link, locked].map((i) => inviterForInvitee(i, 'Example Chat'))).toEqual(['alice@example.com', 'Example Chat']);
  });
});

describe('one invite on one line', () => {
  const now = CREATED + DAY;

  it('gives admins a label that starts with the invitee, and the details after it', () => {
    expect(optionLabel(byMail, { host: 'example.com', now, inviter: true })).toBe('bob@example.org, by alice, 21 Nov 12:03');
    expect(optionLabel(byMail, { host: 'example.com', now, inviter: false })).toBe('bob@example.org, 21 Nov 12:03, open');
    expect(listLine(byMail, { host: 'example.com', now, inviter: true })).toBe(
      'bob@example.org, by alice, 21 Nov 12:03: b2b2b2b2b2 open, contact-account, by alice@example.com, to bob@example.org, 0/1 used, ' +
        'created 2026-11-21 12:03 UTC, expires 2026-11-28 12:03 UTC, delivery sent',
    );
    expect(listLine(locked, { host: 'example.com', now: CREATED + 8 * DAY, inviter: false })).toBe(
      'account carol, 21 Nov 12:03, expired: d4d4d4d4d4, account-locked, to the account carol, 0/1 used, created 2026-11-21 12:03 UTC, expires 2026-11-28 12:03 UTC',
    );
    expect(listLine(byJid, { host: 'example.com', now, inviter: true })).toMatch(/, delivery queued$/);
  });

  it('puts an invite waiting for approval and a notice summary in words that say which date it is', () => {
    expect(approvalLine(locked, 'example.com')).toBe(
      'account carol, by the operator, 21 Nov 12:03: d4d4d4d4d4, account-locked, from the operator to the account carol, created 2026-11-21 12:03 UTC',
    );
    expect(approvalLine(byMail, 'example.com')).toMatch(/, note “Come and chat”$/);
    expect(summary(byMail)).toBe('alice@example.com → bob@example.org (contact-account, created 2026-11-21 12:03 UTC) — “Come\n  and   chat”');
  });

  it('says why an invite ended', () => {
    const ended = (state: Invite['state']) => endedReason(invite({ state }), CREATED);
    expect(['exhausted', 'revoked', 'rejected', 'declined', 'open'].map((s) => ended(s as Invite['state']))).toEqual([
      'It has already been used.',
      'It was withdrawn.',
      'An admin did not approve it.',
      'It was declined.',
      'It cannot be used any more.',
    ]);
    expect(endedReason(link, CREATED + 8 * DAY)).toBe('It has expired.');
  });
});

describe('the doors', () => {
  const links = { links: () => ({ token: 't', uri: 'xmpp:alice@example.com?roster;preauth=t', landingUrl: 'https://i.example/i/t', addInviter: 'xmpp:alice@example.com?roster;preauth=t' }) };

  it('say an invitation’s expiry the same way in the message, the e-mail and the list', () => {
    const until = dateTime(byMail.expiresAt);
    const message = renderNotice('invitation', [byMail], {}, { siteName: 'Example Chat', component: 'invites.example.com', invites: { ...links, count: () => 1 } as never, now: () => CREATED })!;
    const mail = renderEmail('invitation', [byMail], {}, { siteName: 'Example Chat', invites: links, now: () => CREATED }, message)!;
    expect(message.text).toContain(`Valid until ${until}.`);
    expect(mail.text).toContain(`valid until ${until}.`);
    expect(listLine(byMail, { host: 'example.com', now: CREATED, inviter: true })).toContain(`expires ${until}`);
  });

  it('title an invitation alike on the page, in the e-mail and in the message, the operator’s too', () => {
    const ctx = { siteName: 'Example Chat', component: 'invites.example.com', invites: { ...links, count: () => 1 } as never, now: () => CREATED };
    const operators = invite({ inviter: null, inviteeEmail: 'bob@example.org' });
    expect(renderNotice('invitation', [operators], {}, ctx)).toMatchObject({ subject: 'You are invited to Example Chat', text: expect.stringMatching(/^You are invited to Example Chat\.\n/) });
    expect(renderEmail('invitation', [operators], {}, ctx, { subject: '', text: '' })?.subject).toBe('You are invited to Example Chat');
    expect(renderNotice('invitation', [byMail], {}, ctx)?.subject).toBe('alice@example.com invites you to Example Chat');
    expect(renderEmail('invitation', [byMail], {}, ctx, { subject: '', text: '' })?.subject).toBe('alice@example.com invites you to Example Chat');
  });
});

describe('statistics', () => {
  const stats: InviteStats = {
    states: { open: 3, pending: 1 },
    delivery: { email: { sent: 2, failed: 1 }, message: {} },
    funnel: [{ inviter: 'alice@example.com', created: 3, approved: 2, delivered: 2, used: 1, accounts: 1, bounced: 1 }],
    overruns: 0,
    heldClaims: { count: 2, oldestAt: CREATED - 3 * 3_600_000 - 12 * 60_000 },
    bounces: { permanent: 1, transient: 2 },
  };

  it('reads the same lines for the command and the CLI', () => {
    const limits = { usage: () => ({ perUserOpen: { used: 1, limit: 5 }, perUserPerDay: undefined }) };
    expect(statsLines(stats, limits as never, CREATED)).toEqual({
      states: ['pending: 1', 'open: 3', 'exhausted: 0', 'rejected: 0', 'revoked: 0', 'declined: 0', 'expired: 0'],
      delivery: ['e-mail: sent 2, failed 1', 'message: none', 'bounces received: 1 permanent, 2 transient'],
      funnel: ['alice@example.com: created 3, approved 2, used 1, accounts 1, bounced 1 (limits: open 1/5)'],
      claims: '2 held, the oldest for 3 h 12 min (since 2026-11-21T08:51:59Z)',
    });
  });

  it('says how long the oldest claim has been held, roughly', () => {
    const held = (seconds: number) => heldClaimsLine({ count: 1, oldestAt: CREATED - seconds * 1000 }, CREATED);
    expect([5, 300, 90_000].map(held)).toEqual([
      '1 held, the oldest for 5 s (since 2026-11-21T12:03:54Z)',
      '1 held, the oldest for 5 min (since 2026-11-21T11:58:59Z)',
      '1 held, the oldest for 1 d 1 h (since 2026-11-20T11:03:59Z)',
    ]);
    expect(heldClaimsLine({ count: 0, oldestAt: null }, CREATED)).toBe('none held');
  });
});

describe('html', () => {
  it('joins fragments with a separator, escaping text and keeping markup', () => {
    expect(joined(['a<b', html`<em>c</em>`, 'd&e'], html`<br>`).value).toBe('a&lt;b<br><em>c</em><br>d&amp;e');
    expect(joined([], html`<br>`).value).toBe('');
    expect(html`<p>${joined(['x', 'y'], '\n')}</p>`.value).toBe('<p>x\ny</p>');
  });

  it('lets markup through only when it is marked trusted', () => {
    expect(html`${'<svg/>'}|${trusted('<svg/>')}`.value).toBe('&lt;svg/&gt;|<svg/>');
  });

  it('escapes the e-mail’s values through the same tag as the pages', () => {
    const hostile = invite({ inviter: 'a"<b>@example.com', inviteeEmail: 'bob@example.org', inviteeName: '<i>Bob</i>', note: 'x</blockquote><script>' });
    const mail = renderEmail('invitation', [hostile], {}, { siteName: 'Chat & Co', invites: { links: () => ({ token: 't', uri: 'u', landingUrl: 'https://i.example/i/t?a=1&b="2"', addInviter: null }) }, now: () => CREATED }, { subject: '', text: '' })!;
    expect(mail.html).toContain('<strong>a&quot;&lt;b&gt;@example.com</strong> invites you to join Chat &amp; Co and chat with them.');
    expect(mail.html).toContain('Hello &lt;i&gt;Bob&lt;/i&gt;,');
    expect(mail.html).toContain('x&lt;/blockquote&gt;&lt;script&gt;</blockquote>');
    expect(mail.html).toContain('href="https://i.example/i/t?a=1&amp;b=&quot;2&quot;"');
    expect(mail.html).not.toMatch(/<script|<i>/);
  });
});
