import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { clientKey, DEFAULT_IPV6_PREFIX, plainAddress } from '../../core/client-key.ts';
import { PEER_SLOTS, slotOf } from '../io/peer-slots.ts';

/** A buffer of `counters` counts and the per-address slots after them, then its seed and the IPv6 prefix addresses are keyed by. */
function allocateWithSeed(counters: number, ipv6Prefix = DEFAULT_IPV6_PREFIX): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer((counters + PEER_SLOTS + 2) * 4);
  const ints = new Int32Array(buffer);
  ints[counters + PEER_SLOTS] = randomInt(1, 2 ** 31 - 1);
  ints[counters + PEER_SLOTS + 1] = ipv6Prefix;
  return buffer;
}

/** Connections a server may hold and still use the pool's reserve (a small test: rr -C 10, a few streams). */
const SMALL_SERVER = 64;
/** Places of a pool only small servers may take. */
const POOL_RESERVE = 256;

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

  readonly #seed: number;

  constructor(maxConnections: number, maxConnectionsPerIp: number, buffer = allocateWithSeed(1)) {
    this.#state = { buffer, maxConnections, maxConnectionsPerIp };
    this.#counts = new Int32Array(buffer);
    this.#seed = this.#counts[1 + PEER_SLOTS]!;
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

  /**
   * Counts one more connection from `address` ('' for a Unix socket: the total only), unless a cap
   * is reached. A server that already holds `SMALL_SERVER` connections stops short of the last
   * few places of the pool: big tests cannot fill it so far that a small one gets no connection.
   */
  tryAdd(address: string, serverOpen = 0): boolean {
    const { maxConnections } = this.#state;
    const limit = serverOpen >= SMALL_SERVER ? maxConnections - Math.min(POOL_RESERVE, Math.floor(maxConnections / 16)) : maxConnections;
    if (Atomics.add(this.#counts, 0, 1) >= limit) {
      Atomics.sub(this.#counts, 0, 1);
      return false;
    }
    if (address === '') return true;
    const slot = 1 + slotOf(address, this.#seed);
    if (Atomics.add(this.#counts, slot, 1) < this.#state.maxConnectionsPerIp) return true;
    Atomics.sub(this.#counts, slot, 1);
    Atomics.sub(this.#counts, 0, 1);
    return false;
  }

  remove(address: string): void {
    Atomics.sub(this.#counts, 0, 1);
    if (address !== '') Atomics.sub(this.#counts, 1 + slotOf(address, this.#seed), 1);
  }
}

/** Open connections per client address, shared by every thread of a server, and the pool it shares with other servers, if any. */
export class PeerCounts {
  readonly #counts: Int32Array;
  readonly #max: number;
  readonly #pool: ConnectionPool | undefined;
  readonly #seed: number;
  readonly #ipv6Prefix: number;

  constructor(buffer: SharedArrayBuffer, max: number, pool?: ConnectionPool) {
    this.#counts = new Int32Array(buffer);
    this.#max = max;
    this.#pool = pool;
    this.#seed = this.#counts[PEER_SLOTS]!;
    this.#ipv6Prefix = this.#counts[PEER_SLOTS + 1]!;
  }

  /** `ipv6Prefix`: IPv6 clients are counted by their first this many bits, in every thread alike. */
  static allocate(ipv6Prefix = DEFAULT_IPV6_PREFIX): SharedArrayBuffer {
    return allocateWithSeed(0, ipv6Prefix);
  }

  /** The key a client address ('' for a Unix socket) is counted under: clientKey() with this server's IPv6 prefix. */
  keyOf(address: string): string {
    return clientKey(address, this.#ipv6Prefix);
  }

  /** Counts one more connection from `address` ('' for a Unix socket), unless it already has the most allowed here or in the pool. */
  tryAdd(address: string, serverOpen = 0): boolean {
    const slot = address === '' ? -1 : slotOf(address, this.#seed);
    if (slot >= 0 && Atomics.add(this.#counts, slot, 1) >= this.#max) {
      Atomics.sub(this.#counts, slot, 1);
      return false;
    }
    if (this.#pool === undefined || this.#pool.tryAdd(address, serverOpen)) return true;
    if (slot >= 0) Atomics.sub(this.#counts, slot, 1);
    return false;
  }

  remove(address: string): void {
    if (address !== '') Atomics.sub(this.#counts, slotOf(address, this.#seed), 1);
    this.#pool?.remove(address);
  }
}

export interface AdmissionLimits {
  maxConnections: number;
  allowedPeers?: string[] | undefined;
  peers: PeerCounts;
}

/** A connection let in: its descriptor and the key its count is kept under (clientKey: '' for Unix sockets). */
export interface Admitted {
  fd: number;
  peer: string;
  /** Bytes already read after the connection token: the connection's first read. */
  leftover?: Uint8Array | undefined;
}

/**
 * Lets a just-accepted connection in — counted under its address, which the caller must remove when
 * it closes — or says why not (the code to count).
 */
export function admit(
  socket: Socket,
  openConnections: number,
  limits: AdmissionLimits,
): { peer: string } | { refusal: 'SOCKTUNE_ERR_REFUSED' | 'SOCKTUNE_ERR_MAX_CONNECTIONS' } {
  const address = socket.remoteAddress === undefined ? '' : plainAddress(socket.remoteAddress);
  if (limits.allowedPeers && address !== '' && !limits.allowedPeers.includes(address)) return { refusal: 'SOCKTUNE_ERR_REFUSED' };
  if (openConnections >= limits.maxConnections) return { refusal: 'SOCKTUNE_ERR_MAX_CONNECTIONS' };
  const peer = limits.peers.keyOf(address);
  if (!limits.peers.tryAdd(peer, openConnections)) return { refusal: 'SOCKTUNE_ERR_MAX_CONNECTIONS' };
  return { peer };
}
