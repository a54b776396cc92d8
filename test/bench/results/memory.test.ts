import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heapPerConnection } from '../../../src/bench/results/memory.ts';

test('heapPerConnection: the loop model’s heap growth per connection; none for other models or a heap that shrank', () => {
  assert.equal(heapPerConnection('loop', 2_400_000, 1000), 2400);
  assert.equal(heapPerConnection('loop', 0, 0), 0);
  assert.equal(heapPerConnection('workers', 2_400_000, 1000), null);
  assert.equal(heapPerConnection('loop', -90_032, 1), null, 'a collection freed more than the connection took');
});
