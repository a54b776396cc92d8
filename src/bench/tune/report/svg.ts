/** Small SVG chart builders for the self-contained HTML report: no library, no network. */

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

export interface Bar {
  label: string;
  value: number;
  low: number;
  high: number;
  highlight: boolean;
}

/** A step of 1, 2 or 5 × 10^k that cuts `span` into about `count` pieces: ticks a reader can add up. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].find((factor) => factor * magnitude >= raw)!;
  return step * magnitude;
}

/** Ticks from 0 (rates and counts start at zero, so bars and lines compare by length) to a nice top. */
function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const step = niceStep(max, count);
  return Array.from({ length: Math.ceil(max / step - 1e-9) + 1 }, (_, i) => i * step);
}

function niceMax(value: number): number {
  return niceTicks(value).at(-1)!;
}

/** Horizontal bars with min–max error bars, best first. */
export function barChart(bars: Bar[], format: (value: number) => string, title: string): string {
  const rowHeight = 26;
  const left = 340;
  const width = 900;
  const plotWidth = width - left - 110;
  const plotBottom = 30 + bars.length * rowHeight;
  const height = plotBottom + 30;
  const max = niceMax(Math.max(...bars.map((bar) => bar.high)));
  const x = (value: number): number => left + (value / max) * plotWidth;
  const axis = niceTicks(max)
    .map(
      (t) =>
        `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="30" y2="${plotBottom}" ` +
        `class="grid"/><text x="${x(t).toFixed(1)}" y="${plotBottom + 16}" text-anchor="middle" ` +
        `class="tick">${escapeXml(format(t))}</text>`,
    )
    .join('');
  const rows = bars.map((bar, i) => {
    const y = 30 + i * rowHeight;
    return [
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end" class="label">${escapeXml(bar.label)}</text>`,
      `<rect class="bar" data-value="${bar.value}" x="${left}" y="${y + 3}" ` +
        `width="${Math.max(1, x(bar.value) - left).toFixed(1)}" height="${rowHeight - 8}" ` +
        `fill="${bar.highlight ? '#16a34a' : '#2563eb'}" opacity="0.8"/>`,
      `<line class="error-bar" x1="${x(bar.low).toFixed(1)}" x2="${x(bar.high).toFixed(1)}" ` +
        `y1="${y + 12}" y2="${y + 12}" stroke="#111" stroke-width="1.5"/>`,
      `<line x1="${x(bar.low).toFixed(1)}" x2="${x(bar.low).toFixed(1)}" y1="${y + 7}" y2="${y + 17}" stroke="#111"/>`,
      `<line x1="${x(bar.high).toFixed(1)}" x2="${x(bar.high).toFixed(1)}" y1="${y + 7}" y2="${y + 17}" stroke="#111"/>`,
      `<text x="${(x(bar.high) + 6).toFixed(1)}" y="${y + 15}" class="value">${escapeXml(format(bar.value))}</text>`,
    ].join('');
  });
  return (
    `<svg class="chart bar-chart" viewBox="0 0 ${width} ${height}" role="img" ` +
    `aria-label="${escapeXml(title)}"><text x="10" y="18" ` +
    `class="title">${escapeXml(title)}</text>${axis}${rows.join('')}</svg>`
  );
}

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

export interface Axis {
  label: string;
  log?: boolean;
  format: (value: number) => string;
  /** Fixed tick positions (in data units); otherwise five even ticks. */
  ticks?: number[];
}

/**
 * Line chart with markers; log axes for HDR-style percentile plots, linear ones from zero with nice ticks; the legend sits under the
 * plot, never on the data.
 */
