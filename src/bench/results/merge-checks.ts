import { SocktuneError } from '../../core/errors.ts';

/**
 * What a merge takes from a document, beyond what the JSON schema checks. Every number in a result
 * is a claim the merge may refuse (SOCKTUNE_ERR_MERGE, naming the file and the field), never a size
 * it allocates for or a value it adopts unchecked.
 */
export const MERGE_LIMITS = Object.freeze({
  /** `-i`: from 1 ms, the finest the CLI's units give, to an hour, the longest it takes. */
  minIntervalSec: 0.001,
  maxIntervalSec: 3600,
  /** An interval starts within a day of its run's start: `-t` and `--omit` take an hour each at most. */
  maxIntervalStartSec: 86_400,
  /** Runs started further apart are not one test (and would put slot numbers past exact integers). */
  maxStartSkewSec: 86_400,
  /** Intervals in the merged document: a million keep its JSON well under the longest string V8 makes. */
  maxSlots: 1_000_000,
  /** Counts, bytes and rates: beyond 2^53 - 1 a double no longer holds them exactly. */
  maxCount: Number.MAX_SAFE_INTEGER,
  /** An encoded histogram: socktune's, with every bucket counted, is under 230,000 characters. */
  maxHistogramChars: 512 * 1024,
  /** ... and under 170,000 bytes inflated: more is a decompression bomb, refused before it is made. */
  maxHistogramBytes: 256 * 1024,
  /** Latencies in one bucket of one run's histogram: what a run's 32-bit bucket holds. */
  maxBucketCount: 2 ** 31 - 1,
});

export function refuse(label: string, field: string, problem: string): SocktuneError {
  return new SocktuneError('SOCKTUNE_ERR_MERGE', `${label}: ${field} ${problem}`);
}

/** A value as a message quotes it: short, whatever it is. */
export function quote(value: unknown): string {
  const text = value === undefined ? 'nothing' : (JSON.stringify(value) ?? typeof value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** A count, byte total or rate of a document: a number from 0 to maxCount. */
export function count(value: unknown, label: string, field: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= MERGE_LIMITS.maxCount))
    throw refuse(label, field, `must be a number from 0 to ${MERGE_LIMITS.maxCount}, got ${quote(value)}`);
  return value;
}

/** Like count, but null (a raw peer counts nothing there) stays null. */
export function countOrNull(value: unknown, label: string, field: string): number | null {
  return value === null || value === undefined ? null : count(value, label, field);
}
