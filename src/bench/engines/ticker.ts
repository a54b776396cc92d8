/**
 * Calls `onTick` every `intervalSec` and once more at the end, with the seconds since start; the
 * schedule is computed from the start time, so ticks do not drift when one runs late.
 */
export class Ticker {
  readonly #startedAt = performance.now();
  readonly #intervalMs: number;
  readonly #onTick: (elapsedSec: number) => void;
  #timer: NodeJS.Timeout | undefined;
  #ticks = 0;

  constructor(intervalSec: number, onTick: (elapsedSec: number) => void) {
    this.#intervalMs = intervalSec * 1000;
    this.#onTick = onTick;
    this.#schedule();
  }

  get elapsedSec(): number {
    return (performance.now() - this.#startedAt) / 1000;
  }

  #schedule(): void {
    this.#ticks++;
    const due = this.#startedAt + this.#ticks * this.#intervalMs;
    this.#timer = setTimeout(
      () => {
        this.#onTick(this.elapsedSec);
        this.#schedule();
      },
      Math.max(0, due - performance.now()),
    );
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
