import { Socket } from 'node:net';
import { duplicateFd, setLingerZero } from '../core/sockopts.ts';
import { admit, type Admitted, type PeerCounts } from './admission.ts';
import { ConnectionSet } from './connection-set.ts';
import { fdOf } from './fd.ts';
import { loadHandlerFunction, type PortableHandler } from './handler.ts';
import type { SharedCounters } from './metrics.ts';
import type { BuiltinService, ConnectionHandler, ReadHandler } from './server-options.ts';
import type { SendPace } from './send-pace.ts';
import { serveBuiltin, serveReads } from './services.ts';

export interface ServeSettings {
  counters: SharedCounters;
  sourceChunkSize: number;
  sendPace?: SendPace | undefined;
  maxConnections: number;
  allowedPeers?: string[] | undefined;
  peers: PeerCounts;
  idleTimeout: number;
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
  readonly #builtin: BuiltinService | undefined;
  readonly #handler: ConnectionHandler | undefined;
  readonly #reader: ReadHandler | undefined;

  private constructor(settings: ServeSettings, kind: { builtin?: BuiltinService; handler?: ConnectionHandler; reader?: ReadHandler }) {
    this.#settings = settings;
    this.#builtin = kind.builtin;
    this.#handler = kind.handler;
    this.#reader = kind.reader;
    this.connections = new ConnectionSet(settings.counters, settings.onError, settings.idleTimeout, settings.peers);
  }

  static async create(handler: PortableHandler | ConnectionHandler | { reads: ReadHandler }, settings: ServeSettings): Promise<EventLoopServing> {
    if (typeof handler === 'function') return new EventLoopServing(settings, { handler });
    if ('reads' in handler && typeof handler.reads === 'function') return new EventLoopServing(settings, { reader: handler.reads });
    if ('builtin' in handler) return new EventLoopServing(settings, { builtin: handler.builtin });
    const portable = handler as Extract<PortableHandler, { moduleUrl: string }>;
    if (portable.reads) return new EventLoopServing(settings, { reader: await loadHandlerFunction<ReadHandler>(portable.moduleUrl, portable.exportName) });
    return new EventLoopServing(settings, { handler: await loadHandlerFunction<ConnectionHandler>(portable.moduleUrl, portable.exportName) });
  }

  /** Whether accepted sockets must arrive paused: built-in services and read handlers re-wrap the descriptor to read into a reused buffer. */
  get wantsPausedSockets(): boolean {
    return this.#builtin !== undefined || this.#reader !== undefined;
  }

  acceptSocket(socket: Socket): void {
    const admitted = admit(socket, this.#settings.counters.openEverywhere(), this.#settings);
    if ('refusal' in admitted) {
      socket.destroy();
      this.#settings.onError(admitted.refusal);
      return;
    }
    if (!this.wantsPausedSockets) {
      this.#prepare(fdOf(socket));
      this.connections.add(socket, true, admitted.peer);
      this.#handler!(socket);
      return;
    }
    // The duplicate keeps the connection open while Node's own wrapper (which may not read into a reused buffer) is dropped.
    const fd = duplicateFd(fdOf(socket));
    socket.destroy();
    this.acceptFd({ fd, peer: admitted.peer });
  }

  acceptFd({ fd, peer }: Admitted): Socket {
    this.#prepare(fd);
    if (this.#builtin !== undefined) {
      const socket = serveBuiltin(this.#builtin, fd, this.#settings);
      this.connections.add(socket, false, peer);
      return socket;
    }
    if (this.#reader !== undefined) {
      const socket = serveReads(fd, this.#reader);
      this.connections.add(socket, true, peer);
      return socket;
    }
    const socket = new Socket({ fd, readable: true, writable: true });
    this.connections.add(socket, true, peer);
    this.#handler!(socket);
    return socket;
  }

  #prepare(fd: number): void {
    if (this.#settings.lingerZero) setLingerZero(fd);
  }
}
