import type { Socket } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import { timerDelay } from '../../core/timeout.ts';
import type { ByteBudget } from '../../framing/partial-message.ts';
import type { SendBudget } from './send-budget.ts';

/**
 * Bytes a service must send whatever their size (msg-echo answers one message with the whole
 * message), written under a send budget: each slice of at most the budget's burst is taken from
 * the budget before it is written, so a 16 MiB answer goes out at the rate, not in one burst, and
 * two threads cannot both overdraw. What waits is copied and held in the buffer budget.
 */
export class PacedWriter {
  readonly #socket: Socket;
  readonly #budget: SendBudget;
  readonly #memory: ByteBudget;
  readonly #onIdle: () => void;
  readonly #queue: Buffer[] = [];
  #queued = 0;
  #draining = false;

  /** `onIdle`: everything queued has been handed to the socket. */
  constructor(socket: Socket, budget: SendBudget, memory: ByteBudget, onIdle: () => void) {
    this.#socket = socket;
    this.#budget = budget;
    this.#memory = memory;
    this.#onIdle = onIdle;
    socket.once('close', () => this.#discard());
  }

  /** Bytes waiting to be written. */
  get queued(): number {
    return this.#queued;
  }

  /** Queues a copy of `data`; false when the buffer budget has no room (the connection is then closed). */
  write(data: Uint8Array): boolean {
    if (this.#socket.destroyed) return false;
    if (!this.#memory.tryReserve(data.length)) {
      this.#socket.destroy(
        new SocktuneError('SOCKTUNE_ERR_BUFFER_BUDGET', `no room to hold ${data.length} bytes waiting for the send budget`),
      );
      return false;
    }
    this.#queue.push(Buffer.from(data));
    this.#queued += data.length;
    if (!this.#draining) this.#drain();
    return true;
  }

  #drain(): void {
    this.#draining = true;
    while (this.#queued > 0) {
      if (this.#socket.destroyed) return this.#discard();
      if (this.#socket.writableLength >= this.#socket.writableHighWaterMark) {
        this.#socket.once('drain', () => this.#drain());
        return;
      }
      const slice = this.#peek(this.#budget.maxWriteBytes);
      const wait = this.#budget.tryTake(slice.length);
      if (wait > 0) {
        setTimeout(() => this.#drain(), timerDelay(wait)).unref();
        return;
      }
      this.#consume(slice.length);
      this.#socket.write(slice);
    }
    this.#draining = false;
    this.#onIdle();
  }

  /** Up to `limit` bytes from the front of the queue, joined into one buffer only when they span pieces. */
  #peek(limit: number): Buffer {
    const head = this.#queue[0]!;
    if (head.length >= limit || this.#queue.length === 1) return head.subarray(0, Math.min(limit, head.length));
    const pieces: Buffer[] = [];
    let size = 0;
    for (const piece of this.#queue) {
      if (size >= limit) break;
      pieces.push(piece.subarray(0, Math.min(piece.length, limit - size)));
      size += pieces.at(-1)!.length;
    }
    return Buffer.concat(pieces, size);
  }

  #consume(bytes: number): void {
    this.#queued -= bytes;
    this.#memory.release(bytes);
    while (bytes > 0) {
      const head = this.#queue[0]!;
      if (head.length > bytes) {
        this.#queue[0] = head.subarray(bytes);
        return;
      }
      bytes -= head.length;
      this.#queue.shift();
    }
  }

  #discard(): void {
    this.#memory.release(this.#queued);
    this.#queue.length = 0;
    this.#queued = 0;
    this.#draining = false;
  }
}
