import { Worker } from 'node:worker_threads';

/**
 * Threads that each serve a blocking socket of their own and post one message when they are ready:
 * started together, and resolved once all are ready; when one fails, the others are stopped with
 * `stop` (its first 32-bit flag) and the failure rethrown. `onCreated` sees each worker as it is made.
 */
export async function startBlockingThreads<T>(
  entry: URL,
  data: readonly T[],
  stop: SharedArrayBuffer,
  what: string,
  onCreated: (worker: Worker, data: T) => void = () => {},
): Promise<Worker[]> {
  const workers = data.map((workerData) => {
    const worker = new Worker(entry, { workerData });
    onCreated(worker, workerData);
    return worker;
  });
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            worker.once('message', () => resolve());
            worker.once('error', reject);
            worker.once('exit', () => reject(new Error(`${what} ended before it was ready`)));
          }),
      ),
    );
  } catch (error) {
    await stopBlockingThreads(workers, stop);
    throw error;
  }
  return workers;
}

/**
 * Sets `stop` and waits for every thread to end: each sees the flag within its receive timeout and
 * closes its own socket (terminating it would leak the descriptor).
 */
export async function stopBlockingThreads(workers: readonly Worker[], stop: SharedArrayBuffer): Promise<void> {
  Atomics.store(new Int32Array(stop), 0, 1);
  await Promise.all(
    workers.map((worker) => new Promise<void>((resolve) => (worker.threadId === -1 ? resolve() : worker.once('exit', () => resolve())))),
  );
}

/** Sets a thread flag (a 32-bit slot of shared memory) to 1 and wakes whoever waits on it. */
export function raiseFlag(flags: SharedArrayBuffer, which: number): void {
  const view = new Int32Array(flags);
  Atomics.store(view, which, 1);
  Atomics.notify(view, which);
}
