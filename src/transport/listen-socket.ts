import { lookup } from 'node:dns/promises';
import { isIP, type Server } from 'node:net';
import { countedErrorOf, errnoOf, SocktuneError, type CountedError } from '../core/errors.ts';
import { applyPreConnectOptions, bindFd, boundPort, closeFd, createSocketFd, familyOf, type AddressFamily } from '../core/sockopts.ts';
import type { SocketOptions } from '../core/socket-options.ts';

export interface ListenTarget {
  host: string;
  port: number;
  path?: string | undefined;
}

export interface BoundSocket {
  fd: number;
  family: AddressFamily;
  /** Numeric address or Unix path actually bound. */
  address: string;
  port: number;
}

export async function resolveHost(host: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  try {
    return (await lookup(host)).address;
  } catch (error) {
    throw new SocktuneError('SOCKTUNE_ERR_RESOLVE', `cannot resolve ${JSON.stringify(host)}: ${errnoOf(error)}`, {
      cause: error,
      errno: errnoOf(error),
    });
  }
}

/**
 * A bound (not yet listening) socket with every option applied: node then listens on it with
 * `listen({ fd })`, and the sockets it accepts inherit the buffer sizes.
 */
export function bindListeningSocket(target: ListenTarget & { address: string }, options: SocketOptions): BoundSocket {
  const family = familyOf({ host: target.address, ...(target.path === undefined ? {} : { path: target.path }) });
  const fd = createSocketFd(family);
  try {
    applyPreConnectOptions(fd, family, options, true);
    bindFd(fd, family, family === 'unix' ? target.path! : target.address, target.port);
    return { fd, family, address: family === 'unix' ? target.path! : target.address, port: family === 'unix' ? 0 : boundPort(fd) };
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/**
 * Listens on the bound socket. Errors after that (accept failing with EMFILE when libuv's reserve
 * descriptor is gone too) are counted, never thrown: the server keeps serving whom it can.
 */
export function listenOn(server: Server, bound: BoundSocket, backlog: number, onError: (code: CountedError) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd: bound.fd, backlog }, () => {
      server.off('error', reject);
      server.on('error', (error) => onError(countedErrorOf(error)));
      resolve();
    });
  });
}
