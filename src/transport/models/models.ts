import { Server, type Socket } from 'node:net';
import { pickSocketOptions } from '../../core/socket-options.ts';
import { closeFd, duplicateFd, tcpEstablished } from '../../core/socket-syscalls.ts';
import { WAITING_FOR_THREADS } from './blocking-connection.ts';
import { countedErrorOf, type CountedError } from '../../core/errors.ts';
import { admit, PeerCounts, type Admitted, type ConnectionPool } from '../server/admission.ts';
import type { BufferBudget } from '../io/buffer-budget.ts';
import { readConnectionToken } from '../server/connection-token.ts';
import { fdOf } from '../io/fd.ts';
import { toPortableHandler } from '../services/portable-handler.ts';
import { listenOn, type BoundSocket } from '../server/listen-socket.ts';
import { SharedCounters } from '../server/metrics.ts';
import type { SendBudget } from '../io/send-budget.ts';
import { EventLoopServing } from './event-loop-serving.ts';
import { isInProcessHandler, type BuiltinService, type HandlerModule, type ResolvedServerOptions } from '../server/options.ts';
import { ServerThread } from './model-thread.ts';
import type { ThreadData } from './thread-messages.ts';
import { ThreadShares } from './thread-shares.ts';

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
  if (options.ioModel === 'workers') return 1 + options.workers;
  return 1 + options.maxThreads;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startLoopModel(bound: BoundSocket, options: ResolvedServerOptions, hooks: ModelHooks): Promise<RunningModel> {
  const handler = isInProcessHandler(options.handler) ? options.handler : toPortableHandler(options.handler);
  const serving = await EventLoopServing.create(handler, {
    counters: new SharedCounters(hooks.countersBuffer, 0),
    sourceChunkSize: options.sourceChunkSize,
    maxConnections: options.maxConnections,
    allowedPeers: options.allowedPeers,
    peers: new PeerCounts(hooks.peersBuffer, options.maxConnectionsPerIp, hooks.connectionPool),
    idleTimeout: options.idleTimeout,
    sendBudget: hooks.sendBudget,
    bufferBudget: hooks.bufferBudget,
    connectionToken: options.connectionToken,
    lingerZero: options.lingerZero,
    onError: hooks.onError,
  });
  const server = new Server(
    {
      pauseOnConnect: serving.wantsPausedSockets,
      noDelay: options.noDelay,
      keepAlive: options.keepAlive,
      keepAliveInitialDelay: options.keepAliveInitialDelay,
    },
    (socket) => serving.acceptSocket(socket),
  );
  await listenOn(server, bound, options.backlog, hooks.onError);
  return {
    threads: () => 0,
    async close(timeoutMs) {
      const closed = closeServer(server);
      const { destroyed } = await serving.connections.drain(timeoutMs);
      await closed;
      return destroyed;
    },
  };
}

function threadData(
  options: ResolvedServerOptions,
  hooks: ModelHooks,
  slot: number,
  role: ThreadData['role'],
  bound?: BoundSocket,
  giveUpBuffer?: SharedArrayBuffer,
): ThreadData {
  return {
    ...(options.ioModel === 'thread-per-conn' ? { yieldWhenIdle: true } : {}),
    ...(giveUpBuffer === undefined ? {} : { giveUpBuffer }),
    role,
    handler: toPortableHandler(options.handler as BuiltinService | HandlerModule),
    blocking: options.blocking,
    sourceChunkSize: options.sourceChunkSize,
    maxConnections: options.maxConnections,
    ...(options.allowedPeers === undefined ? {} : { allowedPeers: options.allowedPeers }),
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    peersBuffer: hooks.peersBuffer,
    ...(hooks.connectionPool === undefined ? {} : { connectionPool: hooks.connectionPool.state }),
    idleTimeout: options.idleTimeout,
    ...(hooks.sendBudget === undefined ? {} : { sendBudget: hooks.sendBudget.state }),
    bufferBudget: hooks.bufferBudget.state,
    ...(options.connectionToken === undefined ? {} : { connectionToken: options.connectionToken }),
    ...(options.affinity === undefined ? {} : { affinity: options.affinity }),
    socketOptions: pickSocketOptions(options),
    countersBuffer: hooks.countersBuffer,
    slot,
    stopBuffer: hooks.stopBuffer,
    ...(bound && role === 'listener' ? { listen: { address: bound.address, port: bound.port } } : {}),
  };
}

/** Waits for every thread to start; if one cannot (a bad handler module), stops the others and throws its error. */
async function allStarted(threads: ServerThread[], timeoutMs: number): Promise<void> {
  try {
    await Promise.all(threads.map((thread) => thread.ready));
  } catch (error) {
    await Promise.all(threads.map((thread) => thread.close(timeoutMs)));
    throw error;
  }
}

