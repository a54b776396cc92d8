import type { Socket } from 'node:net';

/** Slots of the per-address connection counts; addresses that hash alike share a count (a stricter cap, never a looser one). */
export const PEER_SLOTS = 4096;

function slotOf(address: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) hash = Math.imul(hash ^ address.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % PEER_SLOTS;
}

/** What a ConnectionPool needs to be rebuilt in another thread. */
export interface ConnectionPoolState {
  buffer: SharedArrayBuffer;
  maxConnections: number;
  maxConnectionsPerIp: number;
}

/**
 * Connections counted across servers, every thread of each: a total and counts per client
 * address in shared memory. Give one pool to several servers (the test servers of one
 * `socktune server`) and their connections share its caps on top of each server's own.
 */
export class ConnectionPool {
  readonly #state: ConnectionPoolState;
  readonly #counts: Int32Array;

  constructor(maxConnections: number, maxConnectionsPerIp: number, buffer = new SharedArrayBuffer((1 + PEER_SLOTS) * 4)) {
    this.#state = { buffer, maxConnections, maxConnectionsPerIp };
    this.#counts = new Int32Array(buffer);
  }

  static fromState(state: ConnectionPoolState): ConnectionPool {
    return new ConnectionPool(state.maxConnections, state.maxConnectionsPerIp, state.buffer);
  }

  get state(): ConnectionPoolState {
    return this.#state;
  }

  /** Connections open in every server of the pool. */
  get open(): number {
    return Atomics.load(this.#counts, 0);
  }

  /** Counts one more connection from `address` ('' for a Unix socket: the total only), unless a cap is reached. */
  tryAdd(address: string): boolean {
    if (Atomics.add(this.#counts, 0, 1) >= this.#state.maxConnections) {
      Atomics.sub(this.#counts, 0, 1);
      return false;
    }
    if (address === '') return true;
    const slot = 1 + slotOf(address);
    if (Atomics.add(this.#counts, slot, 1) < this.#state.maxConnectionsPerIp) return true;
    Atomics.sub(this.#counts, slot, 1);
    Atomics.sub(this.#counts, 0, 1);
    return false;
  }

  remove(address: string): void {
    Atomics.sub(this.#counts, 0, 1);
    if (address !== '') Atomics.sub(this.#counts, 1 + slotOf(address), 1);
  }
}

/** Open connections per client address, shared by every thread of a server, and the pool it shares with other servers, if any. */
export class PeerCounts {
  readonly #counts: Int32Array;
  readonly #max: number;
  readonly #pool: ConnectionPool | undefined;

  constructor(buffer: SharedArrayBuffer, max: number, pool?: ConnectionPool) {
    this.#counts = new Int32Array(buffer);
    this.#max = max;
    this.#pool = pool;
  }

  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(PEER_SLOTS * 4);
  }

  /** Counts one more connection from `address` ('' for a Unix socket), unless it already has the most allowed here or in the pool. */
  tryAdd(address: string): boolean {
    const slot = address === '' ? -1 : slotOf(address);
    if (slot >= 0 && Atomics.add(this.#counts, slot, 1) >= this.#max) {
      Atomics.sub(this.#counts, slot, 1);
      return false;
    }
    if (this.#pool === undefined || this.#pool.tryAdd(address)) return true;
    if (slot >= 0) Atomics.sub(this.#counts, slot, 1);
    return false;
  }

  remove(address: string): void {
    if (address !== '') Atomics.sub(this.#counts, slotOf(address), 1);
    this.#pool?.remove(address);
  }
}

export interface AdmissionLimits {
  maxConnections: number;
  allowedPeers?: string[] | undefined;
  peers: PeerCounts;
}

/** A connection let in: its descriptor and the address its count is kept under ('' for Unix sockets). */
export interface Admitted {
  fd: number;
  peer: string;
  /** Bytes already read after the connection token: the connection's first read. */
  leftover?: Uint8Array | undefined;
}

/** An address as written, without the ::ffff: an IPv4 peer of a dual-stack socket carries. */
export function plainAddress(address: string): string {
  return address.replace(/^::ffff:/, '');
}

/**
 * Lets a just-accepted connection in — counted under its address, which the caller must remove when
 * it closes — or says why not (the code to count).
 */
export function admit(socket: Socket, openConnections: number, limits: AdmissionLimits): { peer: string } | { refusal: 'SOCKTUNE_ERR_REFUSED' | 'SOCKTUNE_ERR_MAX_CONNECTIONS' } {
  const peer = socket.remoteAddress === undefined ? '' : plainAddress(socket.remoteAddress);
  if (limits.allowedPeers && peer !== '' && !limits.allowedPeers.includes(peer)) return { refusal: 'SOCKTUNE_ERR_REFUSED' };
  if (openConnections >= limits.maxConnections) return { refusal: 'SOCKTUNE_ERR_MAX_CONNECTIONS' };
  if (!limits.peers.tryAdd(peer)) return { refusal: 'SOCKTUNE_ERR_MAX_CONNECTIONS' };
  return { peer };
}
