import type { Socket } from 'node:net';

export interface AdmissionLimits {
  maxConnections: number;
  allowedPeers?: string[] | undefined;
}

/** Why a just-accepted connection is turned away (the code to count), or undefined to serve it. */
export function refusalOf(socket: Socket, openConnections: number, limits: AdmissionLimits): 'SOCKTUNE_ERR_REFUSED' | 'SOCKTUNE_ERR_MAX_CONNECTIONS' | undefined {
  const peer = socket.remoteAddress?.replace(/^::ffff:/, '');
  if (limits.allowedPeers && peer !== undefined && !limits.allowedPeers.includes(peer)) return 'SOCKTUNE_ERR_REFUSED';
  if (openConnections >= limits.maxConnections) return 'SOCKTUNE_ERR_MAX_CONNECTIONS';
  return undefined;
}
