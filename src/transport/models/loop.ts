import { Server } from 'node:net';
import { PeerCounts } from '../server/admission.ts';
import { toPortableHandler } from '../services/portable-handler.ts';
import { type BoundSocket, listenOn } from '../server/listen-socket.ts';
import { SharedCounters } from '../server/metrics.ts';
import { EventLoopServing } from './event-loop-serving.ts';
import { type ResolvedServerOptions, isInProcessHandler } from '../server/options.ts';
import { type ModelHooks, type RunningModel, closeServer } from './model.ts';

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
      serving.tokenReaders.close();
      const closed = closeServer(server);
      const { destroyed } = await serving.connections.drain(timeoutMs);
      await closed;
      return destroyed;
    },
  };
}
