/**
 * Charts drawn on the server as inline SVG: no script, no image route, nothing for the
 * Content-Security-Policy to allow (colours are presentation attributes, not styles). Each chart is
 * an `img` with a title and a description that says what it shows in words; every mark carries a
 * `<title>` with its figure (shown on hover, read by screen readers), and the pages print the same
 * figures as a table beside it.
 */
import { html, type Html } from '../present/html';

export interface Series {
  key: string;
  label: string;
  colour: string;
  values: readonly number[];
}

/** Colours that stay apart for the common colour-vision deficiencies (Okabe–Ito), readable on light and dark. */
export const PALETTE = ['#0072b2', '#009e73', '#d55e00', '#cc79a7', '#e69f00', '#56b4e9', '#999999', '#f0e442'];

/** A small square of a series' colour, for legends. */
export function swatch(colour: string): Html {
  return html`<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true" focusable="false"><rect width="10" height="10" fill="${colour}"/></svg>`;
}

export function legend(series: readonly Pick<Series, 'label' | 'colour'>[]): Html {
  return html`<ul class="legend">${series.map((s) => html`<li>${swatch(s.colour)}${s.label}</li>`)}</ul>`;
}

/** A round top for an axis: 1, 2, 5 times a power of ten, at least `max`. */
export function niceMax(max: number): number {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * power >= max) return m * power;
  return 10 * power;
}

/** Whole-number gridlines: every unit up to 5, else fifths of a round top (always whole). */
export function axisTicks(max: number): number[] {
  if (max <= 5) return Array.from({ length: max + 1 }, (_, i) => i);
  return [0, 1, 2, 3, 4, 5].map((i) => (i * max) / 5);
}

const fmt = (n: number) => String(Math.round(n * 100) / 100);

/**
 * Stacked bars, one per category (a day), each stacked from `stacked` series; `line` (optional) is
 * drawn over them as a line with dots. `labels[i]` names category i in titles; every
 * `labelEvery`-th is written under the axis.
 */
export function stackedBarChart(opts: {
  id: string;
  title: string;
  description: string;
  labels: readonly string[];
  shortLabels: readonly string[];
  labelEvery: number;
  stacked: readonly Series[];
  line?: Series;
}): Html {
  const W = 960;
  const H = 300;
  const left = 44;
  const right = 8;
  const top = 12;
  const bottom = 40;
  const n = opts.labels.length;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const totals = opts.labels.map((_, i) => opts.stacked.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals, ...(opts.line ? opts.line.values : [])));
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const step = plotW / n;
  const barW = Math.max(1, step * 0.78);
  const ticks = axisTicks(max);
  const bars = opts.labels.map((label, i) => {
    let base = 0;
    const x = left + i * step + (step - barW) / 2;
    return opts.stacked
      .filter((s) => (s.values[i] ?? 0) > 0)
      .map((s) => {
        const v = s.values[i];
        const rect = html`<rect x="${fmt(x)}" y="${fmt(y(base + v))}" width="${fmt(barW)}" height="${fmt(y(base) - y(base + v))}" fill="${s.colour}" data-series="${s.key}" data-day="${label}" data-value="${v}"><title>${label}: ${v} ${s.label.toLowerCase()}</title></rect>`;
        base += v;
        return rect;
      });
  });
  const line = opts.line;
  const points = line ? line.values.map((v, i) => `${fmt(left + i * step + step / 2)},${fmt(y(v))}`).join(' ') : '';
  return html`<svg class="chart" id="${opts.id}" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${opts.id}-title" aria-describedby="${opts.id}-desc">
<title id="${opts.id}-title">${opts.title}</title>
<desc id="${opts.id}-desc">${opts.description}</desc>
<g stroke="currentColor" stroke-opacity="0.25">${ticks.map((t) => html`<line x1="${left}" x2="${W - right}" y1="${fmt(y(t))}" y2="${fmt(y(t))}"/>`)}</g>
<g fill="currentColor" font-size="12" text-anchor="end">${ticks.map((t) => html`<text x="${left - 6}" y="${fmt(y(t) + 4)}">${fmt(t)}</text>`)}</g>
<g>${bars}</g>
${line
  ? html`<polyline points="${points}" fill="none" stroke="${line.colour}" stroke-width="2"/>
<g fill="${line.colour}">${line.values.map((v, i) => html`<circle cx="${fmt(left + i * step + step / 2)}" cy="${fmt(y(v))}" r="${v > 0 ? 3 : 0}" data-series="${line.key}" data-day="${opts.labels[i]}" data-value="${v}"><title>${opts.labels[i]}: ${v} ${line.label.toLowerCase()}</title></circle>`)}</g>`
  : ''}
<g fill="currentColor" font-size="12" text-anchor="middle">${opts.shortLabels.map((l, i) =>
    // The last label ends at the axis's end rather than spilling past the picture.
    i === n - 1
      ? html`<text x="${fmt(left + i * step + step / 2)}" y="${H - bottom + 18}" text-anchor="end">${l}</text>`
      : i % opts.labelEvery === 0 && i < n - opts.labelEvery / 2
        ? html`<text x="${fmt(left + i * step + step / 2)}" y="${H - bottom + 18}">${l}</text>`
        : '',
  )}</g>
</svg>`;
}

/**
 * Grouped horizontal bars: one group per row (an inviter), one bar per series (the funnel's steps),
 * each labelled with its figure.
 */
export function groupedBarChart(opts: { id: string; title: string; description: string; rows: readonly string[]; series: readonly Series[] }): Html {
  const W = 960;
  const left = 220;
  const right = 56;
  const barH = 12;
  const gap = 3;
  const groupGap = 14;
  const groupH = opts.series.length * (barH + gap) - gap;
  const H = Math.max(1, opts.rows.length) * (groupH + groupGap) + 8;
  const max = niceMax(Math.max(0, ...opts.series.flatMap((s) => s.values)));
  const w = (v: number) => (v / max) * (W - left - right);
  return html`<svg class="chart" id="${opts.id}" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${opts.id}-title" aria-describedby="${opts.id}-desc">
<title id="${opts.id}-title">${opts.title}</title>
<desc id="${opts.id}-desc">${opts.description}</desc>
${opts.rows.map((row, r) => {
  const y0 = 4 + r * (groupH + groupGap);
  return html`<g>
<text x="${left - 8}" y="${fmt(y0 + groupH / 2 + 4)}" text-anchor="end" font-size="13" fill="currentColor">${row.length > 30 ? `${row.slice(0, 29)}…` : row}</text>
${opts.series.map((s, k) => {
  const v = s.values[r] ?? 0;
  const y = y0 + k * (barH + gap);
  return html`<rect x="${left}" y="${y}" width="${fmt(Math.max(v > 0 ? 1 : 0, w(v)))}" height="${barH}" fill="${s.colour}" data-series="${s.key}" data-row="${row}" data-value="${v}"><title>${row}: ${v} ${s.label.toLowerCase()}</title></rect>
<text x="${fmt(left + w(v) + 4)}" y="${y + barH - 2}" font-size="11" fill="currentColor">${v}</text>`;
})}
</g>`;
})}
</svg>`;
}
