import { Worker } from 'node:worker_threads';

/**
 * Threads that each serve a blocking socket of their own and post one message when they are ready:
 * started together, and resolved once all are ready; when one fails, the others are stopped with
 * `stop` and the failure rethrown.
 */
export async function startBlockingThreads<T>(entry: URL, data: readonly T[], stop: SharedArrayBuffer, what: string): Promise<Worker[]> {
  const workers = data.map((workerData) => new Worker(entry, { workerData }));
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
