import { once } from 'node:events';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SocktuneError } from '../../core/errors.ts';
import type { DataTarget } from '../control/peer.ts';
import type { OpenedCounts, OpenPlan } from './conns-open.ts';
import type { ConnsThreadData, FromConnsThread, ToConnsThread } from './conns-thread-messages.ts';

const THREAD_ENTRY = new URL(`./conns-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
/** How long closing threads may take before they are ended. */
const CLOSE_GRACE_MS = 5_000;

interface ConnsThread {
  worker: Worker;
  /** Resolves once the thread has ended, whenever that was. */
  ended: Promise<unknown>;
  opened: number;
  failed: number;
}

/**
 * conns' connections opened and held by client threads, each its share of them: what conns.ts does
 * on its event loop, over several. Threads are started (and their modules loaded) before anything
 * is opened, so the client's memory per connection is counted from there.
 */
export class ConnsOnThreads {
  readonly #threads: ConnsThread[];
  #failure: SocktuneError | undefined;

  private constructor(threads: ConnsThread[]) {
    this.#threads = threads;
  }

  /** Starts a thread per plan and resolves once every one is ready to open. */
  static async start(target: DataTarget, plans: Omit<OpenPlan, 'deadline'>[], openTimeoutMs: number): Promise<ConnsOnThreads> {
    const threads = plans.map((plan) => {
      const workerData: ConnsThreadData = { target, plan, openTimeoutMs };
      const worker = new Worker(THREAD_ENTRY, { workerData });
      return { worker, ended: once(worker, 'exit').catch(() => undefined), opened: 0, failed: 0 };
    });
    const held = new ConnsOnThreads(threads);
    try {
      await held.#all((message) => message.type === 'ready');
    } catch (error) {
      await held.close();
      throw error;
    }
    return held;
  }

  #tell(message: ToConnsThread): void {
    for (const { worker } of this.#threads) worker.postMessage(message);
  }

  /** Resolves with each thread's first message that `accept` takes, or rejects on a thread's error or end. */
  #all(accept: (message: FromConnsThread) => boolean): Promise<FromConnsThread[]> {
    return Promise.all(
      this.#threads.map(
        (thread) =>
          new Promise<FromConnsThread>((resolve, reject) => {
            const onMessage = (message: FromConnsThread): void => {
              if (message.type === 'progress') {
                thread.opened = message.opened;
                thread.failed = message.failed;
              } else if (message.type === 'error') fail(new SocktuneError('SOCKTUNE_ERR_WORKER_CRASHED', message.message));
              else if (accept(message)) done(() => resolve(message));
            };
            const onExit = (): void => fail(new SocktuneError('SOCKTUNE_ERR_WORKER_CRASHED', 'a client thread of conns ended early'));
            const fail = (error: Error): void => done(() => reject((this.#failure ??= error as SocktuneError)));
            const done = (then: () => void): void => {
              thread.worker.off('message', onMessage).off('error', fail).off('exit', onExit);
              then();
            };
            thread.worker.on('message', onMessage).on('error', fail).on('exit', onExit);
          }),
      ),
    );
  }

  /** Opens every thread's share at once; resolves with what each opened. */
  async open(interrupt?: AbortSignal): Promise<OpenedCounts[]> {
    const onInterrupt = (): void => this.#tell({ type: 'interrupt' });
    interrupt?.addEventListener('abort', onInterrupt, { once: true });
    try {
      const replies = this.#all((message) => message.type === 'opened');
      this.#tell({ type: 'go' });
      return (await replies).map((message) => (message as Extract<FromConnsThread, { type: 'opened' }>).counts);
    } finally {
      interrupt?.removeEventListener('abort', onInterrupt);
    }
  }

  /** How far the threads have got while opening, from their last reports. */
  progress(): { opened: number; failed: number } {
    let opened = 0;
    let failed = 0;
    for (const thread of this.#threads) {
      opened += thread.opened;
      failed += thread.failed;
    }
    return { opened, failed };
  }

  /** Connections still open in every thread (the peer may have closed some while they were held). */
  async stillOpen(): Promise<number> {
    const replies = this.#all((message) => message.type === 'still-open');
    this.#tell({ type: 'count' });
    return (await replies).reduce((total, message) => total + (message as Extract<FromConnsThread, { type: 'still-open' }>).stillOpen, 0);
  }

  /** Closes every connection and ends the threads (those that do not end in time are stopped). */
  async close(): Promise<void> {
    this.#tell({ type: 'close' });
    await Promise.all(
      this.#threads.map(async ({ worker, ended }) => {
        const timer = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
        await ended;
        clearTimeout(timer);
      }),
    );
  }
}
