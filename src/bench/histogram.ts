import * as hdr from 'hdr-histogram-js';

/** Latencies are recorded in nanoseconds; the summary reports microseconds. */
export interface LatencySummary {
  count: number;
  minUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  p9999Us: number;
  maxUs: number;
  meanUs: number;
  stdevUs: number;
}

export const PERCENTILES = [50, 90, 99, 99.9, 99.99] as const;

export function createLatencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
}

const micros = (nanos: number): number => Math.round(nanos / 10) / 100;

export function summarizeLatency(histogram: hdr.Histogram): LatencySummary {
  const empty = histogram.totalCount === 0;
  const at = (percentile: number): number => (empty ? 0 : micros(histogram.getValueAtPercentile(percentile)));
  return {
    count: histogram.totalCount,
    minUs: empty ? 0 : micros(histogram.minNonZeroValue),
    p50Us: at(50),
    p90Us: at(90),
    p99Us: at(99),
    p999Us: at(99.9),
    p9999Us: at(99.99),
    maxUs: empty ? 0 : micros(histogram.maxValue),
    meanUs: empty ? 0 : micros(histogram.mean),
    stdevUs: empty ? 0 : micros(histogram.stdDeviation),
  };
}

/** The whole histogram, compressed, so runs from several hosts can be merged exactly later. */
export function encodeHistogram(histogram: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

export function decodeHistogram(encoded: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(encoded, 32, false);
}

/** Percentile curve points (percentile → µs) for HDR-style plots. */
export function percentileCurve(histogram: hdr.Histogram): { percentile: number; us: number }[] {
  if (histogram.totalCount === 0) return [];
  const points = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100];
  return points.map((percentile) => ({ percentile, us: micros(histogram.getValueAtPercentile(percentile)) }));
}
