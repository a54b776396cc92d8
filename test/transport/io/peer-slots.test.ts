import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PEER_SLOTS, slotOf } from '../../../src/transport/io/peer-slots.ts';

test('slotOf: the same address and seed always share a slot, in range; another seed spreads addresses anew', () => {
  const addresses = Array.from({ length: 4096 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
  const slots = (seed: number): number[] => addresses.map((address) => slotOf(address, seed));
  const first = slots(12_345);
  assert.deepEqual(slots(12_345), first);
  assert.ok(first.every((slot) => Number.isInteger(slot) && slot >= 0 && slot < PEER_SLOTS));
  // 4096 addresses over 4096 slots: a fair hash fills about 1 - 1/e of them; a weak one (the last octet alone) 256.
  assert.ok(new Set(first).size > 2000, `${new Set(first).size} slots used`);
  const other = slots(67_890);
  assert.ok(
    other.filter((slot, i) => slot === first[i]).length < 100,
    'a client cannot learn from one seed where addresses fall under another',
  );
});
