import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { addCount } from '../../src/core/counts.ts';

test('addCount: counts add up per key, and a count back at zero leaves the map', () => {
  const counts = new Map<string, number>();
  addCount(counts, 'a', 1);
  addCount(counts, 'a', 2);
  addCount(counts, 'b', 5);
  assert.deepEqual(
    [...counts],
    [
      ['a', 3],
      ['b', 5],
    ],
  );
  addCount(counts, 'a', -3);
  assert.equal(counts.has('a'), false);
  addCount(counts, 'b', -7);
  assert.equal(counts.has('b'), false, 'below zero leaves the map too, and is not kept negative');
  addCount(counts, 'c', 0);
  assert.equal(counts.size, 0, 'adding nothing to nothing stores nothing');
});

test('addCount: under any interleaving of holds and releases the map is exactly what is still held', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.boolean()), { maxLength: 200 }), (steps) => {
      const counts = new Map<string, number>();
      const held: string[] = [];
      for (const [key, take] of steps) {
        if (take) {
          held.push(key);
          addCount(counts, key, 1);
        } else if (held.includes(key)) {
          held.splice(held.indexOf(key), 1);
          addCount(counts, key, -1);
        }
        const expected = new Map<string, number>();
        for (const holder of held) expected.set(holder, (expected.get(holder) ?? 0) + 1);
        assert.deepEqual(new Map([...counts].sort()), new Map([...expected].sort()));
      }
    }),
  );
});
