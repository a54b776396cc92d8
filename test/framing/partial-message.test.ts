import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SocktuneError } from '../../src/core/errors.ts';
import { PartialMessage, type ByteBudget } from '../../src/framing/partial-message.ts';

/** A budget that keeps the books: what is held now, the most ever held, and every reservation asked for. */
class StubBudget implements ByteBudget {
  held = 0;
  peak = 0;
  asked: number[] = [];
  readonly limit: number;
  constructor(limit = Infinity) {
    this.limit = limit;
  }
  tryReserve(bytes: number): boolean {
    this.asked.push(bytes);
    if (this.held + bytes > this.limit) return false;
    this.held += bytes;
    this.peak = Math.max(this.peak, this.held);
    return true;
  }
  release(bytes: number): void {
    this.held -= bytes;
    assert.ok(this.held >= 0, 'released more than was reserved');
  }
}

const isBudgetError = (error: unknown): boolean => error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_BUFFER_BUDGET';

test('PartialMessage: gathers a message from the chunks it spans, taking only what it lacks', () => {
  const message = new PartialMessage(10);
  assert.equal(message.fill(Buffer.from('xxhello'), 2), 5);
  assert.equal(message.complete, false);
  assert.equal(message.fill(Buffer.from('worldNEXT'), 0), 5, 'the bytes after the message are left for the next one');
  assert.equal(message.complete, true);
  assert.equal(message.fill(Buffer.from('more'), 0), 0);
  assert.equal(message.take().toString(), 'helloworld');
});

test('PartialMessage: a prefill is kept as the start of the message', () => {
  const message = new PartialMessage(6, Buffer.from([0, 0, 0, 2]));
  assert.equal(message.filled, 4);
  message.fill(Buffer.from('ok'), 0);
  assert.deepEqual(message.take(), Buffer.from([0, 0, 0, 2, 0x6f, 0x6b]));
});

test('PartialMessage: under a budget, a message that is only announced holds 4 KiB, not its length', () => {
  const budget = new StubBudget();
  const message = new PartialMessage(16 * 1024 * 1024, Buffer.alloc(4), budget);
  assert.deepEqual(budget.asked, [4096]);
  message.release();
  assert.equal(budget.held, 0);
  const small = new PartialMessage(100, undefined, budget);
  assert.equal(budget.held, 100, 'never more than the message itself');
  small.release();
  const bigHeader = new PartialMessage(10_000, Buffer.alloc(5000), budget);
  assert.equal(budget.held, 5000, 'room for the prefill at least');
  bigHeader.release();
});

test('PartialMessage: under a budget, what it holds follows the bytes received, and all of it is given back', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 100_000 }), fc.array(fc.integer({ min: 1, max: 20_000 }), { maxLength: 30 }), (length, cuts) => {
      const budget = new StubBudget();
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = (i * 7 + 3) & 0xff;
      const message = new PartialMessage(length, undefined, budget);
      let offset = 0;
      for (const cut of [...cuts, length]) {
        if (message.complete) break;
        const chunk = bytes.subarray(offset, Math.min(length, offset + cut));
        offset += message.fill(chunk, 0);
        assert.ok(budget.held <= length, `holds ${budget.held} for a ${length}-byte message`);
        assert.ok(budget.held <= Math.max(4096, 2 * message.filled), `holds ${budget.held} with ${message.filled} received`);
      }
      assert.ok(message.complete);
      assert.deepEqual(message.take(), bytes);
      assert.equal(budget.held, 0);
    }),
    { numRuns: 200 },
  );
});

test('PartialMessage: no room in the budget is SOCKTUNE_ERR_BUFFER_BUDGET, and what was held stays releasable', () => {
  assert.throws(() => new PartialMessage(10_000, undefined, new StubBudget(4095)), isBudgetError);
  const budget = new StubBudget(10_000);
  const message = new PartialMessage(50_000, undefined, budget);
  message.fill(Buffer.alloc(4096), 0);
  assert.throws(() => message.fill(Buffer.alloc(8000), 0), isBudgetError);
  assert.equal(budget.held, 4096, 'the refused growth took nothing');
  assert.equal(message.filled, 4096, 'nor did the refused chunk');
  assert.equal(message.fill(Buffer.alloc(1000), 0), 1000, 'a smaller chunk that fits the budget is still taken');
  assert.equal(budget.held, 8192);
  message.release();
  assert.equal(budget.held, 0);
});
