import { SocktuneError } from '../core/errors.ts';

/**
 * Memory that partly received messages may hold, shared by every connection (and thread) of a
 * server: a decoder reserves a message's size before it allocates the buffer that gathers it.
 */
export interface ByteBudget {
  /** Takes `bytes` from the budget; false when that would go over it. */
  tryReserve(bytes: number): boolean;
  release(bytes: number): void;
}

/**
 * The first allocation of a message gathered under a budget: it grows (doubling) as its bytes
 * arrive. Small, so that connections which only announce messages hold little each.
 */
const FIRST_CAPACITY = 4 * 1024;

function noRoom(length: number): SocktuneError {
  return new SocktuneError(
    'SOCKTUNE_ERR_BUFFER_BUDGET',
    `no room to gather a ${length}-byte message: the server's buffer budget is taken by other partly received messages`,
  );
}

/**
 * A message that spans reads, gathered into one buffer. Without a budget it is allocated at its
 * exact size at once (its length has passed the decoder's limits). Under a budget the buffer
 * grows as bytes arrive and the budget is charged for what is allocated, so a peer that only
 * announces a large message holds next to nothing: memory follows the bytes actually sent.
 */
export class PartialMessage {
  readonly length: number;
  filled: number;
  #buffer: Buffer;
  readonly #budget: ByteBudget | undefined;

  /** `prefill`: bytes of the message already seen (a header that must stay part of it). */
  constructor(length: number, prefill?: Buffer, budget?: ByteBudget) {
    this.length = length;
    this.#budget = budget;
    const capacity = budget === undefined ? length : Math.min(length, Math.max(FIRST_CAPACITY, prefill?.length ?? 0));
    if (budget !== undefined && !budget.tryReserve(capacity)) throw noRoom(length);
    this.#buffer = Buffer.allocUnsafe(capacity);
    this.filled = prefill ? prefill.copy(this.#buffer, 0) : 0;
  }

  /** Copies what the message still lacks from `chunk` at `offset`; returns how many bytes it took. */
  fill(chunk: Buffer, offset: number): number {
    const take = Math.min(this.length - this.filled, chunk.length - offset);
    if (this.filled + take > this.#buffer.length) this.#grow(this.filled + take);
    chunk.copy(this.#buffer, this.filled, offset, offset + take);
    this.filled += take;
    return take;
  }

  #grow(needed: number): void {
    const capacity = Math.min(this.length, Math.max(needed, this.#buffer.length * 2));
    if (!this.#budget!.tryReserve(capacity - this.#buffer.length)) throw noRoom(this.length);
    const grown = Buffer.allocUnsafe(capacity);
    this.#buffer.copy(grown, 0, 0, this.filled);
    this.#buffer = grown;
  }

  get complete(): boolean {
    return this.filled === this.length;
  }

  /** The whole message, its reservation given back: call once `complete`. */
  take(): Buffer {
    this.release();
    return this.#buffer;
  }

  /** Gives the reservation back (its connection is gone). */
  release(): void {
    this.#budget?.release(this.#buffer.length);
  }
}
