import { countError, errorEntries, type ErrorCounts } from '../../core/errors.ts';
import { raiseOpenFilesLimit, type OpenFilesLimit } from '../../core/limits.ts';
import type { TestServerSettings } from '../control/control-protocol.ts';
import { heapPerConnection, processMemory } from '../results/memory.ts';
import type { ClientSocketSettings } from './data-connections.ts';
import { createLatencyHistogram, decodeHistogram, summarizeLatency } from '../results/histogram.ts';
import { RawPeer, type DataTarget, type TestPeer } from '../control/peer.ts';
import { CONNECT_TIMEOUT_MS, HeldSockets, type OpenedCounts, type OpenPlan } from './conns-open.ts';
import { ConnsOnThreads } from './conns-threads.ts';
import { shares } from './client-threads.ts';
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
  /** Client threads to open and hold the connections, each its share. @default 1 (the event loop) */
  clientThreads?: number | undefined;
}

/** Descriptors the process needs besides the connections (stdio, the loop, the control channel...). */
const SPARE_DESCRIPTORS = 64;

/** Who opens and holds the connections: the event loop, or client threads each with its share. */
interface Holder {
  open(interrupt: AbortSignal | undefined): Promise<OpenedCounts[]>;
  progress(): { opened: number; failed: number };
  stillOpen(): Promise<number>;
  close(): Promise<void>;
}

function onEventLoop(target: DataTarget, plan: OpenPlan): Holder {
  const held = new HeldSockets();
  return {
    open: async (interrupt) => {
      await held.open(target, plan, interrupt);
      return [held.counts()];
    },
    progress: () => ({ opened: held.sockets.length, failed: held.failed }),
    stillOpen: () => Promise.resolve(held.stillOpen),
    close: () => Promise.resolve(held.close()),
  };
}

/** Each thread's share of the connections and of the connects in flight, and its place in the source addresses' round. */
function threadPlans(options: ConnsOptions, threads: number): Omit<OpenPlan, 'deadline'>[] {
  const counts = shares(options.count, threads);
  const concurrency = shares(options.concurrency, threads);
  let first = 0;
  return counts.map((count, thread) => {
    const plan = {
      count,
      concurrency: concurrency[thread]!,
      sourceAddresses: options.sourceAddresses,
      firstAttempt: first,
      client: options.client,
    };
    first += count;
    return plan;
  });
}

/** Opens and holds many connections; reports connect rate, failures by errno, and memory per connection on both ends. */
export async function runConns(options: ConnsOptions): Promise<ConnsResult> {
  const limit: OpenFilesLimit = raiseOpenFilesLimit(options.count + SPARE_DESCRIPTORS);
  const warnings: Warning[] = [];
  if (limit.soft < options.count + SPARE_DESCRIPTORS) warnings.push(openFilesLimit(limit.soft, limit.hard, options.count));
  const holdMs = options.holdSec * 1000;
  const openTimeoutMs = options.openTimeoutSec * 1000;
  const threads = Math.min(options.clientThreads ?? 1, options.count, options.concurrency);
  const peer: TestPeer = options.raw
    ? new RawPeer({ host: options.target.host, port: options.target.port })
    : await RemoteTest.start(
        options.target,
        'discard',
        options.server,
        openTimeoutMs + holdMs + CONNECT_TIMEOUT_MS * 2,
        true,
        options.sourceAddresses,
      );
  let holder: Holder | undefined;
  const progress = setInterval(() => {
    if (holder !== undefined) options.onProgress?.({ ...holder.progress(), elapsedSec: (performance.now() - openStart) / 1000 });
  }, 1000);
  let openStart = performance.now();
  try {
    holder =
      threads > 1
        ? await ConnsOnThreads.start(peer.data, threadPlans(options, threads), openTimeoutMs)
        : onEventLoop(peer.data, {
            count: options.count,
            concurrency: options.concurrency,
            sourceAddresses: options.sourceAddresses,
            firstAttempt: 0,
            client: options.client,
            deadline: performance.now() + openTimeoutMs,
          });
    // From here: the client threads (their isolates) are already counted out.
    const clientMemoryBefore = processMemory(true);
    const startedAt = Date.now();
    const monitor = new SelfMonitor().start();
    openStart = performance.now();
    const opened = await holder.open(options.interrupt);
    const openSeconds = (performance.now() - openStart) / 1000;
    clearInterval(progress);
    const total = {
      opened: opened.reduce((sum, counts) => sum + counts.opened, 0),
      failed: opened.reduce((sum, counts) => sum + counts.failed, 0),
    };
    options.onProgress?.({ ...total, elapsedSec: openSeconds });
    const holdStart = performance.now();
    await sleep(holdMs, options.interrupt);
    const heldSeconds = round((performance.now() - holdStart) / 1000, 3);
    const interrupted = options.interrupt?.aborted === true;
    const clientMemory = processMemory(true);
    const stillOpen = await holder.stillOpen();
    const selfCheck = monitor.stop();
    const connectTimes = createLatencyHistogram();
    for (const counts of opened) connectTimes.add(decodeHistogram(counts.connectHistogram));
    const failures: ErrorCounts = {};
    for (const counts of opened) for (const [code, count] of errorEntries(counts.failures)) countError(failures, code, count);
    // The server reports while every connection is still held.
    const serverResult = await peer.finish();
    const server =
      peer.server && serverResult
        ? {
            connections: serverResult.metrics.connectionsCurrent,
            rssBytesPerConnection: Math.round(
              (serverResult.memory.rssBytes - peer.server.memory.rssBytes) / Math.max(1, serverResult.metrics.connectionsCurrent),
            ),
            heapBytesPerConnection: heapPerConnection(
              options.server.ioModel ?? 'loop',
              serverResult.memory.heapUsedBytes - peer.server.memory.heapUsedBytes,
              serverResult.metrics.connectionsCurrent,
            ),
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
        ...(threads > 1 ? { clientThreads: threads } : {}),
      },
      effective: { client: opened[0]!.effective, server: peer.server?.effective ?? null },
      intervals: [],
      summary: {
        target: options.count,
        opened: total.opened,
        failed: total.failed,
        failures,
        openSeconds: round(openSeconds, 3),
        connectsPerSecond: Math.round(total.opened / openSeconds),
        connectLatency: summarizeLatency(connectTimes),
        heldSeconds,
        stillOpen,
        openFilesLimit: limit,
        client: { rssBytesPerConnection: Math.round((clientMemory.rssBytes - clientMemoryBefore.rssBytes) / Math.max(1, total.opened)) },
        server,
      },
      selfCheck,
      interrupted,
      warnings: [
        ...warnings,
        ...(peer.server?.warnings ?? []).map((warning) => bufferCapped('server', warning)),
        ...(stillOpen < total.opened ? [closedWhileHeld(total.opened - stillOpen, total.opened, serverResult?.metrics.errors ?? {})] : []),
      ],
    });
  } finally {
    clearInterval(progress);
    await holder?.close();
    peer.abort();
  }
}
