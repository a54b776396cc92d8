import { randomInt } from 'node:crypto';
import type { ByteBudget } from '../../framing/partial-message.ts';
import { PEER_SLOTS, slotOf } from './peer-slots.ts';

/** What a BufferBudget needs to be rebuilt in another thread. */
export interface BufferBudgetState {
  buffer: SharedArrayBuffer;
  maxBytes: number;
}

/** The largest budget one Int32 counter in shared memory can keep. */
export const MAX_BUFFER_BUDGET = 2 ** 31 - 1;

/**
 * One client may fill the budget alone only up to this fraction; past it, the rest is kept for
 * clients holding less than their share, so one client cannot close everyone else's messages.
 */
const UNCONTENDED_FRACTION = 0.5;
/** A client's share of the budget once it is half full: a quarter of the whole (a message gathered and its echo on its way count twice). */
const CLIENT_SHARE_DIVISOR = 4;

/**
 * Bytes that partly received messages (frames, sockperf messages) may hold, every connection and
 * thread of a server together — or of several servers given the same budget. A message that does
 * not fit closes its connection (SOCKTUNE_ERR_BUFFER_BUDGET) instead of growing the process.
 * Counted per client too (`forClient`): once half the budget is taken, a client holding its share
 * (a quarter) or more gets no more, so the rest stays for the others.
 */
export class BufferBudget implements ByteBudget {
  readonly #state: BufferBudgetState;
  /** [0]: bytes held in all; then one count per client slot (admission.ts's hashing); last, the slots' seed. */
  readonly #used: Int32Array;
  readonly #seed: number;

  constructor(maxBytes: number, buffer = BufferBudget.#allocate()) {
    this.#state = { buffer, maxBytes };
    this.#used = new Int32Array(buffer);
    this.#seed = this.#used[1 + PEER_SLOTS]!;
  }

  static #allocate(): SharedArrayBuffer {
    const buffer = new SharedArrayBuffer((2 + PEER_SLOTS) * 4);
    new Int32Array(buffer)[1 + PEER_SLOTS] = randomInt(1, 2 ** 31 - 1);
    return buffer;
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
    return this.#reserve(bytes, this.#state.maxBytes);
  }

  release(bytes: number): void {
    Atomics.sub(this.#used, 0, bytes);
  }

  /** The budget as one client (its admission key, '' for a Unix socket) draws on it. */
  forClient(key: string): ByteBudget {
    if (key === '') return this;
    const slot = 1 + slotOf(key, this.#seed);
    const share = Math.floor(this.#state.maxBytes / CLIENT_SHARE_DIVISOR);
    const uncontended = Math.floor(this.#state.maxBytes * UNCONTENDED_FRACTION);
    return {
      tryReserve: (bytes) => {
        const mine = Atomics.add(this.#used, slot, bytes) + bytes;
        // Within its share a client may fill the budget; beyond it, only its uncontended half.
        if (this.#reserve(bytes, mine <= share ? this.#state.maxBytes : uncontended)) return true;
        Atomics.sub(this.#used, slot, bytes);
        return false;
      },
      release: (bytes) => {
        Atomics.sub(this.#used, slot, bytes);
        this.release(bytes);
      },
    };
  }

  #reserve(bytes: number, limit: number): boolean {
    for (;;) {
      const used = Atomics.load(this.#used, 0);
      if (used + bytes > limit) return false;
      if (Atomics.compareExchange(this.#used, 0, used, used + bytes) === used) return true;
    }
  }
}
