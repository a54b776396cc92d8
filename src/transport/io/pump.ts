import type { Socket } from 'node:net';
import { timerDelay } from '../../core/timeout.ts';
import type { SendBudget } from './send-budget.ts';

/**
 * What one pump writes per event-loop turn before yielding: bytes, writes and time. On loopback
 * the kernel can take writes for a long time without ever returning false, and a loop that only
 * stops on backpressure would starve timers (interval reports, deadlines) and every other
 * connection; tiny chunks must not turn 4 MiB into millions of write() calls either.
 */
const BYTES_PER_TURN = 4 * 1024 * 1024;
const WRITES_PER_TURN = 1024;
const MS_PER_TURN = 2;

/**
 * Writes `next()` chunks as fast as the socket takes them — or as `budget` allows — until
 * `active()` is false or the socket dies. With a budget every write is taken from it before it
 * is made, and chunks are cut to the budget's largest write, so no write overdraws it.
 */
export function pumpWrites(
  socket: Socket,
  next: () => Buffer,
  active: () => boolean,
  onWrite?: (bytes: number) => void,
  budget?: SendBudget,
): void {
  let scheduled = false;
  let paused: NodeJS.Timeout | undefined;
  /** What is left of the current chunk. */
  let rest: Buffer | undefined;
  const waitFor = (ms: number): void => {
    paused ??= setTimeout(() => {
      paused = undefined;
      pump();
    }, timerDelay(ms));
  };
  const pump = (): void => {
    scheduled = false;
    if (paused) return;
    let turn = BYTES_PER_TURN;
    let writes = WRITES_PER_TURN;
    const turnEnds = performance.now() + MS_PER_TURN;
    // At least one write a turn: a thread descheduled past the turn's end still makes progress.
    const inTime = (): boolean => writes === WRITES_PER_TURN || performance.now() < turnEnds;
    while (active() && !socket.destroyed && !socket.writableEnded && turn > 0 && writes > 0 && inTime()) {
      const chunk = rest ?? next();
      const slice = budget !== undefined && chunk.length > budget.maxWriteBytes ? chunk.subarray(0, budget.maxWriteBytes) : chunk;
      const wait = budget?.tryTake(slice.length) ?? 0;
      if (wait > 0) {
        rest = chunk;
        return waitFor(wait);
      }
      rest = slice.length < chunk.length ? chunk.subarray(slice.length) : undefined;
      turn -= slice.length;
      writes--;
      onWrite?.(slice.length);
      if (!socket.write(slice)) return;
    }
    const yielded = turn <= 0 || writes <= 0 || performance.now() >= turnEnds;
    if (yielded && active() && !socket.destroyed && !socket.writableEnded && !scheduled) {
      scheduled = true;
      setImmediate(pump);
    }
  };
  socket.on('drain', pump);
  scheduled = true;
  setImmediate(pump);
}
