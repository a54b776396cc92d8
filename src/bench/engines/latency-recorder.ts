import { createLatencyHistogram, latencyReport, type LatencySummary } from '../results/histogram.ts';

/**
 * Latencies of a test (rr, crr, msg --echo): the current interval, folded into the whole measured
 * phase at each interval report and at the end, so each completion costs one histogram record,
 * not two. Nothing is recorded during the warm-up.
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
    this.interval.recordValue(nanos);
    this.completed++;
  }

  /** Adds the interval to the whole and starts a new interval: call after reading the interval. */
  foldInterval(): void {
    if (this.interval.totalCount === 0) return;
    this.total.add(this.interval);
    this.interval.reset();
  }

  summary(): { latency: LatencySummary; histogram: string; percentileCurve: { percentile: number; us: number }[] } {
    this.foldInterval();
    return latencyReport(this.total);
  }
}
