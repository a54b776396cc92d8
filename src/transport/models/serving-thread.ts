import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { reviveError, type CountedError } from '../../core/errors.ts';
import { closeWakeFd, wake } from '../../core/io-uring.ts';
import type { Admitted } from '../server/admission.ts';
import type { FromThread, ThreadData, ToThread } from './thread-messages.ts';

/** The thread entry next to this file: .ts when running from source, .js from dist. */
const THREAD_ENTRY = new URL(`./thread-main${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export interface ServerThreadEvents {
  onError: (code: CountedError) => void;
  onDone: (thread: ServerThread) => void;
  onCrash: (thread: ServerThread, error: Error) => void;
}

/** One worker thread of a server, with the descriptors it was handed still in its care. */
export class ServerThread {
  readonly slot: number;
  readonly ready: Promise<void>;
  /** Whether the thread finished starting; one that fails to start is not restarted. */
  started = false;
  #worker: Worker | undefined;
  /** Blocking threads only: their slot of the give-up flags (ThreadData.giveUpBuffer). */
  readonly #giveUpFlags: Int32Array | undefined;
  #alive = true;
  /** A ring thread's eventfd: it waits in the kernel, not in its event loop, so each message is followed by a write here. */
  #wakeFd: number | undefined;
  #closing = false;
  #exited: Promise<void>;
  #closed: Promise<number> | undefined;
  #resolveClosed: ((destroyed: number) => void) | undefined;

  constructor(data: ThreadData, events: ServerThreadEvents) {
    this.slot = data.slot;
    this.#giveUpFlags = data.blocking && data.giveUpBuffer !== undefined ? new Int32Array(data.giveUpBuffer) : undefined;
    let resolveReady!: () => void;
    let rejectReady!: (error: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // Unobserved rejections of a thread nobody waits for must not end the process.
    this.ready.catch(() => {});
    let worker: Worker;
    try {
      worker = new Worker(THREAD_ENTRY, { workerData: data });
    } catch (error) {
      // The OS would not start another thread (EAGAIN, out of memory): a crash at start, told the same way, never thrown.
      const failure = reviveError(error);
      this.#worker = undefined;
      this.#exited = Promise.resolve();
      rejectReady(failure);
      queueMicrotask(() => events.onCrash(this, failure));
      return;
    }
    this.#worker = worker;
    worker.on('message', (message: FromThread) => {
      if (message.type === 'ready') {
        this.#wakeFd = message.wakeFd;
        this.started = true;
        resolveReady();
      } else if (message.type === 'error') events.onError(message.code);
      else if (message.type === 'done') events.onDone(this);
      else this.#resolveClosed?.(message.destroyed);
    });
    let failure: Error | undefined;
    worker.on('error', (error) => {
      failure = reviveError(error);
      rejectReady(failure);
    });
    this.#exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        this.#alive = false;
        // Closed here, after the thread is gone, so no write can reach a descriptor number reused meanwhile.
        if (this.#wakeFd !== undefined) closeWakeFd(this.#wakeFd);
        this.#wakeFd = undefined;
        this.#resolveClosed?.(0);
        if (!this.#closing) {
          const error = failure ?? new Error(`server thread exited with code ${code}`);
          rejectReady(error);
          events.onCrash(this, error);
        }
        resolve();
      });
    });
  }

  /** Gives the thread a connection; false when the thread is gone (the caller still owns the descriptor). */
  handOver(connection: Admitted): boolean {
    if (!this.#alive || this.#worker === undefined) return false;
    // A request to give up the previous connection never carries over to this one.
    if (this.#giveUpFlags !== undefined) Atomics.store(this.#giveUpFlags, this.slot, 0);
    this.#tell({ type: 'fd', ...connection });
    return true;
  }

  /**
   * Asks the thread to close the connection it serves (counted as SOCKTUNE_ERR_MAX_THREADS) and
   * report 'done'. A blocking thread reads no message until its connection ends, so it is told
   * through shared memory and sees it between two wait slices; a request that arrives after the
   * connection ended does nothing.
   */
  giveUp(): void {
    if (!this.#alive || this.#worker === undefined) return;
    if (this.#giveUpFlags !== undefined) Atomics.store(this.#giveUpFlags, this.slot, 1);
    else this.#worker.postMessage({ type: 'give-up' } satisfies ToThread);
  }

  /** Asks the thread to drain its connections; terminates it if it has not exited a little after the timeout. */
  close(timeoutMs: number): Promise<number> {
    if (this.#closed) return this.#closed;
    this.#closing = true;
    const worker = this.#worker;
    if (worker === undefined || !this.#alive) return (this.#closed = Promise.resolve(0));
    this.#closed = new Promise<number>((resolve) => {
      this.#resolveClosed = resolve;
      this.#tell({ type: 'close', timeoutMs });
    });
    const hardStop = setTimeout(() => void worker.terminate(), timeoutMs + 1000);
    return Promise.all([this.#closed, this.#exited]).then(([destroyed]) => {
      clearTimeout(hardStop);
      return destroyed;
    });
  }

  #tell(message: ToThread): void {
    this.#worker!.postMessage(message);
    if (this.#wakeFd !== undefined) wake(this.#wakeFd);
  }
}
