import type { ByteBudget } from '../framing/partial-message.ts';

/** What a BufferBudget needs to be rebuilt in another thread. */
export interface BufferBudgetState {
  buffer: SharedArrayBuffer;
  maxBytes: number;
}

/** The largest budget one Int32 counter in shared memory can keep. */
export const MAX_BUFFER_BUDGET = 2 ** 31 - 1;

/**
 * Bytes that partly received messages (frames, sockperf messages) may hold, every connection and
 * thread of a server together — or of several servers given the same budget. A message that does
 * not fit closes its connection (SOCKTUNE_ERR_BUFFER_BUDGET) instead of growing the process.
 */
export class BufferBudget implements ByteBudget {
  readonly #state: BufferBudgetState;
  readonly #used: Int32Array;

  constructor(maxBytes: number, buffer = new SharedArrayBuffer(4)) {
    this.#state = { buffer, maxBytes };
    this.#used = new Int32Array(buffer);
  }

  static fromState(state: BufferBudgetState): BufferBudget {
    return new BufferBudget(state.maxBytes, state.buffer);
  }

  get state(): BufferBudgetState {
    return this.#state;
  }

  get usedBytes(): number {
    return Atomics.load(this.#used, 0);
  }

  tryReserve(bytes: number): boolean {
    for (;;) {
      const used = Atomics.load(this.#used, 0);
      if (used + bytes > this.#state.maxBytes) return false;
      if (Atomics.compareExchange(this.#used, 0, used, used + bytes) === used) return true;
    }
  }

  release(bytes: number): void {
    Atomics.sub(this.#used, 0, bytes);
  }
}
