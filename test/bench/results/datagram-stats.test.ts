import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DatagramStats, sumDatagramCounts } from '../../../src/bench/results/datagram-stats.ts';

test('loss, reordering and duplication are counted exactly, whatever the network did to the sequence', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 400 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (sent, lostAt, duplicatedAt, swappedAt) => {
        const lost = new Set(lostAt.map((at) => at % sent));
        const arrivals = [...Array(sent).keys()].filter((sequence) => !lost.has(sequence));
        for (const at of duplicatedAt) if (arrivals.length > 0) arrivals.splice(at % arrivals.length, 0, arrivals[at % arrivals.length]!);
        for (const at of swappedAt) {
          const i = at % Math.max(1, arrivals.length - 1);
          if (i + 1 < arrivals.length) [arrivals[i], arrivals[i + 1]] = [arrivals[i + 1]!, arrivals[i]!];
        }
        const stats = new DatagramStats();
        // The model: a late arrival is one below the highest seen before it; a duplicate one seen before.
        const seen = new Set<number>();
        let highest = -1;
        let outOfOrder = 0;
        let duplicates = 0;
        for (const sequence of arrivals) {
          stats.record(sequence, BigInt(sequence) * 1000n, BigInt(sequence) * 1000n + 50n, 100);
          if (seen.has(sequence)) duplicates++;
          else if (sequence < highest) outOfOrder++;
          seen.add(sequence);
          highest = Math.max(highest, sequence);
        }
        const counts = stats.counts();
        assert.equal(counts.received, seen.size);
        assert.equal(counts.expected, highest + 1);
        assert.equal(counts.duplicates, duplicates);
        assert.equal(counts.outOfOrder, outOfOrder);
        assert.equal(counts.bytes, seen.size * 100);
      },
    ),
  );
});

test('jitter follows RFC 3550: 0 for a constant transit time, the transit swing for one that alternates', () => {
  const steady = new DatagramStats();
  for (let sequence = 0; sequence < 100; sequence++)
    steady.record(sequence, BigInt(sequence * 1_000_000), BigInt(sequence * 1_000_000 + 30_000), 1);
  assert.equal(steady.counts().jitterUs, 0);
  const swinging = new DatagramStats();
  // Transit alternates 30 and 130 µs: |D| is 100 µs each time, and J = J + (|D| − J)/16 converges to it.
  for (let sequence = 0; sequence < 400; sequence++)
    swinging.record(sequence, BigInt(sequence * 1_000_000), BigInt(sequence * 1_000_000 + (sequence % 2 === 0 ? 30_000 : 130_000)), 1);
  assert.ok(Math.abs(swinging.counts().jitterUs - 100) < 0.01, `${swinging.counts().jitterUs} µs`);
  const single = new DatagramStats();
  single.record(0, 0n, 5000n, 1);
  assert.equal(single.counts().jitterUs, 0, 'one datagram has no jitter');
});

test('a datagram older than the window is counted late, not a duplicate; streams sum', () => {
  const stats = new DatagramStats();
  stats.record(20_000, 0n, 1n, 10);
  stats.record(1, 0n, 1n, 10);
  assert.deepEqual(
    { ...stats.counts(), jitterUs: 0 },
    { received: 2, expected: 20_001, outOfOrder: 1, duplicates: 0, jitterUs: 0, bytes: 20 },
  );
  const other = new DatagramStats();
  other.record(0, 0n, 1n, 5);
  const sum = sumDatagramCounts([stats.counts(), other.counts()]);
  assert.equal(sum.received, 3);
  assert.equal(sum.expected, 20_002);
  assert.equal(sum.bytes, 25);
});