export function lineChart(series: Series[], xAxis: Axis, yAxis: Axis, title: string): string {
  const width = 900;
  const legendRows = series.length;
  const margin = { left: 80, right: 20, top: 30, bottom: 60 + legendRows * 16 };
  const height = 300 + margin.bottom;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<p class="empty">${escapeXml(title)}: no data</p>`;
  const scale = (axis: Axis, values: number[], from: number, to: number): ((v: number) => number) => {
    const map = axis.log ? (v: number) => Math.log10(Math.max(v, 1e-9)) : (v: number) => v;
    const lo = Math.min(...values.map(map));
    const hi = Math.max(...values.map(map));
    const span = hi - lo || 1;
    return (v) => from + ((map(v) - lo) / span) * (to - from);
  };
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const sx = scale(xAxis, [...xs, ...(xAxis.ticks ?? [])], margin.left, width - margin.right);
  const yRange = yAxis.log ? ys : niceTicks(Math.max(...ys));
  const sy = scale(yAxis, yRange, height - margin.bottom, margin.top);
  const ticks = (axis: Axis, values: number[]): number[] => {
    if (axis.ticks) return axis.ticks;
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    if (axis.log) {
      const result: number[] = [];
      for (let e = Math.floor(Math.log10(Math.max(lo, 1e-9))); e <= Math.ceil(Math.log10(Math.max(hi, 1e-9))); e++) result.push(10 ** e);
      return result.filter((t) => t >= lo / 10 && t <= hi * 10);
    }
    return axis === yAxis ? niceTicks(hi) : Array.from({ length: 5 }, (_, i) => lo + ((hi - lo) * i) / 4);
  };
  const xTicks = ticks(xAxis, xs)
    .map(
      (t) =>
        `<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${margin.top}" ` +
        `y2="${height - margin.bottom}" class="grid"/><text x="${sx(t).toFixed(1)}" ` +
        `y="${height - margin.bottom + 16}" text-anchor="middle" ` +
        `class="tick">${escapeXml(xAxis.format(t))}</text>`,
    )
    .join('');
  const yTicks = ticks(yAxis, ys)
    .filter((t) => sy(t) >= margin.top - 1 && sy(t) <= height - margin.bottom + 1)
    .map(
      (t) =>
        `<line x1="${margin.left}" x2="${width - margin.right}" y1="${sy(t).toFixed(1)}" ` +
        `y2="${sy(t).toFixed(1)}" class="grid"/><text x="${margin.left - 6}" ` +
        `y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" ` +
        `class="tick">${escapeXml(yAxis.format(t))}</text>`,
    )
    .join('');
  const lines = series
    .map((s, i) => {
      const color = PALETTE[i % PALETTE.length]!;
      const path = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
      const markers = s.points
        .map((p) => `<circle class="point" cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${color}"/>`)
        .join('');
      const legendY = height - margin.bottom + 44 + i * 16;
      const legend =
        `<rect x="${margin.left}" y="${legendY - 9}" width="10" height="10" fill="${color}"/><text ` +
        `x="${margin.left + 16}" y="${legendY}" class="legend">${escapeXml(s.name)}</text>`;
      return `<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>${markers}${legend}`;
    })
    .join('');
  return (
    `<svg class="chart line-chart" viewBox="0 0 ${width} ${height}" role="img" ` +
    `aria-label="${escapeXml(title)}"><text x="10" y="18" ` +
    `class="title">${escapeXml(title)}</text>${xTicks}${yTicks}${lines}<rect class="plot-area" ` +
    `x="${margin.left}" y="${margin.top}" width="${width - margin.left - margin.right}" ` +
    `height="${height - margin.top - margin.bottom}" fill="none"/><text ` +
    `x="${(width / 2).toFixed(0)}" y="${height - margin.bottom + 32}" text-anchor="middle" ` +
    `class="axis">${escapeXml(xAxis.label)}</text><text x="16" y="${(height / 2).toFixed(0)}" ` +
    `transform="rotate(-90 16 ${(height / 2).toFixed(0)})" text-anchor="middle" ` +
    `class="axis">${escapeXml(yAxis.label)}</text></svg>`
  );
}
