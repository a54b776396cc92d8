import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionPool, PeerCounts } from '../../../src/transport/server/admission.ts';

/** Addresses (out of 65536) that a server with a cap of 1 per address refuses once 127.0.0.1 holds its slot: those that share its slot. */
function slotmatesOf127001(counts: PeerCounts): string[] {
  assert.equal(counts.tryAdd('127.0.0.1'), true);
  const mates: string[] = [];
  for (let i = 0; i < 65_536; i++) {
    const address = `10.${(i >> 8) & 255}.${i & 255}.7`;
    if (!counts.tryAdd(address)) mates.push(address);
    else counts.remove(address);
  }
  return mates;
}

test("per-address slots are keyed with a secret per server: an address that shares a victim's slot on one server does not on another", () => {
  const first = slotmatesOf127001(new PeerCounts(PeerCounts.allocate(), 1));
  const second = slotmatesOf127001(new PeerCounts(PeerCounts.allocate(), 1));
  // 16 slotmates expected: none at all has a chance of e^-16 (20000 addresses left it at e^-4.9, a failure in 70 runs).
  assert.ok(first.length > 0 && second.length > 0, 'with 4096 slots some of 65536 addresses share one');
  assert.notDeepEqual(first, second);
});

test('a pool rebuilt in another thread from its state hashes alike and shares the counts', () => {
  const pool = new ConnectionPool(10, 1);
  const twin = ConnectionPool.fromState(pool.state);
  assert.equal(pool.tryAdd('127.0.0.9'), true);
  assert.equal(twin.tryAdd('127.0.0.9'), false, 'the same address, the same slot, already full');
  twin.remove('127.0.0.9');
  assert.equal(pool.open, 0);
});

test('a pool keeps its last places for small servers: big tests cannot fill it so far that a small test gets nothing', () => {
  const pool = new ConnectionPool(1600, 1600);
  let big = 0;
  while (pool.tryAdd('127.0.0.2', big)) big++;
  assert.equal(big, 1600 - 100, 'a server holding many stops 1/16 (at most 256) short of the cap');
  let small = 0;
  while (pool.tryAdd('127.0.0.3', small)) small++;
  assert.equal(small, 64, 'a small server still gets connections, up to the size that makes it big');
  assert.equal(pool.tryAdd('127.0.0.4', 0), true, 'and another small one too');
});
