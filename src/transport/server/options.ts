import type { Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { SocktuneError } from '../../core/errors.ts';
import { SOCKET_OPTION_DEFAULTS, SOCKET_OPTION_FIELDS, type SocketOptions } from '../../core/socket-options.ts';
import { anyOf, boolean, integer, invalidOption, nonEmptyString, oneOf, validateFields, type FieldCheck } from '../../core/validate.ts';
import { cpuNumbers } from '../../core/affinity.ts';
import { DEFAULT_IPV6_PREFIX } from '../../core/client-key.ts';
import type { ByteBudget } from '../../framing/partial-message.ts';
import { ConnectionPool } from './admission.ts';
import { BufferBudget, MAX_BUFFER_BUDGET } from '../io/buffer-budget.ts';
import { SendBudget } from '../io/send-budget.ts';

export const IO_MODELS = ['loop', 'workers', 'thread-per-conn', 'io-uring'] as const;
export type IoModel = (typeof IO_MODELS)[number];

/** The models that serve on a fixed pool of `workers` threads (event loops or rings). */
export function servesOnWorkers(model: IoModel): boolean {
  return model === 'workers' || model === 'io-uring';
}

/**
 * echo: send back what arrives. discard: read and drop. source: send the verification pattern as
 * fast as the peer reads. verify: like discard, and count bytes that break the pattern.
 * msg-echo / msg-sink: length-prefixed (u32) messages, echoed through the coalescing writer or
 * counted and dropped.
 */
export const BUILTIN_SERVICES = ['echo', 'discard', 'source', 'verify', 'msg-echo', 'msg-sink'] as const;
export type BuiltinService = (typeof BUILTIN_SERVICES)[number];
/** The built-in services ioModel 'io-uring' serves: bytes in, bytes out, nothing framed. */
export const RING_SERVICES = ['echo', 'discard', 'verify', 'source'] as const satisfies readonly BuiltinService[];
export type RingService = (typeof RING_SERVICES)[number];
/** Those of them that send: a send budget (maxSendRate) would have to pace them, which a ring does not. */
const RING_SENDERS: readonly RingService[] = ['echo', 'source'];

/** A connection handler for the `loop` model: it owns the socket from here on. */
export type ConnectionHandler = (socket: Socket) => void;

/** What a ReadHandler may use of its server: the budget for messages it gathers across reads (pass it to a decoder). */
export interface ReadContext {
  bufferBudget: ByteBudget;
}

/**
 * The hot-path alternative to a ConnectionHandler: socktune reads into one buffer shared by the
 * thread (Node's `onread`) and calls the returned function with a view of each read. The view is
 * valid only during the call: copy what must outlive it.
 */
export type ReadHandler = (socket: Socket, context: ReadContext) => (view: Buffer) => void;

/**
 * A handler that other threads can load: functions cannot cross threads, so `workers` and
 * `thread-per-conn` take a module that exports the handler (default export unless `exportName`).
 * `reads: true` when the export is a ReadHandler. With `blocking: true` the export is a BlockingHandler.
 */
export interface HandlerModule {
  module: string | URL;
  exportName?: string;
  reads?: boolean;
}

export type HandlerSpec = BuiltinService | ConnectionHandler | HandlerModule | { reads: ReadHandler };

export interface ServerOptions extends SocketOptions {
  /** Address to bind. @default '127.0.0.1' */
  host?: string;
  /** TCP port; 0 lets the kernel choose. @default 0 */
  port?: number;
  /** Unix-domain socket path; when set, host and port are ignored. @default undefined */
  path?: string;
  /** How connections are served. @default 'loop' */
  ioModel?: IoModel;
  /** Threads for ioModel 'workers' (event loops) and 'io-uring' (a ring each). @default os.availableParallelism() */
  workers?: number;
  /**
   * How 'workers' get connections: each thread's own listener on the shared port (kernel
   * balances with SO_REUSEPORT), or the main thread accepts and hands descriptors over.
   * Unix-domain paths always use 'handoff'. @default 'reuseport'
   */
  distribution?: 'reuseport' | 'handoff';
  /**
   * Most threads at once for ioModel 'thread-per-conn'. With overflow 'queue' the threads are shared
   * between client addresses (as maxConnectionsPerIp counts them): waiting connections are served
   * from the address holding the fewest threads first, and while one waits holding at least a thread
   * less than its share (maxThreads over the addresses holding or waiting), the address holding the
   * most, if at least a thread over its share, gives up its newest connection's thread (closed,
   * counted as SOCKTUNE_ERR_MAX_THREADS). One address alone may use every thread. @default 64
   */
  maxThreads?: number;
  /**
   * thread-per-conn: threads started at listen and kept while idle, so clients need not wait for
   * a thread to start (a V8 isolate: tens of milliseconds and ~20 MB each). Size it for the
   * clients you expect at once; at most maxThreads. @default os.availableParallelism(), at most maxThreads
   */
  minThreads?: number;
  /** thread-per-conn: milliseconds a thread beyond minThreads may stay idle before it is ended; 0 keeps it. @default 30000 */
  threadIdleTimeout?: number;
  /** At maxThreads: 'queue' waits for a free thread, 'refuse' closes the new connection. @default 'queue' */
  overflow?: 'queue' | 'refuse';
  /** thread-per-conn only: serve with blocking recv/send (poll + FFI) instead of an event loop. @default false */
  blocking?: boolean;
  /** What serves each connection. @default 'echo' */
  handler?: HandlerSpec;
  /**
   * Connections open at once, every thread together; a newcomer over the cap is closed at once and
   * counted as SOCKTUNE_ERR_MAX_CONNECTIONS. @default 10000
   */
  maxConnections?: number;
  /**
   * Connections open at once from one client address, every thread together; a newcomer over it
   * is closed at once and counted as SOCKTUNE_ERR_MAX_CONNECTIONS. @default 1024
   */
  maxConnectionsPerIp?: number;
  /**
   * IPv6 clients are counted per prefix of this many bits for maxConnectionsPerIp (and the thread
   * share of thread-per-conn): one host may hold a whole /64 and take a fresh address per connection. @default 64
   */
  ipv6Prefix?: number;
  /**
   * Only connections from these addresses are served; others are closed at once and counted as
   * SOCKTUNE_ERR_REFUSED. (`socktune server` gives each test's server the address of its client.)
   * @default undefined (every address)
   */
  allowedPeers?: string[];
  /**
   * Milliseconds a connection may go without reading or writing before it is closed, counted as
   * SOCKTUNE_ERR_TIMEOUT; 0 turns it off (for long-lived quiet connections). @default 300000
   */
  idleTimeout?: number;
  /** Milliseconds close() lets connections finish before destroying them. @default 5000 */
  closeTimeout?: number;
  /** Bytes of each write of the 'source' service. @default 65536 */
  sourceChunkSize?: number;
  /**
   * Bytes per second the server may send, every connection and thread together: the built-in
   * services that send (source, echo, msg-echo) and read handlers (paced after each read). A
   * SendBudget instead of a number shares one limit with other servers. @default undefined (no cap)
   */
  maxSendRate?: number | SendBudget;
  /**
   * Bytes that messages split across reads (msg services, read handlers that use the budget) may
   * hold, every connection together; a connection whose message does not fit is closed
   * (SOCKTUNE_ERR_BUFFER_BUDGET). A BufferBudget shares one with other servers. @default 268435456 (256 MiB)
   */
  maxBufferedBytes?: number | BufferBudget;
  /** Caps shared with other servers (total connections, per client address) on top of this server's own. @default undefined */
  connectionPool?: ConnectionPool;
  /**
   * CPUs the server's own threads run on (`workers`, `thread-per-conn`); `loop` runs on the
   * caller's thread, so pin the process instead (pinProcess). @default undefined (wherever the OS puts them)
   */
  affinity?: number[];
  /**
   * Bytes every connection must send first, within 10 s, before it is served (a test's data
   * connections prove they belong to it); others are closed and counted as SOCKTUNE_ERR_AUTH.
   * Clients send it with connect({ preamble }). @default undefined (none)
   */
  connectionToken?: Uint8Array;
}

type OptionalSettings =
  'path' | 'sendBufferSize' | 'receiveBufferSize' | 'maxSendRate' | 'allowedPeers' | 'connectionPool' | 'connectionToken' | 'affinity';
export type ResolvedServerOptions = Required<Omit<ServerOptions, OptionalSettings>> & Pick<ServerOptions, OptionalSettings>;

export const SERVER_DEFAULTS = Object.freeze({
  ...SOCKET_OPTION_DEFAULTS,
  host: '127.0.0.1',
  port: 0,
  path: undefined,
  ioModel: 'loop',
  workers: availableParallelism(),
  distribution: 'reuseport' as const,
  maxThreads: 64,
  minThreads: availableParallelism(),
  threadIdleTimeout: 30_000,
  overflow: 'queue' as const,
  blocking: false,
  handler: 'echo',
  maxConnections: 10_000,
  maxConnectionsPerIp: 1024,
  ipv6Prefix: DEFAULT_IPV6_PREFIX,
  idleTimeout: 300_000,
  closeTimeout: 5000,
  sourceChunkSize: 65536,
  maxBufferedBytes: 256 * 1024 * 1024,
});

const handlerCheck: FieldCheck = (value) => {
  if (typeof value === 'function') return undefined;
  if (typeof value === 'string') return oneOf(BUILTIN_SERVICES)(value);
  if (typeof value === 'object' && value !== null) {
    if (typeof (value as { reads?: unknown }).reads === 'function') return undefined;
    const { module, exportName, reads } = value as Partial<HandlerModule>;
    const moduleOk = typeof module === 'string' || module instanceof URL;
    if (moduleOk && (exportName === undefined || typeof exportName === 'string') && (reads === undefined || typeof reads === 'boolean'))
      return undefined;
  }
  return `one of ${BUILTIN_SERVICES.join(', ')}, a function, { reads: function }, or { module, exportName?, reads? }`;
};

const SERVER_FIELDS = Object.freeze({
  ...SOCKET_OPTION_FIELDS,
  host: nonEmptyString,
  port: integer(0, 65535),
  path: nonEmptyString,
  ioModel: oneOf(IO_MODELS),
  workers: integer(1, 1024),
  distribution: oneOf(['reuseport', 'handoff']),
  maxThreads: integer(1, 65536),
  minThreads: integer(0, 65536),
  threadIdleTimeout: integer(0, 2 ** 31 - 1),
  overflow: oneOf(['queue', 'refuse']),
  blocking: boolean,
  handler: handlerCheck,
  maxConnections: integer(1, 10_000_000),
  maxConnectionsPerIp: integer(1, 10_000_000),
  ipv6Prefix: integer(1, 128),
  idleTimeout: integer(0, 2 ** 31 - 1),
  allowedPeers: (value: unknown) =>
    Array.isArray(value) && value.every((address) => typeof address === 'string' && address.length > 0)
      ? undefined
      : 'an array of IP addresses',
  closeTimeout: integer(0, 3_600_000),
  sourceChunkSize: integer(1, 64 * 1024 * 1024),
  maxSendRate: anyOf(integer(1, 1e12), instanceOf(SendBudget, 'a SendBudget')),
  maxBufferedBytes: anyOf(integer(1, MAX_BUFFER_BUDGET), instanceOf(BufferBudget, 'a BufferBudget')),
  connectionPool: instanceOf(ConnectionPool, 'a ConnectionPool'),
  affinity: cpuNumbers,
  connectionToken: (value: unknown) =>
    value instanceof Uint8Array && value.length >= 1 && value.length <= 256 ? undefined : 'a Uint8Array of 1 to 256 bytes',
});

function instanceOf(type: abstract new (...args: never[]) => unknown, name: string): FieldCheck {
  return (value) => (value instanceof type ? undefined : name);
}

/** Functions, which only the loop model (same thread) can call. */
export function isInProcessHandler(handler: HandlerSpec): handler is ConnectionHandler | { reads: ReadHandler } {
  return typeof handler === 'function' || (typeof handler === 'object' && typeof (handler as { reads?: unknown }).reads === 'function');
}

export function validateServerOptions(options: unknown): ResolvedServerOptions {
  validateFields(options, SERVER_FIELDS, 'options');
  const resolved = { ...SERVER_DEFAULTS } as ResolvedServerOptions;
  for (const [key, value] of Object.entries((options ?? {}) as ServerOptions)) {
    if (value !== undefined) (resolved as unknown as Record<string, unknown>)[key] = value;
  }
  if (resolved.ioModel === 'io-uring') validateRingOptions(resolved);
  if (resolved.ioModel !== 'loop' && isInProcessHandler(resolved.handler)) {
    throw invalidOption(
      'options.handler',
      `a built-in service name or { module } for ioModel '${resolved.ioModel}' (functions cannot cross threads)`,
      resolved.handler,
    );
  }
  if (resolved.affinity !== undefined && resolved.ioModel === 'loop') {
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      "options.affinity needs a threaded ioModel ('workers', 'thread-per-conn', 'io-uring'): " +
        "'loop' serves on the caller's own thread (pin the process instead)",
    );
  }
  const given = (options ?? {}) as ServerOptions;
  for (const key of ['blocking', 'minThreads', 'threadIdleTimeout'] as const) {
    if (given[key] !== undefined && given[key] !== false && resolved.ioModel !== 'thread-per-conn') {
      throw new SocktuneError('SOCKTUNE_ERR_INVALID_OPTION', `options.${key} needs ioModel 'thread-per-conn', got '${resolved.ioModel}'`);
    }
  }
  if (given.minThreads === undefined) resolved.minThreads = Math.min(resolved.minThreads, resolved.maxThreads);
  else if (resolved.minThreads > resolved.maxThreads) {
    throw invalidOption('options.minThreads', `at most options.maxThreads (${resolved.maxThreads})`, resolved.minThreads);
  }
  return resolved;
}

