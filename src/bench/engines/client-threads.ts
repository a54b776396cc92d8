import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SocktuneError } from '../../core/errors.ts';
import type { TestPeer } from '../control/peer.ts';
import { benchResult } from '../results/envelope.ts';
import type { CrrResult, RrInterval, RrResult, SelfCheck } from '../results/result.ts';
import { bufferCapped, type Warning } from '../results/warnings.ts';
import type { ClientThreadData, FromClientThread, ToClientThread } from './client-thread-messages.ts';
import type { CrrOptions } from './crr.ts';
import { DataSession } from './data-session.ts';
import type { RrOptions } from './rr.ts';
import { mergeCrrSummaries, mergeIntervals, mergeRrSummaries, mergeSelfChecks } from './thread-merge.ts';

const THREAD_ENTRY = new URL(`./client-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export type ThreadedRun = { command: 'rr'; options: RrOptions } | { command: 'crr'; options: CrrOptions };

/** How many of `total` connections each of `threads` threads takes: as even as can be, the first ones one more. */
export function shares(total: number, threads: number): number[] {
  return Array.from({ length: threads }, (_, thread) => Math.floor(total / threads) + (thread < total % threads ? 1 : 0));
}

/** What of a run's options crosses to a thread: no functions; its local ports from `first` on, and the test it joins. */
function crossing<Options extends RrOptions | CrrOptions>(options: Options, first: number, joined: TestPeer | undefined) {
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
  const { rate, connections } = run.options;
  const options = {
    ...crossing(run.options, first, joined),
    connections: share,
    rate: rate === undefined ? undefined : (rate * share) / connections,
  };
  return { command: 'rr', options };
}

interface ThreadRun {
  worker: Worker;
  intervals: RrInterval[];
  finished?: { result: RrResult | CrrResult; cpuPercent: number };
}

/**
 * rr or crr spread over client threads, each running the engine on its share of the connections
 * (crr: of the concurrency) with its own histograms, all released at one instant; the result is
 * one document, counts summed and latencies from the exactly merged histograms. One test at the
 * server: this thread opens its control channel and reports its counters.
 */
export async function runOnClientThreads(run: { command: 'rr'; options: RrOptions }, threads: number): Promise<RrResult>;
export async function runOnClientThreads(run: { command: 'crr'; options: CrrOptions }, threads: number): Promise<CrrResult>;
export async function runOnClientThreads(run: ThreadedRun, threads: number): Promise<RrResult | CrrResult> {
  const { options } = run;
  const total = run.command === 'rr' ? run.options.connections : run.options.concurrency;
  const counts = shares(total, Math.min(threads, total));
  const peer = options.raw ? undefined : await DataSession.startPeer(options, 'echo', options.server);
  const runs: ThreadRun[] = [];
  const emitted: RrInterval[] = [];
  const emitReady = (): void => {
    while (runs.every(({ intervals }) => intervals.length > emitted.length)) {
      const merged = mergeIntervals(runs.map(({ intervals }) => intervals[emitted.length]!));
      emitted.push(merged);
      options.onInterval?.(merged);
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
  const finished = runs.map(({ finished }) => finished!);
  const server = peer === undefined ? null : await peer.finish();
  // What a thread's last, shorter interval adds, where not every thread had one.
  const unmatched = Math.max(...runs.map(({ intervals }) => intervals.length));
  for (let index = emitted.length; index < unmatched; index++)
    emitted.push(mergeIntervals(runs.flatMap(({ intervals }) => (index < intervals.length ? [intervals[index]!] : []))));
  return merged(run, finished, emitted, peer, server?.cpuPercent ?? null, counts.length);
}

/** Releases the threads at once, after the command's own start barrier. */
async function release(beforeTraffic: (() => Promise<void>) | undefined, tell: (message: ToClientThread) => void): Promise<void> {
  await beforeTraffic?.();
  tell({ type: 'go' });
}

function merged(
  run: ThreadedRun,
  finished: { result: RrResult | CrrResult; cpuPercent: number }[],
  intervals: RrInterval[],
  peer: TestPeer | undefined,
  serverCpuPercent: number | null,
  threads: number,
): RrResult | CrrResult {
  const results = finished.map(({ result }) => result);
  const selfCheck: SelfCheck = mergeSelfChecks(finished.map(({ result, cpuPercent }) => ({ selfCheck: result.selfCheck, cpuPercent })));
  const warnings: Warning[] = [
    ...(peer?.server?.warnings ?? []).map((warning) => bufferCapped('server', warning)),
    ...results[0]!.warningDetails.filter((warning) => 'side' in warning && warning.side === 'client'),
  ];
  const common = {
    startedAt: Math.min(...results.map(({ startedAt }) => Date.parse(startedAt))),
    serverEnvironment: peer?.server?.environment ?? null,
    effective: { client: results[0]!.effective.client, server: peer?.server?.effective ?? null },
    intervals,
    selfCheck,
    interrupted: results.some((result) => result.interrupted === true),
    warnings,
  };
  if (run.command === 'crr')
    return benchResult({
      ...common,
      command: 'crr',
      options: { ...(results[0] as CrrResult).options, concurrency: run.options.concurrency, clientThreads: threads },
      summary: mergeCrrSummaries(
        results.map((result) => (result as CrrResult).summary),
        serverCpuPercent,
      ),
    });
  const { rate, connections } = run.options;
  return benchResult({
    ...common,
    command: 'rr',
    options: {
      ...(results[0] as RrResult).options,
      connections,
      ...(rate === undefined ? {} : { rate }),
      clientThreads: threads,
    },
    summary: mergeRrSummaries(
      results.map((result) => (result as RrResult).summary),
      serverCpuPercent,
    ),
  });
}
