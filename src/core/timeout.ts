import { SocktuneError } from './errors.ts';

/** Node's timers take at most 2^31 − 1 ms; a longer delay fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay a timer can hold: at least 1 ms, at most MAX_TIMER_MS (a longer wait is re-checked when it fires). */
export function timerDelay(ms: number): number {
  return Math.min(Math.max(1, ms), MAX_TIMER_MS);
}

/** `promise`, or SOCKTUNE_ERR_TIMEOUT ("no <what> within <ms> ms") if it takes longer; the timer never outlives it. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SocktuneError('SOCKTUNE_ERR_TIMEOUT', `no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