/**
 * Why ioModel 'io-uring' cannot serve `handler`: not one of its services, or a service that sends
 * where what is sent is capped (`capped`), which a ring does not pace; undefined when it can. One
 * rule for the library, `server service` and the test server, each saying it in its own words.
 */
export function ringRefusal(handler: unknown, capped: boolean): 'handler' | 'maxSendRate' | undefined {
  if (typeof handler !== 'string' || !(RING_SERVICES as readonly string[]).includes(handler)) return 'handler';
  if (capped && (RING_SENDERS as readonly string[]).includes(handler)) return 'maxSendRate';
  return undefined;
}

/** What a ring serves: the byte services, with no per-send pacing (maxSendRate) of its own. */
function validateRingOptions(resolved: ResolvedServerOptions): void {
  const refusal = ringRefusal(resolved.handler, resolved.maxSendRate !== undefined);
  if (refusal === 'handler') {
    throw invalidOption('options.handler', `one of ${RING_SERVICES.join(', ')} for ioModel 'io-uring'`, resolved.handler);
  }
  if (refusal === 'maxSendRate') {
    // Only a ring service's name gets this far.
    const service = resolved.handler as RingService;
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      `options.maxSendRate is not available with ioModel 'io-uring' and handler '${service}' (a ring's sends are not paced)`,
    );
  }
}
