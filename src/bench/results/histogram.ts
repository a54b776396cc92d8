import * as hdr from 'hdr-histogram-js';
import { SocktuneError } from '../../core/errors.ts';
import { round } from './stats.ts';

/**
 * Latencies are recorded in nanoseconds; the summary reports microseconds. With nothing recorded
 * every statistic is null: a percentile of no sample is not a number to print.
 */
export interface LatencySummary {
  count: number;
  minUs: number | null;
  p50Us: number | null;
  p90Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  p9999Us: number | null;
  maxUs: number | null;
  meanUs: number | null;
  stdevUs: number | null;
}

export const PERCENTILES = [50, 90, 99, 99.9, 99.99] as const;

/** A statistic that must exist (a benchmark that compares runs): null means nothing completed, which is an error there. */
export function measured(value: number | null, what: string): number {
  if (value === null) throw new SocktuneError('SOCKTUNE_ERR_TIMEOUT', `nothing was measured for ${what}: no request completed`);
  return value;
}

export function createLatencyHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

const micros = (nanos: number): number => Math.round(nanos / 10) / 100;

export function summarizeLatency(histogram: hdr.Histogram): LatencySummary {
  if (histogram.totalCount === 0) {
    return {
      count: 0,
      minUs: null,
      p50Us: null,
      p90Us: null,
      p99Us: null,
      p999Us: null,
      p9999Us: null,
      maxUs: null,
      meanUs: null,
      stdevUs: null,
    };
  }
  const at = (percentile: number): number => micros(histogram.getValueAtPercentile(percentile));
  return {
    count: histogram.totalCount,
    minUs: micros(histogram.minNonZeroValue),
    p50Us: at(50),
    p90Us: at(90),
    p99Us: at(99),
    p999Us: at(99.9),
    p9999Us: at(99.99),
    maxUs: micros(histogram.maxValue),
    meanUs: micros(histogram.mean),
    stdevUs: micros(histogram.stdDeviation),
  };
}

/** The whole histogram, compressed, so runs from several hosts can be merged exactly later. */
export function encodeHistogram(histogram: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

export function decodeHistogram(encoded: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(encoded, 32, false);
}

/** What a result says of a latency histogram: its summary, the histogram itself (encoded) and its curve. */
export function latencyReport(histogram: hdr.Histogram): {
  latency: LatencySummary;
  histogram: string;
  percentileCurve: { percentile: number; us: number }[];
} {
  return { latency: summarizeLatency(histogram), histogram: encodeHistogram(histogram), percentileCurve: percentileCurve(histogram) };
}

/** An interval's percentile in µs (two decimals), or null for an interval with no latency. */
export function intervalPercentileUs(histogram: hdr.Histogram, percentile: number): number | null {
  return histogram.totalCount ? round(histogram.getValueAtPercentile(percentile) / 1000, 2) : null;
}

/** Percentile curve points (percentile → µs) for HDR-style plots. */
export function percentileCurve(histogram: hdr.Histogram): { percentile: number; us: number }[] {
  if (histogram.totalCount === 0) return [];
  const points = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100];
  return points.map((percentile) => ({ percentile, us: micros(histogram.getValueAtPercentile(percentile)) }));
}
