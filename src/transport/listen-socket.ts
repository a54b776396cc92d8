import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
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
  return (await lookup(host)).address;
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
