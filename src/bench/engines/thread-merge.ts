import type * as hdr from 'hdr-histogram-js';
import { countError, errorEntries, type ErrorCounts } from '../../core/errors.ts';
import {
  createLatencyHistogram,
  decodeHistogram,
  encodeHistogram,
  intervalPercentileUs,
  latencyReport,
  summarizeLatency,
} from '../results/histogram.ts';
import type { CrrSummary, MsgInterval, MsgSummary, RrInterval, RrSummary, SelfCheck } from '../results/result.ts';
import { round } from '../results/stats.ts';
import { SATURATION_THRESHOLDS } from '../results/warnings.ts';

/** The sum of encoded histograms: exact, as if one thread had recorded every value. */
function summed(encoded: readonly string[]): hdr.Histogram {
  const total = createLatencyHistogram();
  for (const each of encoded) total.add(decodeHistogram(each));
  return total;
}

function latencyOf(encoded: readonly string[]): ReturnType<typeof latencyReport> {
  return latencyReport(summed(encoded));
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** The client threads' intervals of one index, as one: counts summed, percentiles from the summed histograms, the first one's edges. */
export function mergeIntervals(intervals: readonly RrInterval[]): RrInterval {
  const total = summed(intervals.map(({ histogram }) => histogram));
  return {
    // The first thread's edges: each thread's clock started a little apart, and its intervals tile.
    startSec: intervals[0]!.startSec,
    endSec: intervals[0]!.endSec,
    requests: sum(intervals.map(({ requests }) => requests)),
    requestsPerSecond: sum(intervals.map(({ requestsPerSecond }) => requestsPerSecond)),
    p50Us: intervalPercentileUs(total, 50),
    p99Us: intervalPercentileUs(total, 99),
    histogram: encodeHistogram(total),
    omitted: intervals.every(({ omitted }) => omitted),
  };
}

/** msg's intervals of one index: counts and rates summed; in echo mode the percentiles from the summed histograms. */
export function mergeMsgIntervals(intervals: readonly MsgInterval[]): MsgInterval {
  const histograms = intervals.flatMap(({ histogram }) => (histogram === undefined ? [] : [histogram]));
  const total = histograms.length === 0 ? undefined : summed(histograms);
  return {
    // The first thread's edges: each thread's clock started a little apart, and its intervals tile.
    startSec: intervals[0]!.startSec,
    endSec: intervals[0]!.endSec,
    messages: sum(intervals.map(({ messages }) => messages)),
    messagesPerSecond: sum(intervals.map(({ messagesPerSecond }) => messagesPerSecond)),
    bitsPerSecond: sum(intervals.map(({ bitsPerSecond }) => bitsPerSecond)),
    ...(total !== undefined && total.totalCount > 0
      ? { p50Us: intervalPercentileUs(total, 50)!, p99Us: intervalPercentileUs(total, 99)! }
      : {}),
    ...(total === undefined ? {} : { histogram: encodeHistogram(total) }),
    omitted: intervals.every(({ omitted }) => omitted),
  };
}

/**
 * msg's summary of the threads' runs. The server's count is the one test's. The average batch is
 * the messages over the flushes, each thread's flushes being its messages over its average.
 */
export function mergeMsgSummaries(
  summaries: readonly MsgSummary[],
  messagesReceivedByServer: number | null,
  serverCpuPercent: number | null,
): MsgSummary {
  const messagesSent = sum(summaries.map(({ messagesSent }) => messagesSent));
  const flushes = sum(summaries.map(({ messagesSent, averageBatch }) => (averageBatch > 0 ? messagesSent / averageBatch : 0)));
  const histograms = summaries.flatMap(({ histogram }) => (histogram === null ? [] : [histogram]));
  return {
    mode: summaries[0]!.mode,
    measuredSeconds: Math.max(...summaries.map(({ measuredSeconds }) => measuredSeconds)),
    messagesPerSecond: sum(summaries.map(({ messagesPerSecond }) => messagesPerSecond)),
    bitsPerSecond: sum(summaries.map(({ bitsPerSecond }) => bitsPerSecond)),
    messagesSent,
    messagesReceivedByServer,
    unsent: sum(summaries.map(({ unsent }) => unsent)),
    averageBatch: flushes === 0 ? 0 : round(messagesSent / flushes, 1),
    ...(histograms.length === 0 ? { latency: null, histogram: null, percentileCurve: [] } : latencyOf(histograms)),
    serverCpuPercent,
  };
}

/** rr's summary of the client threads' runs; the server's CPU is the one test's, reported once. */
export function mergeRrSummaries(summaries: readonly RrSummary[], serverCpuPercent: number | null): RrSummary {
  return {
    mode: summaries[0]!.mode,
    measuredSeconds: Math.max(...summaries.map(({ measuredSeconds }) => measuredSeconds)),
    requests: sum(summaries.map(({ requests }) => requests)),
    requestsPerSecond: sum(summaries.map(({ requestsPerSecond }) => requestsPerSecond)),
    sentRequests: sum(summaries.map(({ sentRequests }) => sentRequests)),
    ...latencyOf(summaries.map(({ histogram }) => histogram)),
    serverCpuPercent,
  };
}

export function mergeCrrSummaries(summaries: readonly CrrSummary[], serverCpuPercent: number | null): CrrSummary {
  const failures: ErrorCounts = {};
  for (const summary of summaries) for (const [code, count] of errorEntries(summary.failures)) countError(failures, code, count);
  const connects = summed(summaries.map(({ connectHistogram }) => connectHistogram));
  return {
    measuredSeconds: Math.max(...summaries.map(({ measuredSeconds }) => measuredSeconds)),
    transactions: sum(summaries.map(({ transactions }) => transactions)),
    transactionsPerSecond: sum(summaries.map(({ transactionsPerSecond }) => transactionsPerSecond)),
    ...latencyOf(summaries.map(({ histogram }) => histogram)),
    connectLatency: summarizeLatency(connects),
    connectHistogram: encodeHistogram(connects),
    failures,
    serverCpuPercent,
  };
}

/**
 * The client's self-check over its threads: the process's figures (CPU, busiest thread, cgroup)
 * as any thread read them, the worst event loop, and each thread's own CPU and delay. Saturated
 * when any thread was: one thread at its limit holds back its share of the connections.
 */
export function mergeSelfChecks(threads: readonly { selfCheck: SelfCheck; cpuPercent: number }[]): SelfCheck {
  const checks = threads.map(({ selfCheck }) => selfCheck);
  const worst = (pick: (check: SelfCheck) => number | undefined): number | undefined => {
    const values = checks.map(pick).filter((value): value is number => value !== undefined);
    return values.length === 0 ? undefined : Math.max(...values);
  };
  const busiestThreadCpuPercent = worst((check) => check.busiestThreadCpuPercent);
  const scheduleLagP99Us = worst((check) => check.scheduleLagP99Us);
  const { cpuThrottledMs, cpuThrottledPeriods, cpuPeriods, cpuQuota } = checks[0]!;
  return {
    cpuPercent: worst((check) => check.cpuPercent)!,
    ...(busiestThreadCpuPercent === undefined ? {} : { busiestThreadCpuPercent }),
    eventLoopDelayP99Ms: worst((check) => check.eventLoopDelayP99Ms)!,
    eventLoopDelayMaxMs: worst((check) => check.eventLoopDelayMaxMs)!,
    ...(scheduleLagP99Us === undefined ? {} : { scheduleLagP99Us }),
    ...(cpuThrottledMs === undefined ? {} : { cpuThrottledMs, cpuThrottledPeriods, cpuPeriods }),
    ...(cpuQuota === undefined ? {} : { cpuQuota }),
    // A thread is saturated by its own figures: its core, or its event loop (the process's busiest thread may be another).
    clientThreads: threads.map(({ selfCheck, cpuPercent }) => ({
      cpuPercent: round(cpuPercent, 1),
      eventLoopDelayP99Ms: selfCheck.eventLoopDelayP99Ms,
      saturated: cpuPercent > SATURATION_THRESHOLDS.cpuPercent || selfCheck.eventLoopDelayP99Ms > SATURATION_THRESHOLDS.eventLoopDelayP99Ms,
    })),
    clientSaturated: checks.some(({ clientSaturated }) => clientSaturated),
  };
}
