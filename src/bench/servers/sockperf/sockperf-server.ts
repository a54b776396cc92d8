import { createServer, type SocktuneServer } from '../../../transport/server/socktune-server.ts';
import type { ServerOptions } from '../../../transport/server/options.ts';
import sockperfReads from './sockperf-handler.ts';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SOCKPERF_DEFAULT_PORT = 11111;

const HANDLER_MODULE = new URL(`./sockperf-handler${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/**
 * A server that stock sockperf clients (ping-pong, under-load, throughput) can measure, under any
 * I/O model. TCP_NODELAY is on, as sockperf sets it on its side.
 */
export function createSockperfServer(options: Omit<ServerOptions, 'handler'> = {}): SocktuneServer {
  const { ioModel = 'loop', blocking = false } = options;
  const handler =
    ioModel === 'loop'
      ? { reads: sockperfReads }
      : blocking
        ? { module: HANDLER_MODULE, exportName: 'blocking' }
        : { module: HANDLER_MODULE, reads: true };
  return createServer({ port: SOCKPERF_DEFAULT_PORT, ...options, noDelay: true, handler });
}
