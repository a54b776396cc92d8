/**
 * Threads a server lets its tests' bulk transfers use at once, all tests together: a client cannot
 * make the server start threads (each costs megabytes) by opening tests. Streams granted none stay
 * on the event loop.
 */
export class ThreadQuota {
  readonly #max: number;
  #taken = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** Up to `wanted` threads, as many as are free: 0 when none is. */
  take(wanted: number): number {
    const granted = Math.max(0, Math.min(wanted, this.#max - this.#taken));
    this.#taken += granted;
    return granted;
  }

  give(count: number): void {
    this.#taken = Math.max(0, this.#taken - count);
  }
}
