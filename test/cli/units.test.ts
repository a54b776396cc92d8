import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatSizeFlag } from '../../src/bench/results/format.ts';
import { describeSize, parseBitRate, parseCount, parseSeconds, parseSize } from '../../src/cli/units.ts';

test('parseSize reads binary units as iperf3 does, and refuses what is not a size, naming the flag', () => {
  assert.equal(parseSize('4096', '-l'), 4096);
  assert.equal(parseSize('64K', '-l'), 65_536);
  assert.equal(parseSize('1MiB', '-l'), 1_048_576);
  assert.equal(parseSize('1.5k', '-l'), 1536);
  assert.equal(parseSize(' 2 g ', '-w'), 2 * 1024 ** 3);
  for (const bad of ['', '0', '-1', '1x', 'K', '1e3', '0.0001'])
    assert.throws(() => parseSize(bad, '-l'), /^SocktuneError: -l takes a size like 64K/);
  assert.throws(() => parseSize('2M', '--size', 1024 * 1024), /--size takes at most 1M, got "2M"/);
});

test('a size the CLI prints as a flag value reads back to the same bytes', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 40 }), (bytes) => parseSize(formatSizeFlag(bytes), '-w') === bytes));
  assert.equal(describeSize(64 * 1024), '64K');
  assert.equal(describeSize(1000), '1000 bytes');
});

test('parseBitRate reads decimal units as iperf3 -b does', () => {
  assert.equal(parseBitRate('100M', '-b'), 100e6);
  assert.equal(parseBitRate('2.5g', '-b'), 2.5e9);
  assert.equal(parseBitRate('500kbit/s', '-b'), 500e3);
  assert.equal(parseBitRate('8', '-b'), 8);
  for (const bad of ['7', 'fast', '1Q', '']) assert.throws(() => parseBitRate(bad, '-b'), /-b takes a rate in bits\/s/);
});

test('parseSeconds and parseCount', () => {
  assert.equal(parseSeconds('10', '-t'), 10);
  assert.equal(parseSeconds('1.5s', '-t'), 1.5);
  assert.equal(parseSeconds('2m', '-t'), 120);
  assert.equal(parseSeconds('500ms', '-t'), 0.5);
  assert.equal(parseSeconds('1h', '-t'), 3600);
  assert.throws(() => parseSeconds('soon', '-t'), /-t takes a duration like 10, 1.5s, 2m or 500ms, got "soon"/);
  assert.equal(parseCount('8', '-C'), 8);
  for (const bad of ['0', '1.5', '1e9', 'x']) assert.throws(() => parseCount(bad, '-C', 1, 1000), /-C takes a whole number from 1 to 1000/);
});
