import type { Server } from 'node:net';
import type { CountedError } from '../../core/errors.ts';
import type { ConnectionPool } from '../server/admission.ts';
import type { BufferBudget } from '../io/buffer-budget.ts';
import type { BoundSocket } from '../server/listen-socket.ts';
import type { SendBudget } from '../io/send-budget.ts';
import { servesOnWorkers, type ResolvedServerOptions } from '../server/options.ts';

export interface ModelHooks {
  countersBuffer: SharedArrayBuffer;
  /** Open connections per client address (admission.ts), shared by every thread. */
  peersBuffer: SharedArrayBuffer;
  connectionPool: ConnectionPool | undefined;
  sendBudget: SendBudget | undefined;
  bufferBudget: BufferBudget;
  stopBuffer: SharedArrayBuffer;
  onError: (code: CountedError) => void;
  onWorkerCrash: (error: Error) => void;
  onRefused: () => void;
}

export interface RunningModel {
  /** Threads started for serving (not the main thread). */
  threads(): number;
  close(timeoutMs: number): Promise<number>;
}

/** Slots in the shared counters: the main thread is slot 0, threads follow. */
export function counterSlots(options: ResolvedServerOptions): number {
  if (options.ioModel === 'loop') return 1;
  if (servesOnWorkers(options.ioModel)) return 1 + options.workers;
  return 1 + options.maxThreads;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Starts one I/O model on a bound socket: the interface the server calls, one file per model. */
export type StartModel = (bound: BoundSocket, options: ResolvedServerOptions, hooks: ModelHooks) => Promise<RunningModel>;
