import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InFlight } from '../../../src/bench/engines/in-flight.ts';

test('InFlight is first in, first out across its compactions, like an array queue', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 3000 }), fc.constant(-1)), { maxLength: 60 }), (steps) => {
      const queue = new InFlight();
      const model: number[] = [];
      let next = 0;
      for (const step of steps) {
        if (step > 0) {
          for (let i = 0; i < step; i++) {
            queue.push(next);
            model.push(next++);
          }
        } else {
          while (model.length > 0) if (queue.shift() !== model.shift()) return false;
        }
        if (queue.size !== model.length) return false;
      }
      return true;
    }),
    { numRuns: 50 },
  );
  const queue = new InFlight();
  queue.push(5);
  assert.equal(queue.size, 1);
  assert.equal(queue.shift(), 5);
  assert.equal(queue.size, 0);
});
