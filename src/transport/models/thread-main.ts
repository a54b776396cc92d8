import { Server } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import {
  BlockingConnection,
  blockingBuiltin,
  PRESSURE_IDLE_MS,
  runBlocking,
  WAITING_FOR_THREADS,
  type BlockingHandler,
} from './blocking-connection.ts';
import { loadHandlerFunction } from '../services/portable-handler.ts';
import { bindListeningSocket, listenOn } from '../server/listen-socket.ts';
import { ConnectionPool, PeerCounts } from '../server/admission.ts';
import { pinThread } from '../../core/affinity.ts';
import { BufferBudget } from '../io/buffer-budget.ts';
import { SharedCounters } from '../server/metrics.ts';
import { SendBudget } from '../io/send-budget.ts';
import { EventLoopServing } from './event-loop-serving.ts';
import { RingServing } from './ring-serving.ts';
import type { RingService } from '../server/options.ts';
import type { FromThread, ThreadData, ToThread } from './thread-messages.ts';

/** How often an event-loop thread of thread-per-conn looks for a quiet connection while others wait. */
const PRESSURE_CHECK_MS = 1000;
const data = workerData as ThreadData;
// Only this thread: the kernel keeps affinity per thread.
if (data.affinity !== undefined) pinThread(data.affinity);
const port = parentPort!;
const counters = new SharedCounters(data.countersBuffer, data.slot);
const stop = new Int32Array(data.stopBuffer);
const peers = new PeerCounts(
  data.peersBuffer,
  data.maxConnectionsPerIp,
  data.connectionPool === undefined ? undefined : ConnectionPool.fromState(data.connectionPool),
);
const sendBudget = data.sendBudget === undefined ? undefined : SendBudget.fromState(data.sendBudget);
const bufferBudget = BufferBudget.fromState(data.bufferBudget);
/** thread-per-conn, blocking: this thread's flag the main thread sets to take it back from its connection. */
const giveUp = data.giveUpBuffer === undefined ? undefined : { flags: new Int32Array(data.giveUpBuffer), slot: data.slot };
const post = (message: FromThread): void => port.postMessage(message);

async function blockingHandler(): Promise<BlockingHandler> {
  if ('builtin' in data.handler) return blockingBuiltin(data.handler.builtin, data.sourceChunkSize, counters);
  return loadHandlerFunction<BlockingHandler>(data.handler.moduleUrl, data.handler.exportName);
}

async function runBlockingPool(): Promise<void> {
  const handler = await blockingHandler();
  let stopped = 0;
  port.on('message', (message: ToThread) => {
    if (message.type === 'close') {
      post({ type: 'closed', destroyed: stopped });
      port.close();
      return;
    }
    // Blocking threads are asked through giveUp's flag, which the connection checks itself.
    if (message.type !== 'fd') return;
    counters.opened();
    const outcome = runBlocking(
      handler,
      new BlockingConnection(message.fd, stop, counters, {
        idleTimeout: data.idleTimeout,
        sendBudget,
        bufferBudget: bufferBudget.forClient(message.peer),
        first: message.leftover,
        giveUp,
      }),
    );
    counters.closed();
    peers.remove(message.peer);
    if (outcome === 'stopped') stopped++;
    else if (outcome !== 'finished') post({ type: 'error', code: outcome.errorCode });
    post({ type: 'done' });
  });
  post({ type: 'ready' });
}

async function runEventLoop(): Promise<void> {
  const serving = await EventLoopServing.create(data.handler, {
    counters,
    sourceChunkSize: data.sourceChunkSize,
    maxConnections: data.maxConnections,
    allowedPeers: data.allowedPeers,
    peers,
    idleTimeout: data.idleTimeout,
    sendBudget,
    bufferBudget,
    connectionToken: data.connectionToken,
    lingerZero: data.socketOptions.lingerZero ?? false,
    onError: (code) => post({ type: 'error', code }),
  });
  let server: Server | undefined;
  if (data.role === 'listener' && data.listen) {
    const bound = bindListeningSocket(
      { host: data.listen.address, address: data.listen.address, port: data.listen.port },
      { ...data.socketOptions, reusePort: true },
    );
    server = new Server({ pauseOnConnect: serving.wantsPausedSockets }, (socket) => serving.acceptSocket(socket));
    await listenOn(server, bound, data.socketOptions.backlog ?? 511, (code) => post({ type: 'error', code }));
  }
  if (data.yieldWhenIdle) {
    // thread-per-conn: while connections wait for a thread, a quiet one gives this thread up.
    setInterval(() => {
      if (Atomics.load(stop, WAITING_FOR_THREADS) !== 0) serving.connections.closeQuiet(PRESSURE_IDLE_MS);
    }, PRESSURE_CHECK_MS).unref();
  }
  port.on('message', (message: ToThread) => {
    if (message.type === 'fd') {
      const socket = serving.acceptFd(message, data.countedOnHandOff === true);
      if (socket === undefined) post({ type: 'done' });
      else socket.once('close', () => post({ type: 'done' }));
      return;
    }
    if (message.type === 'give-up') return serving.connections.closeAll('SOCKTUNE_ERR_MAX_THREADS');
    serving.tokenReaders.close();
    server?.close();
    void serving.connections.drain(message.timeoutMs).then(({ destroyed }) => {
      post({ type: 'closed', destroyed });
      port.close();
    });
  });
  post({ type: 'ready' });
}

/** io-uring: the thread waits in io_uring_enter, never in its event loop; messages are read from the port when the ring's eventfd fires. */
function runRing(): void {
  // validateServerOptions lets only RING_SERVICES reach a ring.
  const service = (data.handler as { builtin: RingService }).builtin;
  const serving = new RingServing({
    service,
    counters,
    peers,
    idleTimeout: data.idleTimeout,
    sourceChunkSize: data.sourceChunkSize,
    onError: (code) => post({ type: 'error', code }),
    countedOnHandOff: data.countedOnHandOff === true,
  });
  post({ type: 'ready', wakeFd: serving.wakeFd });
  const destroyed = serving.run(port);
  post({ type: 'closed', destroyed });
  port.close();
}

if (data.ring) runRing();
else await (data.blocking ? runBlockingPool() : runEventLoop());
