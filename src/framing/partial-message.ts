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
 * A message that spans reads, gathered into a buffer of its exact size: allocated only once its
 * length has passed the decoder's limits (and the budget, when there is one), filled chunk by chunk.
 */
export class PartialMessage {
  readonly buffer: Buffer;
  filled: number;
  readonly #budget: ByteBudget | undefined;

  /** `prefill`: bytes of the message already seen (a header that must stay part of it). */
  constructor(length: number, prefill?: Buffer, budget?: ByteBudget) {
    if (budget !== undefined && !budget.tryReserve(length)) {
      throw new SocktuneError('SOCKTUNE_ERR_BUFFER_BUDGET', `no room to gather a ${length}-byte message: the server's buffer budget is taken by other partly received messages`);
    }
    this.#budget = budget;
    this.buffer = Buffer.allocUnsafe(length);
    this.filled = prefill ? prefill.copy(this.buffer, 0) : 0;
  }

  /** Copies what the message still lacks from `chunk` at `offset`; returns how many bytes it took. */
  fill(chunk: Buffer, offset: number): number {
    const take = Math.min(this.buffer.length - this.filled, chunk.length - offset);
    chunk.copy(this.buffer, this.filled, offset, offset + take);
    this.filled += take;
    return take;
  }

  get complete(): boolean {
    return this.filled === this.buffer.length;
  }

  /** The whole message, its reservation given back: call once `complete`. */
  take(): Buffer {
    this.release();
    return this.buffer;
  }

  /** Gives the reservation back (its connection is gone). */
  release(): void {
    this.#budget?.release(this.buffer.length);
  }
}
