import type { Socket } from 'node:net';

/** Slots of the per-address connection counts; addresses that hash alike share a count (a stricter cap, never a looser one). */
export const PEER_SLOTS = 4096;

function slotOf(address: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) hash = Math.imul(hash ^ address.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % PEER_SLOTS;
}

/** Open connections per client address, shared by every thread of a server. */
export class PeerCounts {
  readonly #counts: Int32Array;
  readonly #max: number;

  constructor(buffer: SharedArrayBuffer, max: number) {
    this.#counts = new Int32Array(buffer);
    this.#max = max;
  }

  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(PEER_SLOTS * 4);
  }

  /** Counts one more connection from `address`, unless it already has the most allowed. */
  tryAdd(address: string): boolean {
    const slot = slotOf(address);
    if (Atomics.add(this.#counts, slot, 1) < this.#max) return true;
    Atomics.sub(this.#counts, slot, 1);
    return false;
  }

  remove(address: string): void {
    if (address !== '') Atomics.sub(this.#counts, slotOf(address), 1);
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
  if (peer !== '' && !limits.peers.tryAdd(peer)) return { refusal: 'SOCKTUNE_ERR_MAX_CONNECTIONS' };
  return { peer };
}
