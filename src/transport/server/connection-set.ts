import { countedErrorOf, type CountedError } from '../../core/errors.ts';
import type { Socket } from 'node:net';
import type { PeerCounts } from './admission.ts';
import type { SharedCounters } from './metrics.ts';

/** The sockets one thread serves: counted, and drained or destroyed on close. */
export class ConnectionSet {
  readonly #sockets = new Set<Socket>();
  readonly #counters: SharedCounters;
  readonly #onError: (code: CountedError) => void;
  #onEmpty: (() => void) | undefined;

  readonly #idleTimeout: number;
  readonly #peers: PeerCounts;

  constructor(counters: SharedCounters, onError: (code: CountedError) => void, idleTimeout: number, peers: PeerCounts) {
    this.#counters = counters;
    this.#onError = onError;
    this.#idleTimeout = idleTimeout;
    this.#peers = peers;
  }

  readonly #activity = new WeakMap<Socket, { bytes: number; since: number }>();

  /**
   * Closes connections that moved no byte for `quietMs` (counted as SOCKTUNE_ERR_TIMEOUT): called
   * while others wait for a thread, so a quiet connection cannot hold one for the whole idleTimeout.
   */
  closeQuiet(quietMs: number): void {
    const now = performance.now();
    for (const socket of this.#sockets) {
      const bytes = socket.bytesRead + socket.bytesWritten;
      const seen = this.#activity.get(socket);
      if (seen === undefined || seen.bytes !== bytes) this.#activity.set(socket, { bytes, since: now });
      else if (now - seen.since >= quietMs) {
        this.#onError('SOCKTUNE_ERR_TIMEOUT');
        socket.destroy();
      }
    }
  }

  /** Closes every connection now, each counted under `code` (thread-per-conn takes this thread back for another client). */
  closeAll(code: CountedError): void {
    for (const socket of this.#sockets) {
      this.#onError(code);
      socket.destroy();
    }
  }

  get size(): number {
    return this.#sockets.size;
  }

  /**
   * `countBytes`: true when the service does not count its own bytes as they pass; `peer`: the address the connection is counted under;
   * `countedOpen`: the main thread counted it open when it handed it over (it is still counted closed here).
   */
  add(socket: Socket, countBytes: boolean, peer: string, countedOpen = false): void {
    this.#sockets.add(socket);
    if (!countedOpen) this.#counters.opened();
    socket.on('error', (error) => this.#onError(countedErrorOf(error)));
    if (this.#idleTimeout > 0) {
      socket.setTimeout(this.#idleTimeout, () => {
        this.#onError('SOCKTUNE_ERR_TIMEOUT');
        socket.destroy();
      });
    }
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#counters.closed();
      this.#peers.remove(peer);
      if (countBytes) {
        this.#counters.addBytesIn(socket.bytesRead);
        this.#counters.addBytesOut(socket.bytesWritten);
      }
      if (this.#sockets.size === 0) this.#onEmpty?.();
    });
  }

  /**
   * Graceful end: each socket half-closes after what the application already wrote (writes queued
   * for this turn of the event loop included), so a peer gets every answer and then EOF; reading
   * goes on, so the peer's own end is seen, but nothing more can be answered. Resolves when every
   * socket has closed, or destroys the rest after `timeoutMs`.
   */
  drain(timeoutMs: number): Promise<{ destroyed: number }> {
    if (this.#sockets.size === 0) return Promise.resolve({ destroyed: 0 });
    for (const socket of this.#sockets) {
      setImmediate(() => {
        if (!socket.destroyed && !socket.writableEnded) socket.end();
      });
    }
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
