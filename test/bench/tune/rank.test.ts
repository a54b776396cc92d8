import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clearlyBetter, rank } from '../../../src/bench/tune/rank.ts';
import { rankingNotes } from '../../../src/bench/tune/notes.ts';
import { median } from '../../../src/bench/results/stats.ts';

test('median of odd and even sample counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('noise: overlapping samples are a tie, not a win', () => {
  const a = { config: 'a', samples: [100, 92, 108] };
  const b = { config: 'b', samples: [97, 90, 104] };
  assert.equal(clearlyBetter(a, b, 'throughput'), false);
  const ranked = rank([a, b], 'throughput', (c) => c === 'b');
  assert.equal(ranked[0]!.config, 'a');
  assert.equal(ranked[1]!.standing, 'tie');
  assert.deepEqual(
    ranked.map((r) => r.verdict),
    ['same', 'default'],
    'the best is the same as the default within the noise',
  );
});

test('each verdict is against the default: a config above the default is better even when it ranks below the best', () => {
  const ranked = rank(
    [
      { config: 'best', samples: [300, 305, 298] },
      { config: 'good', samples: [200, 204, 199] },
      { config: 'default', samples: [100, 102, 99] },
      { config: 'noisy', samples: [110, 80, 130] },
      { config: 'bad', samples: [50, 52, 49] },
    ],
    'rps',
    (c) => c === 'default',
  );
  assert.deepEqual(
    ranked.map((r) => [r.config, r.standing, r.verdict]),
    [
      ['best', 'best', 'better'],
      ['good', 'worse', 'better'],
      ['noisy', 'worse', 'same'],
      ['default', 'worse', 'default'],
      ['bad', 'worse', 'worse'],
    ],
  );
});

test('a clear difference beyond the spread is a win', () => {
  const fast = { config: 'fast', samples: [200, 198, 203] };
  const slow = { config: 'slow', samples: [100, 102, 99] };
  assert.equal(clearlyBetter(fast, slow, 'throughput'), true);
  const ranked = rank([slow, fast], 'throughput', (c) => c === 'slow');
  assert.deepEqual(
    ranked.map((r) => [r.config, r.rank, r.standing, r.verdict]),
    [
      ['fast', 1, 'best', 'better'],
      ['slow', 2, 'worse', 'default'],
    ],
  );
  assert.equal(ranked[0]!.vsBaseline, 2);
  assert.equal(ranked[1]!.vsBaseline, 1);
});

test('for p99 lower is better, and vsBaseline > 1 still means better', () => {
  const ranked = rank(
    [
      { config: 'slow', samples: [50, 51, 49] },
      { config: 'quick', samples: [25, 26, 24] },
    ],
    'p99',
    (c) => c === 'slow',
  );
  assert.equal(ranked[0]!.config, 'quick');
  assert.equal(ranked[0]!.vsBaseline, 2);
  assert.equal(ranked[0]!.verdict, 'better');
  assert.equal(ranked[1]!.standing, 'worse');
});

test('single samples need to be over 2× apart to count as a win: one run each says nothing of the noise', () => {
  assert.equal(clearlyBetter({ config: 1, samples: [157] }, { config: 2, samples: [100] }, 'rps'), false);
  assert.equal(clearlyBetter({ config: 1, samples: [210] }, { config: 2, samples: [100] }, 'rps'), true);
  assert.equal(clearlyBetter({ config: 1, samples: [100] }, { config: 2, samples: [21] }, 'throughput'), true);
});

test('configs without samples are left out', () => {
  assert.equal(
    rank(
      [
        { config: 'x', samples: [] },
        { config: 'y', samples: [1] },
      ],
      'rps',
      () => false,
    ).length,
    1,
  );
});

test('notes say why a configuration lost where the mechanism is known: a small window, fewer requests in flight', () => {
  const entry = (bufferSize: number | undefined, depth: number, standing: 'best' | 'tie' | 'worse') =>
    ({
      config: { bufferSize, depth, noDelay: true, ioModel: 'loop', batch: 'auto' },
      standing,
      lastRound: 4,
      clientSaturated: false,
      capped: false,
    }) as unknown as Parameters<typeof rankingNotes>[0];
  const stream = {
    workload: 'stream' as const,
    ranking: [entry(undefined, 1, 'best'), entry(8 * 1024, 1, 'worse'), entry(1024 * 1024, 1, 'worse')],
  };
  assert.equal(rankingNotes(stream.ranking[1]!, stream), 'a 8K buffer caps the TCP window: rate ≤ buffer ÷ round-trip time');
  assert.equal(rankingNotes(stream.ranking[2]!, stream), '', 'a large buffer that lost has no known mechanism to name');
  const rr = { workload: 'rr' as const, ranking: [entry(undefined, 16, 'best'), entry(undefined, 1, 'worse'), entry(undefined, 1, 'tie')] };
  assert.equal(rankingNotes(rr.ranking[1]!, rr), '1 in flight per connection: each waits its round trip (the best keeps 16)');
  assert.equal(rankingNotes(rr.ranking[2]!, rr), '', 'a tie needs no excuse');
});
