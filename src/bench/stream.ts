import { SocktuneError } from '../core/errors.ts';
import type { TunedSocket } from '../transport/connect.ts';
import { PatternSource, PatternVerifier } from '../transport/pattern.ts';
import type { TestServerSettings } from './control-protocol.ts';
import { allClosed, effectiveOf, openDataConnections, totalRetransmits, type ClientSocketSettings } from './data-connections.ts';
import { collectEnvironment } from './environment.ts';
import { RemoteTest, type ServerTarget } from './remote-test.ts';
import { RESULT_SCHEMA, saturationWarning, type StreamInterval, type StreamResult } from './result.ts';
import { round, SelfMonitor } from './self-check.ts';
import { sleep, Ticker } from './ticker.ts';

export interface StreamOptions {
  target: ServerTarget;
  durationSec: number;
  /** Warm-up seconds left out of the summary rate. */
  omitSec: number;
  /** Bytes per write. */
  writeSize: number;
  parallel: number;
  direction: 'forward' | 'reverse' | 'bidir';
  client: ClientSocketSettings;
  server: TestServerSettings;
  /** Check the received bytes against the deterministic pattern (server→client directions). */
  verify: boolean;
  intervalSec: number;
  onInterval?: (interval: StreamInterval) => void;
}

const READ_BUFFER_SIZE = 128 * 1024;
/** How long the end of a test may take to flush before the stragglers are cut. */
const DRAIN_GRACE_MS = 10_000;

/** Bulk throughput, iperf3-style, against a `socktune server`. */
export async function runStream(options: StreamOptions): Promise<StreamResult> {
  const { direction } = options;
  const service = direction === 'forward' ? 'discard' : 'source';
  const remote = await RemoteTest.start(
    options.target,
    service,
    { ...options.server, sourceChunkSize: options.writeSize },
    (options.durationSec + options.omitSec) * 1000 + DRAIN_GRACE_MS,
  );
  let received = 0;
  let sent = 0;
  const verifiers = options.verify && direction !== 'forward' ? Array.from({ length: options.parallel }, () => new PatternVerifier()) : [];
  let sockets: TunedSocket[] = [];
  try {
    sockets = await openDataConnections(remote.data, options.parallel, options.client, (index) => {
      const verifier = verifiers[index];
      return {
        buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
        callback: (bytes: number, buffer: Uint8Array) => {
          received += bytes;
          verifier?.check(buffer.subarray(0, bytes));
          return true;
        },
      };
    });
  } catch (error) {
    remote.abort();
    throw error;
  }
  const effectiveClient = effectiveOf(sockets) ?? null;
  const stop = new AbortController();
  let failure: Error | undefined;
  for (const socket of sockets) {
    socket.on('error', (error: NodeJS.ErrnoException) => {
      failure ??= new SocktuneError('SOCKTUNE_ERR_PEER_GONE', `data connection failed mid-test: ${error.code ?? error.message}`, { cause: error });
      stop.abort();
    });
    socket.on('close', () => {
      if (!stop.signal.aborted) {
        failure ??= new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'the server closed a data connection mid-test');
        stop.abort();
      }
    });
  }

  const monitor = new SelfMonitor().start();
  let writing = direction !== 'reverse';
  if (writing) {
    for (const socket of sockets) {
      const pattern = new PatternSource(options.writeSize);
      const pump = (): void => {
        while (writing && !socket.destroyed) {
          const chunk = pattern.next();
          sent += chunk.length;
          if (!socket.write(chunk)) return;
        }
      };
      socket.on('drain', pump);
      setImmediate(pump);
    }
  }

  const intervals: StreamInterval[] = [];
  let last = { sec: 0, sent: 0, received: 0 };
  let atOmit = { sent: 0, received: 0 };
  const ticker = new Ticker(options.intervalSec, (elapsedSec) => {
    const sentBytes = sent - last.sent;
    const receivedBytes = received - last.received;
    const seconds = elapsedSec - last.sec;
    const bytes = direction === 'reverse' ? receivedBytes : sentBytes;
    const interval: StreamInterval = {
      startSec: round(last.sec, 3),
      endSec: round(elapsedSec, 3),
      sentBytes,
      receivedBytes,
      bitsPerSecond: Math.round((bytes * 8) / seconds),
      omitted: elapsedSec <= options.omitSec + 1e-3,
    };
    intervals.push(interval);
    options.onInterval?.(interval);
    last = { sec: elapsedSec, sent, received };
  });
  await sleep(options.omitSec * 1000, stop.signal);
  atOmit = { sent, received };
  const measuredStart = ticker.elapsedSec;
  await sleep(options.durationSec * 1000, stop.signal);
  const measuredSeconds = ticker.elapsedSec - measuredStart;
  const measured = { sent: sent - atOmit.sent, received: received - atOmit.received };
  ticker.stop();
  writing = false;
  const selfCheck = monitor.stop();
  stop.abort();
  const retransmits = failure ? null : totalRetransmits(sockets) ?? null;
  // A half-close lets the server read everything (forward) or stop its source and flush (reverse).
  for (const socket of sockets) socket.end();
  await allClosed(sockets, DRAIN_GRACE_MS);
  if (failure) {
    remote.abort();
    throw failure;
  }
  const serverResult = await remote.finish();

  const serverSent = serverResult.metrics.bytesOut;
  const serverReceived = serverResult.metrics.bytesIn;
  const measuredBytes = direction === 'reverse' ? measured.received : measured.sent;
  const verifiedBytes = verifiers.reduce((sum, v) => sum + v.bytesChecked, 0);
  return {
    schema: RESULT_SCHEMA,
    command: 'stream',
    startedAt: new Date(Date.now() - ticker.elapsedSec * 1000).toISOString(),
    environment: { client: collectEnvironment(), server: remote.ready.environment },
    options: { ...options, target: options.target, onInterval: undefined },
    effective: { client: effectiveClient, server: remote.ready.effective },
    intervals,
    summary: {
      direction,
      measuredSeconds: round(measuredSeconds, 3),
      bitsPerSecond: Math.round((measuredBytes * 8) / measuredSeconds),
      sender: direction === 'reverse' ? { bytes: serverSent, side: 'server' } : { bytes: sent, side: 'client' },
      receiver: direction === 'reverse' ? { bytes: received, side: 'client' } : { bytes: serverReceived, side: 'server' },
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
    selfCheck,
    clientSaturated: selfCheck.clientSaturated,
    warnings: [...remote.ready.warnings.map((w) => `server: ${w}`), ...sockets[0]!.socketWarnings.map((w) => `client: ${w.message}`), ...saturationWarning(selfCheck)],
  };
}
