import type { RunOptions } from './data-session.ts';
import type { RrInterval } from '../results/result.ts';
import { encodeHistogram, intervalPercentileUs } from '../results/histogram.ts';
import { round } from '../results/stats.ts';
import type { LatencyRecorder } from './latency-recorder.ts';
import { Ticker } from './ticker.ts';

/**
 * Interval reports for latency tests (rr, crr): completions and p50/p99 of each interval, from a
 * histogram that is reset at every tick.
 */
export function startLatencyIntervals(
  options: Pick<RunOptions<RrInterval>, 'intervalSec' | 'onInterval'>,
  recorder: LatencyRecorder,
): { ticker: Ticker; intervals: RrInterval[] } {
  const histogram = recorder.interval;
  const intervals: RrInterval[] = [];
  let last = { sec: 0, completed: 0 };
  const ticker = new Ticker(options.intervalSec, (elapsedSec) => {
    const count = recorder.completed;
    const requests = count - last.completed;
    const sample: RrInterval = {
      startSec: round(last.sec, 3),
      endSec: round(elapsedSec, 3),
      requests,
      requestsPerSecond: Math.round(requests / (elapsedSec - last.sec)),
      p50Us: intervalPercentileUs(histogram, 50),
      p99Us: intervalPercentileUs(histogram, 99),
      histogram: encodeHistogram(histogram),
      omitted: !recorder.recording,
    };
    recorder.foldInterval();
    intervals.push(sample);
    options.onInterval?.(sample);
    last = { sec: elapsedSec, completed: count };
  });
  return { ticker, intervals };
}
