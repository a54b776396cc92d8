import { closeFd, tcpEstablished } from '../../core/socket-syscalls.ts';
import { WAITING_FOR_THREADS } from './blocking-connection.ts';
import { type Admitted, PeerCounts } from '../server/admission.ts';
import type { BoundSocket } from '../server/listen-socket.ts';
import type { ResolvedServerOptions } from '../server/options.ts';
import { ServerThread } from './serving-thread.ts';
import { ThreadShares } from './thread-shares.ts';
import type { ModelHooks, RunningModel } from './model.ts';
import { allStarted, threadData } from './thread-start.ts';
import { acceptAndHandOff } from './hand-off.ts';

/** How often queued connections are checked for their deadline and their client, and idle threads for their age. */
const SWEEP_MS = 1000;

/**
 * `thread-per-conn`: every connection gets a thread of its own from a pool capped at maxThreads,
 * shared fairly between clients when connections wait (ThreadShares).
 */
export async function startThreadPerConnModel(
  bound: BoundSocket,
  options: ResolvedServerOptions,
  hooks: ModelHooks,
): Promise<RunningModel> {
  const threads: ServerThread[] = [];
  /** Idle threads with the time each last finished a connection: a stack, the longest idle at the bottom. */
  const idle: { thread: ServerThread; since: number }[] = [];
  const shares = new ThreadShares(options.maxThreads);
  /** Threads asked to give their connection up to a client below its share: asked once. */
  const givingUp = new Set<ServerThread>();
  /** One Int32 per slot: set to take a blocking thread back from its connection (see ServerThread.giveUp). */
  const giveUpBuffer = new SharedArrayBuffer(4 * (options.maxThreads + 1));
  const freeSlots = Array.from({ length: options.maxThreads }, (_, i) => options.maxThreads - i);
  /** The connection each busy thread serves, in the order they were handed over (the newest last). */
  const inCare = new Map<ServerThread, Admitted>();
  const peers = new PeerCounts(hooks.peersBuffer, options.maxConnectionsPerIp, hooks.connectionPool);
  const queuedAt = new Map<Admitted, number>();
  /** Connections held for a thread that is still starting. */
  let starting = 0;
  let closing = false;
  const flags = new Int32Array(hooks.stopBuffer);
  /** Tells the threads whether connections wait for one of them: then quiet connections give theirs up. */
  const signalWaiting = (): void => void Atomics.store(flags, WAITING_FOR_THREADS, shares.waitingCount > 0 ? 1 : 0);

  /** A connection no thread will serve: closed here, and its address uncounted. */
  const drop = (connection: Admitted): void => {
    closeFd(connection.fd);
    peers.remove(connection.peer);
  };
  /** Gives a thread a connection already counted as held (shares.hold). */
  const give = (thread: ServerThread, connection: Admitted): void => {
    if (thread.handOver(connection)) return void inCare.set(thread, connection);
    shares.release(connection.peer);
    hooks.onError('SOCKTUNE_ERR_WORKER_CRASHED');
    drop(connection);
  };
  /** The thread serving `peer`'s newest connection, among those not already giving theirs up. */
  const newestOf = (peer: string): ServerThread | undefined => {
    let newest: ServerThread | undefined;
    for (const [thread, connection] of inCare) if (connection.peer === peer && !givingUp.has(thread)) newest = thread;
    return newest;
  };
  /**
   * While a client waits holding fewer threads than its share, the client holding the most gives the
   * thread of its newest connection up (that connection is closed, counted as SOCKTUNE_ERR_MAX_THREADS);
   * the thread then serves the fairest waiting connection (onDone).
   */
  const rebalance = (): void => {
    for (let giver = shares.nextGiver(); giver !== undefined; giver = shares.nextGiver()) {
      const thread = newestOf(giver);
      // Its other threads are still starting: asked again at the next change or sweep.
      if (thread === undefined) return;
      givingUp.add(thread);
      shares.markGivingUp(giver);
      thread.giveUp();
    }
  };
  /** Frees what `thread` held: its connection's count under its client, and a give-up request. */
  const releaseThread = (thread: ServerThread): Admitted | undefined => {
    const connection = inCare.get(thread);
    inCare.delete(thread);
    const gaveUp = givingUp.delete(thread);
    if (connection !== undefined) shares.release(connection.peer, gaveUp);
    return connection;
  };
  /** The fairest queued connection whose client is still there. */
  const nextWaiting = (): Admitted | undefined => {
    for (let connection = shares.takeFairest(); connection !== undefined; connection = shares.takeFairest()) {
      queuedAt.delete(connection);
      if (tcpEstablished(connection.fd) || connection.peer === '') {
        signalWaiting();
        return connection;
      }
      hooks.onError('SOCKTUNE_ERR_PEER_GONE');
      drop(connection);
    }
    signalWaiting();
    return undefined;
  };
  /** Idle threads beyond minThreads are ended once idle for threadIdleTimeout, longest idle first (the bottom of the stack). */
  const retireIdle = (now: number): void => {
    if (options.threadIdleTimeout === 0) return;
    while (idle.length > options.minThreads && now - idle[0]!.since >= options.threadIdleTimeout) {
      const { thread } = idle.shift()!;
      threads.splice(threads.indexOf(thread), 1);
      void thread.close(0).then(() => freeSlots.push(thread.slot));
    }
  };
  const onDone = (thread: ServerThread): void => {
    releaseThread(thread);
    const connection = nextWaiting();
    if (connection === undefined) return void idle.push({ thread, since: performance.now() });
    shares.hold(connection.peer);
    give(thread, connection);
    rebalance();
  };
  const onCrash = (thread: ServerThread, error: Error): void => {
    if (thread.started) hooks.onWorkerCrash(error);
    // A blocking thread's descriptor is a plain number Node does not close for it.
    const connection = releaseThread(thread);
    if (connection !== undefined && options.blocking) drop(connection);
    threads.splice(threads.indexOf(thread), 1);
    const idleIndex = idle.findIndex((entry) => entry.thread === thread);
    if (idleIndex >= 0) idle.splice(idleIndex, 1);
    freeSlots.push(thread.slot);
    rebalance();
  };
  const spawn = (slot: number): ServerThread =>
    new ServerThread(threadData(options, hooks, slot, 'pool', undefined, giveUpBuffer), { onError: hooks.onError, onDone, onCrash });
  const dispatch = (connection: Admitted): void => {
    if (closing) return drop(connection);
    const thread = idle.pop()?.thread;
    if (thread) {
      shares.hold(connection.peer);
      return give(thread, connection);
    }
    const slot = freeSlots.pop();
    if (slot !== undefined) {
      const spawned = spawn(slot);
      threads.push(spawned);
      shares.hold(connection.peer);
      starting++;
      spawned.ready.finally(() => starting--).catch(() => {});
      spawned.ready.then(
        () => give(spawned, connection),
        (error: Error) => {
          // The connection is not the thread's fault: it waits for another thread if any is left.
          hooks.onWorkerCrash(error);
          shares.release(connection.peer);
          if (!closing && threads.some((other) => other !== spawned)) {
            shares.enqueue(connection, true);
            signalWaiting();
            rebalance();
          } else drop(connection);
        },
      );
      return;
    }
    if (options.overflow === 'queue') {
      queuedAt.set(connection, performance.now());
      shares.enqueue(connection);
      signalWaiting();
      return rebalance();
    }
    hooks.onRefused();
    drop(connection);
  };
  // The first minThreads connections do not pay for a thread start.
  for (let i = 0; i < options.minThreads; i++) {
    const thread = spawn(freeSlots.pop()!);
    threads.push(thread);
    idle.push({ thread, since: performance.now() });
  }
  await allStarted(threads, options.closeTimeout);
  // Every connection the main thread has let in counts at once: one in a thread, waiting, or held for a starting thread.
  const server = await acceptAndHandOff(bound, options, hooks, peers, dispatch, () => inCare.size + shares.waitingCount + starting);
  // A queued connection waits no longer than a served one may stay idle, and one whose client left is let go.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const connection of shares.waiting()) {
      const expired = options.idleTimeout > 0 && now - queuedAt.get(connection)! > options.idleTimeout;
      if (!expired && (connection.peer === '' || tcpEstablished(connection.fd))) continue;
      shares.remove(connection);
      queuedAt.delete(connection);
      hooks.onError(expired ? 'SOCKTUNE_ERR_TIMEOUT' : 'SOCKTUNE_ERR_PEER_GONE');
      drop(connection);
    }
    signalWaiting();
    rebalance();
    retireIdle(now);
  }, SWEEP_MS).unref();
  return {
    threads: () => threads.length,
    async close(timeoutMs) {
      closing = true;
      clearInterval(sweep);
      await server.close();
      for (const connection of shares.removeAll()) drop(connection);
      const stopTimer = setTimeout(() => Atomics.store(new Int32Array(hooks.stopBuffer), 0, 1), timeoutMs);
      const destroyed = await Promise.all(threads.map((thread) => thread.close(timeoutMs)));
      clearTimeout(stopTimer);
      return destroyed.reduce((a, b) => a + b, 0);
    },
  };
}
