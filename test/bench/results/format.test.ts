import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBits, formatBytes, formatCount, formatMicros, formatRate, RATE_FORMATS } from '../../../src/bench/results/format.ts';

test('rates and sizes in the unit that fits; whole numbers stay exact in the first unit', () => {
  assert.equal(formatBits(999), '999 bit/s');
  assert.equal(formatBits(23_300_000_000), '23.30 Gbit/s');
  assert.equal(formatBits(150_000_000), '150 Mbit/s');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(2.5 * 1024 ** 3), '2.50 GiB');
});

test('formatRate: one unit as iperf3 -f names it, bits in powers of 1000, bytes in powers of 1024', () => {
  const rate = 8 * 1024 ** 3;
  const printed = RATE_FORMATS.map((format) => formatRate(rate, format));
  assert.deepEqual(printed, [
    '8589935 Kbit/s',
    '8590 Mbit/s',
    '8.59 Gbit/s',
    '0.01 Tbit/s',
    '1048576 KiB/s',
    '1024 MiB/s',
    '1.00 GiB/s',
    '0.00 TiB/s',
  ]);
  assert.equal(formatRate(rate), formatBits(rate), 'no -f: the unit that fits');
});

test('latencies and counts read at a glance', () => {
  assert.equal(formatMicros(null), 'n/a');
  assert.equal(formatMicros(42.25), '42.3 µs');
  assert.equal(formatMicros(2500), '2.50 ms');
  assert.equal(formatMicros(3_000_000), '3.00 s');
  assert.equal(formatCount(999), '999');
  assert.equal(formatCount(12_345), '12.3 k');
  assert.equal(formatCount(2_500_000), '2.50 M');
});
