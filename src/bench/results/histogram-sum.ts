import { inflateSync } from 'node:zlib';
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';
import type { SocktuneError } from '../../core/errors.ts';
import { createLatencyHistogram } from './histogram.ts';
import { MERGE_LIMITS, refuse } from './merge-checks.ts';

// Histograms. hdr-histogram-js's V2 encoding is base64 of [cookie, deflated length, deflated bytes];
// inflated: [cookie, payload length, normalizing offset, significant digits, lowest, highest, ratio]
// (int32s, then int64s, big-endian), then the counts as ZigZag LEB128, a negative number being a run
// of empty buckets. Its own decoder trusts all of it (the range it allocates for, the payload
// length it loops over, the inflated size), and makes a whole histogram per input; a merge reads
// the bytes itself, checking each before using it, and adds the counts into one sum by bucket.

const COMPRESSED_COOKIE = 0x1c849304;
const ENCODING_COOKIE = 0x1c849303;
const HEADER_BYTES = 40;
/** A histogram socktune writes inflates to a few hundred bytes: smaller output chunks than zlib's 16 KiB default allocate less. */
const INFLATE_CHUNK_BYTES = 1024;

/** The one layout socktune records in (createLatencyHistogram): whole nanoseconds up to an hour. */
const LAYOUT = createLatencyHistogram();
const LOWEST_NS = 1;
/** Buckets hold 2^HALF_MAGNITUDE sub-buckets each (bucket 0 twice that), as hdr-histogram-js sizes them. */
const HALF_MAGNITUDE = Math.ceil(Math.log2(2 * 10 ** LAYOUT.numberOfSignificantValueDigits)) - 1;
const HALF_COUNT = 2 ** HALF_MAGNITUDE;
/** Counts the layout has: bucket k reaches 2 × HALF_COUNT × 2^k, and the last bucket passes the highest value. */
const COUNTS_LENGTH = ((): number => {
  let buckets = 1;
  for (let untrackable = 2 * HALF_COUNT; untrackable <= LAYOUT.highestTrackableValue; untrackable *= 2) buckets++;
  return (buckets + 1) * HALF_COUNT;
})();

/** The lowest value counted at `index` (hdr-histogram-js's valueFromIndex). */
function lowestAt(index: number): number {
  const bucket = Math.floor(index / HALF_COUNT) - 1;
  return bucket < 0 ? index : ((index % HALF_COUNT) + HALF_COUNT) * 2 ** bucket;
}

/** The highest value counted at `index` (highestEquivalentValue). */
function highestAt(index: number): number {
  const bucket = Math.floor(index / HALF_COUNT) - 1;
  return lowestAt(index) + (bucket < 0 ? 1 : 2 ** bucket) - 1;
}

