import { countError, countedErrorOf, type ErrorCounts } from '../../core/errors.ts';
import { raiseOpenFilesLimit, type OpenFilesLimit } from '../../core/limits.ts';
import { connect, type TunedSocket } from '../../transport/client/connect.ts';
import type { TestServerSettings } from '../control/control-protocol.ts';
import { processMemory } from '../results/memory.ts';
import type { ClientSocketSettings } from './data-connections.ts';
import { createLatencyHistogram, summarizeLatency } from '../results/histogram.ts';
import { RawPeer, type TestPeer } from '../control/peer.ts';
import { RemoteTest, type ServerTarget } from '../control/remote-test.ts';
import type { ConnsResult } from '../results/result.ts';
import { benchResult } from '../results/envelope.ts';
import { bufferCapped, closedWhileHeld, openFilesLimit, type Warning } from '../results/warnings.ts';
import { SelfMonitor } from './self-check.ts';
import { round } from '../results/stats.ts';
import { commonOptionsRecord } from '../results/result-options.ts';
import { sleep } from './ticker.ts';

export interface ConnsOptions {
  target: ServerTarget;
  raw?: boolean;
  /** Connections to open and hold. */
  count: number;
  holdSec: number;
  /** Local addresses to connect from, round-robin (each has its own ephemeral port range). */
  sourceAddresses: string[];
  /** Connects in flight at once. */
  concurrency: number;
  /** Give up opening after this long; whatever is open by then is held. */
  openTimeoutSec: number;
  client: ClientSocketSettings;
  server: TestServerSettings;
  onProgress?: (progress: { opened: number; failed: number; elapsedSec: number }) => void;
  /** Ctrl-C: stops opening and holding; the result keeps what was measured, marked `interrupted`. */
  interrupt?: AbortSignal | undefined;
}

const CONNECT_TIMEOUT_MS = 10_000;
/** Descriptors the process needs besides the connections (stdio, the loop, the control channel...). */
const SPARE_DESCRIPTORS = 64;

/** Opens and holds many connections; reports connect rate, failures by errno, and memory per connection on both ends. */
export async function runConns(options: ConnsOptions): Promise<ConnsResult> {
  const limit: OpenFilesLimit = raiseOpenFilesLimit(options.count + SPARE_DESCRIPTORS);
  const warnings: Warning[] = [];
  if (limit.soft < options.count + SPARE_DESCRIPTORS) warnings.push(openFilesLimit(limit.soft, limit.hard, options.count));
  const holdMs = options.holdSec * 1000;
  const peer: TestPeer = options.raw
    ? new RawPeer({ host: options.target.host, port: options.target.port })
    : await RemoteTest.start(
        options.target,
        'discard',
        options.server,
        (options.openTimeoutSec + options.holdSec) * 1000 + CONNECT_TIMEOUT_MS * 2,
        true,
        options.sourceAddresses,
      );
  const clientMemoryBefore = processMemory(true);
  const sockets: TunedSocket[] = [];
  const failures: ErrorCounts = {};
  const connectTimes = createLatencyHistogram();
  let failed = 0;
  let attempts = 0;
  let closedEarly = 0;
  const startedAt = Date.now();
  const monitor = new SelfMonitor().start();
  const openStart = performance.now();
  const deadline = openStart + options.openTimeoutSec * 1000;
  const progress = setInterval(
    () => options.onProgress?.({ opened: sockets.length, failed, elapsedSec: (performance.now() - openStart) / 1000 }),
    1000,
  );

  const opener = async (): Promise<void> => {
    while (attempts < options.count && performance.now() < deadline && options.interrupt?.aborted !== true) {
      const localAddress =
        options.sourceAddresses.length > 0 ? options.sourceAddresses[attempts % options.sourceAddresses.length] : undefined;
      attempts++;
      const start = performance.now();
      try {
        const socket = await connect({
          ...peer.data,
          ...options.client,
          ...(localAddress ? { localAddress } : {}),
          timeout: CONNECT_TIMEOUT_MS,
        });
        connectTimes.recordValue(Math.max(1, Math.round((performance.now() - start) * 1e6)));
        socket.on('error', () => {});
        socket.once('close', () => closedEarly++);
        socket.resume();
        sockets.push(socket);
      } catch (error) {
        failed++;
        const errno = countedErrorOf(error);
        countError(failures, errno);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, () => opener()));
    const openSeconds = (performance.now() - openStart) / 1000;
    clearInterval(progress);
    options.onProgress?.({ opened: sockets.length, failed, elapsedSec: openSeconds });
    const holdStart = performance.now();
    await sleep(holdMs, options.interrupt);
    const heldSeconds = round((performance.now() - holdStart) / 1000, 3);
    const interrupted = options.interrupt?.aborted === true;
    const clientMemory = processMemory(true);
    const stillOpen = sockets.length - closedEarly;
    const selfCheck = monitor.stop();
    // Read while held: the server closes its side of the test once it has reported.
    const effectiveClient = sockets[0]?.effectiveSocketOptions() ?? null;
    // The server reports while every connection is still held.
    const serverResult = await peer.finish();
    const server =
      peer.server && serverResult
        ? {
            connections: serverResult.metrics.connectionsCurrent,
            rssBytesPerConnection: Math.round(
              (serverResult.memory.rssBytes - peer.server.memory.rssBytes) / Math.max(1, serverResult.metrics.connectionsCurrent),
            ),
            // The heap figure is the main thread's: it holds the connections only in the loop model.
            heapBytesPerConnection:
              (options.server.ioModel ?? 'loop') === 'loop'
                ? Math.round(
                    (serverResult.memory.heapUsedBytes - peer.server.memory.heapUsedBytes) /
                      Math.max(1, serverResult.metrics.connectionsCurrent),
                  )
                : null,
            cpuPercent: serverResult.cpuPercent,
          }
        : null;
    return benchResult({
      command: 'conns',
      startedAt,
      serverEnvironment: peer.server?.environment ?? null,
      options: {
        ...commonOptionsRecord(options),
        count: options.count,
        holdSec: options.holdSec,
        sourceAddresses: [...options.sourceAddresses],
        concurrency: options.concurrency,
        openTimeoutSec: options.openTimeoutSec,
      },
      effective: { client: effectiveClient, server: peer.server?.effective ?? null },
      intervals: [],
      summary: {
        target: options.count,
        opened: sockets.length,
        failed,
        failures,
        openSeconds: round(openSeconds, 3),
        connectsPerSecond: Math.round(sockets.length / openSeconds),
        connectLatency: summarizeLatency(connectTimes),
        heldSeconds,
        stillOpen,
        openFilesLimit: limit,
        client: { rssBytesPerConnection: Math.round((clientMemory.rssBytes - clientMemoryBefore.rssBytes) / Math.max(1, sockets.length)) },
        server,
      },
      selfCheck,
      interrupted,
      warnings: [
        ...warnings,
        ...(peer.server?.warnings ?? []).map((warning) => bufferCapped('server', warning)),
        ...(stillOpen < sockets.length
          ? [closedWhileHeld(sockets.length - stillOpen, sockets.length, serverResult?.metrics.errors ?? {})]
          : []),
      ],
    });
  } finally {
    clearInterval(progress);
    for (const socket of sockets) socket.destroy();
    peer.abort();
  }
}
