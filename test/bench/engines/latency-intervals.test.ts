import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunOptions } from '../../../src/bench/engines/data-session.ts';
import { startLatencyIntervals } from '../../../src/bench/engines/latency-intervals.ts';
import { LatencyRecorder } from '../../../src/bench/engines/latency-recorder.ts';
import { decodeHistogram } from '../../../src/bench/results/histogram.ts';
import type { RrInterval } from '../../../src/bench/results/result.ts';
import { fakeTime } from '../../../testkit/clock.ts';

/** Only what the interval reports read of a test's options. */
const optionsOf = (intervalSec: number, onInterval?: (interval: RrInterval) => void): RunOptions<RrInterval> =>
  ({ intervalSec, onInterval }) as unknown as RunOptions<RrInterval>;

const near = (actual: number | null, expected: number): void =>
  assert.ok(actual !== null && Math.abs(actual - expected) <= expected * 0.001, `${actual} vs ${expected}`);

test('latency intervals: each report has its own completions, rate and percentiles, and folds into the whole', (t) => {
  const advance = fakeTime(t);
  const recorder = new LatencyRecorder(0);
  const reported: RrInterval[] = [];
  const { ticker, intervals } = startLatencyIntervals(
    optionsOf(0.5, (interval) => reported.push(interval)),
    recorder,
  );
  for (let i = 0; i < 99; i++) recorder.record(1);
  recorder.record(10);
  advance(500);
  for (let i = 0; i < 10; i++) recorder.record(2);
  advance(500);
  advance(500);
  ticker.stop();

  assert.deepEqual(reported, intervals);
  assert.deepEqual(
    intervals.map(({ startSec, endSec, requests, requestsPerSecond, omitted }) => ({
      startSec,
      endSec,
      requests,
      requestsPerSecond,
      omitted,
    })),
    [
      { startSec: 0, endSec: 0.5, requests: 100, requestsPerSecond: 200, omitted: false },
      { startSec: 0.5, endSec: 1, requests: 10, requestsPerSecond: 20, omitted: false },
      { startSec: 1, endSec: 1.5, requests: 0, requestsPerSecond: 0, omitted: false },
    ],
  );
  near(intervals[0]!.p50Us, 1000);
  near(intervals[0]!.p99Us, 1000);
  near(intervals[1]!.p50Us, 2000);
  assert.equal(intervals[2]!.p50Us, null, 'no completion, no percentile');
  assert.equal(intervals[2]!.p99Us, null);
  assert.deepEqual(
    intervals.map((interval) => decodeHistogram(interval.histogram).totalCount),
    [100, 10, 0],
    'each interval carries only its own latencies',
  );
  assert.equal(recorder.interval.totalCount, 0);
  assert.equal(recorder.total.totalCount, 110);
});

test('latency intervals: during the warm-up they are marked omitted and count nothing', (t) => {
  const advance = fakeTime(t);
  const recorder = new LatencyRecorder(1);
  const { ticker, intervals } = startLatencyIntervals(optionsOf(1), recorder);
  recorder.record(1);
  advance(1000);
  recorder.recording = true;
  recorder.record(1);
  advance(1000);
  ticker.stop();
  assert.deepEqual(
    intervals.map(({ requests, omitted }) => ({ requests, omitted })),
    [
      { requests: 0, omitted: true },
      { requests: 1, omitted: false },
    ],
  );
});
