import type { Socket } from 'node:net';

/** How long a closing connection may take to hand its last bytes to the kernel before it is destroyed anyway. */
const FLUSH_TIMEOUT_MS = 2000;

/**
 * Writes `lastBytes` (if any) and closes the connection as soon as they are handed to the kernel,
 * without waiting for the peer to close its side: `end()` alone keeps the descriptor until the
 * peer's FIN, so a client that never closes would hold it forever. The kernel still delivers the
 * bytes, then FIN, after close(); the timer covers a peer that does not even read.
 */
export function closeAfterWrite(socket: Socket, lastBytes?: Buffer, timeoutMs = FLUSH_TIMEOUT_MS): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', () => {});
  const destroy = (): void => {
    socket.destroy();
  };
  if (lastBytes === undefined) socket.end(destroy);
  else socket.end(lastBytes, destroy);
}
