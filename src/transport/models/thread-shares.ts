import { addCount } from '../../core/counts.ts';
import type { Admitted } from '../server/admission.ts';

/**
 * The fair part of a thread-per-conn pool: how many threads each client holds and which of its
 * connections wait for one. A client is its `Admitted.peer`, an opaque key ('' for Unix sockets).
 *
 * Without it one address could hold the pool: its connections, each kept barely active, would never
 * be quiet long enough to give a thread up, and the queue (FIFO) would serve its reconnects first.
 * So the queue serves the client holding the fewest threads first (FIFO among equals), and while a
 * client waits holding at least one thread less than its share (maxThreads over the clients holding
 * or waiting), the client holding the most gives one up if it keeps at least its share: whole
 * threads on either side, so two clients near their shares never take one back and forth. A client
 * alone has the whole pool as its share, so nothing is taken back from it.
 */
export class ThreadShares {
  readonly #maxThreads: number;
  /** Threads serving, or starting to serve, each client's connections. */
  readonly #held = new Map<string, number>();
  /** Of those, threads already asked to give their connection up. */
  readonly #givingUp = new Map<string, number>();
  #givingUpTotal = 0;
  /** Connections waiting for a thread, oldest first, and how many per client. */
  readonly #waiting: Admitted[] = [];
  readonly #waitingPer = new Map<string, number>();

  constructor(maxThreads: number) {
    this.#maxThreads = maxThreads;
  }

  get waitingCount(): number {
    return this.#waiting.length;
  }

  /** The waiting connections, oldest first (a copy: remove() may be called while going through it). */
  waiting(): Admitted[] {
    return [...this.#waiting];
  }

  /** A thread was given (or is starting for) one of `peer`'s connections. */
  hold(peer: string): void {
    addCount(this.#held, peer, 1);
  }

  /** A thread let one of `peer`'s connections go; `gaveUp`: it was one asked to (markGivingUp). */
  release(peer: string, gaveUp = false): void {
    addCount(this.#held, peer, -1);
    if (!gaveUp) return;
    addCount(this.#givingUp, peer, -1);
    this.#givingUpTotal--;
  }

  /** A thread of `peer` was asked to give its connection up: no longer counted as kept by it. */
  markGivingUp(peer: string): void {
    addCount(this.#givingUp, peer, 1);
    this.#givingUpTotal++;
  }

  /** Queues a connection; `first`: ahead of the others (it had a thread that failed to start). */
  enqueue(connection: Admitted, first = false): void {
    if (first) this.#waiting.unshift(connection);
    else this.#waiting.push(connection);
    addCount(this.#waitingPer, connection.peer, 1);
  }

  remove(connection: Admitted): void {
    const index = this.#waiting.indexOf(connection);
    if (index < 0) return;
    this.#waiting.splice(index, 1);
    addCount(this.#waitingPer, connection.peer, -1);
  }

  /** Empties the queue (the server closes). */
  removeAll(): Admitted[] {
    this.#waitingPer.clear();
    return this.#waiting.splice(0);
  }

  /** Takes the waiting connection whose client holds the fewest threads, the oldest among equals. */
  takeFairest(): Admitted | undefined {
    // One client waiting (a benchmark with more connections than threads): plain FIFO, no scan.
    let index = 0;
    if (this.#waitingPer.size > 1) {
      let fewest = Infinity;
      for (let i = 0; i < this.#waiting.length && fewest > 0; i++) {
        const held = this.#held.get(this.#waiting[i]!.peer) ?? 0;
        if (held < fewest) [fewest, index] = [held, i];
      }
    }
    const [connection] = this.#waiting.splice(index, 1);
    if (connection !== undefined) addCount(this.#waitingPer, connection.peer, -1);
    return connection;
  }

  /**
   * The client that should give a thread up now, if any: threads owed to waiting clients below
   * their share, less those already being given up, are still owed, and the client keeping the
   * most threads keeps at least its share after giving one up.
   */
  nextGiver(): string | undefined {
    if (this.#waiting.length === 0) return undefined;
    let clients = this.#held.size;
    for (const peer of this.#waitingPer.keys()) if (!this.#held.has(peer)) clients++;
    const share = this.#maxThreads / clients;
    let owed = 0;
    for (const [peer, waiting] of this.#waitingPer) {
      owed += Math.min(waiting, Math.max(0, Math.floor(share - (this.#held.get(peer) ?? 0))));
    }
    if (owed <= this.#givingUpTotal) return undefined;
    let giver: string | undefined;
    let most = 0;
    for (const [peer, held] of this.#held) {
      const kept = held - (this.#givingUp.get(peer) ?? 0);
      if (kept > most) [giver, most] = [peer, kept];
    }
    return most - 1 >= share ? giver : undefined;
  }
}