/**
 * Accepts on the main thread and gives each admitted connection's descriptor to `dispatch`, which
 * owns it from then on (the thread that serves it uncounts its address when it closes); over the
 * limits (`openNow()`, by default those open in the threads) it closes it.
 */
async function acceptAndHandOff(
  bound: BoundSocket,
  options: ResolvedServerOptions,
  hooks: ModelHooks,
  peers: PeerCounts,
  dispatch: (connection: Admitted) => void,
  openNow?: () => number,
): Promise<Server> {
  const counters = new SharedCounters(hooks.countersBuffer, 0);
  const open = openNow ?? ((): number => counters.openEverywhere());
  const limits = { maxConnections: options.maxConnections, allowedPeers: options.allowedPeers, peers };
  const handOff = (socket: Socket, peer: string, leftover: Buffer | undefined): void => {
    let fd: number;
    try {
      fd = duplicateFd(fdOf(socket));
    } catch (error) {
      // Out of descriptors (EMFILE): this newcomer is refused, the others go on.
      peers.remove(peer);
      hooks.onError(countedErrorOf(error));
      return;
    } finally {
      socket.destroy();
    }
    dispatch({ fd, peer, leftover });
  };
  const token = options.connectionToken === undefined ? undefined : Buffer.from(options.connectionToken);
  const server = new Server({ pauseOnConnect: true, noDelay: options.noDelay, keepAlive: options.keepAlive }, (socket) => {
    const admitted = admit(socket, open(), limits);
    if ('refusal' in admitted) {
      socket.destroy();
      hooks.onError(admitted.refusal);
      return;
    }
    if (token === undefined) return handOff(socket, admitted.peer, undefined);
    void readConnectionToken(socket, token).then((leftover) => {
      if (leftover !== undefined && !socket.destroyed) return handOff(socket, admitted.peer, leftover);
      socket.destroy();
      peers.remove(admitted.peer);
      hooks.onError('SOCKTUNE_ERR_AUTH');
    });
  });
  await listenOn(server, bound, options.backlog, hooks.onError);
  return server;
}

/**
 * `workers`: N event loops. With 'reuseport' each thread listens on the shared port itself and
 * the kernel spreads connections; with 'handoff' the main thread accepts and deals descriptors
 * round-robin. A crashed thread is replaced in its slot.
 */
export async function startWorkersModel(bound: BoundSocket, options: ResolvedServerOptions, hooks: ModelHooks): Promise<RunningModel> {
  const role: ThreadData['role'] = options.distribution === 'reuseport' && bound.family !== 'unix' ? 'listener' : 'pool';
  const threads: ServerThread[] = [];
  let closing = false;
  const spawn = (slot: number): ServerThread =>
    new ServerThread(threadData(options, hooks, slot, role, bound), {
      onError: hooks.onError,
      onDone: () => {},
      onCrash: (thread, error) => {
        if (!thread.started) return;
        hooks.onWorkerCrash(error);
        if (closing) return;
        const index = threads.indexOf(thread);
        if (index >= 0) threads[index] = spawn(thread.slot);
      },
    });
  for (let i = 0; i < options.workers; i++) threads.push(spawn(i + 1));
  await allStarted(threads, options.closeTimeout);
  let next = 0;
  const handoffPeers = new PeerCounts(hooks.peersBuffer, options.maxConnectionsPerIp, hooks.connectionPool);
  const server =
    role === 'pool'
      ? await acceptAndHandOff(bound, options, hooks, handoffPeers, (connection) => {
          const thread = threads[next]!;
          next = (next + 1) % threads.length;
          if (thread.handOver(connection)) return;
          closeFd(connection.fd);
          handoffPeers.remove(connection.peer);
          hooks.onError('SOCKTUNE_ERR_WORKER_CRASHED');
        })
      : undefined;
  return {
    threads: () => threads.length,
    async close(timeoutMs) {
      closing = true;
      if (server) await closeServer(server);
      const destroyed = await Promise.all(threads.map((thread) => thread.close(timeoutMs)));
      return destroyed.reduce((a, b) => a + b, 0);
    },
  };
}

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
      await closeServer(server);
      for (const connection of shares.removeAll()) drop(connection);
      const stopTimer = setTimeout(() => Atomics.store(new Int32Array(hooks.stopBuffer), 0, 1), timeoutMs);
      const destroyed = await Promise.all(threads.map((thread) => thread.close(timeoutMs)));
      clearTimeout(stopTimer);
      return destroyed.reduce((a, b) => a + b, 0);
    },
  };
}
