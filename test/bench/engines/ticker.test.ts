import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, Ticker } from '../../../src/bench/engines/ticker.ts';

/** Timers and performance.now() both on a clock the test moves; `lag` moves only the clock, as a busy event loop would. */
function fakeTime(t: TestContext): { advance: (ms: number) => void; lag: (ms: number) => void } {
  let now = 5_000;
  t.mock.method(performance, 'now', () => now);
  t.mock.timers.enable({ apis: ['setTimeout'] });
  return {
    advance: (ms) => {
      now += ms;
      t.mock.timers.tick(ms);
    },
    lag: (ms) => (now += ms),
  };
}

test('Ticker: ticks every interval with the seconds since its start, until stopped', (t) => {
  const time = fakeTime(t);
  const ticks: number[] = [];
  const ticker = new Ticker(0.5, (elapsedSec) => ticks.push(elapsedSec));
  time.advance(499);
  assert.deepEqual(ticks, []);
  time.advance(1);
  time.advance(500);
  time.advance(500);
  assert.deepEqual(ticks, [0.5, 1, 1.5]);
  time.advance(200);
  assert.equal(ticker.elapsedSec, 1.7);
  ticker.stop();
  time.advance(5_000);
  assert.deepEqual(ticks, [0.5, 1, 1.5]);
});

test('Ticker: a tick that runs late does not push the later ones back', (t) => {
  const time = fakeTime(t);
  const ticks: number[] = [];
  const ticker = new Ticker(1, (elapsedSec) => ticks.push(elapsedSec));
  time.lag(300);
  time.advance(1_000);
  assert.deepEqual(ticks, [1.3]);
  time.advance(700);
  assert.deepEqual(ticks, [1.3, 2], 'the next tick is still due at 2 s');
  time.advance(1_000);
  assert.deepEqual(ticks, [1.3, 2, 3]);
  ticker.stop();
});

test('sleep: resolves after its time, or as soon as its signal aborts', async (t) => {
  const time = fakeTime(t);
  let slept = false;
  const done = sleep(1_000).then(() => (slept = true));
  time.advance(999);
  await Promise.resolve();
  assert.equal(slept, false);
  time.advance(1);
  await done;
  assert.equal(slept, true);

  const abort = new AbortController();
  const cut = sleep(60_000, abort.signal);
  abort.abort();
  await cut;
});

test('sleep with a signal already aborted resolves at once', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let done = false;
  void sleep(60_000, AbortSignal.abort()).then(() => (done = true));
  await Promise.resolve();
  assert.equal(done, true);
});
