/**
 * HTML as values, for the web pages and the HTML e-mails alike: templates are functions that build
 * `Html` with the `html` tag, which escapes every interpolated value unless it is already `Html`.
 * `escapeHtml` is the one escape function; nothing else writes text into markup. Markup that no
 * person wrote (the QR code library's SVG, the stylesheet) becomes `Html` through `trusted`, the
 * one explicit way around the escape.
 */

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** What a template may interpolate: text (escaped), markup, lists of them; null, undefined and false render nothing. */
export type Fragment = Html | string | number | null | undefined | false | readonly Fragment[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and quoted attribute values alike. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

function render(value: Fragment): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** The template tag: literal parts are markup, interpolations are escaped. */
export function html(strings: TemplateStringsArray, ...values: Fragment[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Fragments one after the other, `separator` between them: `joined(lines, html\`<br>\`)`. */
export function joined(items: readonly Fragment[], separator: Fragment): Html {
  return new Html(items.map((item, i) => (i > 0 ? render(separator) : '') + render(item)).join(''));
}

/** Markup produced by trusted code (the QR code library's SVG, the stylesheet): never a person's text. */
export function trusted(markup: string): Html {
  return new Html(markup);
}
