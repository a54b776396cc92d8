import { Socket } from 'node:net';
import { duplicateFd, setLingerZero } from '../core/sockopts.ts';
import { ConnectionSet } from './connection-set.ts';
import { fdOf } from './fd.ts';
import { loadHandlerFunction, type PortableHandler } from './handler.ts';
import type { SharedCounters } from './metrics.ts';
import type { ConnectionHandler } from './server-options.ts';
import { serveBuiltin } from './services.ts';

export interface ServeSettings {
  counters: SharedCounters;
  sourceChunkSize: number;
  lingerZero: boolean;
  onError: (code: string) => void;
}

/**
 * Serves connections on one event loop, whoever accepted them: the sockets a net.Server made
 * (loop model, per-thread listeners) or raw descriptors handed over from another thread.
 */
export class EventLoopServing {
  readonly connections: ConnectionSet;
  readonly #settings: ServeSettings;
  readonly #builtin: PortableHandler | undefined;
  readonly #handler: ConnectionHandler | undefined;

  private constructor(settings: ServeSettings, builtin: PortableHandler | undefined, handler: ConnectionHandler | undefined) {
    this.#settings = settings;
    this.#builtin = builtin;
    this.#handler = handler;
    this.connections = new ConnectionSet(settings.counters, settings.onError);
  }

  static async create(handler: PortableHandler | ConnectionHandler, settings: ServeSettings): Promise<EventLoopServing> {
    if (typeof handler === 'function') return new EventLoopServing(settings, undefined, handler);
    if ('builtin' in handler) return new EventLoopServing(settings, handler, undefined);
    const loaded = await loadHandlerFunction<ConnectionHandler>(handler.moduleUrl, handler.exportName);
    return new EventLoopServing(settings, undefined, loaded);
  }

  /** Whether accepted sockets must arrive paused: built-in services re-wrap the descriptor to read into a reused buffer. */
  get wantsPausedSockets(): boolean {
    return this.#builtin !== undefined;
  }

  acceptSocket(socket: Socket): void {
    if (this.#builtin === undefined) {
      this.#prepare(fdOf(socket));
      this.connections.add(socket, true);
      this.#handler!(socket);
      return;
    }
    // The duplicate keeps the connection open while Node's own wrapper (which may not read into a reused buffer) is dropped.
    const fd = duplicateFd(fdOf(socket));
    socket.destroy();
    this.acceptFd(fd);
  }

  acceptFd(fd: number): Socket {
    this.#prepare(fd);
    const builtin = this.#builtin;
    if (builtin !== undefined && 'builtin' in builtin) {
      const socket = serveBuiltin(builtin.builtin, fd, this.#settings);
      this.connections.add(socket, false);
      return socket;
    }
    const socket = new Socket({ fd, readable: true, writable: true });
    this.connections.add(socket, true);
    this.#handler!(socket);
    return socket;
  }

  #prepare(fd: number): void {
    if (this.#settings.lingerZero) setLingerZero(fd);
  }
}
