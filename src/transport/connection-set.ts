import type { Socket } from 'node:net';
import type { SharedCounters } from './metrics.ts';

/** The sockets one thread serves: counted, and drained or destroyed on close. */
export class ConnectionSet {
  readonly #sockets = new Set<Socket>();
  readonly #counters: SharedCounters;
  readonly #onError: (code: string) => void;
  #onEmpty: (() => void) | undefined;

  constructor(counters: SharedCounters, onError: (code: string) => void) {
    this.#counters = counters;
    this.#onError = onError;
  }

  get size(): number {
    return this.#sockets.size;
  }

  /** `countBytes`: true when the service does not count its own bytes as they pass. */
  add(socket: Socket, countBytes: boolean): void {
    this.#sockets.add(socket);
    this.#counters.opened();
    socket.on('error', (error: NodeJS.ErrnoException) => this.#onError(error.code ?? 'UNKNOWN'));
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#counters.closed();
      if (countBytes) {
        this.#counters.addBytesIn(socket.bytesRead);
        this.#counters.addBytesOut(socket.bytesWritten);
      }
      if (this.#sockets.size === 0) this.#onEmpty?.();
    });
  }

  /** Resolves when every socket has closed by itself, or destroys the rest after `timeoutMs`. */
  drain(timeoutMs: number): Promise<{ destroyed: number }> {
    if (this.#sockets.size === 0) return Promise.resolve({ destroyed: 0 });
    return new Promise((resolve) => {
      let destroyed = 0;
      const timer = setTimeout(() => {
        destroyed = this.#sockets.size;
        for (const socket of this.#sockets) socket.destroy();
      }, timeoutMs);
      // Resolves on the last 'close', so the counters are settled when drain() returns.
      this.#onEmpty = () => {
        clearTimeout(timer);
        this.#onEmpty = undefined;
        resolve({ destroyed });
      };
    });
  }
}
