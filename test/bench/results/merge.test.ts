import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Histogram } from 'hdr-histogram-js';
import {
  createLatencyHistogram,
  decodeHistogram,
  encodeHistogram,
  percentileCurve,
  summarizeLatency,
} from '../../../src/bench/results/histogram.ts';
import { mergeResults, type MergeSource } from '../../../src/bench/results/merge.ts';
import { collectEnvironment } from '../../../src/bench/results/environment.ts';
import type { CrrResult, RrInterval, RrResult, StreamResult } from '../../../src/bench/results/result.ts';
import { round } from '../../../src/bench/results/stats.ts';
import { SocktuneError } from '../../../src/core/errors.ts';

const environment = collectEnvironment();

function histogramOf(nanos: number[]): string {
  const histogram = createLatencyHistogram();
  for (const value of nanos) histogram.recordValue(value);
  return encodeHistogram(histogram);
}

/** An rr result as a client host would write it, with `intervals` lists of latencies (ns) one per second. */
function rrResult(startedAt: number, intervals: number[][], overrides: Partial<RrResult['summary']> = {}): RrResult {
  const all = intervals.flat();
  const histogram = createLatencyHistogram();
  for (const value of all) histogram.recordValue(value);
  return {
    schema: 'socktune/1',
    command: 'rr',
    startedAt: new Date(startedAt).toISOString(),
    environment: { client: environment, server: null },
    options: { intervalSec: 1 } as RrResult['options'],
    effective: { client: null, server: null },
    intervals: intervals.map((values, index): RrInterval => ({
      startSec: index,
      endSec: index + 1,
      requests: values.length,
      requestsPerSecond: values.length,
      p50Us: 0,
      p99Us: 0,
      histogram: histogramOf(values),
      omitted: false,
    })),
    summary: {
      mode: 'closed-loop',
      measuredSeconds: intervals.length,
      requests: all.length,
      requestsPerSecond: Math.round(all.length / intervals.length),
      sentRequests: all.length + 1,
      latency: summarizeLatency(histogram),
      histogram: encodeHistogram(histogram),
      percentileCurve: [],
      serverCpuPercent: null,
      ...overrides,
    },
    selfCheck: { cpuPercent: 10, eventLoopDelayP99Ms: 1, eventLoopDelayMaxMs: 1, clientSaturated: false },
    clientSaturated: false,
    warnings: [],
    warningDetails: [],
  };
}

const latencies = fc.array(fc.integer({ min: 1_000, max: 50_000_000 }), { minLength: 1, maxLength: 200 });

test("merged percentiles are those of one histogram holding every run's latencies (exact, not averaged)", () => {
  fc.assert(
    fc.property(fc.array(latencies, { minLength: 2, maxLength: 5 }), (runs) => {
      const t0 = Date.now();
      const sources: MergeSource[] = runs.map((values, index) => ({ label: `host${index}`, result: rrResult(t0, [values]) }));
      const merged = mergeResults(sources);
      const everything = createLatencyHistogram();
      for (const value of runs.flat()) everything.recordValue(value);
      // Encoding keeps the buckets (3 significant digits) exactly, so one pass through it is the reference.
      assert.deepEqual(merged.summary.latency, summarizeLatency(decodeHistogram(encodeHistogram(everything))));
      assert.equal(merged.summary.requests, runs.flat().length);
      assert.equal(merged.summary.sentRequests, runs.flat().length + runs.length);
      assert.equal(decodeHistogram(merged.summary.histogram as string).totalCount, runs.flat().length);
    }),
    { numRuns: 50 },
  );
});

