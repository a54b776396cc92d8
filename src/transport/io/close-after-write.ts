import type { Socket } from 'node:net';

/** How long a closing connection may take to hand its last bytes to the kernel before it is destroyed anyway. */
export const FLUSH_TIMEOUT_MS = 2000;

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

/**
 * Turns away a connection that has not sent its first message yet: `lastBytes` at once, then the
 * close once `expectBytes` have come in (read and dropped), the peer closed, or `timeoutMs` passed.
 * A stock client sends its first message as it connects; closing with it unread, or with it still
 * on the way, would make the kernel answer with a reset that can overtake `lastBytes`.
 */
export function closeAfterRead(socket: Socket, lastBytes: Buffer, expectBytes: number, timeoutMs = FLUSH_TIMEOUT_MS): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', () => {});
  let flushed = false;
  let received = 0;
  const maybeClose = (): void => {
    if (flushed && received >= expectBytes) socket.destroy();
  };
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    maybeClose();
  });
  socket.once('end', () => socket.destroy());
  socket.end(lastBytes, () => {
    flushed = true;
    maybeClose();
  });
  socket.resume();
}
