import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyRecorder } from '../../../src/bench/engines/latency-recorder.ts';

test('LatencyRecorder: one record per completion, folded into the whole at each interval and at the end; nothing during the warm-up', () => {
  const recorder = new LatencyRecorder(1);
  recorder.record(5);
  assert.equal(recorder.completed, 0, 'warm-up');
  recorder.recording = true;
  for (let i = 1; i <= 100; i++) recorder.record(i / 1000);
  assert.equal(recorder.interval.totalCount, 100);
  recorder.foldInterval();
  assert.equal(recorder.interval.totalCount, 0);
  for (let i = 0; i < 50; i++) recorder.record(1);
  const { latency } = recorder.summary();
  assert.equal(latency.count, 150);
  assert.equal(recorder.completed, 150);
  assert.equal(latency.maxUs !== null && latency.maxUs >= 999 && latency.maxUs <= 1001, true, String(latency.maxUs));
  assert.equal(recorder.summary().latency.count, 150, 'a second summary adds nothing twice');
});
