import type { Server, Socket } from 'node:net';

interface HandleWithFd {
  _handle?: { fd?: number } | null;
}

/** The descriptor under a Node socket or server (libuv keeps it on the handle; -1 when closed). */
export function fdOf(socketOrServer: Socket | Server): number {
  const fd = (socketOrServer as unknown as HandleWithFd)._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}
