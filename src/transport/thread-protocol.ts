import type { PortableHandler } from './handler.ts';
import type { SocketOptions } from '../core/socket-options.ts';

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
  idleTimeout: number;
  /** This thread's share of ServerOptions.maxSendRate, bytes per second. */
  maxSendRate?: number;
  socketOptions: SocketOptions;
  countersBuffer: SharedArrayBuffer;
  slot: number;
  /** Int32 flag the main thread sets to stop blocking loops. */
  stopBuffer: SharedArrayBuffer;
  /** For role 'listener': where this thread's own SO_REUSEPORT listener binds. */
  listen?: { address: string; port: number };
}

export type ToThread = { type: 'fd'; fd: number; peer: string } | { type: 'close'; timeoutMs: number };

export type FromThread =
  | { type: 'ready' }
  | { type: 'error'; code: string }
  | { type: 'done' }
  | { type: 'closed'; destroyed: number };
