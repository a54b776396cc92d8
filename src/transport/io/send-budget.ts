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
 * token bucket kept as one "theoretical arrival time" (GCRA) in shared memory, updated with a
 * compare-and-swap, so no thread or test gets a bucket of its own.
 *
 * Senders take bytes before they write them (`tryTake`): a take is granted only while the bucket
 * is at most one burst behind, so what all writers together send by time t is at most
 * rate × t + burstBytes + one write, writers cut their writes to `maxWriteBytes`, and nothing is
 * ever booked ahead: a sender that gives up (its connection closed) leaves no debt for others.
 * Services that answer reads cannot know their answer's size beforehand: they wait while the
 * bucket is `behind()`, then `charge()` what they wrote.
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

  /** Takes `bytes` if the bucket allows now (0), or says how many ms to wait before asking again (nothing taken). */
  tryTake(bytes: number): number {
    const cost = this.#cost(bytes);
    for (;;) {
      const now = process.hrtime.bigint();
      const arrival = Atomics.load(this.#state, 0);
      const behindNs = arrival - now - this.#toleranceNs;
      if (behindNs > 0n) return nsToMs(behindNs);
      const start = arrival > now ? arrival : now;
      if (Atomics.compareExchange(this.#state, 0, arrival, start + cost) === arrival) return 0;
    }
  }

  /** Milliseconds until the bucket is no more than a burst behind (0: a sender may go now). */
  behind(): number {
    const behindNs = Atomics.load(this.#state, 0) - process.hrtime.bigint() - this.#toleranceNs;
    return behindNs > 0n ? nsToMs(behindNs) : 0;
  }

  /** Books bytes already written (an answer whose size was known only once it was made). */
  charge(bytes: number): void {
    const cost = this.#cost(bytes);
    for (;;) {
      const now = process.hrtime.bigint();
      const arrival = Atomics.load(this.#state, 0);
      const start = arrival > now ? arrival : now;
      if (Atomics.compareExchange(this.#state, 0, arrival, start + cost) === arrival) return;
    }
  }

  #cost(bytes: number): bigint {
    return BigInt(Math.ceil(bytes * this.#nsPerByte));
  }
}

function nsToMs(ns: bigint): number {
  return Math.max(1, Math.ceil(Number(ns) / 1e6));
}
