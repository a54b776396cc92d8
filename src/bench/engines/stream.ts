import { PatternSource, PatternVerifier } from '../../transport/services/pattern.ts';
import { SocktuneError } from '../../core/errors.ts';
import { LINUX } from '../../core/libc.ts';
import { errnoName } from '../../core/socket-syscalls.ts';
import { pumpWrites } from '../../transport/io/pump.ts';
import { bulkOnThreads, type BulkThreads } from '../../transport/bulk/bulk-threads.ts';
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
  /** iperf3 -Z: this client's connections send with sendfile from a page-cache file, on threads. @default false */
  zeroCopy?: boolean | undefined;
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
  let writing = direction !== 'reverse';
  const zeroCopy = writing && options.zeroCopy === true ? await startZeroCopy(session, options) : undefined;
  session.startTraffic();
  if (zeroCopy !== undefined) zeroCopy.start();
  else if (writing) {
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
  // The threads' counts, read where the pump's would have been counted.
  const sentSoFar = (): number => {
    if (zeroCopy === undefined) return sent;
    zeroCopy.streams.forEach((stream, index) => (perSocket[index]!.sent = stream.bytes));
    return (sent = perSocket.reduce((total, socket) => total + socket.sent, 0));
  };

  const { ticker, intervals } = startStreamIntervals(options, direction, sentSoFar, () => received, {
    counts: () => (sentSoFar(), perSocket),
    tcpInfo: (index) => tcpInfoOf(session.sockets[index]),
  });
  let atOmit = { sent: 0, received: 0 };
  let measuredBytes = 0;
  let run: Awaited<ReturnType<typeof session.run>>;
  try {
    run = await session.run(options, ticker, {
      onMeasureStart: () => (atOmit = { sent: sentSoFar(), received }),
      stopTraffic: () => {
        measuredBytes = direction === 'reverse' ? received - atOmit.received : sentSoFar() - atOmit.sent;
        writing = false;
      },
    });
  } finally {
    // The sendfile threads end before the half-close: no byte follows the FIN.
    await zeroCopy?.stop();
  }
  const { measuredSeconds, selfCheck } = run;
  sentSoFar();
  failOnSendError(session, zeroCopy);
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
      ...(zeroCopy === undefined ? {} : { sender: 'sendfile' as const }),
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

/** The threads start before the traffic; one that cannot start ends the test as any failure would. */
async function startZeroCopy(session: DataSession, options: StreamOptions): Promise<BulkThreads> {
  try {
    return await bulkOnThreads(
      session.sockets.map((socket) => ({ socket, role: 'send' as const })),
      { chunkBytes: options.writeSize, bitsPerSecond: options.bitrate ?? 0 },
    );
  } catch (error) {
    session.failWith(error instanceof SocktuneError ? error : new SocktuneError('SOCKTUNE_ERR_WORKER_CRASHED', String(error)));
    // finish() throws that failure, after closing the connections and the control channel.
    await session.finish();
    throw error;
  }
}

/** A connection whose sendfile failed stopped sending: the test says why rather than reporting less. */
function failOnSendError(session: DataSession, zeroCopy: BulkThreads | undefined): void {
  const index = zeroCopy?.streams.findIndex((stream) => stream.errno !== 0) ?? -1;
  if (index < 0 || session.failed) return;
  const errno = zeroCopy!.streams[index]!.errno;
  const gone = errno === LINUX.EPIPE || errno === LINUX.ECONNRESET;
  session.failWith(
    new SocktuneError(
      gone ? 'SOCKTUNE_ERR_PEER_GONE' : 'SOCKTUNE_ERR_SOCKOPT',
      `connection ${index}: sendfile failed (${errnoName(errno)})`,
    ),
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
