import type { Socket } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import { JsonLinesDecoder, encodeJsonLine } from '../../framing/json-lines.ts';

const MAX_UNREAD_MESSAGES = 4;
const FIRST_BYTES_KEPT = 64;
const OPEN_BRACE = 0x7b;

/**
 * Newline-delimited JSON over one socket: messages in order, a cap on each, and a clear
 * SOCKTUNE_ERR_PEER_GONE when the other side disappears while we wait.
 */
export class ControlChannel {
  readonly socket: Socket;
  readonly #decoder = new JsonLinesDecoder();
  readonly #queue: unknown[] = [];
  #waiter: { resolve: (value: unknown) => void; reject: (error: Error) => void } | undefined;
  #failure: Error | undefined;
  /** The first bytes the peer sent, kept to tell what answered when the handshake fails. */
  #firstBytes = Buffer.alloc(0);

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      const first = this.#firstBytes.length === 0;
      if (this.#firstBytes.length < FIRST_BYTES_KEPT)
        this.#firstBytes = Buffer.concat([this.#firstBytes, chunk.subarray(0, FIRST_BYTES_KEPT - this.#firstBytes.length)]);
      // Every control message is a JSON object: a peer whose first byte is anything else speaks another protocol, now.
      if (first && chunk.length > 0 && chunk[0] !== OPEN_BRACE) {
        socket.pause();
        this.#fail(new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'the peer does not speak the control protocol (its first byte is not JSON)'));
        return;
      }
      try {
        for (const message of this.#decoder.push(chunk)) this.#deliver(message);
      } catch (error) {
        // The owner answers (an error message) and closes; nothing more is read meanwhile.
        socket.pause();
        this.#fail(error as Error);
      }
    });
    socket.on('error', (error) =>
      this.#fail(new SocktuneError('SOCKTUNE_ERR_PEER_GONE', `control connection failed: ${error.message}`, { cause: error })),
    );
    socket.on('close', () => this.#fail(new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'control connection closed by the peer')));
  }

  #deliver(message: unknown): void {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve(message);
      return;
    }
    // Each end waits for the other's answer, so a peer that sends more than this is not following the protocol.
    if (this.#queue.length >= MAX_UNREAD_MESSAGES) {
      this.#queue.length = 0;
      throw new SocktuneError(
        'SOCKTUNE_ERR_PROTOCOL',
        `more than ${MAX_UNREAD_MESSAGES} control messages sent without waiting for an answer`,
      );
    }
    this.#queue.push(message);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(this.#failure);
  }

  get firstBytes(): Buffer {
    return this.#firstBytes;
  }

  send(message: unknown): void {
    if (!this.socket.destroyed) this.socket.write(encodeJsonLine(message));
  }

  /** The next message, or SOCKTUNE_ERR_TIMEOUT after `timeoutMs`. */
  next(timeoutMs: number, what: string): Promise<unknown> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift());
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new SocktuneError('SOCKTUNE_ERR_TIMEOUT', `no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  close(): void {
    this.socket.end();
    this.socket.destroySoon();
  }
}
