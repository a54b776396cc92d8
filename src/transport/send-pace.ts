/**
 * Paces the bytes an event loop sends to a rate, a token bucket shared by every connection on that
 * loop. A write may overdraw by one chunk; the debt is how long the next one waits.
 */
export class SendPace {
  readonly #bytesPerMs: number;
  readonly #burstBytes: number;
  #available: number;
  #last = performance.now();

  constructor(bytesPerSecond: number) {
    this.#bytesPerMs = bytesPerSecond / 1000;
    // 10 ms of traffic, so a burst stays small next to any measurement interval.
    this.#burstBytes = Math.max(16 * 1024, bytesPerSecond / 100);
    this.#available = this.#burstBytes;
  }

  /** Takes `bytes` from the bucket; returns the milliseconds to wait before sending more (0: none). */
  spend(bytes: number): number {
    const now = performance.now();
    this.#available = Math.min(this.#burstBytes, this.#available + (now - this.#last) * this.#bytesPerMs);
    this.#last = now;
    this.#available -= bytes;
    return this.#available >= 0 ? 0 : Math.ceil(-this.#available / this.#bytesPerMs);
  }
}
