import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { applyPreConnectOptions, bindFd, boundPort, closeFd, createSocketFd, familyOf, type AddressFamily } from '../core/sockopts.ts';
import { LINUX, libc } from '../core/libc.ts';
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
    if (family !== 'unix') {
      setListenerFlag(fd, LINUX.IPPROTO_TCP, LINUX.TCP_NODELAY, options.noDelay ?? true);
      setListenerFlag(fd, LINUX.SOL_SOCKET, LINUX.SO_KEEPALIVE, options.keepAlive ?? false);
    }
    bindFd(fd, family, family === 'unix' ? target.path! : target.address, target.port);
    return { fd, family, address: family === 'unix' ? target.path! : target.address, port: family === 'unix' ? 0 : boundPort(fd) };
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/** Accepted sockets inherit TCP_NODELAY and SO_KEEPALIVE from the listener on Linux. */
function setListenerFlag(fd: number, level: number, name: number, on: boolean): void {
  const value = Buffer.alloc(4);
  value.writeInt32LE(on ? 1 : 0);
  libc().setsockopt(fd, level, name, value, 4);
}
