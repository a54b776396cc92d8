import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync, inflateSync } from 'node:zlib';
import fc from 'fast-check';
import * as hdr from 'hdr-histogram-js';
import { SocktuneError } from '../../../src/core/errors.ts';
import { createLatencyHistogram, decodeHistogram, encodeHistogram } from '../../../src/bench/results/histogram.ts';
import { HistogramSum } from '../../../src/bench/results/histogram-sum.ts';
import { MERGE_LIMITS } from '../../../src/bench/results/merge-checks.ts';

const HOUR_NS = 3_600_000_000_000;

function encoded(latencies: number[]): string {
  const histogram = createLatencyHistogram();
  for (const nanos of latencies) histogram.recordValue(nanos);
  return encodeHistogram(histogram);
}

/** What hdr-histogram-js itself makes of the same inputs: each decoded, then added into one 64-bit histogram. */
function reference(inputs: string[]): hdr.Histogram {
  const sum = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HOUR_NS,
    numberOfSignificantValueDigits: 3,
    bitBucketSize: 64,
    useWebAssembly: false,
  });
  for (const input of inputs) sum.add(decodeHistogram(input));
  return sum;
}

/** The inflated V2 encoding of a histogram: 40 bytes of header, then the counts. */
function inflated(encoding: string): Buffer {
  const envelope = Buffer.from(encoding, 'base64');
  return inflateSync(envelope.subarray(8, 8 + envelope.readInt32BE(4)));
}

/** Inflated bytes back into an encoded histogram, as hdr-histogram-js wraps them. */
function wrapped(bytes: Buffer): string {
  const compressed = deflateSync(bytes);
  const head = Buffer.alloc(8);
  head.writeInt32BE(0x1c849304, 0);
  head.writeInt32BE(compressed.length, 4);
  return Buffer.concat([head, compressed]).toString('base64');
}

/** ZigZag LEB128, as the V2 encoding writes a count (a negative one: that many empty buckets). */
function zigzag(value: number): number[] {
  let rest = value >= 0 ? 2 * value : -2 * value - 1;
  const bytes: number[] = [];
  do {
    const low = rest % 128;
    rest = Math.floor(rest / 128);
    bytes.push(rest > 0 ? low | 0x80 : low);
  } while (rest > 0);
  return bytes;
}

/** A socktune-layout histogram whose counts are `payload`, as raw bytes. */
function withPayload(payload: number[] | Buffer, announced = payload.length): string {
  const header = Buffer.from(inflated(encoded([])).subarray(0, 40));
  header.writeInt32BE(announced, 4);
  return wrapped(Buffer.concat([header, Buffer.from(payload)]));
}

const refused =
  (message: RegExp) =>
  (error: unknown): boolean =>
    error instanceof SocktuneError &&
    error.code === 'SOCKTUNE_ERR_MERGE' &&
    error.message.startsWith('run-1.json: summary.histogram ') &&
    message.test(error.message);

const PERCENTILES = [0.001, 1, 25, 50, 90, 99, 99.9, 99.99, 100];

test('HistogramSum: the sum of encoded histograms is what hdr-histogram-js decoding and adding them gives, exactly', () => {
  const latency = fc.oneof(
    fc.integer({ min: 1, max: 5_000 }),
    fc.integer({ min: 1, max: 50_000_000 }),
    fc.integer({ min: 1, max: HOUR_NS }),
  );
  fc.assert(
    fc.property(fc.array(fc.array(latency, { maxLength: 200 }), { minLength: 1, maxLength: 4 }), (runs) => {
      const inputs = runs.map(encoded);
      const sum = new HistogramSum();
      for (const input of inputs) sum.add(input, 'run-1.json', 'summary.histogram');
      const expected = reference(inputs);
      assert.equal(sum.totalCount, runs.flat().length);
      const merged = sum.toHistogram();
      assert.equal(merged.totalCount, expected.totalCount);
      assert.equal(merged.maxValue, expected.maxValue);
      assert.equal(merged.minNonZeroValue, expected.minNonZeroValue);
      for (const percentile of PERCENTILES) {
        if (expected.totalCount === 0) continue;
        assert.equal(sum.valueAtPercentile(percentile), expected.getValueAtPercentile(percentile), `p${percentile}`);
        assert.equal(merged.getValueAtPercentile(percentile), expected.getValueAtPercentile(percentile), `p${percentile}`);
      }
    }),
    { numRuns: 20 },
  );
});

test('HistogramSum: a bucket given by hand lands where hdr-histogram-js puts it; clear() starts afresh', () => {
  const handMade = withPayload([...zigzag(-100), ...zigzag(5)]);
  assert.equal(decodeHistogram(handMade).getValueAtPercentile(50), 100, 'the hand-made encoding is one hdr-histogram-js reads');
  const sum = new HistogramSum();
  sum.add(handMade, 'run-1.json', 'summary.histogram');
  sum.add(` ${encoded([100, 200])}\n`, 'run-1.json', 'summary.histogram');
  assert.equal(sum.totalCount, 7);
  assert.equal(sum.valueAtPercentile(50), 100);
  assert.equal(sum.valueAtPercentile(100), 200);
  sum.clear();
  assert.equal(sum.totalCount, 0);
  assert.equal(sum.valueAtPercentile(50), 0);
  assert.equal(sum.toHistogram().totalCount, 0);
  sum.add(encoded([300]), 'run-1.json', 'summary.histogram');
  assert.equal(sum.valueAtPercentile(1), 300, 'nothing of the cleared counts is left');
});

