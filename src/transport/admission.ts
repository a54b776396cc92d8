import type { Socket } from 'node:net';

export interface AdmissionLimits {
  maxConnections: number;
  allowedPeers?: string[] | undefined;
}

/** An address as written, without the ::ffff: an IPv4 peer of a dual-stack socket carries. */
export function plainAddress(address: string): string {
  return address.replace(/^::ffff:/, '');
}

/** Why a just-accepted connection is turned away (the code to count), or undefined to serve it. */
export function refusalOf(socket: Socket, openConnections: number, limits: AdmissionLimits): 'SOCKTUNE_ERR_REFUSED' | 'SOCKTUNE_ERR_MAX_CONNECTIONS' | undefined {
  const peer = socket.remoteAddress === undefined ? undefined : plainAddress(socket.remoteAddress);
  if (limits.allowedPeers && peer !== undefined && !limits.allowedPeers.includes(peer)) return 'SOCKTUNE_ERR_REFUSED';
  if (openConnections >= limits.maxConnections) return 'SOCKTUNE_ERR_MAX_CONNECTIONS';
  return undefined;
}
