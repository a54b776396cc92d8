/** One connection's requests in flight: their (intended) start times, oldest first, in a queue that reuses its array. */
export class InFlight {
  readonly #starts: number[] = [];
  #head = 0;

  get size(): number {
    return this.#starts.length - this.#head;
  }

  push(start: number): void {
    this.#starts.push(start);
  }

  shift(): number {
    const start = this.#starts[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#starts.length) {
      this.#starts.splice(0, this.#head);
      this.#head = 0;
    }
    return start;
  }
}
