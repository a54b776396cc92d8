import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocktuneError } from '../../src/core/errors.ts';
import { MAX_TIMER_MS, timerDelay, withTimeout } from '../../src/core/timeout.ts';
import { settled } from '../../testkit/clock.ts';

test('timerDelay: at least 1 ms, at most what a Node timer holds', () => {
  assert.equal(MAX_TIMER_MS, 2_147_483_647);
  assert.equal(timerDelay(250), 250);
  assert.equal(timerDelay(1.5), 1.5);
  for (const tooShort of [0, 0.2, -5, -Infinity]) assert.equal(timerDelay(tooShort), 1);
  for (const tooLong of [MAX_TIMER_MS + 1, 2 ** 40, Infinity]) assert.equal(timerDelay(tooLong), MAX_TIMER_MS);
});

test('withTimeout: the promise wins if it settles in time, its value or its own error', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  assert.equal(await withTimeout(Promise.resolve(42), 1000, 'answer'), 42);
  const own = new Error('refused');
  await assert.rejects(withTimeout(Promise.reject(own), 1000, 'answer'), (error) => error === own);
  const late = new Promise<string>((resolve) => setTimeout(() => resolve('late'), 900));
  const raced = withTimeout(late, 1000, 'answer');
  t.mock.timers.tick(900);
  assert.equal(await raced, 'late');
});

test('withTimeout: a promise that takes longer is SOCKTUNE_ERR_TIMEOUT, "no <what> within <ms> ms", not before', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const raced = withTimeout(new Promise<never>(() => {}), 500, 'reply from the server');
  t.mock.timers.tick(499);
  assert.equal(await settled(raced), false);
  t.mock.timers.tick(1);
  await assert.rejects(raced, (error) => {
    assert.ok(error instanceof SocktuneError);
    assert.equal(error.code, 'SOCKTUNE_ERR_TIMEOUT');
    assert.equal(error.message, 'no reply from the server within 500 ms');
    return true;
  });
});

test('withTimeout: the timer never outlives the promise', async () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
  const before = timers();
  const pending = withTimeout(new Promise<void>((resolve) => setImmediate(resolve)), 60_000, 'answer');
  assert.equal(timers(), before + 1);
  await pending;
  assert.equal(timers(), before);
  await assert.rejects(withTimeout(Promise.reject(new Error('no')), 60_000, 'answer'));
  assert.equal(timers(), before);
});
