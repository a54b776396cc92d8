import type { ErrorCounts } from '../../core/errors.ts';

/**
 * Counters one thread updates and any thread reads: a slot per thread in shared memory. Each slot
 * has a single writer, so plain float64 stores suffice (exact up to 2^53 bytes) and the hot path
 * pays no atomic operation or BigInt allocation.
 */
/** Where each counter sits in a thread's slot. */
const FIELD = { current: 0, total: 1, bytesIn: 2, bytesOut: 3, bytesCorrupted: 4, messagesIn: 5 } as const;
const FIELDS = Object.keys(FIELD).length;

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
    this.#values[this.#base + FIELD.current]! += 1;
    this.#values[this.#base + FIELD.total]! += 1;
  }

  closed(): void {
    this.#values[this.#base + FIELD.current]! -= 1;
  }

  /** Connections open on every thread of the server together (read without a lock: a moment's estimate). */
  openEverywhere(): number {
    let open = 0;
    for (let i = FIELD.current; i < this.#values.length; i += FIELDS) open += this.#values[i]!;
    return open;
  }

  addBytesIn(count: number): void {
    this.#values[this.#base + FIELD.bytesIn]! += count;
  }

  addBytesOut(count: number): void {
    this.#values[this.#base + FIELD.bytesOut]! += count;
  }

  addMessagesIn(count: number): void {
    this.#values[this.#base + FIELD.messagesIn]! += count;
  }

  addBytesCorrupted(count: number): void {
    this.#values[this.#base + FIELD.bytesCorrupted]! += count;
  }
}

export function sumCounters(buffer: SharedArrayBuffer): Omit<ServerMetrics, 'errors'> {
  const values = new Float64Array(buffer);
  const sum = new Array<number>(FIELDS).fill(0);
  for (let i = 0; i < values.length; i++) sum[i % FIELDS]! += values[i]!;
  return {
    connectionsCurrent: sum[FIELD.current]!,
    connectionsTotal: sum[FIELD.total]!,
    bytesIn: sum[FIELD.bytesIn]!,
    bytesOut: sum[FIELD.bytesOut]!,
    bytesCorrupted: sum[FIELD.bytesCorrupted]!,
    messagesIn: sum[FIELD.messagesIn]!,
  };
}