test('a run its cgroup throttled: the merged source carries its throttled time and quota, and the warning names it', () => {
  const t0 = Date.now();
  const calm = rrResult(t0, [[1_000_000]]);
  const throttled = rrResult(t0, [[1_000_000]]);
  throttled.selfCheck = {
    ...throttled.selfCheck,
    cpuThrottledMs: 412.3,
    cpuThrottledPeriods: 37,
    cpuPeriods: 98,
    cpuQuota: 0.2,
    clientSaturated: true,
  };
  throttled.clientSaturated = true;
  const busy = rrResult(t0, [[1_000_000]]);
  busy.clientSaturated = true;
  const merged = mergeResults([
    { label: 'calm', result: calm },
    { label: 'throttled', result: throttled },
    { label: 'busy', result: busy },
  ]);
  assert.equal(merged.clientSaturated, true);
  assert.deepEqual(
    merged.sources.map(({ label, clientSaturated, cpuThrottledMs, cpuQuota }) => ({ label, clientSaturated, cpuThrottledMs, cpuQuota })),
    [
      { label: 'calm', clientSaturated: false, cpuThrottledMs: undefined, cpuQuota: undefined },
      { label: 'throttled', clientSaturated: true, cpuThrottledMs: 412.3, cpuQuota: 0.2 },
      { label: 'busy', clientSaturated: true, cpuThrottledMs: undefined, cpuQuota: undefined },
    ],
  );
  assert.ok(!('cpuThrottledMs' in merged.sources[0]!), 'absent, not undefined, where the run has none');
  const [warning] = merged.warningDetails;
  assert.deepEqual(warning?.kind === 'sources-saturated' && [warning.sources, warning.throttled], [['throttled', 'busy'], ['throttled']]);
  assert.match(merged.warnings[0]!, /saturated in throttled, busy \(throttled by its cgroup's CPU quota in throttled\)/);
  throttled.selfCheck.cpuThrottledMs = -1;
  assert.throws(
    () =>
      mergeResults([
        { label: 'calm', result: calm },
        { label: 'throttled', result: throttled },
      ]),
    /throttled: selfCheck\.cpuThrottledMs must be a number from 0/,
  );
});

test('a fast host and a slow host: the merged tail is that of the slow host, not a mean of the two p99s', () => {
  const t0 = Date.now();
  const fast = Array.from({ length: 990 }, () => 100_000);
  const slow = Array.from({ length: 10 }, () => 50_000_000);
  const merged = mergeResults([
    { label: 'fast', result: rrResult(t0, [fast]) },
    { label: 'slow', result: rrResult(t0, [slow]) },
  ]);
  const latency = merged.summary.latency as { p50Us: number; p99Us: number; p999Us: number };
  assert.ok(Math.abs(latency.p50Us - 100) < 1, `p50 ${latency.p50Us}`);
  // 1% of all requests took 50 ms: p99 sits at the boundary, p99.9 in the slow tail; the mean of
  // the two hosts' p99 (about 25 ms) would be a latency no request had.
  assert.ok(latency.p999Us > 49_000, `p99.9 ${latency.p999Us}`);
  assert.ok(latency.p99Us < 1_000 || latency.p99Us > 49_000, `p99 ${latency.p99Us}`);
});

test('intervals line up by wall-clock time: a run that started one interval later fills the next slots', () => {
  const t0 = Date.parse('2026-11-26T12:00:00.000Z');
  const a = rrResult(t0, [[1_000_000], [1_000_000, 1_000_000]]);
  const b = rrResult(t0 + 1_003, [[9_000_000, 9_000_000, 9_000_000], [9_000_000]]);
  const merged = mergeResults([
    { label: 'a', result: a },
    { label: 'b', result: b },
  ]);
  assert.equal(merged.startSkewMs, 1_003);
  assert.deepEqual(
    merged.intervals.map((slot) => [slot.startSec, slot.runs, slot.requests]),
    [
      [0, 1, 1],
      [1, 2, 5],
      [2, 1, 1],
    ],
  );
  // Slot 1 holds a's two 1 ms and b's three 9 ms requests: p50 is 9 ms, exactly.
  assert.ok(Math.abs(merged.intervals[1]!.p50Us! - 9_000) < 10, `p50 ${merged.intervals[1]!.p50Us}`);
  assert.match(merged.warnings.join('\n'), /started 1003 ms apart.*--start-at/);
});

function streamResult(startedAt: number, bytes: number, direction: 'forward' | 'reverse' = 'forward'): StreamResult {
  return {
    schema: 'socktune/1',
    command: 'stream',
    startedAt: new Date(startedAt).toISOString(),
    environment: { client: environment, server: environment },
    options: { intervalSec: 1 } as StreamResult['options'],
    effective: { client: null, server: null },
    intervals: [{ startSec: 0, endSec: 1, sentBytes: bytes, receivedBytes: 0, bitsPerSecond: bytes * 8, omitted: false }],
    summary: {
      direction,
      measuredSeconds: 1,
      bitsPerSecond: bytes * 8,
      drainSeconds: 0.001,
      sender: { bytes, side: 'client' },
      receiver: { bytes, side: 'server' },
      retransmits: 2,
      verify: { bytesChecked: bytes, bytesCorrupted: 0, bytesLost: 0 },
      serverCpuPercent: 5,
    },
    selfCheck: { cpuPercent: 10, eventLoopDelayP99Ms: 1, eventLoopDelayMaxMs: 1, clientSaturated: false },
    clientSaturated: false,
    warnings: [],
    warningDetails: [],
  };
}

test('runs started at a barrier line up on its clock; a run without it, or of another release, is refused', () => {
  const release = Date.parse('2026-11-26T12:00:00.000Z');
  const barrier = (clockOffsetMs: number) => ({ group: 'g', clients: 2, clockOffsetMs, clockRttMs: 0.2, lateMs: 0 });
  // b's clock runs 800 ms ahead: its own startedAt says 800 ms later, the common clock says 3 ms.
  const a = { ...rrResult(release + 2, [[1_000_000]]), startAt: release, barrier: barrier(0.4) };
  const b = { ...rrResult(release + 805, [[1_000_000]]), startAt: release, barrier: barrier(-800) };
  const merged = mergeResults([
    { label: 'a', result: a },
    { label: 'b', result: b },
  ]);
  assert.equal(merged.startSkewMs, 3);
  assert.deepEqual(
    merged.sources.map((source) => source.clockOffsetMs),
    [0.4, -800],
  );
  assert.deepEqual(
    merged.intervals.map((slot) => slot.runs),
    [2],
  );
  const refused = (sources: MergeSource[], pattern: RegExp): void =>
    assert.throws(
      () => mergeResults(sources),
      (error: unknown) => error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_MERGE' && pattern.test(error.message),
    );
  refused(
    [
      { label: 'a', result: a },
      { label: 'c', result: rrResult(release, [[1_000_000]]) },
    ],
    /c: barrier is missing while a started at a start barrier/,
  );
  refused(
    [
      { label: 'a', result: a },
      { label: 'd', result: { ...b, startAt: release + 60_000 } },
    ],
    /d: startAt is \d+, a's \d+: released by different barriers/,
  );
});

test('stream results add bytes, rates, retransmits and verified bytes', () => {
  const t0 = Date.now();
  const merged = mergeResults([
    { label: 'a', result: streamResult(t0, 1000) },
    { label: 'b', result: streamResult(t0, 3000) },
  ]);
  assert.deepEqual(merged.summary.sender, { bytes: 4000, side: 'client' });
  assert.deepEqual(merged.summary.receiver, { bytes: 4000, side: 'server' });
  assert.equal(merged.summary.bitsPerSecond, 32_000);
  assert.equal(merged.summary.retransmits, 4);
  assert.deepEqual(merged.summary.verify, { bytesChecked: 4000, bytesCorrupted: 0, bytesLost: 0 });
  assert.equal(merged.intervals[0]!.bitsPerSecond, 32_000);
});

test('results that do not add up are refused with SOCKTUNE_ERR_MERGE, naming the file', () => {
  const t0 = Date.now();
  const refused = (sources: MergeSource[], pattern: RegExp): void =>
    assert.throws(
      () => mergeResults(sources),
      (error: unknown) => error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_MERGE' && pattern.test(error.message),
    );
  refused([], /no result to merge/);
  // One result merges to itself: a Kubernetes test of one client pod is collected like any other.
  const alone = mergeResults([{ label: 'one.json', result: rrResult(t0, [[1000, 3000]]) }]);
  assert.equal(alone.summary.requests, 2);
  assert.equal(alone.startSkewMs, 0);
  refused(
    [
      { label: 'a.json', result: rrResult(t0, [[1000]]) },
      { label: 'b.json', result: streamResult(t0, 10) },
    ],
    /b\.json is a stream result, a\.json a rr result/,
  );
  refused(
    [
      { label: 'a.json', result: streamResult(t0, 10) },
      { label: 'b.json', result: streamResult(t0, 10, 'reverse') },
    ],
    /different directions/,
  );
  const slower = rrResult(t0, [[1000]]);
  slower.options = { intervalSec: 2 } as RrResult['options'];
  refused(
    [
      { label: 'a.json', result: rrResult(t0, [[1000]]) },
      { label: 'b.json', result: slower },
    ],
    /b\.json has 2 s intervals/,
  );
  refused(
    [
      { label: 'a.json', result: rrResult(t0, [[1000]]) },
      { label: 'x.json', result: { hello: 1 } as unknown as RrResult },
    ],
    /x\.json: not a socktune\/1 result/,
  );
});

/** What merge computed before it read histograms itself: hdr-histogram-js's decode of each, then add(). */
function referenceSum(encoded: string[]): Histogram {
  const total = createLatencyHistogram();
  for (const text of encoded) total.add(decodeHistogram(text));
  return total;
}

test('merged histograms and percentiles are byte for byte those of decoding and adding with hdr-histogram-js', () => {
  // Empty intervals, runs of different lengths (slots of fewer runs), 0 ns, the first buckets, the last.
  const latency = fc.oneof(
    fc.integer({ min: 0, max: 5_000 }),
    fc.integer({ min: 1_000, max: 50_000_000 }),
    fc.integer({ min: 0, max: 3_600_000_000_000 }),
  );
  const run = fc.array(fc.array(latency, { maxLength: 40 }), { minLength: 1, maxLength: 4 });
  fc.assert(
    fc.property(fc.array(run, { minLength: 2, maxLength: 4 }), (runs) => {
      const t0 = Date.now();
      const results = runs.map((intervals) => rrResult(t0, intervals));
      const merged = mergeResults(results.map((result, index) => ({ label: `host${index}`, result })));
      const summary = referenceSum(results.map((result) => result.summary.histogram));
      assert.equal(merged.summary.histogram, encodeHistogram(summary));
      assert.deepEqual(merged.summary.latency, summarizeLatency(summary));
      assert.deepEqual(merged.summary.percentileCurve, percentileCurve(summary));
      merged.intervals.forEach((slot, index) => {
        const total = referenceSum(results.flatMap((result) => result.intervals[index]?.histogram ?? []));
        const at = (percentile: number): number => (total.totalCount ? round(total.getValueAtPercentile(percentile) / 1000, 2) : 0);
        assert.equal(slot.p50Us, at(50));
        assert.equal(slot.p99Us, at(99));
      });
    }),
    // Each run builds and encodes a dozen histograms: 25 cover the shapes above in a few seconds.
    { numRuns: 25 },
  );
});

test('crr failures add up under any code, "constructor" and "__proto__" included', () => {
  const t0 = Date.now();
  const crr = (failures: Record<string, number>): CrrResult => {
    const { summary, ...rest } = rrResult(t0, [[1_000_000]]);
    return {
      ...rest,
      command: 'crr',
      options: rest.options as unknown as CrrResult['options'],
      summary: {
        measuredSeconds: summary.measuredSeconds,
        transactions: summary.requests,
        transactionsPerSecond: summary.requestsPerSecond,
        latency: summary.latency,
        connectLatency: summary.latency,
        connectHistogram: summary.histogram,
        histogram: summary.histogram,
        percentileCurve: summary.percentileCurve,
        failures,
        serverCpuPercent: null,
      },
    };
  };
  const merged = mergeResults([
    { label: 'a', result: crr(JSON.parse('{"ECONNREFUSED":2,"constructor":1,"__proto__":4}') as Record<string, number>) },
    { label: 'b', result: crr(JSON.parse('{"constructor":2,"__proto__":1,"ETIMEDOUT":1}') as Record<string, number>) },
  ]);
  assert.equal(JSON.stringify(merged.summary.failures), '{"ECONNREFUSED":2,"constructor":3,"__proto__":5,"ETIMEDOUT":1}');
});

test('20,000 runs of one interval each (a test of many pods) merge into one slot', { timeout: 120_000 }, () => {
  const t0 = Date.now();
  // One document for every source: what is being measured is the merge, not making 20,000 histograms.
  const result = rrResult(t0, [[100_000, 2_000_000, 3_000]]);
  const sources = Array.from({ length: 20_000 }, (_, index) => ({ label: `pod-${index}`, result }));
  const merged = mergeResults(sources);
  assert.equal(merged.intervals.length, 1);
  assert.equal(merged.intervals[0]!.runs, 20_000);
  assert.equal(merged.intervals[0]!.requests, 60_000);
  assert.equal((merged.summary.latency as { count: number }).count, 60_000);
  assert.equal(merged.sources.length, 20_000);
});
