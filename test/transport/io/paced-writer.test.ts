import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import fc from 'fast-check';
import { SocktuneError } from '../../../src/core/errors.ts';
import type { ByteBudget } from '../../../src/framing/partial-message.ts';
import { PacedWriter } from '../../../src/transport/io/paced-writer.ts';
import type { SendBudget } from '../../../src/transport/io/send-budget.ts';

/** What PacedWriter uses of a socket: every write recorded, backpressure past `writableHighWaterMark` until the test drains it. */
class FakeSocket extends EventEmitter {
  writes: Buffer[] = [];
  writableLength = 0;
  writableHighWaterMark = Infinity;
  destroyed = false;
  error: Error | undefined;
  write(data: Buffer): boolean {
    this.writes.push(Buffer.from(data));
    this.writableLength += data.length;
    return this.writableLength < this.writableHighWaterMark;
  }
  destroy(error?: Error): void {
    this.destroyed = true;
    this.error = error;
    this.emit('close');
  }
  flush(): void {
    this.writableLength = 0;
    this.emit('drain');
  }
}

/** A send budget that grants every take unless the test queued a wait; it books what it granted. */
function stubBudget(maxWriteBytes: number, waits: number[] = []): { budget: SendBudget; granted: number[] } {
  const granted: number[] = [];
  const budget = {
    maxWriteBytes,
    tryTake: (bytes: number): number => {
      const wait = waits.shift() ?? 0;
      if (wait === 0) granted.push(bytes);
      return wait;
    },
  };
  return { budget: budget as unknown as SendBudget, granted };
}

function memoryOf(limit = Infinity): ByteBudget & { held: number } {
  return {
    held: 0,
    tryReserve(bytes) {
      if (this.held + bytes > limit) return false;
      this.held += bytes;
      return true;
    },
    release(bytes) {
      this.held -= bytes;
    },
  };
}

function writerOn(socket: FakeSocket, budget: SendBudget, memory: ByteBudget): { writer: PacedWriter; idle: () => number } {
  let idle = 0;
  const writer = new PacedWriter(socket as unknown as Socket, budget, memory, () => idle++);
  return { writer, idle: () => idle };
}

test('PacedWriter: every byte goes out in order, in slices no larger than the budget allows, each taken from it first', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 10 }), fc.integer({ min: 1, max: 1500 }), (pieces, maxWrite) => {
      const socket = new FakeSocket();
      const { budget, granted } = stubBudget(maxWrite);
      const memory = memoryOf();
      const { writer, idle } = writerOn(socket, budget, memory);
      for (const piece of pieces) assert.equal(writer.write(piece), true);
      assert.deepEqual(Buffer.concat(socket.writes), Buffer.concat(pieces));
      assert.ok(socket.writes.every((slice) => slice.length <= maxWrite));
      assert.deepEqual(
        granted,
        socket.writes.map((slice) => slice.length),
      );
      assert.equal(writer.queued, 0);
      assert.equal(memory.held, 0);
      assert.equal(idle(), pieces.length, 'each write was handed over at once');
    }),
  );
});

test('PacedWriter: while the budget says wait, a copy is held in the buffer budget; queued pieces go out joined, up to a slice', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const socket = new FakeSocket();
  const { budget, granted } = stubBudget(1000, [20]);
  const memory = memoryOf();
  const { writer, idle } = writerOn(socket, budget, memory);
  const pieces = [Buffer.alloc(400, 1), Buffer.alloc(400, 2), Buffer.alloc(400, 3)];
  for (const piece of pieces) writer.write(piece);
  assert.equal(socket.writes.length, 0);
  assert.equal(writer.queued, 1200);
  assert.equal(memory.held, 1200);
  pieces[0]!.fill(9);
  t.mock.timers.tick(20);
  assert.deepEqual(
    socket.writes.map((slice) => slice.length),
    [1000, 200],
  );
  assert.deepEqual(
    Buffer.concat(socket.writes),
    Buffer.concat([Buffer.alloc(400, 1), pieces[1]!, pieces[2]!]),
    'the copy, not the reused buffer',
  );
  assert.deepEqual(granted, [1000, 200], 'the refused take booked nothing');
  assert.equal(memory.held, 0);
  assert.equal(idle(), 1);
});

test('PacedWriter: a socket with a full write queue is left alone until it drains', () => {
  const socket = new FakeSocket();
  socket.writableHighWaterMark = 1500;
  const { budget } = stubBudget(1000);
  const memory = memoryOf();
  const { writer, idle } = writerOn(socket, budget, memory);
  writer.write(Buffer.alloc(5000));
  assert.deepEqual(
    socket.writes.map((slice) => slice.length),
    [1000, 1000],
  );
  assert.equal(memory.held, 3000);
  assert.equal(idle(), 0);
  socket.flush();
  socket.flush();
  assert.equal(Buffer.concat(socket.writes).length, 5000);
  assert.equal(memory.held, 0);
  assert.equal(idle(), 1);
});

test('PacedWriter: no room in the buffer budget closes the connection with SOCKTUNE_ERR_BUFFER_BUDGET, nothing written', () => {
  const socket = new FakeSocket();
  const memory = memoryOf(1000);
  const { writer } = writerOn(socket, stubBudget(100).budget, memory);
  assert.equal(writer.write(Buffer.alloc(1001)), false);
  assert.ok(socket.destroyed);
  assert.ok(socket.error instanceof SocktuneError && socket.error.code === 'SOCKTUNE_ERR_BUFFER_BUDGET');
  assert.deepEqual(socket.writes, []);
  assert.equal(memory.held, 0);
  assert.equal(writer.write(Buffer.alloc(1)), false, 'nothing more is taken once the socket is gone');
});

test('PacedWriter: when the connection closes, what still waits is dropped and its memory given back', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const socket = new FakeSocket();
  const memory = memoryOf();
  const { writer } = writerOn(socket, stubBudget(1000, [50]).budget, memory);
  writer.write(Buffer.alloc(3000));
  assert.equal(memory.held, 3000);
  socket.destroy();
  assert.equal(memory.held, 0);
  assert.equal(writer.queued, 0);
  t.mock.timers.tick(50);
  assert.deepEqual(socket.writes, []);
});
