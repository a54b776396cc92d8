import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SocktuneError } from '../../core/errors.ts';
import type { TestPeer } from '../control/peer.ts';
import { benchResult } from '../results/envelope.ts';
import type { CrrResult, MsgInterval, MsgResult, RrInterval, RrResult } from '../results/result.ts';
import type { ResultMessage } from '../control/control-protocol.ts';
import type { BuiltinService } from '../../transport/server/options.ts';
import type { MsgOptions } from './msg.ts';
import { bufferCapped } from '../results/warnings.ts';
import type { ClientThreadData, FromClientThread, ToClientThread } from './client-thread-messages.ts';
import type { CrrOptions } from './crr.ts';
import { DataSession } from './data-session.ts';
import type { RrOptions } from './rr.ts';
import {
  mergeCrrSummaries,
  mergeIntervals,
  mergeMsgIntervals,
  mergeMsgSummaries,
  mergeRrSummaries,
  mergeSelfChecks,
} from './thread-merge.ts';

const THREAD_ENTRY = new URL(`./client-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export type ThreadedRun =
  { command: 'rr'; options: RrOptions } | { command: 'crr'; options: CrrOptions } | { command: 'msg'; options: MsgOptions };
type ThreadedResult = RrResult | CrrResult | MsgResult;
type ThreadedInterval = RrInterval | MsgInterval;

/** How many of `total` connections each of `threads` threads takes: as even as can be, the first ones one more. */
export function shares(total: number, threads: number): number[] {
  return Array.from({ length: threads }, (_, thread) => Math.floor(total / threads) + (thread < total % threads ? 1 : 0));
}

/** What of a run's options crosses to a thread: no functions; its local ports from `first` on, and the test it joins. */
function crossing<Options extends ThreadedRun['options']>(options: Options, first: number, joined: TestPeer | undefined) {
  const { onInterval: _onInterval, interrupt: _interrupt, beforeTraffic: _beforeTraffic, ...rest } = options;
  const { localPort } = rest.client;
  return {
    ...rest,
    client: localPort === undefined ? rest.client : { ...rest.client, localPort: localPort + first },
    ...(joined === undefined ? {} : { joined: joined.data }),
  };
}

/** Thread data for a thread that takes `share` of the connections (and of an open loop's rate), from connection `first` on. */
function threadData(run: ThreadedRun, share: number, first: number, joined: TestPeer | undefined): ClientThreadData {
  if (run.command === 'crr') return { command: 'crr', options: { ...crossing(run.options, first, joined), concurrency: share } };
  if (run.command === 'msg') return { command: 'msg', options: { ...crossing(run.options, first, joined), connections: share } };
  const { rate, connections } = run.options;
  const options = {
    ...crossing(run.options, first, joined),
    connections: share,
    rate: rate === undefined ? undefined : (rate * share) / connections,
  };
  return { command: 'rr', options };
}

/** What a run spreads over its threads: rr's and msg's connections, crr's concurrency. */
function totalOf(run: ThreadedRun): number {
  return run.command === 'crr' ? run.options.concurrency : run.options.connections;
}

function serviceOf(run: ThreadedRun): BuiltinService {
  if (run.command !== 'msg') return 'echo';
  return run.options.mode === 'echo' ? 'msg-echo' : 'msg-sink';
}

function mergeIntervalsOf(run: ThreadedRun, intervals: ThreadedInterval[]): ThreadedInterval {
  return run.command === 'msg' ? mergeMsgIntervals(intervals as MsgInterval[]) : mergeIntervals(intervals as RrInterval[]);
}

interface ThreadRun {
  worker: Worker;
  intervals: ThreadedInterval[];
  finished?: { result: ThreadedResult; cpuPercent: number };
}

/**
 * rr, crr or msg spread over client threads, each running the engine on its share of the
 * connections (crr: of the concurrency) with its own histograms, all released at one instant; the
 * result is one document, counts summed and latencies from the exactly merged histograms. One test
 * at the server: this thread opens its control channel and reports its counters.
 */
export async function runOnClientThreads(run: { command: 'rr'; options: RrOptions }, threads: number): Promise<RrResult>;
export async function runOnClientThreads(run: { command: 'crr'; options: CrrOptions }, threads: number): Promise<CrrResult>;
export async function runOnClientThreads(run: { command: 'msg'; options: MsgOptions }, threads: number): Promise<MsgResult>;
export async function runOnClientThreads(run: ThreadedRun, threads: number): Promise<ThreadedResult> {
  const { options } = run;
  const counts = shares(totalOf(run), Math.min(threads, totalOf(run)));
  const peer = options.raw ? undefined : await DataSession.startPeer(options, serviceOf(run), options.server);
  const runs: ThreadRun[] = [];
  const emitted: ThreadedInterval[] = [];
  const onInterval = options.onInterval as ((interval: ThreadedInterval) => void) | undefined;
  const emitReady = (): void => {
    while (runs.every(({ intervals }) => intervals.length > emitted.length)) {
      const merged = mergeIntervalsOf(
        run,
        runs.map(({ intervals }) => intervals[emitted.length]!),
      );
      emitted.push(merged);
      onInterval?.(merged);
    }
  };
  const tell = (message: ToClientThread): void => runs.forEach(({ worker }) => worker.postMessage(message));
  const onInterrupt = (): void => tell({ type: 'interrupt' });
  options.interrupt?.addEventListener('abort', onInterrupt, { once: true });
  try {
    let first = 0;
    for (const share of counts) {
      runs.push({ worker: new Worker(THREAD_ENTRY, { workerData: threadData(run, share, first, peer) }), intervals: [] });
      first += share;
    }
    let ready = 0;
    await Promise.all(
      runs.map(
        (thread) =>
          new Promise<void>((resolve, reject) => {
            thread.worker.on('message', (message: FromClientThread) => {
              if (message.type === 'ready') {
                if (++ready === runs.length) void release(options.beforeTraffic, tell).catch(reject);
              } else if (message.type === 'interval') {
                thread.intervals.push(message.interval);
                emitReady();
              } else if (message.type === 'result') {
                thread.finished = { result: message.result, cpuPercent: message.cpuPercent };
                resolve();
              } else reject(new SocktuneError(message.code ?? 'SOCKTUNE_ERR_WORKER_CRASHED', message.message));
            });
            thread.worker.on('error', reject);
            thread.worker.on('exit', () =>
              reject(new SocktuneError('SOCKTUNE_ERR_WORKER_CRASHED', 'a client thread ended without a result')),
            );
          }),
      ),
    );
  } catch (error) {
    await Promise.all(runs.map(({ worker }) => worker.terminate()));
    peer?.abort();
    throw error;
  } finally {
    options.interrupt?.removeEventListener('abort', onInterrupt);
  }
  const server = peer === undefined ? null : await peer.finish();
  // What a thread's last, shorter interval adds, where not every thread had one.
  const unmatched = Math.max(...runs.map(({ intervals }) => intervals.length));
  for (let index = emitted.length; index < unmatched; index++)
    emitted.push(
      mergeIntervalsOf(
        run,
        runs.flatMap(({ intervals }) => (index < intervals.length ? [intervals[index]!] : [])),
      ),
    );
  return merged(
    run,
    runs.map(({ finished }) => finished!),
    emitted,
    peer,
    server,
  );
}

/** Releases the threads at once, after the command's own start barrier. */
async function release(beforeTraffic: (() => Promise<void>) | undefined, tell: (message: ToClientThread) => void): Promise<void> {
  await beforeTraffic?.();
  tell({ type: 'go' });
}

/** The one document of a threaded run: the threads' parts merged, the server's as the test's control channel reported them. */
function merged(
  run: ThreadedRun,
  finished: { result: ThreadedResult; cpuPercent: number }[],
  intervals: ThreadedInterval[],
  peer: TestPeer | undefined,
  server: ResultMessage | null,
): ThreadedResult {
  const results = finished.map(({ result }) => result);
  const common = {
    startedAt: Math.min(...results.map(({ startedAt }) => Date.parse(startedAt))),
    serverEnvironment: peer?.server?.environment ?? null,
    effective: { client: results[0]!.effective.client, server: peer?.server?.effective ?? null },
    selfCheck: mergeSelfChecks(finished.map(({ result, cpuPercent }) => ({ selfCheck: result.selfCheck, cpuPercent }))),
    interrupted: results.some((result) => result.interrupted === true),
    warnings: [
      ...(peer?.server?.warnings ?? []).map((warning) => bufferCapped('server', warning)),
      ...results[0]!.warningDetails.filter((warning) => 'side' in warning && warning.side === 'client'),
    ],
  };
  const serverCpuPercent = server?.cpuPercent ?? null;
  const clientThreads = finished.length;
  if (run.command === 'msg') {
    const each = results as MsgResult[];
    return benchResult({
      ...common,
      command: 'msg',
      intervals: intervals as MsgInterval[],
      options: { ...each[0]!.options, connections: run.options.connections, clientThreads },
      summary: mergeMsgSummaries(
        each.map(({ summary }) => summary),
        server?.metrics.messagesIn ?? null,
        serverCpuPercent,
      ),
    });
  }
  if (run.command === 'crr') {
    const each = results as CrrResult[];
    return benchResult({
      ...common,
      command: 'crr',
      intervals: intervals as RrInterval[],
      options: { ...each[0]!.options, concurrency: run.options.concurrency, clientThreads },
      summary: mergeCrrSummaries(
        each.map(({ summary }) => summary),
        serverCpuPercent,
      ),
    });
  }
  const each = results as RrResult[];
  const { rate, connections } = run.options;
  return benchResult({
    ...common,
    command: 'rr',
    intervals: intervals as RrInterval[],
    options: { ...each[0]!.options, connections, ...(rate === undefined ? {} : { rate }), clientThreads },
    summary: mergeRrSummaries(
      each.map(({ summary }) => summary),
      serverCpuPercent,
    ),
  });
}
