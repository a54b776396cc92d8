import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  describeOthers,
  describeSuppressed,
  LOG_LIMITS,
  LogLimiter,
  summaryWriter,
  type LogLimits,
  type OtherSources,
  type Suppressed,
} from '../../src/cli/log-limiter.ts';

interface Summary {
  busiest: Suppressed[];
  others: OtherSources;
  windowSec: number;
}

function limiterOf(limits: LogLimits = {}): { limiter: LogLimiter; summaries: Summary[] } {
  const summaries: Summary[] = [];
  const limiter = new LogLimiter((busiest, others, windowSec) => summaries.push({ busiest, others, windowSec }), limits);
  return { limiter, summaries };
}

test('LogLimiter: a source gets perSource lines a window; the rest are counted by kind and summarized once, at the window’s end', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { limiter, summaries } = limiterOf({ perSource: 2, windowMs: 1000 });
  const admitted = ['AUTH', 'AUTH', 'AUTH', 'done', 'AUTH'].map((kind) => limiter.admit('10.0.0.7', kind));
  assert.deepEqual(admitted, [true, true, false, false, false]);
  assert.equal(limiter.admit('10.0.0.8', 'done'), true, 'another source has its own allowance');
  t.mock.timers.tick(999);
  assert.deepEqual(summaries, []);
  t.mock.timers.tick(1);
  assert.deepEqual(summaries, [
    {
      busiest: [{ source: '10.0.0.7', count: 3, kinds: { AUTH: 2, done: 1 } }],
      others: { sources: 0, count: 0, more: false },
      windowSec: 1,
    },
  ]);
  assert.equal(limiter.admit('10.0.0.7', 'AUTH'), true, 'a new window, a new allowance');
  t.mock.timers.tick(1000);
  assert.equal(summaries.length, 1, 'a window with nothing left out says nothing');
  limiter.stop();
});

test('LogLimiter: the total caps every source together', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { limiter } = limiterOf({ perSource: 5, total: 3 });
  assert.deepEqual(
    ['a', 'b', 'c', 'd', 'a'].map((source) => limiter.admit(source, 'x')),
    [true, true, true, false, false],
  );
  limiter.stop();
});

test('LogLimiter: the busiest sources are summarized one by one, the rest in one line; past maxSources they are only counted', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { limiter, summaries } = limiterOf({ perSource: 0, summarized: 2, maxSources: 4, windowMs: 10_000 });
  const lines: [string, number][] = [
    ['a', 1],
    ['b', 5],
    ['c', 3],
    ['d', 2],
    ['e', 4],
    ['f', 1],
  ];
  for (const [source, count] of lines) for (let i = 0; i < count; i++) assert.equal(limiter.admit(source, 'E'), false);
  t.mock.timers.tick(10_000);
  assert.equal(summaries.length, 1);
  const [{ busiest, others, windowSec }] = summaries as [Summary];
  assert.deepEqual(
    busiest.map(({ source, count }) => [source, count]),
    [
      ['b', 5],
      ['c', 3],
    ],
  );
  assert.deepEqual(others, { sources: 2, count: 1 + 2 + 4 + 1, more: true });
  assert.equal(windowSec, 10);
  limiter.stop();
});

test('LogLimiter: stop() summarizes what is pending at once, and no window ends after it', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { limiter, summaries } = limiterOf({ perSource: 0 });
  limiter.admit('a', 'E');
  limiter.stop();
  assert.equal(summaries.length, 1);
  limiter.admit('a', 'E');
  t.mock.timers.tick(LOG_LIMITS.windowMs * 3);
  assert.equal(summaries.length, 1);
});

test('LogLimiter: within a window every line is either admitted or counted, and the allowances hold', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const line = fc.tuple(fc.integer({ min: 0, max: 12 }), fc.constantFrom('AUTH', 'done', 'TIMEOUT'));
  fc.assert(
    fc.property(
      fc.array(line, { maxLength: 300 }),
      fc.record({
        perSource: fc.integer({ min: 0, max: 6 }),
        total: fc.integer({ min: 0, max: 40 }),
        summarized: fc.integer({ min: 0, max: 5 }),
        maxSources: fc.integer({ min: 1, max: 8 }),
      }),
      (lines, limits) => {
        const { limiter, summaries } = limiterOf(limits);
        const shown = new Map<number, number>();
        for (const [source, kind] of lines) if (limiter.admit(String(source), kind)) shown.set(source, (shown.get(source) ?? 0) + 1);
        limiter.stop();
        const admitted = [...shown.values()].reduce((sum, count) => sum + count, 0);
        assert.ok(admitted <= limits.total);
        assert.ok([...shown.values()].every((count) => count <= limits.perSource));
        const counted = summaries.reduce(
          (sum, { busiest, others }) => sum + others.count + busiest.reduce((s, entry) => s + entry.count, 0),
          0,
        );
        assert.equal(admitted + counted, lines.length);
        for (const { busiest } of summaries) {
          assert.ok(busiest.length <= limits.summarized);
          assert.ok(busiest.every((entry, i) => i === 0 || busiest[i - 1]!.count >= entry.count));
          assert.ok(busiest.every((entry) => Object.values(entry.kinds).reduce((sum, count) => sum + count, 0) === entry.count));
        }
      },
    ),
  );
});

test('describeSuppressed, describeOthers and summaryWriter: the summary as log lines or as JSON events', () => {
  const entry: Suppressed = { source: '10.0.0.7', count: 1503, kinds: { done: 3, SOCKTUNE_ERR_AUTH: 1500 } };
  assert.equal(describeSuppressed(entry, 10), '… 1,503 more from 10.0.0.7 in the last 10 s: SOCKTUNE_ERR_AUTH ×1,500, done ×3');
  assert.equal(describeOthers({ sources: 300, count: 2000, more: false }), '… and 2,000 more from 300 other sources');
  assert.equal(describeOthers({ sources: 300, count: 2000, more: true }), '… and 2,000 more from 300+ other sources');

  const lines: string[] = [];
  summaryWriter((line) => lines.push(line))([entry], { sources: 0, count: 0, more: false }, 10);
  assert.deepEqual(lines, [describeSuppressed(entry, 10)], 'no line for others that left nothing out');
  const events: Record<string, unknown>[] = [];
  summaryWriter(
    (line) => lines.push(line),
    (fields) => events.push(fields),
  )([entry], { sources: 2, count: 9, more: false }, 10);
  assert.equal(lines.length, 1, 'events replace the lines');
  assert.deepEqual(events, [
    { source: '10.0.0.7', count: 1503, kinds: entry.kinds, windowSec: 10 },
    { otherSources: 2, count: 9, windowSec: 10 },
  ]);
});
