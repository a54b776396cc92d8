import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SocktuneError } from '../../../src/core/errors.ts';
import { count, countOrNull, MERGE_LIMITS, quote, refuse } from '../../../src/bench/results/merge-checks.ts';

const mergeError =
  (message: RegExp) =>
  (error: unknown): boolean =>
    error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_MERGE' && message.test(error.message);

test('refuse: SOCKTUNE_ERR_MERGE naming the file and the field', () => {
  const error = refuse('run-a.json', 'summary.bytes', 'is negative');
  assert.ok(error instanceof SocktuneError);
  assert.equal(error.code, 'SOCKTUNE_ERR_MERGE');
  assert.equal(error.message, 'run-a.json: summary.bytes is negative');
});

test('quote: a value as a message shows it, short whatever it is', () => {
  assert.equal(quote(undefined), 'nothing');
  assert.equal(quote(null), 'null');
  assert.equal(quote('abc'), '"abc"');
  assert.equal(quote(-1.5), '-1.5');
  assert.equal(quote({ a: [1] }), '{"a":[1]}');
  assert.equal(
    quote(() => 1),
    'function',
  );
  assert.equal(quote('x'.repeat(100)), `"${'x'.repeat(39)}…`);
  fc.assert(fc.property(fc.jsonValue(), (value) => quote(value).length <= 41));
});

test('count: a number from 0 to 2^53 - 1 passes as it is; anything else is refused, quoted', () => {
  for (const good of [0, 1, 1.5, 1e15, Number.MAX_SAFE_INTEGER]) assert.equal(count(good, 'a.json', 'x'), good);
  fc.assert(fc.property(fc.double({ min: 0, max: MERGE_LIMITS.maxCount, noNaN: true }), (value) => count(value, 'a.json', 'x') === value));
  const refusals: [unknown, string][] = [
    [-1, '-1'],
    [-0.001, '-0.001'],
    [2 ** 53, '9007199254740992'],
    [Infinity, 'null'],
    [NaN, 'null'],
    ['5', '"5"'],
    [null, 'null'],
    [undefined, 'nothing'],
    [[1], '\\[1\\]'],
  ];
  for (const [bad, quoted] of refusals)
    assert.throws(
      () => count(bad, 'b.json', 'summary.requests'),
      mergeError(new RegExp(`^b\\.json: summary\\.requests must be a number from 0 to 9007199254740991, got ${quoted}$`)),
    );
});

test('countOrNull: null and a missing value stay null; a value is a count', () => {
  assert.equal(countOrNull(null, 'a.json', 'x'), null);
  assert.equal(countOrNull(undefined, 'a.json', 'x'), null);
  assert.equal(countOrNull(7, 'a.json', 'x'), 7);
  assert.throws(() => countOrNull(-7, 'a.json', 'x'), mergeError(/a\.json: x must be a number/));
});

test('MERGE_LIMITS cannot be loosened at run time', () => {
  assert.ok(Object.isFrozen(MERGE_LIMITS));
  assert.throws(() => ((MERGE_LIMITS as { maxSlots: number }).maxSlots = 2), TypeError);
});
