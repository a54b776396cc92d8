import type { ErrorCounts } from '../core/errors.ts';

/**
 * Counters one thread updates and any thread reads: a slot per thread in shared memory. Each slot
 * has a single writer, so plain float64 stores suffice (exact up to 2^53 bytes) and the hot path
 * pays no atomic operation or BigInt allocation.
 */
const FIELDS = 6;
const CURRENT = 0;
const TOTAL = 1;
const BYTES_IN = 2;
const BYTES_OUT = 3;
const BYTES_CORRUPTED = 4;
const MESSAGES_IN = 5;

export interface ServerMetrics {
  connectionsCurrent: number;
  connectionsTotal: number;
  bytesIn: number;
  bytesOut: number;
  /** Bytes the 'verify' service found off the pattern. */
  bytesCorrupted: number;
  /** Length-prefixed messages the msg services received. */
  messagesIn: number;
  /** Connections refused or ended on errors, by code. */
  errors: ErrorCounts;
}

export class SharedCounters {
  readonly buffer: SharedArrayBuffer;
  readonly #values: Float64Array;
  readonly #base: number;

  constructor(buffer: SharedArrayBuffer, slot: number) {
    this.buffer = buffer;
    this.#values = new Float64Array(buffer);
    this.#base = slot * FIELDS;
  }

  static allocate(slots: number): SharedArrayBuffer {
    return new SharedArrayBuffer(slots * FIELDS * 8);
  }

  opened(): void {
    this.#values[this.#base + CURRENT]! += 1;
    this.#values[this.#base + TOTAL]! += 1;
  }

  closed(): void {
    this.#values[this.#base + CURRENT]! -= 1;
  }

  /** Connections open on every thread of the server together (read without a lock: a moment's estimate). */
  openEverywhere(): number {
    let open = 0;
    for (let i = CURRENT; i < this.#values.length; i += FIELDS) open += this.#values[i]!;
    return open;
  }

  addBytesIn(count: number): void {
    this.#values[this.#base + BYTES_IN]! += count;
  }

  addBytesOut(count: number): void {
    this.#values[this.#base + BYTES_OUT]! += count;
  }

  addMessagesIn(count: number): void {
    this.#values[this.#base + MESSAGES_IN]! += count;
  }

  addBytesCorrupted(count: number): void {
    this.#values[this.#base + BYTES_CORRUPTED]! += count;
  }
}

export function sumCounters(buffer: SharedArrayBuffer): Omit<ServerMetrics, 'errors'> {
  const values = new Float64Array(buffer);
  const sum = new Array<number>(FIELDS).fill(0);
  for (let i = 0; i < values.length; i++) sum[i % FIELDS]! += values[i]!;
  return {
    connectionsCurrent: sum[CURRENT]!,
    connectionsTotal: sum[TOTAL]!,
    bytesIn: sum[BYTES_IN]!,
    bytesOut: sum[BYTES_OUT]!,
    bytesCorrupted: sum[BYTES_CORRUPTED]!,
    messagesIn: sum[MESSAGES_IN]!,
  };
}
