/** The page's own small charts: horizontal bars (HTML), time series and heat maps (SVG strings). */
import type { Count, SeriesPoint } from '../../src/ui/api.ts';
import { esc, num, shortClock } from './dom.ts';

/** Fixed colours for well-known keys, so one meaning keeps one colour on every chart. */
const KNOWN: Record<string, string> = {
  forwarded: '#1a7f37', FORWARDED: '#1a7f37', NOERROR: '#1a7f37', queries: '#0969da',
  dropped: '#cf222e', DROPPED: '#cf222e', REFUSED: '#cf222e', NXDOMAIN: '#bf8700', mixed: '#bf8700', other: '#8250df',
  flows: '#0969da', bytes: '#1a7f37', requests: '#8250df',
};
const PALETTE = ['#0969da', '#cf222e', '#bf8700', '#8250df', '#1a7f37', '#d1242f', '#0a7d8c', '#9a6700', '#bc4c00', '#57606a'];

export function colourFor(key: string, index: number): string {
  return KNOWN[key] ?? PALETTE[index % PALETTE.length] ?? '#57606a';
}

export interface BarOptions {
  /** data-testid of each row (rows also carry data-key). */
  rowTestId: string;
  colour?: string;
  limit?: number;
  /** Makes rows clickable: the row's key is passed. */
  linkable?: boolean;
  empty?: string;
}

/** Horizontal bars as HTML rows: legible labels of any length, and testable rows. */
export function bars(counts: Count[], opts: BarOptions): string {
  const rows = counts.slice(0, opts.limit ?? 12);
  if (rows.length === 0) return `<div class="empty">${esc(opts.empty ?? 'nothing yet')}</div>`;
  const max = Math.max(1, ...rows.map((c) => c.count));
  return rows.map((c) => `<div class="bar-row${opts.linkable ? ' link' : ''}" data-testid="${esc(opts.rowTestId)}" data-key="${esc(c.key)}">`
    + `<span class="bar-label" title="${esc(c.key)}">${esc(c.key)}</span>`
    + `<span class="bar-track"><span class="bar" style="width:${((100 * c.count) / max).toFixed(1)}%;background:${opts.colour ?? '#0969da'}"></span></span>`
    + `<span class="bar-value">${esc(num(c.count))}</span></div>`).join('');
}

export interface SeriesOptions {
  keys?: string[];
  unit?: string;
  height?: number;
  /** Stacked bars per bucket (counts) instead of lines (rates). */
  stacked?: boolean;
  empty?: string;
  /** Warm colours for keys without a fixed one (drop reasons). */
  warm?: boolean;
}

const WARM = ['#cf222e', '#bc4c00', '#bf8700', '#8250df', '#a40e26', '#953800', '#57606a'];

/** A time series chart: one line (or stacked bar segment) per key, a legend, a time axis. */
export function timeSeries(points: SeriesPoint[], opts: SeriesOptions = {}): string {
  const keys = opts.keys ?? seriesKeys(points);
  if (points.length === 0 || keys.length === 0) return `<div class="empty">${esc(opts.empty ?? 'no data in this window')}</div>`;
  const W = 1100;
  const H = opts.height ?? 200;
  const colour = (k: string, i: number): string => (opts.warm ? KNOWN[k] ?? WARM[i % WARM.length] ?? '#57606a' : colourFor(k, i));
  const L = 44, R = 8, T = 8, B = 22;
  const pts = [...points].sort((a, b) => a.t - b.t);
  const t0 = pts[0]?.t ?? 0;
  const t1 = pts[pts.length - 1]?.t ?? t0;
  const span = Math.max(1, t1 - t0);
  const totals = pts.map((p) => keys.reduce((s, k) => s + (p.values[k] ?? 0), 0));
  const max = Math.max(0, ...(opts.stacked ? totals : pts.flatMap((p) => keys.map((k) => p.values[k] ?? 0))));
  if (max <= 0) return `<div class="empty">${esc(opts.empty ?? 'no data in this window')}</div>`;
  const x = (t: number): number => L + ((t - t0) / span) * (W - L - R);
  const y = (v: number): number => T + (H - T - B) * (1 - v / max);
  let body = '';
  for (const frac of [0, 0.5, 1]) {
    const yy = y(max * frac);
    body += `<line class="grid" x1="${L}" x2="${W - R}" y1="${yy}" y2="${yy}"/><text class="axis" x="${L - 4}" y="${yy + 4}" text-anchor="end">${esc(num(max * frac))}</text>`;
  }
  if (opts.stacked) {
    const bw = Math.max(1, ((W - L - R) / Math.max(1, pts.length)) * 0.8);
    pts.forEach((p) => {
      let acc = 0;
      keys.forEach((k, i) => {
        const v = p.values[k] ?? 0;
        if (v <= 0) return;
        const top = y(acc + v);
        body += `<rect x="${(x(p.t) - bw / 2).toFixed(1)}" y="${top.toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(acc) - top).toFixed(1)}" fill="${colour(k, i)}"><title>${esc(`${shortClock(p.t)} ${k}: ${num(v)}`)}</title></rect>`;
        acc += v;
      });
    });
  } else {
    keys.forEach((k, i) => {
      const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.values[k] ?? 0).toFixed(1)}`).join('');
      body += `<path class="line" d="${d}" stroke="${colour(k, i)}"><title>${esc(k)}</title></path>`;
    });
  }
  body += `<text class="axis" x="${L}" y="${H - 6}">${esc(shortClock(t0))}</text><text class="axis" x="${W - R}" y="${H - 6}" text-anchor="end">${esc(shortClock(t1))}</text>`;
  const legend = keys.map((k, i) => `<span class="legend-item"><i style="background:${colour(k, i)}"></i>${esc(k)}</span>`).join('');
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img">${body}</svg>`
    + `<div class="legend">${legend}${opts.unit ? `<span class="unit">${esc(opts.unit)}</span>` : ''}</div>`;
}

export function seriesKeys(points: SeriesPoint[]): string[] {
  const totals = new Map<string, number>();
  for (const p of points) for (const [k, v] of Object.entries(p.values)) totals.set(k, (totals.get(k) ?? 0) + v);
  return [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k]) => k);
}

