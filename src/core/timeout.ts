import { SocktuneError } from './errors.ts';

/** `promise`, or SOCKTUNE_ERR_TIMEOUT ("no <what> within <ms> ms") if it takes longer; the timer never outlives it. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SocktuneError('SOCKTUNE_ERR_TIMEOUT', `no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
