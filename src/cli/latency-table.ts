import { formatCount, formatMicros } from '../bench/results/format.ts';
import type { LatencySummary } from '../bench/results/histogram.ts';
import type { RrInterval } from '../bench/results/result.ts';
import { renderTable } from './table.ts';

export function latencyTable(rows: [string, LatencySummary][], columns?: number): string {
  return renderTable(
    ['stat', 'min', 'p50', 'p90', 'p99', 'p99.9', 'p99.99', 'max', 'mean', 'stdev'],
    rows.map(([name, l]) => [
      name,
      ...[l.minUs, l.p50Us, l.p90Us, l.p99Us, l.p999Us, l.p9999Us, l.maxUs, l.meanUs, l.stdevUs].map(formatMicros),
    ]),
    columns,
  );
}

export function formatLatencyInterval(interval: RrInterval, unit: string): string {
  return (
    `[${interval.startSec.toFixed(2)}-${interval.endSec.toFixed(2)} s] ` +
    `${formatCount(interval.requestsPerSecond).padStart(9)} ${unit}  p50 ` +
    `${formatMicros(interval.p50Us)}  p99 ` +
    `${formatMicros(interval.p99Us)}${interval.omitted ? '  (omitted)' : ''}`
  );
}