export interface HeatOptions {
  rowLabel: (row: string) => string;
  colLabel: (col: string) => string;
  cellTestId?: string;
  format?: (v: number) => string;
  empty?: string;
  /** Width of the row-label gutter, in SVG units. */
  gutter?: number;
  /** Columns are times: wide cells, horizontal labels under the grid, only as many as fit. */
  timeColumns?: boolean;
}

/** A heat map: rows × columns, colour by value (light → dark blue, square-root scale so small cells still show). */
export function heatMap(rows: string[], cols: string[], value: (row: string, col: string) => number | null, opts: HeatOptions): string {
  if (rows.length === 0 || cols.length === 0) return `<div class="empty">${esc(opts.empty ?? 'nothing yet')}</div>`;
  const cell = Math.max(12, Math.min(44, Math.floor(720 / Math.max(rows.length, cols.length))));
  const cw = opts.timeColumns ? Math.max(8, Math.min(48, Math.floor(1000 / cols.length))) : cell;
  const ch = opts.timeColumns ? 18 : cell;
  const G = opts.gutter ?? 170;
  const top = opts.timeColumns ? 6 : 110;
  const W = G + cols.length * cw + (opts.timeColumns ? 10 : 110);
  const H = top + rows.length * ch + (opts.timeColumns ? 24 : 10);
  let max = 0;
  const vals: (number | null)[][] = rows.map((r) => cols.map((c) => {
    const v = value(r, c);
    if (v !== null && v > max) max = v;
    return v;
  }));
  if (max <= 0) return `<div class="empty">${esc(opts.empty ?? 'nothing yet')}</div>`;
  const fmt = opts.format ?? num;
  let body = '';
  if (opts.timeColumns) {
    const every = Math.max(1, Math.ceil(70 / cw));
    cols.forEach((c, j) => {
      if (j % every === 0) body += `<text class="axis" x="${G + j * cw}" y="${top + rows.length * ch + 16}">${esc(opts.colLabel(c))}</text>`;
    });
  } else {
    cols.forEach((c, j) => {
      const cx = G + j * cw + cw / 2;
      body += `<text class="axis" transform="translate(${cx + 3},${top - 4}) rotate(-55)">${esc(clip(opts.colLabel(c), 22))}<title>${esc(c)}</title></text>`;
    });
  }
  rows.forEach((r, i) => {
    const cy = top + i * ch;
    body += `<text class="axis" x="${G - 4}" y="${cy + ch / 2 + 4}" text-anchor="end">${esc(clip(opts.rowLabel(r), 26))}<title>${esc(r)}</title></text>`;
    vals[i]?.forEach((v, j) => {
      if (v === null || v <= 0) return;
      const f = max > 0 ? Math.sqrt(v / max) : 0;
      const c = cols[j] ?? '';
      body += `<rect class="heat-cell"${opts.cellTestId ? ` data-testid="${esc(opts.cellTestId)}"` : ''} data-row="${esc(r)}" data-col="${esc(c)}" x="${G + j * cw}" y="${cy}" width="${cw - 1}" height="${ch - 1}" fill="${heatColour(f)}"><title>${esc(`${r} → ${c}: ${fmt(v)}`)}</title></rect>`;
    });
  });
  body += `<rect class="heat-frame" x="${G}" y="${top}" width="${cols.length * cw}" height="${rows.length * ch}"/>`;
  return `<svg class="heat" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${body}</svg>`
    + `<div class="legend"><span class="heat-scale"></span><span class="unit">0 … ${esc(fmt(max))} (square-root scale)</span></div>`;
}

/** 0 → pale blue, 1 → deep blue. */
export function heatColour(f: number): string {
  const a = Math.min(1, Math.max(0, f));
  const r = Math.round(222 - a * (222 - 8));
  const g = Math.round(235 - a * (235 - 48));
  const b = Math.round(247 - a * (247 - 107));
  return `rgb(${r},${g},${b})`;
}

function clip(text: string, n: number): string {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}
