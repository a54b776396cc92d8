import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createLatencyHistogram, decodeHistogram, encodeHistogram, summarizeLatency } from '../../../src/bench/results/histogram.ts';
import type { MsgInterval, MsgSummary, RrInterval, RrSummary, SelfCheck } from '../../../src/bench/results/result.ts';
import { shares } from '../../../src/bench/engines/client-threads.ts';
import {
  mergeIntervals,
  mergeMsgIntervals,
  mergeMsgSummaries,
  mergeRrSummaries,
  mergeSelfChecks,
} from '../../../src/bench/engines/thread-merge.ts';

function histogramOf(nanos: number[]): string {
  const histogram = createLatencyHistogram();
  for (const value of nanos) histogram.recordValue(value);
  return encodeHistogram(histogram);
}

function summaryOf(nanos: number[]): RrSummary {
  const histogram = histogramOf(nanos);
  return {
    mode: 'closed-loop',
    measuredSeconds: 1,
    requests: nanos.length,
    requestsPerSecond: nanos.length,
    sentRequests: nanos.length + 1,
    latency: summarizeLatency(decodeHistogram(histogram)),
    histogram,
    percentileCurve: [],
    serverCpuPercent: null,
  };
}

const latencies = fc.array(fc.integer({ min: 1_000, max: 50_000_000 }), { minLength: 1, maxLength: 100 });

test('threads’ summaries merge exactly: the percentiles are those of one histogram that recorded every value', () => {
  fc.assert(
    fc.property(fc.array(latencies, { minLength: 2, maxLength: 4 }), (threads) => {
      const merged = mergeRrSummaries(threads.map(summaryOf), 12.5);
      const all = summaryOf(threads.flat());
      assert.deepEqual(merged.latency, all.latency);
      assert.equal(merged.requests, all.requests);
      assert.equal(
        merged.sentRequests,
        threads.reduce((total, values) => total + values.length + 1, 0),
      );
      assert.equal(merged.serverCpuPercent, 12.5);
    }),
    { numRuns: 30 },
  );
});

test('threads’ intervals of one index merge into the slot’s sum: counts, histogram, span; omitted only if every one was', () => {
  const interval = (startSec: number, endSec: number, nanos: number[], omitted: boolean): RrInterval => ({
    startSec,
    endSec,
    requests: nanos.length,
    requestsPerSecond: nanos.length * 10,
    p50Us: null,
    p99Us: null,
    histogram: histogramOf(nanos),
    omitted,
  });
  const merged = mergeIntervals([interval(0, 0.1, [1000, 2000], true), interval(0.001, 0.102, [3_000_000], false)]);
  assert.deepEqual(
    { ...merged, histogram: decodeHistogram(merged.histogram).totalCount },
    // 3000.32: the HDR bucket of 3 ms at 3 significant digits.
    { startSec: 0, endSec: 0.1, requests: 3, requestsPerSecond: 30, p50Us: 2, p99Us: 3000.32, histogram: 3, omitted: false },
  );
  assert.equal(mergeIntervals([interval(0, 1, [], true), interval(0, 1, [], true)]).p50Us, null);
});

test('the self-check of threads: saturated if any thread was, with each thread’s own CPU and delay', () => {
  const check = (eventLoopDelayP99Ms: number, clientSaturated: boolean): SelfCheck => ({
    cpuPercent: 150,
    busiestThreadCpuPercent: clientSaturated ? 99 : 60,
    eventLoopDelayP99Ms,
    eventLoopDelayMaxMs: eventLoopDelayP99Ms * 2,
    clientSaturated,
  });
  const merged = mergeSelfChecks([
    { selfCheck: check(0.5, false), cpuPercent: 60.04 },
    { selfCheck: check(30, true), cpuPercent: 99.2 },
  ]);
  assert.equal(merged.clientSaturated, true);
  assert.equal(merged.eventLoopDelayP99Ms, 30);
  assert.equal(merged.busiestThreadCpuPercent, 99);
  assert.deepEqual(merged.clientThreads, [
    { cpuPercent: 60, eventLoopDelayP99Ms: 0.5, saturated: false },
    { cpuPercent: 99.2, eventLoopDelayP99Ms: 30, saturated: true },
  ]);
  assert.equal(mergeSelfChecks([{ selfCheck: check(0.5, false), cpuPercent: 50 }]).clientSaturated, false);
});

test('connections are shared as evenly as can be, every thread at least one', () => {
  assert.deepEqual(shares(5, 2), [3, 2]);
  assert.deepEqual(shares(4, 4), [1, 1, 1, 1]);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 256 }), (total, wanted) => {
      const threads = Math.min(total, wanted);
      const each = shares(total, threads);
      assert.equal(each.length, threads);
      assert.equal(
        each.reduce((sum, share) => sum + share, 0),
        total,
      );
      assert.ok(Math.max(...each) - Math.min(...each) <= 1 && Math.min(...each) >= 1);
    }),
  );
});

test('msg: threads’ echo intervals and summaries merge exactly; one-way ones add up without latencies', () => {
  const echoInterval = (nanos: number[]): MsgInterval => ({
    startSec: 0,
    endSec: 0.5,
    messages: nanos.length,
    messagesPerSecond: nanos.length * 2,
    bitsPerSecond: nanos.length * 1088,
    histogram: histogramOf(nanos),
    omitted: false,
  });
  const interval = mergeMsgIntervals([echoInterval([1000, 2000]), echoInterval([4_000_000])]);
  assert.equal(interval.messages, 3);
  assert.equal(decodeHistogram(interval.histogram!).totalCount, 3);
  assert.equal(interval.p50Us, 2);
  const oneWay = mergeMsgIntervals([
    { ...echoInterval([]), histogram: undefined, messages: 5 },
    { ...echoInterval([]), histogram: undefined, messages: 7 },
  ]);
  assert.equal(oneWay.messages, 12);
  assert.equal(oneWay.p99Us, undefined);
  assert.equal(oneWay.histogram, undefined);

  const summary = (messagesSent: number, averageBatch: number, histogram: string | null): MsgSummary => ({
    mode: histogram === null ? 'one-way' : 'echo',
    measuredSeconds: 1,
    messagesPerSecond: messagesSent,
    bitsPerSecond: messagesSent * 544,
    messagesSent,
    messagesReceivedByServer: null,
    unsent: 1,
    averageBatch,
    latency: null,
    histogram,
    percentileCurve: [],
    serverCpuPercent: null,
  });
  const merged = mergeMsgSummaries([summary(1000, 100, null), summary(3000, 10, null)], 3998, 40);
  // 10 flushes and 300: 4000 messages in 310 flushes.
  assert.equal(merged.averageBatch, 12.9);
  assert.deepEqual([merged.messagesSent, merged.messagesReceivedByServer, merged.unsent, merged.latency], [4000, 3998, 2, null]);
  const echo = mergeMsgSummaries([summary(2, 1, histogramOf([1000, 2000])), summary(1, 1, histogramOf([9000]))], null, null);
  assert.deepEqual(echo.latency, summarizeLatency(decodeHistogram(histogramOf([1000, 2000, 9000]))));
});
