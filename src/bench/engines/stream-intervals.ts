import type { TcpInfo } from '../../core/socket-syscalls.ts';
import type { StreamInterval, StreamIntervalStream } from '../results/result.ts';
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
  perConnection?: PerConnection,
): { ticker: Ticker; intervals: StreamInterval[] } {
  const intervals: StreamInterval[] = [];
  let last = { sec: 0, sent: 0, received: 0 };
  let lastStreams: { sent: number; received: number; retransmits: number | null }[] = [];
  const ticker = new Ticker(options.intervalSec, (elapsedSec) => {
    const seconds = elapsedSec - last.sec;
    const sentBytes = sent() - last.sent;
    const receivedBytes = received() - last.received;
    const bytes = direction === 'reverse' ? receivedBytes : sentBytes;
    const interval: StreamInterval = {
      startSec: round(last.sec, 3),
      endSec: round(elapsedSec, 3),
      sentBytes,
      receivedBytes,
      bitsPerSecond: Math.round((bytes * 8) / seconds),
      omitted: elapsedSec <= options.omitSec + 1e-3,
    };
    if (perConnection !== undefined) {
      const now = perConnection.counts().map((count, index) => ({ ...count, info: perConnection.tcpInfo(index) }));
      const streams = now.map((count, index): StreamIntervalStream => {
        const before = lastStreams[index] ?? { sent: 0, received: 0, retransmits: 0 };
        const streamBytes = count.sends ? count.sent - before.sent : count.received - before.received;
        const sender = count.sends && count.info !== null;
        return {
          socket: index + 1,
          sentBytes: count.sent - before.sent,
          receivedBytes: count.received - before.received,
          bitsPerSecond: Math.round((streamBytes * 8) / seconds),
          retransmits: sender && before.retransmits !== null ? count.info!.retransmits - before.retransmits : null,
          snd_cwnd: sender ? count.info!.congestionWindow * count.info!.sendMss : null,
          rtt: count.info?.rttMicros ?? null,
          rttvar: count.info?.rttVarianceMicros ?? null,
        };
      });
      const retransmits = streams.map((stream) => stream.retransmits);
      interval.retransmits = retransmits.some((value) => value !== null)
        ? retransmits.reduce<number>((sum, value) => sum + (value ?? 0), 0)
        : null;
      interval.streams = streams;
      lastStreams = now.map((count) => ({ sent: count.sent, received: count.received, retransmits: count.info?.retransmits ?? null }));
    }
    intervals.push(interval);
    options.onInterval?.(interval);
    last = { sec: elapsedSec, sent: sent(), received: received() };
  });
  return { ticker, intervals };
}

/** Each connection's own counters and the kernel's TCP_INFO of it (null when it cannot be read: a Unix socket, a closed one). */
export interface PerConnection {
  counts: () => { sent: number; received: number; sends: boolean }[];
  tcpInfo: (index: number) => TcpInfo | null;
}
