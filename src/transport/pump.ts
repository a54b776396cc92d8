import type { Socket } from 'node:net';
import type { SendPace } from './send-pace.ts';

/**
 * Bytes written per event-loop turn before yielding. On loopback the kernel can take writes for
 * a long time without ever returning false, and a loop that only stops on backpressure would
 * starve timers (interval reports, deadlines) for the whole test.
 */
const BYTES_PER_TURN = 4 * 1024 * 1024;

/**
 * Writes `next()` chunks as fast as the socket takes them — or as `pace` allows — until `active()`
 * is false or the socket dies.
 */
export function pumpWrites(socket: Socket, next: () => Buffer, active: () => boolean, onWrite?: (bytes: number) => void, pace?: SendPace): void {
  let scheduled = false;
  let paused: NodeJS.Timeout | undefined;
  const waitFor = (ms: number): void => {
    paused ??= setTimeout(() => {
      paused = undefined;
      pump();
    }, ms);
  };
  const pump = (): void => {
    scheduled = false;
    if (paused) return;
    const debt = pace?.spend(0) ?? 0;
    if (debt > 0) return waitFor(debt);
    let budget = BYTES_PER_TURN;
    while (active() && !socket.destroyed && !socket.writableEnded && budget > 0) {
      const chunk = next();
      budget -= chunk.length;
      onWrite?.(chunk.length);
      const writable = socket.write(chunk);
      const wait = pace?.spend(chunk.length) ?? 0;
      if (wait > 0) return waitFor(wait);
      if (!writable) return;
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
