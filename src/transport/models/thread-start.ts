import { pickSocketOptions } from '../../core/socket-options.ts';
import { toPortableHandler } from '../services/portable-handler.ts';
import type { BoundSocket } from '../server/listen-socket.ts';
import type { BuiltinService, HandlerModule, ResolvedServerOptions } from '../server/options.ts';
import { ServerThread } from './serving-thread.ts';
import type { ThreadData } from './thread-messages.ts';
import type { ModelHooks } from './model.ts';

export function threadData(
  options: ResolvedServerOptions,
  hooks: ModelHooks,
  slot: number,
  role: ThreadData['role'],
  bound?: BoundSocket,
  giveUpBuffer?: SharedArrayBuffer,
): ThreadData {
  return {
    ...(options.ioModel === 'thread-per-conn' ? { yieldWhenIdle: true } : {}),
    ...(options.ioModel === 'io-uring' ? { ring: true } : {}),
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
export async function allStarted(threads: ServerThread[], timeoutMs: number): Promise<void> {
  try {
    await Promise.all(threads.map((thread) => thread.ready));
  } catch (error) {
    await Promise.all(threads.map((thread) => thread.close(timeoutMs)));
    throw error;
  }
}
