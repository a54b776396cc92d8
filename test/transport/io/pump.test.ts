import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { pumpWrites } from '../../../src/transport/io/pump.ts';
import type { SendBudget } from '../../../src/transport/io/send-budget.ts';

/** What pumpWrites uses of a socket: writes recorded; `full` makes write() report backpressure. */
class FakeSocket extends EventEmitter {
  writes: Buffer[] = [];
  full = false;
  destroyed = false;
  writableEnded = false;
  write(data: Buffer): boolean {
    this.writes.push(data);
    return !this.full;
  }
}

/** Lets the pump's setImmediate turns run. */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Chunks numbered from 0, each filled with its number. */
function numberedChunks(size: number): { next: () => Buffer; made: () => number } {
  let made = 0;
  return { next: () => Buffer.alloc(size, made++ & 0xff), made: () => made };
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await turns(1);
  assert.ok(done(), 'the pump did not get there');
}

test('pumpWrites: chunks go out whole and in order until active() turns false, each one counted', async () => {
  const socket = new FakeSocket();
  const chunks = numberedChunks(100);
  let counted = 0;
  pumpWrites(
    socket as unknown as Socket,
    chunks.next,
    () => socket.writes.length < 3000,
    (bytes) => (counted += bytes),
  );
  assert.equal(socket.writes.length, 0, 'nothing before the first turn');
  await until(() => socket.writes.length === 3000);
  await turns(3);
  assert.equal(socket.writes.length, 3000);
  assert.equal(chunks.made(), 3000, 'no chunk made and dropped');
  assert.ok(socket.writes.every((chunk, index) => chunk.length === 100 && chunk[0] === (index & 0xff)));
  assert.equal(counted, 300_000);
});

test('pumpWrites: one turn makes at most 1024 writes and 4 MiB, so timers and other connections get their turn', async () => {
  const small = new FakeSocket();
  pumpWrites(small as unknown as Socket, numberedChunks(1).next, () => small.writes.length < 5000);
  await turns(1);
  assert.ok(small.writes.length >= 1 && small.writes.length <= 1024, `${small.writes.length} writes in one turn`);
  const large = new FakeSocket();
  pumpWrites(large as unknown as Socket, numberedChunks(1024 * 1024).next, () => large.writes.length < 20);
  await turns(1);
  assert.ok(large.writes.length >= 1 && large.writes.length <= 4, `${large.writes.length} MiB in one turn`);
  await until(() => small.writes.length === 5000 && large.writes.length === 20);
});

test('pumpWrites: backpressure stops the pump until the socket drains', async () => {
  const socket = new FakeSocket();
  const chunks = numberedChunks(10);
  socket.full = true;
  pumpWrites(socket as unknown as Socket, chunks.next, () => socket.writes.length < 5);
  await turns(5);
  assert.equal(socket.writes.length, 1, 'the write that found the socket full is the last until it drains');
  socket.full = false;
  socket.emit('drain');
  await until(() => socket.writes.length === 5);
  assert.equal(chunks.made(), 5);
});

test('pumpWrites: a destroyed or ended socket gets no more writes', async () => {
  for (const end of [(socket: FakeSocket) => (socket.destroyed = true), (socket: FakeSocket) => (socket.writableEnded = true)]) {
    const socket = new FakeSocket();
    pumpWrites(socket as unknown as Socket, numberedChunks(10).next, () => {
      if (socket.writes.length === 7) end(socket);
      return true;
    });
    await turns(5);
    assert.equal(socket.writes.length, 7);
  }
});

test('pumpWrites: under a send budget chunks are cut to its largest write, and a take it refuses loses no byte', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const waits = [0, 0, 30];
  const granted: number[] = [];
  const budget = {
    maxWriteBytes: 1000,
    tryTake: (bytes: number): number => {
      const wait = waits.shift() ?? 0;
      if (wait === 0) granted.push(bytes);
      return wait;
    },
  } as unknown as SendBudget;
  const socket = new FakeSocket();
  const chunks = numberedChunks(2500);
  pumpWrites(socket as unknown as Socket, chunks.next, () => socket.writes.length < 6, undefined, budget);
  await turns(3);
  assert.deepEqual(
    socket.writes.map((slice) => slice.length),
    [1000, 1000],
    'the third slice waits for the budget',
  );
  t.mock.timers.tick(30);
  await until(() => socket.writes.length === 6);
  assert.deepEqual(
    socket.writes.map((slice) => slice.length),
    [1000, 1000, 500, 1000, 1000, 500],
  );
  assert.deepEqual(Buffer.concat(socket.writes), Buffer.concat([Buffer.alloc(2500, 0), Buffer.alloc(2500, 1)]));
  assert.deepEqual(granted, [1000, 1000, 500, 1000, 1000, 500]);
  assert.equal(chunks.made(), 2);
});
