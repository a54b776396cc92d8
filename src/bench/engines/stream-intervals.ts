import type { StreamInterval } from '../results/result.ts';
import { round } from '../results/stats.ts';
import { Ticker } from './ticker.ts';

/**
 * Interval reports for bulk tests (stream, and stream against iperf3): bytes each way per
 * interval, with the rate of the direction measured (server→client in reverse tests).
 */
export function startStreamIntervals(
  options: { intervalSec: number; omitSec: number; onInterval?: ((interval: StreamInterval) => void) | undefined },
  direction: 'forward' | 'reverse' | 'bidir',
  sent: () => number,
  received: () => number,
): { ticker: Ticker; intervals: StreamInterval[] } {
  const intervals: StreamInterval[] = [];
  let last = { sec: 0, sent: 0, received: 0 };
  const ticker = new Ticker(options.intervalSec, (elapsedSec) => {
    const sentBytes = sent() - last.sent;
    const receivedBytes = received() - last.received;
    const bytes = direction === 'reverse' ? receivedBytes : sentBytes;
    const interval: StreamInterval = {
      startSec: round(last.sec, 3),
      endSec: round(elapsedSec, 3),
      sentBytes,
      receivedBytes,
      bitsPerSecond: Math.round((bytes * 8) / (elapsedSec - last.sec)),
      omitted: elapsedSec <= options.omitSec + 1e-3,
    };
    intervals.push(interval);
    options.onInterval?.(interval);
    last = { sec: elapsedSec, sent: sent(), received: received() };
  });
  return { ticker, intervals };
}
