import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rankingNotes, whyItLost } from '../../../src/bench/tune/notes.ts';
import { defaultConfig, type TuneConfig, type Workload } from '../../../src/bench/tune/space.ts';

type Entry = Parameters<typeof rankingNotes>[0];
type Scenario = Parameters<typeof rankingNotes>[1];

function entry(
  config: Partial<TuneConfig>,
  fields: Partial<Pick<Entry, 'standing' | 'lastRound' | 'clientSaturated' | 'capped'>> = {},
): Entry {
  return {
    config: { ...defaultConfig('rr'), ...config },
    standing: 'worse',
    lastRound: 3,
    clientSaturated: false,
    capped: false,
    ...fields,
  } as unknown as Entry;
}

const scenarioOf = (workload: Workload, ranking: Entry[]): Scenario => ({ workload, ranking });

test('whyItLost: a stream’s small buffer caps its window', () => {
  const stream = scenarioOf('stream', [entry({ bufferSize: 4 * 1024 * 1024 })]);
  assert.equal(
    whyItLost(entry({ bufferSize: 8 * 1024 }).config, stream),
    'a 8K buffer caps the TCP window: rate ≤ buffer ÷ round-trip time',
  );
  assert.match(whyItLost(entry({ bufferSize: 64 * 1024 }).config, stream), /^a 64K buffer caps/, '64K is still small');
  assert.equal(whyItLost(entry({ bufferSize: 256 * 1024 }).config, stream), '');
  assert.equal(whyItLost(entry({ bufferSize: undefined }).config, stream), '', 'autotuning is not a small buffer');
  assert.equal(whyItLost(entry({ bufferSize: 8 * 1024 }).config, scenarioOf('rr', [])), '', 'for rr a small buffer is no known cause');
});

test('whyItLost: request/response with fewer in flight than the best waits its round trips', () => {
  for (const workload of ['rr', 'msg'] as const) {
    const scenario = scenarioOf(workload, [entry({ depth: 16 }, { standing: 'best' })]);
    assert.equal(
      whyItLost(entry({ depth: 4 }).config, scenario),
      '4 in flight per connection: each waits its round trip (the best keeps 16)',
    );
    assert.equal(whyItLost(entry({ depth: 16 }).config, scenario), '');
    assert.equal(whyItLost(entry({ depth: 64 }).config, scenario), '');
  }
  assert.equal(whyItLost(entry({ depth: 1 }).config, scenarioOf('stream', [entry({ depth: 16 })])), '');
  assert.equal(whyItLost(entry({ depth: 1 }).config, scenarioOf('rr', [])), '', 'no ranking, no best to compare with');
});

test('rankingNotes: every note that applies, in order, joined', () => {
  const lost = entry({ depth: 1 }, { lastRound: 1, clientSaturated: true, capped: true });
  const best = entry({ depth: 16 }, { standing: 'best', lastRound: 3 });
  const scenario = scenarioOf('rr', [best, lost]);
  assert.equal(
    rankingNotes(lost, scenario),
    'dropped after round 1, client saturated, buffer capped by kernel, 1 in flight per connection: each waits its round trip (the best keeps 16)',
  );
  assert.equal(rankingNotes(best, scenario), '');
  assert.equal(rankingNotes({ ...lost, standing: 'tie' }, scenario), 'dropped after round 1, client saturated, buffer capped by kernel');
  assert.equal(rankingNotes(entry({ depth: 16 }), scenario), '', 'worse, but for no known reason: nothing made up');
});
