import { lookup } from 'node:dns/promises';
import { lstat, unlink } from 'node:fs/promises';
import { createConnection, isIP, type Server } from 'node:net';
import { countedErrorOf, errnoOf, SocktuneError, type CountedError } from '../../core/errors.ts';
import {
  applyPreConnectOptions,
  bindFd,
  boundPort,
  closeFd,
  createSocketFd,
  familyOf,
  type AddressFamily,
} from '../../core/socket-syscalls.ts';
import type { SocketOptions } from '../../core/socket-options.ts';

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
 * A Unix socket file that a server which died left behind (nothing accepts on it: ECONNREFUSED) is
 * removed, so the next server can bind the path; a live one is refused, and any other file is left
 * for bind to refuse.
 */
export async function removeStaleUnixSocket(path: string): Promise<void> {
  const isSocket = await lstat(path).then(
    (stat) => stat.isSocket(),
    () => false,
  );
  if (!isSocket) return;
  const answer = await new Promise<string>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve('connected');
    });
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
  if (answer === 'connected')
    throw new SocktuneError('SOCKTUNE_ERR_LISTEN', `${path}: another server is listening on it`, { errno: 'EADDRINUSE' });
  if (answer === 'ECONNREFUSED') await unlink(path).catch(() => {});
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
