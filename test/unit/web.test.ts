/** The web server's small parts: escaping, client addresses, rate limits, CSRF, routing, log paths. */
import { clientIp } from '../../src/web/client-ip';
import { Csrf } from '../../src/web/csrf';
import { escapeHtml, html, trusted } from '../../src/present/html';
import { RateLimiter } from '../../src/web/rate-limit';
import { Router } from '../../src/web/router';
import { logPath } from '../../src/web/server';
import { CONTENT_SECURITY_POLICY, STYLE_HASH, STYLESHEET } from '../../src/web/style';
import { createHash } from 'node:crypto';

describe('html', () => {
  it('escapes every interpolated string, in text and in attributes', () => {
    const evil = `"><script>alert('x')</script>&`;
    expect(html`<p title="${evil}">${evil}</p>`.value).toBe(
      '<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p>',
    );
  });

  it('keeps markup made by templates, renders lists, and leaves out null, undefined and false', () => {
    const items = ['a<b', 'c'].map((t) => html`<li>${t}</li>`);
    expect(html`<ul>${items}${null}${undefined}${false}</ul>${trusted('<hr>')}`.value).toBe('<ul><li>a&lt;b</li><li>c</li></ul><hr>');
  });

  it('has one escape function for the five special characters', () => {
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
  });
});

describe('clientIp', () => {
  it('uses the peer address when the peer is not a trusted proxy, whatever X-Forwarded-For says', () => {
    expect(clientIp('203.0.113.9', '198.51.100.1', [])).toBe('203.0.113.9');
    expect(clientIp('203.0.113.9', '198.51.100.1', ['127.0.0.1'])).toBe('203.0.113.9');
  });

  it('reads X-Forwarded-For from the right behind trusted proxies, ignoring what the client wrote', () => {
    expect(clientIp('127.0.0.1', '198.51.100.1', ['127.0.0.1'])).toBe('198.51.100.1');
    expect(clientIp('::ffff:127.0.0.1', '6.6.6.6, 198.51.100.1, 10.0.0.2', ['127.0.0.1', '10.0.0.2'])).toBe('198.51.100.1');
    expect(clientIp('127.0.0.1', 'garbage, 198.51.100.1', ['127.0.0.1'])).toBe('198.51.100.1');
    expect(clientIp('127.0.0.1', '198.51.100.1, garbage', ['127.0.0.1'])).toBe('127.0.0.1');
  });
});

describe('RateLimiter', () => {
  it('allows a burst, then refuses with the seconds to wait, then refills', () => {
    let now = 0;
    const limiter = new RateLimiter({ capacity: 3, refillMs: 30_000 }, () => now);
    for (let i = 0; i < 3; i++) expect(limiter.take('a')).toEqual({ ok: true });
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterS: 30 });
    expect(limiter.take('b')).toEqual({ ok: true });
    now += 10_000;
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterS: 20 });
    now += 20_000;
    expect(limiter.take('a')).toEqual({ ok: true });
  });

  it('forgets clients beyond its size, quiet ones first', () => {
    let now = 0;
    const limiter = new RateLimiter({ capacity: 1, refillMs: 1_000, maxKeys: 2 }, () => now);
    limiter.take('a');
    limiter.take('b');
    now += 500;
    limiter.take('c');
    // 'a' was forgotten (the oldest), so it may post again
    expect(limiter.take('a')).toEqual({ ok: true });
  });
});

describe('Csrf', () => {
  const csrf = new Csrf('a-token-key-of-at-least-32-characters!', true);

  it('accepts the MAC of the cookie value, and nothing else', () => {
    const value = csrf.newValue();
    expect(csrf.verify(value, csrf.formToken(value))).toBe(true);
    expect(csrf.verify(value, csrf.formToken(csrf.newValue()))).toBe(false);
    expect(csrf.verify(undefined, csrf.formToken(value))).toBe(false);
    expect(csrf.verify(value, undefined)).toBe(false);
    expect(csrf.verify(value, 'short')).toBe(false);
  });

  it('reads only a well-formed cookie and sets it HttpOnly, SameSite=Strict, Secure', () => {
    const value = csrf.newValue();
    expect(csrf.fromCookies(`other=1; xi_csrf=${value}`)).toBe(value);
    expect(csrf.fromCookies('xi_csrf=<bad>')).toBeUndefined();
    expect(csrf.setCookie(value)).toBe(`xi_csrf=${value}; Path=/; HttpOnly; SameSite=Strict; Secure`);
    expect(new Csrf('a-token-key-of-at-least-32-characters!', false).setCookie(value)).not.toContain('Secure');
  });
});

describe('Router', () => {
  const router = new Router<string>().add('GET', '/i/:token', 'page').add('POST', '/i/:token/register', 'register');

  it('matches routes with their parameters; HEAD is GET', () => {
    expect(router.match('GET', '/i/abc')).toEqual({ kind: 'found', handler: 'page', params: { token: 'abc' } });
    expect(router.match('HEAD', '/i/abc')).toMatchObject({ kind: 'found', handler: 'page' });
    expect(router.match('POST', '/i/abc/register')).toEqual({ kind: 'found', handler: 'register', params: { token: 'abc' } });
  });

  it('tells a wrong method (405) from an unknown path (404)', () => {
    expect(router.match('GET', '/i/abc/register')).toEqual({ kind: 'method', allowed: ['POST'] });
    expect(router.match('GET', '/i/')).toEqual({ kind: 'none' });
    expect(router.match('GET', '/i/%E0%A4%A')).toEqual({ kind: 'none' });
  });
});

describe('security settings', () => {
  it('redacts invite tokens from logged paths', () => {
    expect(logPath('/i/k3x9q2m7abSECRET')).toBe('/i/[redacted]');
    expect(logPath('/i/k3x9q2m7abSECRET/register')).toBe('/i/[redacted]/register');
    expect(logPath('/healthz')).toBe('/healthz');
  });

  it('allows the stylesheet by its hash and nothing inline else', () => {
    expect(STYLE_HASH).toBe(`sha256-${createHash('sha256').update(STYLESHEET).digest('base64')}`);
    expect(CONTENT_SECURITY_POLICY).toBe(
      `default-src 'none'; style-src '${STYLE_HASH}'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    );
  });
});
