import { closeFd } from '../../core/socket-syscalls.ts';
import { PeerCounts } from '../server/admission.ts';
import { SharedCounters } from '../server/metrics.ts';
import type { BoundSocket } from '../server/listen-socket.ts';
import type { ResolvedServerOptions } from '../server/options.ts';
import { ServerThread } from './serving-thread.ts';
import type { ThreadData } from './thread-messages.ts';
import type { ModelHooks, RunningModel } from './model.ts';
import { allStarted, threadData } from './thread-start.ts';
import { acceptAndHandOff } from './hand-off.ts';

/**
 * `workers`: N event loops (`io-uring`: N rings, always with 'handoff'). With 'reuseport' each thread listens on the shared port itself and
 * the kernel spreads connections; with 'handoff' the main thread accepts and deals descriptors
 * round-robin. A crashed thread is replaced in its slot.
 */
export async function startWorkersModel(bound: BoundSocket, options: ResolvedServerOptions, hooks: ModelHooks): Promise<RunningModel> {
  // A ring thread never runs an event loop to accept on: the main thread accepts for it.
  const ownListeners = options.distribution === 'reuseport' && bound.family !== 'unix' && options.ioModel !== 'io-uring';
  const role: ThreadData['role'] = ownListeners ? 'listener' : 'pool';
  const threads: ServerThread[] = [];
  let closing = false;
  const spawn = (slot: number): ServerThread =>
    new ServerThread(
      { ...threadData(options, hooks, slot, role, bound), ...(role === 'pool' ? { countedOnHandOff: true } : {}) },
      {
        onError: hooks.onError,
        onDone: () => {},
        onCrash: (thread, error) => {
          if (!thread.started) return;
          hooks.onWorkerCrash(error);
          if (closing) return;
          const index = threads.indexOf(thread);
          if (index >= 0) threads[index] = spawn(thread.slot);
        },
      },
    );
  for (let i = 0; i < options.workers; i++) threads.push(spawn(i + 1));
  await allStarted(threads, options.closeTimeout);
  let next = 0;
  const handoffPeers = new PeerCounts(hooks.peersBuffer, options.maxConnectionsPerIp, hooks.connectionPool);
  // Counted open here as it is handed over, closed by the thread that serves it: never counted twice or not at all.
  const counters = new SharedCounters(hooks.countersBuffer, 0);
  const server =
    role === 'pool'
      ? await acceptAndHandOff(bound, options, hooks, handoffPeers, (connection) => {
          const thread = threads[next]!;
          next = (next + 1) % threads.length;
          counters.opened();
          if (thread.handOver(connection)) return;
          counters.closed();
          closeFd(connection.fd);
          handoffPeers.remove(connection.peer);
          hooks.onError('SOCKTUNE_ERR_WORKER_CRASHED');
        })
      : undefined;
  return {
    threads: () => threads.length,
    async close(timeoutMs) {
      closing = true;
      await server?.close();
      const destroyed = await Promise.all(threads.map((thread) => thread.close(timeoutMs)));
      return destroyed.reduce((a, b) => a + b, 0);
    },
  };
}
