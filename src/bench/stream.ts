import { PatternSource, PatternVerifier } from '../transport/pattern.ts';
import { pumpWrites } from '../transport/pump.ts';
import { totalRetransmits } from './data-connections.ts';
import { DataSession, type RunOptions } from './data-session.ts';
import type { StreamInterval, StreamResult } from './result.ts';
import { round, SelfMonitor } from './self-check.ts';
import { Ticker } from './ticker.ts';

export interface StreamOptions extends RunOptions<StreamInterval> {
  /** Bytes per write. */
  writeSize: number;
  parallel: number;
  direction: 'forward' | 'reverse' | 'bidir';
  /** Check the received bytes against the deterministic pattern (server→client directions). */
  verify: boolean;
}

const READ_BUFFER_SIZE = 128 * 1024;

/** Bulk throughput, iperf3-style, against a `socktune server`. */
export async function runStream(options: StreamOptions): Promise<StreamResult> {
  const { direction } = options;
  let received = 0;
  let sent = 0;
  const verifiers = options.verify && direction !== 'forward' ? Array.from({ length: options.parallel }, () => new PatternVerifier()) : [];
  const session = await DataSession.open(
    options,
    direction === 'forward' ? 'discard' : 'source',
    { ...options.server, sourceChunkSize: options.writeSize },
    options.parallel,
    (index) => {
      const verifier = verifiers[index];
      return {
        buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
        callback: (bytes: number, buffer: Uint8Array) => {
          received += bytes;
          verifier?.check(buffer.subarray(0, bytes));
          return true;
        },
      };
    },
  );
  const effectiveClient = session.effectiveClient();
  const startedAt = Date.now();
  const monitor = new SelfMonitor().start();
  let writing = direction !== 'reverse';
  if (writing) {
    for (const socket of session.sockets) {
      const pattern = new PatternSource(options.writeSize);
      pumpWrites(socket, () => pattern.next(), () => writing, (bytes) => (sent += bytes));
    }
  }

  const intervals: StreamInterval[] = [];
  let last = { sec: 0, sent: 0, received: 0 };
  const ticker = new Ticker(options.intervalSec, (elapsedSec) => {
    const sentBytes = sent - last.sent;
    const receivedBytes = received - last.received;
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
    last = { sec: elapsedSec, sent, received };
  });
  let atOmit = { sent: 0, received: 0 };
  const measuredSeconds = await session.measure(options, ticker, () => (atOmit = { sent, received }));
  const measuredBytes = direction === 'reverse' ? received - atOmit.received : sent - atOmit.sent;
  ticker.stop();
  writing = false;
  const selfCheck = monitor.stop();
  const retransmits = session.failed ? null : totalRetransmits(session.sockets) ?? null;
  // The half-close lets the server read everything (forward) or stop its source and flush (reverse).
  const serverResult = await session.finish();

  const serverSent = serverResult.metrics.bytesOut;
  const verifiedBytes = verifiers.reduce((sum, v) => sum + v.bytesChecked, 0);
  return {
    ...session.common('stream', startedAt, options, selfCheck),
    effective: { client: effectiveClient, server: session.remote.ready.effective },
    intervals,
    summary: {
      direction,
      measuredSeconds: round(measuredSeconds, 3),
      bitsPerSecond: Math.round((measuredBytes * 8) / measuredSeconds),
      sender: direction === 'reverse' ? { bytes: serverSent, side: 'server' } : { bytes: sent, side: 'client' },
      receiver: direction === 'reverse' ? { bytes: received, side: 'client' } : { bytes: serverResult.metrics.bytesIn, side: 'server' },
      ...(direction === 'bidir' ? { reverseBytes: { sent: serverSent, received } } : {}),
      retransmits,
      verify: options.verify
        ? {
            bytesChecked: verifiedBytes,
            bytesCorrupted: verifiers.reduce((sum, v) => sum + v.bytesCorrupted, 0),
            bytesLost: Math.max(0, serverSent - verifiedBytes),
          }
        : null,
      serverCpuPercent: serverResult.cpuPercent,
    },
  };
}
