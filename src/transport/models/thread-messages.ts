import type { CountedError } from '../../core/errors.ts';
import type { PortableHandler } from '../services/portable-handler.ts';
import type { SocketOptions } from '../../core/socket-options.ts';
import type { Admitted, ConnectionPoolState } from '../server/admission.ts';
import type { BufferBudgetState } from '../io/buffer-budget.ts';
import type { SendBudgetState } from '../io/send-budget.ts';

/** What every server thread is started with. */
export interface ThreadData {
  role: 'listener' | 'pool';
  handler: PortableHandler;
  blocking: boolean;
  sourceChunkSize: number;
  maxConnections: number;
  allowedPeers?: string[];
  maxConnectionsPerIp: number;
  /** Int32 counts of open connections per client address (admission.ts), shared by all threads. */
  peersBuffer: SharedArrayBuffer;
  /** Caps shared with other servers (ServerOptions.connectionPool). */
  connectionPool?: ConnectionPoolState;
  idleTimeout: number;
  /** The server's send budget (ServerOptions.maxSendRate), shared by every thread. */
  sendBudget?: SendBudgetState;
  /** The server's budget for messages split across reads, shared by every thread. */
  bufferBudget: BufferBudgetState;
  socketOptions: SocketOptions;
  countersBuffer: SharedArrayBuffer;
  slot: number;
  /**
   * Int32 flags the main thread sets: [0] stop blocking loops; [1] connections are waiting for a
   * thread (thread-per-conn), so a thread whose connection stays quiet gives it up (PRESSURE_IDLE_MS).
   */
  stopBuffer: SharedArrayBuffer;
  /** thread-per-conn: close a quiet connection while others wait for a thread. */
  yieldWhenIdle?: boolean;
  /**
   * thread-per-conn: an Int32 per slot the main thread sets to take a blocking thread back from its
   * connection for a client below its share of the pool (ThreadShares); event-loop threads get 'give-up'.
   */
  giveUpBuffer?: SharedArrayBuffer;
  /** CPUs this thread pins itself to at start (ServerOptions.affinity). */
  affinity?: number[];
  /** Bytes each connection must send first (ServerOptions.connectionToken). */
  connectionToken?: Uint8Array;
  /**
   * Role 'pool' of workers and io-uring: the main thread counts each connection open as it hands it
   * over (so maxConnections counts those on their way too, with no moment counted twice or not at
   * all); the thread counts only its close.
   */
  countedOnHandOff?: boolean;
  /** ioModel 'io-uring': serve the connections handed over on one io_uring (ring-serving.ts) instead of an event loop. */
  ring?: boolean;
  /** For role 'listener': where this thread's own SO_REUSEPORT listener binds. */
  listen?: { address: string; port: number };
}

export type ToThread = ({ type: 'fd' } & Admitted) | { type: 'give-up' } | { type: 'close'; timeoutMs: number };

export type FromThread =
  /** `wakeFd`: a ring thread's eventfd, written after each message so that a thread waiting in io_uring_enter reads it. */
  { type: 'ready'; wakeFd?: number } | { type: 'error'; code: CountedError } | { type: 'done' } | { type: 'closed'; destroyed: number };