test('HistogramSum: what is not a socktune histogram is refused with SOCKTUNE_ERR_MERGE, naming the file and the field', () => {
  const valid = encoded([1000, 2000]);
  const envelope = Buffer.from(valid, 'base64');
  const otherLayout = (options: Parameters<typeof hdr.build>[0]): string => {
    const histogram = hdr.build({ useWebAssembly: false, ...options });
    histogram.recordValue(5);
    return hdr.encodeIntoCompressedBase64(histogram);
  };
  const cases: [unknown, RegExp][] = [
    [42, /\(a number, not a string\)/],
    [null, /\(null, not a string\)/],
    ['A'.repeat(MERGE_LIMITS.maxHistogramChars + 4), /524292 characters, more than the 524288/],
    ['not base64!', /\(not base64\)/],
    [Buffer.from('just some bytes').toString('base64'), /no hdr-histogram V2 compressed header/],
    [
      Buffer.concat([envelope.subarray(0, 4), Buffer.from([0, 0, 0xff, 0xff]), envelope.subarray(8)]).toString('base64'),
      /cut short: 65535 compressed bytes announced/,
    ],
    [
      Buffer.concat([envelope.subarray(0, 8), Buffer.alloc(envelope.length - 8, 0x55)]).toString('base64'),
      /compressed bytes are cut short or corrupt/,
    ],
    [wrapped(Buffer.alloc(30)), /no hdr-histogram V2 header\)/],
    [withPayload([2, 2], 1000), /cut short: 1000 bytes of counts announced, 2 present/],
    [withPayload([0x80]), /its last count is incomplete/],
    [withPayload(zigzag(2 ** 31)), /counts 2147483648 latencies in one bucket, more than the 2147483647/],
    [withPayload([...zigzag(-1_000_000), ...zigzag(1)]), /holds latencies past the 3600000000000 ns/],
    [otherLayout({ highestTrackableValue: 1_000_000 }), /covers 1 to 1000000 ns at 3 significant digits/],
    [otherLayout({ highestTrackableValue: HOUR_NS, numberOfSignificantValueDigits: 2 }), /at 2 significant digits/],
    [otherLayout({ lowestDiscernibleValue: 1000, highestTrackableValue: HOUR_NS }), /covers 1000 to/],
  ];
  for (const [input, message] of cases) {
    const sum = new HistogramSum();
    assert.throws(() => sum.add(input, 'run-1.json', 'summary.histogram'), refused(message), String(message));
  }
});

test('HistogramSum: a decompression bomb is refused before it is inflated whole', () => {
  const bomb = wrapped(Buffer.alloc(4 * 1024 * 1024));
  assert.ok(bomb.length < 10_000, 'small on the wire');
  assert.throws(
    () => new HistogramSum().add(bomb, 'run-1.json', 'summary.histogram'),
    refused(new RegExp(`it inflates to more than ${MERGE_LIMITS.maxHistogramBytes} bytes`)),
  );
});

test('HistogramSum: a sum past 2^53 - 1 latencies, which a double no longer counts exactly, is refused', () => {
  // Every bucket at the most a run's 32-bit bucket holds: about 7e13 latencies a histogram.
  const full = withPayload(Array.from({ length: 33_792 }, () => zigzag(MERGE_LIMITS.maxBucketCount)).flat());
  const sum = new HistogramSum();
  let added = 0;
  assert.throws(
    () => {
      for (; added < 1000; added++) sum.add(full, 'run-1.json', 'summary.histogram');
    },
    refused(/brings the merged histogram past 9007199254740991 latencies/),
  );
  assert.ok(added > 100 && added < 200, `refused at histogram ${added + 1}`);
});

test('HistogramSum: corrupted encodings are refused with SOCKTUNE_ERR_MERGE, never another error', () => {
  const valid = inflated(encoded([1, 50, 1000, 123_456, 99_999_999, HOUR_NS]));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (flips) => {
      const bytes = Buffer.from(valid);
      for (const [at, value] of flips) bytes[at % bytes.length] = value;
      try {
        new HistogramSum().add(wrapped(bytes), 'run-1.json', 'summary.histogram');
      } catch (error) {
        assert.ok(refused(/./)(error), String(error));
      }
    }),
    { numRuns: 250 },
  );
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.base64String()), (text) => {
      try {
        new HistogramSum().add(text, 'run-1.json', 'summary.histogram');
      } catch (error) {
        assert.ok(refused(/./)(error), String(error));
      }
    }),
  );
});
