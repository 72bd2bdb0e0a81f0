/**
 * The one stylesheet, inlined in every page and allowed by its SHA-256 hash in the
 * Content-Security-Policy (`style-src 'sha256-…'`): no inline style attributes, no extra route.
 */
import { createHash } from 'node:crypto';

export const STYLESHEET = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #57606a; --bg: #ffffff; --card: #f6f8fa; --line: #d0d7de;
  --accent: #0b5cad; --accent-fg: #ffffff; --danger: #a40e26; --ok: #1a7f37; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --muted: #9da7b3; --bg: #0d1117; --card: #161b22; --line: #30363d;
    --accent: #4493f8; --accent-fg: #0d1117; --danger: #ff7b72; --ok: #3fb950; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 1.0625rem/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 40rem; margin: 0 auto; padding: 1.25rem 1rem 3rem; }
header.site { border-bottom: 1px solid var(--line); }
header.site p { max-width: 40rem; margin: 0 auto; padding: .75rem 1rem; font-weight: 600; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: .5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; }
h3 { font-size: 1.05rem; margin: 0 0 .25rem; }
p, ul, ol { margin: 0 0 1rem; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: 1rem; margin: 0 0 1rem; }
blockquote { margin: 0 0 1rem; padding: .5rem 1rem; border-left: .25rem solid var(--line); white-space: pre-line; overflow-wrap: anywhere; }
label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
.hint { display: block; font-weight: 400; color: var(--muted); font-size: .9375rem; }
input[type=text], input[type=password], input[type=email], textarea { width: 100%; font: inherit; padding: .6rem .7rem; color: var(--fg);
  background: var(--bg); border: 1px solid var(--muted); border-radius: .375rem; }
input[readonly] { background: var(--card); }
textarea { min-height: 5rem; resize: vertical; }
input:focus-visible, textarea:focus-visible, button:focus-visible, a:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
button, .button { display: inline-block; font: inherit; font-weight: 600; padding: .65rem 1.2rem; margin: 1rem .5rem 0 0;
  border-radius: .375rem; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-fg); cursor: pointer; text-decoration: none; }
button.secondary { background: transparent; color: var(--accent); }
button.danger { background: transparent; color: var(--danger); border-color: var(--danger); }
fieldset { border: 1px solid var(--line); border-radius: .5rem; margin: 1rem 0; padding: .5rem 1rem 1rem; }
legend { font-weight: 600; padding: 0 .25rem; }
fieldset label, label.check { display: inline-flex; gap: .4rem; align-items: center; font-weight: 400; margin: .5rem 1.25rem 0 0; }
.error { color: var(--danger); border: 1px solid var(--danger); border-radius: .5rem; padding: .75rem 1rem; margin: 0 0 1rem; }
.ok { color: var(--ok); font-weight: 600; }
.qr { display: block; width: 12rem; max-width: 100%; height: auto; margin: .5rem 0 1rem; background: #fff; border-radius: .25rem; }
code, .uri { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .9375rem; overflow-wrap: anywhere; }
ul.clients { padding-left: 1.25rem; }
details { margin: 1rem 0; }
summary { cursor: pointer; font-weight: 600; }
.hp { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
footer { margin-top: 3rem; font-size: .875rem; color: var(--muted); }
main.wide { max-width: 72rem; }
header.site nav { max-width: 72rem; margin: 0 auto; padding: .5rem 1rem; display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: center; }
header.site nav a { font-weight: 600; }
header.site nav form { margin-left: auto; }
header.site nav button { margin: 0; padding: .3rem .8rem; }
header.site nav .who { color: var(--muted); }
.table-wrap { overflow-x: auto; margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; font-size: .9375rem; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
input[type=number], input[type=search], input[type=email], select { font: inherit; padding: .5rem .6rem; color: var(--fg); background: var(--bg);
  border: 1px solid var(--muted); border-radius: .375rem; max-width: 100%; }
input[type=search], input[type=email] { width: 100%; }
.filters { display: flex; flex-wrap: wrap; gap: 0 1rem; align-items: flex-end; }
.filters label { margin-top: .5rem; }
.pager { display: flex; gap: 1rem; }
.state { font-weight: 600; }
.chart { display: block; width: 100%; min-width: 44rem; height: auto; }
.chart-wrap { overflow-x: auto; margin: .5rem 0 1rem; }
/* Scrolled to the right end at first on a narrow screen: the latest days are the ones in view. */
.chart-wrap.latest { direction: rtl; }
.chart-wrap.latest .chart { direction: ltr; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1rem; padding: 0; list-style: none; font-size: .9375rem; }
.swatch { display: inline-block; width: .9rem; height: .9rem; border-radius: .15rem; margin-right: .3rem; vertical-align: -.1rem; }
.done { color: var(--ok); border: 1px solid var(--ok); border-radius: .5rem; padding: .75rem 1rem; margin: 0 0 1rem; }
ul.refused li { color: var(--danger); }
.phrase { font-size: 1.4rem; font-weight: 700; letter-spacing: .02em; }
fieldset { min-width: 0; }
@media (max-width: 48rem) {
  table.cards thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display: block; width: 100%; }
  table.cards tr { border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .75rem; margin: 0 0 .75rem; }
  table.cards td { border: 0; padding: .15rem 0; text-align: left; }
  table.cards td::before { content: attr(data-label) ": "; color: var(--muted); }
  table.cards td.pick::before { content: ""; }
  header.site nav form { margin-left: 0; }
}
`.trim();

export const STYLE_HASH = `sha256-${createHash('sha256').update(STYLESHEET, 'utf8').digest('base64')}`;

/** Everything a page may load: nothing but its own hashed stylesheet and inline QR codes. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src '${STYLE_HASH}'`,
  "img-src 'self' data:",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');