/** The inflated bytes of an encoded histogram, each length checked before it is used. */
function inflateHistogram(encoded: unknown, label: string, field: string): Buffer {
  const invalid = (why: string): SocktuneError => refuse(label, field, `is not a valid encoded histogram (${why})`);
  if (typeof encoded !== 'string') throw invalid(`${encoded === null ? 'null' : `a ${typeof encoded}`}, not a string`);
  if (encoded.length > MERGE_LIMITS.maxHistogramChars)
    throw invalid(`${encoded.length} characters, more than the ${MERGE_LIMITS.maxHistogramChars} a socktune histogram can take`);
  const text = encoded.trim();
  const envelope = Buffer.from(text, 'base64');
  // Buffer.from skips what is not base64; canonical base64 (what hdr-histogram-js writes) comes back as it was.
  if (envelope.toString('base64') !== text) throw invalid('not base64');
  if (envelope.length < 8 || (envelope.readInt32BE(0) & ~0xf0) !== COMPRESSED_COOKIE)
    throw invalid('no hdr-histogram V2 compressed header');
  const compressed = envelope.readInt32BE(4);
  if (compressed <= 0 || compressed > envelope.length - 8)
    throw invalid(`cut short: ${compressed} compressed bytes announced, ${envelope.length - 8} present`);
  try {
    return inflateSync(envelope.subarray(8, 8 + compressed), {
      maxOutputLength: MERGE_LIMITS.maxHistogramBytes,
      chunkSize: INFLATE_CHUNK_BYTES,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw invalid(`it inflates to more than ${MERGE_LIMITS.maxHistogramBytes} bytes`);
    throw invalid(`its compressed bytes are cut short or corrupt: ${(error as Error).message}`);
  }
}

/**
 * The sum of encoded histograms, bucket by bucket, in socktune's layout: what hdr-histogram-js's
 * decode then `add()` of each would give (same counts, same largest and smallest value), without a
 * histogram per input, and cleared in the time it took to fill.
 */
export class HistogramSum {
  readonly #counts = new Float64Array(COUNTS_LENGTH);
  /** The buckets counted in, in the order they were first counted. */
  #used: number[] = [];
  #sorted = true;
  #total = 0;

  get totalCount(): number {
    return this.#total;
  }

  /** Adds an encoded histogram, refusing (naming `label` and `field`) one socktune did not write. */
  add(encoded: unknown, label: string, field: string): void {
    const bytes = inflateHistogram(encoded, label, field);
    const invalid = (why: string): SocktuneError => refuse(label, field, `is not a valid encoded histogram (${why})`);
    if (bytes.length < HEADER_BYTES || (bytes.readInt32BE(0) & ~0xf0) !== ENCODING_COOKIE) throw invalid('no hdr-histogram V2 header');
    const payloadBytes = bytes.readInt32BE(4);
    if (payloadBytes < 0 || payloadBytes > bytes.length - HEADER_BYTES)
      throw invalid(`cut short: ${payloadBytes} bytes of counts announced, ${bytes.length - HEADER_BYTES} present`);
    const digits = bytes.readInt32BE(12);
    // As unsigned 64-bit numbers, exact up to 2^53: enough to tell socktune's two values from any other.
    const lowest = bytes.readUInt32BE(16) * 2 ** 32 + bytes.readUInt32BE(20);
    const highest = bytes.readUInt32BE(24) * 2 ** 32 + bytes.readUInt32BE(28);
    if (digits !== LAYOUT.numberOfSignificantValueDigits || lowest !== LOWEST_NS || highest !== LAYOUT.highestTrackableValue)
      throw refuse(
        label,
        field,
        `covers ${bytes.readBigInt64BE(16)} to ${bytes.readBigInt64BE(24)} ns at ${digits} ` +
          `significant digits, not the ${LOWEST_NS} to ${LAYOUT.highestTrackableValue} ns at ` +
          `${LAYOUT.numberOfSignificantValueDigits} of every socktune histogram`,
      );
    const end = HEADER_BYTES + payloadBytes;
    let position = HEADER_BYTES;
    let index = 0;
    while (position < end) {
      // ZigZag LEB128 of at most 9 bytes, read as hdr-histogram-js reads it (7 bits of the 9th too).
      let byte = bytes[position++]!;
      let zigzag = byte & 0x7f;
      for (let scale = 2 ** 7, read = 1; (byte & 0x80) !== 0 && read < 9; scale *= 2 ** 7, read++) {
        if (position >= end) throw invalid('cut short: its last count is incomplete');
        byte = bytes[position++]!;
        zigzag += (byte & 0x7f) * scale;
      }
      const value = zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2;
      if (value < 0) {
        index -= value;
        continue;
      }
      if (value > 0) {
        if (value > MERGE_LIMITS.maxBucketCount)
          throw refuse(
            label,
            field,
            `counts ${value} latencies in one bucket, more than the ${MERGE_LIMITS.maxBucketCount} a run's bucket holds`,
          );
        if (index >= COUNTS_LENGTH)
          throw refuse(label, field, `holds latencies past the ${LAYOUT.highestTrackableValue} ns a socktune histogram tracks`);
        if (this.#counts[index] === 0) {
          if (this.#used.length > 0 && index < this.#used.at(-1)!) this.#sorted = false;
          this.#used.push(index);
        }
        this.#counts[index]! += value;
        this.#total += value;
      }
      index++;
    }
    if (this.#total > MERGE_LIMITS.maxCount)
      throw refuse(label, field, `brings the merged histogram past ${MERGE_LIMITS.maxCount} latencies, more than it counts exactly`);
  }

  /** The counted buckets in ascending order. */
  #buckets(): number[] {
    if (!this.#sorted) this.#used.sort((a, b) => a - b);
    this.#sorted = true;
    return this.#used;
  }

  /** hdr-histogram-js's getValueAtPercentile (percentile > 0) of these counts: the top of the bucket the count reaches it in. */
  valueAtPercentile(percentile: number): number {
    const fractional = (Math.min(percentile, 100) / 100) * this.#total;
    // Rounded up, less one unit in the last place, as hdr-histogram-js does, so that fp error never skips a count.
    const wanted = Math.max(Math.ceil(fractional - 2 ** (Math.floor(Math.log2(fractional)) - 52)), 1);
    let reached = 0;
    for (const index of this.#buckets()) {
      reached += this.#counts[index]!;
      if (reached >= wanted) return highestAt(index);
    }
    return 0;
  }

  /** The sum as an hdr histogram: 64-bit buckets, since runs together can pass the 2^31 of one run's 32-bit ones. */
  toHistogram(): Histogram {
    const histogram = hdr.build({
      lowestDiscernibleValue: LOWEST_NS,
      highestTrackableValue: LAYOUT.highestTrackableValue,
      numberOfSignificantValueDigits: LAYOUT.numberOfSignificantValueDigits as 3,
      bitBucketSize: 64,
      useWebAssembly: false,
    });
    const buckets = this.#buckets();
    for (const index of buckets) histogram.recordValueWithCount(lowestAt(index), this.#counts[index]!);
    // add() takes the largest value as the top of the highest bucket; a record takes its bottom.
    if (buckets.length > 0) histogram.recordValueWithCount(highestAt(buckets.at(-1)!), 0);
    return histogram;
  }

  clear(): void {
    for (const index of this.#used) this.#counts[index] = 0;
    this.#used = [];
    this.#sorted = true;
    this.#total = 0;
  }
}
