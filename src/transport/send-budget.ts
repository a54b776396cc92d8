/** What a budget needs to be rebuilt in another thread (a SharedArrayBuffer and two numbers). */
export interface SendBudgetState {
  buffer: SharedArrayBuffer;
  bytesPerSecond: number;
  burstBytes: number;
}

/** The smallest burst: one socket read or write of the built-in services. */
const MIN_BURST_BYTES = 64 * 1024;
const NS_PER_SECOND = 1e9;

/**
 * A send-rate limit shared by every thread, connection and server given the same budget: a
 * token bucket kept as one "theoretical arrival time" (GCRA) in shared memory, reserved with a
 * compare-and-swap, so no thread or test gets a bucket of its own.
 *
 * Callers reserve bytes before they write them and wait the returned time first. Since every
 * reservation is serialized, what all writers together send by time t is at most
 * rate × t + burstBytes + one write; writers cut their writes to `maxWriteBytes` (the burst), so
 * the overdraw is never more than two bursts.
 */
export class SendBudget {
  readonly bytesPerSecond: number;
  /** 10 ms of traffic at the rate, at least 64 KiB: small next to any measurement interval. */
  readonly burstBytes: number;
  readonly #state: BigInt64Array;
  readonly #buffer: SharedArrayBuffer;
  readonly #nsPerByte: number;
  readonly #toleranceNs: bigint;

  constructor(bytesPerSecond: number, shared?: { buffer: SharedArrayBuffer; burstBytes: number }) {
    this.bytesPerSecond = bytesPerSecond;
    this.burstBytes = shared?.burstBytes ?? Math.max(MIN_BURST_BYTES, Math.ceil(bytesPerSecond / 100));
    this.#buffer = shared?.buffer ?? new SharedArrayBuffer(8);
    this.#state = new BigInt64Array(this.#buffer);
    this.#nsPerByte = NS_PER_SECOND / bytesPerSecond;
    this.#toleranceNs = BigInt(Math.ceil(this.burstBytes * this.#nsPerByte));
  }

  /** The same budget in another thread. */
  static fromState(state: SendBudgetState): SendBudget {
    return new SendBudget(state.bytesPerSecond, state);
  }

  get state(): SendBudgetState {
    return { buffer: this.#buffer, bytesPerSecond: this.bytesPerSecond, burstBytes: this.burstBytes };
  }

  /** The largest write a paced sender should make. */
  get maxWriteBytes(): number {
    return this.burstBytes;
  }

  /**
   * Reserves `bytes` of the budget; returns the milliseconds to wait before writing them (0: now).
   * `reserve(0)` only asks how long the writers already queued take.
   */
  reserve(bytes: number): number {
    const cost = BigInt(Math.ceil(bytes * this.#nsPerByte));
    for (;;) {
      const now = process.hrtime.bigint();
      const arrival = Atomics.load(this.#state, 0);
      const start = arrival > now ? arrival : now;
      if (Atomics.compareExchange(this.#state, 0, arrival, start + cost) !== arrival) continue;
      const waitNs = start - now - this.#toleranceNs;
      return waitNs > 0n ? Math.ceil(Number(waitNs) / 1e6) : 0;
    }
  }
}
