import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { busiestThreadPercent, ownThreadCpuMicros, readThreadCpuTicks } from '../../src/core/thread-cpu.ts';

test('busiestThreadPercent: the one thread that used most CPU between two readings, a new thread counted from zero', () => {
  const before = new Map([
    [1, 10],
    [2, 0],
  ]);
  const after = new Map([
    [1, 30],
    [2, 50],
    [3, 5],
  ]);
  assert.equal(busiestThreadPercent(before, after, 1000), 50);
  assert.equal(busiestThreadPercent(before, new Map([[9, 120]]), 1000), 120);
  assert.equal(busiestThreadPercent(before, after, 0), 0);
});

test('readThreadCpuTicks sees each thread of this process: a worker that spun shows its own CPU time, apart from the main thread', async (t) => {
  const before = readThreadCpuTicks();
  assert.ok(before?.has(process.pid), 'the main thread is the one whose id is the pid');
  // Spins until its own thread has used 200 ms of CPU, however long a busy machine makes that take.
  const worker = new Worker(
    `const { parentPort, threadId } = require('node:worker_threads');
     while (process.threadCpuUsage().user < 200_000) {}
     parentPort.postMessage(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
     setTimeout(() => {}, 60_000);`,
    { eval: true },
  );
  t.after(() => worker.terminate());
  const [tid] = (await once(worker, 'message')) as [string];
  const after = readThreadCpuTicks()!;
  const spun = after.get(Number(tid))! - (before!.get(Number(tid)) ?? 0);
  assert.ok(spun >= 15, `the worker's thread used ${spun} ticks (200 ms is 20)`);
  assert.ok(busiestThreadPercent(before!, after, 1) >= spun * 1000, 'the busiest thread is at least the worker');
});

test('ownThreadCpuMicros counts this thread’s CPU, from Node where it can and from /proc/thread-self where Node cannot', () => {
  const spin = (read: () => number): number => {
    const start = read();
    // Until 50 ms of CPU (5 ticks of /proc) have gone by, however long a busy machine makes that take; bounded.
    const until = Date.now() + 20_000;
    while (read() - start < 50_000 && Date.now() < until) for (let i = 0; i < 100_000; i++) Math.sqrt(i);
    return read() - start;
  };
  assert.ok(spin(ownThreadCpuMicros) >= 50_000);
  const own = Object.getOwnPropertyDescriptor(process, 'threadCpuUsage');
  Object.defineProperty(process, 'threadCpuUsage', { value: undefined, configurable: true });
  try {
    assert.ok(spin(ownThreadCpuMicros) >= 50_000, 'the /proc reading moves with the CPU used');
  } finally {
    Object.defineProperty(process, 'threadCpuUsage', own!);
  }
});
