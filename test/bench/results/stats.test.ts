import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describeInterval, median, medianInterval } from '../../../src/bench/results/stats.ts';

test('median interval: order statistics with their exact binomial coverage', () => {
  assert.equal(medianInterval([7]), null, 'one run has no interval');
  assert.deepEqual(medianInterval([1, 2, 3, 4, 5]), { median: 3, low: 1, high: 5, confidence: 0.9375, samples: 5 });
  // Ten samples: [x(2), x(9)] covers 97.85%; [x(3), x(8)] would cover only 89%.
  const ten = medianInterval([10, 1, 9, 2, 8, 3, 7, 4, 6, 5])!;
  assert.deepEqual([ten.low, ten.high, ten.median], [2, 9, 5.5]);
  assert.ok(Math.abs(ten.confidence - 0.978515625) < 1e-12);
  const twenty = medianInterval(Array.from({ length: 20 }, (_, i) => i + 1))!;
  assert.deepEqual([twenty.low, twenty.high], [6, 15]);
});

test('property: the interval holds the median, its bounds are samples, and it reaches 95% from 6 samples on', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 2, maxLength: 200 }), (values) => {
      const interval = medianInterval(values)!;
      assert.ok(interval.low <= interval.median && interval.median <= interval.high);
      assert.ok(values.includes(interval.low) && values.includes(interval.high));
      assert.equal(interval.median, median(values));
      if (values.length >= 6) assert.ok(interval.confidence >= 0.95);
    }),
  );
});

test('the interval is described with its real coverage, or as "1 run — no interval"', () => {
  assert.equal(describeInterval(null, String), '1 run — no interval');
  assert.equal(describeInterval(medianInterval([1, 2, 3, 4, 5]), String), '93.7% CI 1 – 5');
  assert.equal(describeInterval(medianInterval([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), String), '97.8% CI 2 – 9');
});
