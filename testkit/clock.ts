import type { TestContext } from 'node:test';

/** Timers and performance.now() on one clock the test moves. */
export function fakeTime(t: TestContext): (ms: number) => void {
  let now = 0;
  t.mock.method(performance, 'now', () => now);
  t.mock.timers.enable({ apis: ['setTimeout'] });
  return (ms) => {
    now += ms;
    t.mock.timers.tick(ms);
  };
}

/** Whether `promise` has settled by the time already-queued microtasks have run. */
export async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
}
