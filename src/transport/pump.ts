import type { Socket } from 'node:net';
import type { SendBudget } from './send-budget.ts';

/**
 * Bytes written per event-loop turn before yielding. On loopback the kernel can take writes for
 * a long time without ever returning false, and a loop that only stops on backpressure would
 * starve timers (interval reports, deadlines) for the whole test.
 */
const BYTES_PER_TURN = 4 * 1024 * 1024;

/**
 * Writes `next()` chunks as fast as the socket takes them — or as `budget` allows — until
 * `active()` is false or the socket dies. With a budget every write is reserved before it is
 * made, and chunks are cut to the budget's largest write, so no write overdraws it.
 */
export function pumpWrites(socket: Socket, next: () => Buffer, active: () => boolean, onWrite?: (bytes: number) => void, budget?: SendBudget): void {
  let scheduled = false;
  let paused: NodeJS.Timeout | undefined;
  /** What is left of the current chunk, and whether its next slice is already reserved. */
  let rest: Buffer | undefined;
  let reserved = false;
  const waitFor = (ms: number): void => {
    paused ??= setTimeout(() => {
      paused = undefined;
      pump();
    }, ms);
  };
  const pump = (): void => {
    scheduled = false;
    if (paused) return;
    let turn = BYTES_PER_TURN;
    while (active() && !socket.destroyed && !socket.writableEnded && turn > 0) {
      const chunk = rest ?? next();
      const slice = budget !== undefined && chunk.length > budget.maxWriteBytes ? chunk.subarray(0, budget.maxWriteBytes) : chunk;
      if (budget !== undefined && !reserved) {
        const wait = budget.reserve(slice.length);
        if (wait > 0) {
          rest = chunk;
          reserved = true;
          return waitFor(wait);
        }
      }
      reserved = false;
      rest = slice.length < chunk.length ? chunk.subarray(slice.length) : undefined;
      turn -= slice.length;
      onWrite?.(slice.length);
      if (!socket.write(slice)) return;
    }
    if (turn <= 0 && !scheduled) {
      scheduled = true;
      setImmediate(pump);
    }
  };
  socket.on('drain', pump);
  scheduled = true;
  setImmediate(pump);
}
