import { EventEmitter } from 'node:events';
import { unlink } from 'node:fs/promises';
import { countError, fromSystemError, SocktuneError, type CountedError, type ErrorCounts } from '../../core/errors.ts';
import { bufferCapWarnings, pickSocketOptions, type BufferCapWarning, type EffectiveSocketOptions } from '../../core/socket-options.ts';
import { closeFd, readEffectiveBufferSizes, readEffectiveSocketOptions } from '../../core/socket-syscalls.ts';
import { bindListeningSocket, removeStaleUnixSocket, resolveHost, type BoundSocket } from './listen-socket.ts';
import { PeerCounts } from './admission.ts';
import { BufferBudget } from '../io/buffer-budget.ts';
import { SharedCounters, sumCounters, type ServerMetrics } from './metrics.ts';
import { SendBudget } from '../io/send-budget.ts';
import { counterSlots, type ModelHooks, type RunningModel } from '../models/model.ts';
import { START_MODEL } from '../models/io-models.ts';
import { validateServerOptions, type HandlerSpec, type ResolvedServerOptions, type ServerOptions } from './options.ts';

export type ServerAddress = { family: 'ipv4' | 'ipv6'; address: string; port: number } | { family: 'unix'; path: string };

export interface CloseResult {
  /** Connections still open at the close timeout, destroyed. */
  destroyed: number;
}

/**
 * A TCP or Unix-domain server whose listening socket is made and configured by socktune, so
 * buffer sizes are in place before listen() and accepted sockets inherit them.
 *
 * Events: 'warning' (BufferCapWarning), 'workerCrash' (Error), 'refused' (connection over maxThreads).
 */
export class SocktuneServer extends EventEmitter {
  readonly options: ResolvedServerOptions;
  readonly warnings: BufferCapWarning[] = [];
  readonly #errors: ErrorCounts = {};
  readonly #countersBuffer: SharedArrayBuffer;
  #bound: BoundSocket | undefined;
  #effective: EffectiveSocketOptions | undefined;
  #model: RunningModel | undefined;
  #closing: Promise<CloseResult> | undefined;

  constructor(options: ServerOptions) {
    super();
    this.options = validateServerOptions(options);
    this.#countersBuffer = SharedCounters.allocate(counterSlots(this.options));
  }

  async listen(): Promise<ServerAddress> {
    if (this.#bound) throw new SocktuneError('SOCKTUNE_ERR_LISTEN', 'server is already listening');
    const { options } = this;
    if (options.path !== undefined) await removeStaleUnixSocket(options.path);
    const address = options.path === undefined ? await resolveHost(options.host) : options.path;
    const needsReusePort = options.ioModel === 'workers' && options.distribution === 'reuseport' && options.path === undefined;
    const requested = { ...pickSocketOptions(options), reusePort: options.reusePort || needsReusePort };
    const bound = bindListeningSocket({ host: options.host, port: options.port, path: options.path, address }, requested);
    this.#bound = bound;
    this.#effective =
      bound.family === 'unix'
        ? { ...readEffectiveBufferSizes(bound.fd), noDelay: false, keepAlive: false }
        : readEffectiveSocketOptions(bound.fd);
    for (const warning of bufferCapWarnings(requested, this.#effective)) {
      this.warnings.push(warning);
      this.emit('warning', warning);
    }
    try {
      this.#model = await START_MODEL[options.ioModel](bound, options, this.#hooks());
    } catch (error) {
      closeFd(bound.fd);
      this.#bound = undefined;
      throw error instanceof SocktuneError ? error : fromSystemError(error, 'listen');
    }
    return this.address()!;
  }

  #hooks(): ModelHooks {
    return {
      countersBuffer: this.#countersBuffer,
      peersBuffer: PeerCounts.allocate(this.options.ipv6Prefix),
      connectionPool: this.options.connectionPool,
      sendBudget: typeof this.options.maxSendRate === 'number' ? new SendBudget(this.options.maxSendRate) : this.options.maxSendRate,
      bufferBudget:
        typeof this.options.maxBufferedBytes === 'number' ? new BufferBudget(this.options.maxBufferedBytes) : this.options.maxBufferedBytes,
      stopBuffer: new SharedArrayBuffer(8),
      onError: (code) => this.#countError(code),
      onWorkerCrash: (error) => {
        this.#countError('SOCKTUNE_ERR_WORKER_CRASHED');
        this.emit('workerCrash', error);
      },
      onRefused: () => {
        this.#countError('SOCKTUNE_ERR_MAX_THREADS');
        this.emit('refused');
      },
    };
  }

  #countError(code: CountedError): void {
    countError(this.#errors, code);
  }

  address(): ServerAddress | null {
    const bound = this.#bound;
    if (!bound) return null;
    if (bound.family === 'unix') return { family: 'unix', path: bound.address };
    return { family: bound.family, address: bound.address, port: bound.port };
  }

  /** Buffer sizes and flags the kernel applied to the listening socket; accepted sockets inherit them. */
  effectiveSocketOptions(): EffectiveSocketOptions {
    if (!this.#effective) throw new SocktuneError('SOCKTUNE_ERR_LISTEN', 'server is not listening yet');
    return { ...this.#effective };
  }

  /** Threads serving connections now ('workers', 'thread-per-conn'); 0 for 'loop' and before listen. */
  get threads(): number {
    return this.#model?.threads() ?? 0;
  }

  metrics(): ServerMetrics {
    return { ...sumCounters(this.#countersBuffer), errors: { ...this.#errors } };
  }

  /**
   * Stops accepting and ends each connection gracefully: our side half-closes after everything the
   * application already wrote, so the peer gets every answer, then EOF. Connections still open
   * after `closeTimeout` ms are destroyed (`destroyed` in the result). Blocking threads are stopped
   * at the timeout instead.
   */
  close(): Promise<CloseResult> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<CloseResult> {
    const bound = this.#bound;
    const destroyed = this.#model ? await this.#model.close(this.options.closeTimeout) : 0;
    // In 'workers' with reuseport the main thread's socket only reserves the port; in the other models node owns and closed it.
    if (bound && this.options.ioModel === 'workers' && this.options.distribution === 'reuseport' && bound.family !== 'unix')
      closeFd(bound.fd);
    if (bound?.family === 'unix') await unlink(bound.address).catch(() => {});
    return { destroyed };
  }
}

/** Creates a server; call `listen()` to bind and start it. Options are validated here, before any socket exists. */
export function createServer(options: ServerOptions = {}, handler?: HandlerSpec): SocktuneServer {
  return new SocktuneServer(handler === undefined ? options : { ...options, handler });
}
