import { createLatencyHistogram, encodeHistogram, percentileCurve, summarizeLatency, type LatencySummary } from '../results/histogram.ts';

/**
 * Latencies of a test (rr, crr, msg --echo): the whole measured phase, and the current interval,
 * which the interval reports reset. Nothing is recorded during the warm-up.
 */
export class LatencyRecorder {
  readonly total = createLatencyHistogram();
  readonly interval = createLatencyHistogram();
  recording: boolean;
  /** Completions recorded so far. */
  completed = 0;

  constructor(omitSec: number) {
    this.recording = omitSec === 0;
  }

  /** One completion that took `ms` milliseconds, if the measured phase is on. */
  record(ms: number): void {
    if (!this.recording) return;
    const nanos = Math.max(1, Math.round(ms * 1e6));
    this.total.recordValue(nanos);
    this.interval.recordValue(nanos);
    this.completed++;
  }

  summary(): { latency: LatencySummary; histogram: string; percentileCurve: { percentile: number; us: number }[] } {
    return { latency: summarizeLatency(this.total), histogram: encodeHistogram(this.total), percentileCurve: percentileCurve(this.total) };
  }
}
