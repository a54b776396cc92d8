import { Socket } from 'node:net';
import { countedErrorOf, type CountedError } from '../../core/errors.ts';
import { closeFd, duplicateFd, setLingerZero } from '../../core/socket-syscalls.ts';
import { admit, type Admitted, type PeerCounts } from '../server/admission.ts';
import { TokenReaders } from '../server/connection-token.ts';
import { ConnectionSet } from '../server/connection-set.ts';
import { fdOf } from '../io/fd.ts';
import { loadHandlerFunction, type PortableHandler } from '../services/portable-handler.ts';
import type { SharedCounters } from '../server/metrics.ts';
import type { BuiltinService, ConnectionHandler, ReadHandler } from '../server/options.ts';
import type { BufferBudget } from '../io/buffer-budget.ts';
import type { SendBudget } from '../io/send-budget.ts';
import { serveBuiltin, serveReads } from '../services/builtin-services.ts';

export interface ServeSettings {
  counters: SharedCounters;
  sourceChunkSize: number;
  sendBudget?: SendBudget | undefined;
  bufferBudget: BufferBudget;
  connectionToken?: Uint8Array | undefined;
  maxConnections: number;
  allowedPeers?: string[] | undefined;
  peers: PeerCounts;
  idleTimeout: number;
  lingerZero: boolean;
  onError: (code: CountedError) => void;
}

/**
 * Serves connections on one event loop, whoever accepted them: the sockets a net.Server made
 * (loop model, per-thread listeners) or raw descriptors handed over from another thread.
 */
export class EventLoopServing {
  readonly connections: ConnectionSet;
  /** Connections reading their token: counted open, and cut when the server closes (close them before closing the listener). */
  readonly tokenReaders = new TokenReaders();
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

  static async create(
    handler: PortableHandler | ConnectionHandler | { reads: ReadHandler },
    settings: ServeSettings,
  ): Promise<EventLoopServing> {
    if (typeof handler === 'function') return new EventLoopServing(settings, { handler });
    if ('reads' in handler && typeof handler.reads === 'function') return new EventLoopServing(settings, { reader: handler.reads });
    if ('builtin' in handler) return new EventLoopServing(settings, { builtin: handler.builtin });
    const portable = handler;
    if (portable.reads)
      return new EventLoopServing(settings, { reader: await loadHandlerFunction<ReadHandler>(portable.moduleUrl, portable.exportName) });
    return new EventLoopServing(settings, {
      handler: await loadHandlerFunction<ConnectionHandler>(portable.moduleUrl, portable.exportName),
    });
  }

  /**
   * Whether accepted sockets must arrive paused: built-in services and read handlers re-wrap the descriptor to read into a reused
   * buffer.
   */
  get wantsPausedSockets(): boolean {
    return this.#builtin !== undefined || this.#reader !== undefined;
  }

  acceptSocket(socket: Socket): void {
    const admitted = admit(socket, this.#settings.counters.openEverywhere() + this.tokenReaders.size, this.#settings);
    if ('refusal' in admitted) {
      socket.destroy();
      this.#settings.onError(admitted.refusal);
      return;
    }
    const token = this.#settings.connectionToken;
    if (token === undefined) return this.#serveSocket(socket, admitted.peer, undefined);
    this.tokenReaders.admit(
      socket,
      Buffer.from(token),
      (leftover) => this.#serveSocket(socket, admitted.peer, leftover),
      (authFailure) => {
        this.#settings.peers.remove(admitted.peer);
        if (authFailure) this.#settings.onError('SOCKTUNE_ERR_AUTH');
      },
    );
  }

  #serveSocket(socket: Socket, peer: string, leftover: Buffer | undefined): void {
    if (!this.wantsPausedSockets) {
      if (leftover !== undefined && leftover.length > 0) socket.unshift(leftover);
      this.connections.add(socket, true, peer);
      this.#runHandler(socket, fdOf(socket));
      if (leftover !== undefined) socket.resume();
      return;
    }
    // The duplicate keeps the connection open while Node's own wrapper (which may not read into a reused buffer) is dropped.
    let fd: number;
    try {
      fd = duplicateFd(fdOf(socket));
    } catch (error) {
      // Out of descriptors (EMFILE): this newcomer is refused, the others go on.
      this.#settings.peers.remove(peer);
      this.#settings.onError(countedErrorOf(error));
      return;
    } finally {
      socket.destroy();
    }
    this.acceptFd({ fd, peer, leftover });
  }

  /**
   * Serves a descriptor this thread now owns; undefined when it could not (the descriptor is closed and counted).
   * `countedOpen`: the main thread counted it open as it handed it over, so only its close is counted here.
   */
  acceptFd({ fd, peer, leftover }: Admitted, countedOpen = false): Socket | undefined {
    const first =
      leftover === undefined || leftover.length === 0 ? undefined : Buffer.from(leftover.buffer, leftover.byteOffset, leftover.length);
    let socket: Socket;
    try {
      const context = { ...this.#settings, bufferBudget: this.#settings.bufferBudget.forClient(peer) };
      if (this.#builtin !== undefined) socket = serveBuiltin(this.#builtin, fd, context, first);
      else if (this.#reader !== undefined) socket = serveReads(fd, this.#reader, context, first);
      else {
        socket = new Socket({ fd, readable: true, writable: true });
        if (first !== undefined) socket.unshift(first);
      }
    } catch (error) {
      closeFd(fd);
      this.#settings.peers.remove(peer);
      this.#settings.onError(countedErrorOf(error));
      if (countedOpen) this.#settings.counters.closed();
      return undefined;
    }
    this.connections.add(socket, this.#builtin === undefined, peer, countedOpen);
    this.#runHandler(socket, fd);
    return socket;
  }

  /**
   * Socket options, then the connection handler; a throw (an option the OS refuses, a handler that fails at once) closes this
   * connection only.
   */
  #runHandler(socket: Socket, fd: number): void {
    try {
      if (this.#settings.lingerZero) setLingerZero(fd);
      this.#handler?.(socket);
    } catch (error) {
      this.#settings.onError(countedErrorOf(error, 'SOCKTUNE_ERR_HANDLER'));
      socket.destroy();
    }
  }
}
