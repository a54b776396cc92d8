import type { Socket } from 'node:net';

/**
 * Bytes written per event-loop turn before yielding. On loopback the kernel can take writes for
 * a long time without ever returning false, and a loop that only stops on backpressure would
 * starve timers (interval reports, deadlines) for the whole test.
 */
const BYTES_PER_TURN = 4 * 1024 * 1024;

/** Writes `next()` chunks as fast as the socket takes them, until `active()` is false or the socket dies. */
export function pumpWrites(socket: Socket, next: () => Buffer, active: () => boolean, onWrite?: (bytes: number) => void): void {
  let scheduled = false;
  const pump = (): void => {
    scheduled = false;
    let budget = BYTES_PER_TURN;
    while (active() && !socket.destroyed && budget > 0) {
      const chunk = next();
      budget -= chunk.length;
      onWrite?.(chunk.length);
      if (!socket.write(chunk)) return;
    }
    if (budget <= 0 && !scheduled) {
      scheduled = true;
      setImmediate(pump);
    }
  };
  socket.on('drain', pump);
  scheduled = true;
  setImmediate(pump);
}
