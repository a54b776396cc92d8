import { countError, countedErrorOf, type ErrorCounts } from '../../core/errors.ts';
import type { DataTarget } from '../control/peer.ts';
import { connect } from '../../transport/client/connect.ts';
import { DataSession, type RunOptions } from './data-session.ts';
import { createLatencyHistogram, encodeHistogram, summarizeLatency } from '../results/histogram.ts';
import type { CrrResult, RrInterval } from '../results/result.ts';
import { LatencyRecorder } from './latency-recorder.ts';
import { round } from '../results/stats.ts';
import { requestRecord, timedOptionsRecord } from '../results/result-options.ts';
import { startLatencyIntervals } from './latency-intervals.ts';
import type { ClientSocketSettings } from './data-connections.ts';

export interface CrrOptions extends RunOptions<RrInterval> {
  /** Request bytes (or the payload's length). */
  size: number;
  /** Response bytes to wait for; defaults to the request size (an echo). */
  responseSize?: number | undefined;
  /** A real request to send instead of `size` filler bytes. */
  payload?: Buffer | undefined;
  /** Transactions in flight at once, each on its own connection. */
  concurrency: number;
}

const TRANSACTION_TIMEOUT_MS = 5_000;

/**
 * One transaction: connect, send the request, wait for the whole response, close. Resolves with
 * the connect time and the total time in milliseconds, or rejects with the failure.
 */
async function transaction(
  data: DataTarget,
  settings: ClientSocketSettings,
  request: Buffer,
  responseSize: number,
): Promise<{ connectMs: number; totalMs: number }> {
  const start = performance.now();
  const socket = await connect({ ...data, ...settings, timeout: TRANSACTION_TIMEOUT_MS });
  const connected = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      let received = 0;
      const timer = setTimeout(() => reject(Object.assign(new Error('response timed out'), { code: 'ETIMEDOUT' })), TRANSACTION_TIMEOUT_MS);
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= responseSize) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('end', () => {
        clearTimeout(timer);
        if (received < responseSize) reject(Object.assign(new Error('peer closed before the whole response'), { code: 'SHORT_RESPONSE' }));
      });
      socket.write(request);
    });
  } finally {
    socket.destroy();
  }
  return { connectMs: connected - start, totalMs: performance.now() - start };
}

/** Connect/request/response/close rate and latency, as netperf's TCP_CRR. */
export async function runCrr(options: CrrOptions): Promise<CrrResult> {
  const request = options.payload ?? Buffer.alloc(options.size, 0x61);
  const responseSize = options.responseSize ?? request.length;
  const session = await DataSession.open(options, 'echo', options.server);
  const latency = new LatencyRecorder(options.omitSec);
  const connectTimes = createLatencyHistogram();
  const failures: ErrorCounts = {};
  let running = true;
  session.startTraffic();

  const worker = async (): Promise<void> => {
    while (running) {
      try {
        const { connectMs, totalMs } = await transaction(session.peer.data, options.client, request, responseSize);
        if (!latency.recording) continue;
        latency.record(totalMs);
        connectTimes.recordValue(Math.max(1, Math.round(connectMs * 1e6)));
      } catch (error) {
        const errno = countedErrorOf(error);
        countError(failures, errno);
        // A refused or unreachable peer will not get better by hammering it.
        if (errno === 'ECONNREFUSED' || errno === 'EHOSTUNREACH' || errno === 'ENETUNREACH')
          await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  const workers = Array.from({ length: options.concurrency }, () => worker());

  const { ticker, intervals } = startLatencyIntervals(options, latency);
  const { measuredSeconds, selfCheck } = await session.run(options, ticker, {
    onMeasureStart: () => (latency.recording = true),
    stopTraffic: () => {
      latency.recording = false;
      running = false;
    },
  });
  const transactions = latency.completed;
  await Promise.all(workers);
  const serverResult = await session.finish();
  return session.result(
    'crr',
    {
      ...timedOptionsRecord(options),
      ...requestRecord(options, request.length),
      concurrency: options.concurrency,
    },
    selfCheck,
    {
      effective: session.effective(),
      intervals,
      summary: {
        measuredSeconds: round(measuredSeconds, 3),
        transactions,
        transactionsPerSecond: Math.round(transactions / measuredSeconds),
        ...latency.summary(),
        connectLatency: summarizeLatency(connectTimes),
        connectHistogram: encodeHistogram(connectTimes),
        failures,
        serverCpuPercent: serverResult?.cpuPercent ?? null,
      },
    },
  );
}
