import { PatternSource, PatternVerifier } from '../../transport/services/pattern.ts';
import { pumpWrites } from '../../transport/io/pump.ts';
import { SendBudget } from '../../transport/io/send-budget.ts';
import { tcpInfoOf, totalRetransmits } from './data-connections.ts';
import { DataSession, type RunOptions } from './data-session.ts';
import type { ResultMessage } from '../control/control-protocol.ts';
import type { StreamInterval, StreamResult, StreamSummary } from '../results/result.ts';
import { round } from '../results/stats.ts';
import { timedOptionsRecord } from '../results/result-options.ts';
import { startStreamIntervals } from './stream-intervals.ts';

export interface StreamOptions extends RunOptions<StreamInterval> {
  /** Bytes per write. */
  writeSize: number;
  parallel: number;
  direction: 'forward' | 'reverse' | 'bidir';
  /** Check every received byte against the deterministic pattern: at the server (forward) or here (reverse, bidir). */
  verify: boolean;
  /** iperf3 -b: bits/s each connection sends at, paced by a token bucket of its own. @default undefined (as fast as the path takes) */
  bitrate?: number | undefined;
}

const READ_BUFFER_SIZE = 128 * 1024;

/** Bulk throughput, iperf3-style, against a `socktune server`. */
export async function runStream(options: StreamOptions): Promise<StreamResult> {
  const { direction } = options;
  let received = 0;
  let sent = 0;
  const perSocket = Array.from({ length: options.parallel }, () => ({ sent: 0, received: 0, sends: direction !== 'reverse' }));
  const verifiers = options.verify && direction !== 'forward' ? Array.from({ length: options.parallel }, () => new PatternVerifier()) : [];
  const session = await DataSession.open(
    options,
    direction !== 'forward' ? 'source' : options.verify ? 'verify' : 'discard',
    { ...options.server, sourceChunkSize: options.writeSize },
    {
      connections: options.parallel,
      onread: (index) => {
        const verifier = verifiers[index];
        return {
          buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
          callback: (bytes: number, buffer: Uint8Array) => {
            received += bytes;
            perSocket[index]!.received += bytes;
            verifier?.check(buffer.subarray(0, bytes));
            return true;
          },
        };
      },
    },
  );
  const effective = session.effective();
  session.startTraffic();
  let writing = direction !== 'reverse';
  if (writing) {
    session.sockets.forEach((socket, index) => {
      const pattern = new PatternSource(options.writeSize);
      pumpWrites(
        socket,
        () => pattern.next(),
        () => writing,
        (bytes) => {
          sent += bytes;
          perSocket[index]!.sent += bytes;
        },
        options.bitrate === undefined ? undefined : new SendBudget(options.bitrate / 8),
      );
    });
  }

  const { ticker, intervals } = startStreamIntervals(
    options,
    direction,
    () => sent,
    () => received,
    {
      counts: () => perSocket,
      tcpInfo: (index) => tcpInfoOf(session.sockets[index]),
    },
  );
  let atOmit = { sent: 0, received: 0 };
  let measuredBytes = 0;
  const { measuredSeconds, selfCheck } = await session.run(options, ticker, {
    onMeasureStart: () => (atOmit = { sent, received }),
    stopTraffic: () => {
      measuredBytes = direction === 'reverse' ? received - atOmit.received : sent - atOmit.sent;
      writing = false;
    },
  });
  const retransmits = session.failed ? null : (totalRetransmits(session.sockets) ?? null);
  // The half-close lets the server read everything (forward) or stop its source and flush (reverse).
  const serverResult = await session.finish();
  // Bytes sent to a socktune server count once they have arrived: a sender's counters include what
  // still sat in its socket buffer (megabytes, on a slow link), so its rate alone would overstate.
  const drainSeconds = direction !== 'reverse' && session.peer.server ? session.drainSeconds : null;

  const serverSent = serverResult?.metrics.bytesOut ?? null;
  const clientSide = (bytes: number) => ({ bytes, side: 'client' as const });
  const serverSide = (bytes: number | null | undefined) =>
    bytes === null || bytes === undefined ? null : { bytes, side: 'server' as const };
  return session.result(
    'stream',
    {
      ...timedOptionsRecord(options),
      writeSize: options.writeSize,
      parallel: options.parallel,
      direction,
      verify: options.verify,
      ...(options.bitrate === undefined ? {} : { bitrate: options.bitrate }),
    },
    selfCheck,
    {
      effective,
      intervals,
      summary: {
        direction,
        measuredSeconds: round(measuredSeconds, 3),
        bitsPerSecond: Math.round((measuredBytes * 8) / (measuredSeconds + (drainSeconds ?? 0))),
        drainSeconds: drainSeconds === null ? null : round(drainSeconds, 3),
        sender: direction === 'reverse' ? serverSide(serverSent) : clientSide(sent),
        receiver: direction === 'reverse' ? clientSide(received) : serverSide(serverResult?.metrics.bytesIn),
        ...(direction === 'bidir' ? { reverseBytes: { sent: serverSent, received } } : {}),
        retransmits,
        verify: verifyReport(options, serverResult, sent, serverSent, verifiers),
        serverCpuPercent: serverResult?.cpuPercent ?? null,
      },
    },
  );
}

/** Forward data is checked by the server's 'verify' service; server→client data here. Nothing to check against a raw peer. */
function verifyReport(
  options: StreamOptions,
  serverResult: ResultMessage | null,
  sent: number,
  serverSent: number | null,
  verifiers: PatternVerifier[],
): StreamSummary['verify'] {
  if (!options.verify || !serverResult || serverSent === null) return null;
  if (options.direction === 'forward') {
    const { bytesIn, bytesCorrupted } = serverResult.metrics;
    return { bytesChecked: bytesIn, bytesCorrupted, bytesLost: Math.max(0, sent - bytesIn) };
  }
  const bytesChecked = verifiers.reduce((sum, v) => sum + v.bytesChecked, 0);
  return {
    bytesChecked,
    bytesCorrupted: verifiers.reduce((sum, v) => sum + v.bytesCorrupted, 0),
    bytesLost: Math.max(0, serverSent - bytesChecked),
  };
}
