import type { OnReadOpts } from 'node:net';
import type { EffectiveSocketOptions, SocketOptions } from '../../core/socket-options.ts';
import { readTcpInfo, type TcpInfo } from '../../core/socket-syscalls.ts';
import { connect, type TunedSocket } from '../../transport/client/connect.ts';
import { fdOf } from '../../transport/io/fd.ts';
import type { DataTarget } from '../control/peer.ts';

/**
 * Client-side socket settings for data connections; `localPort` is the first connection's, and connection i binds localPort + i, as
 * iperf3 --cport does with -P.
 */
export type ClientSocketSettings = Pick<SocketOptions, 'sendBufferSize' | 'receiveBufferSize' | 'noDelay'> & {
  localAddress?: string;
  localPort?: number;
};

export async function openDataConnections(
  data: DataTarget,
  count: number,
  settings: ClientSocketSettings,
  onread: (index: number) => OnReadOpts,
): Promise<TunedSocket[]> {
  const sockets: TunedSocket[] = [];
  const { localPort, ...rest } = settings;
  try {
    for (let i = 0; i < count; i++) {
      sockets.push(
        await connect({ ...data, ...rest, ...(localPort === undefined ? {} : { localPort: localPort + i }), onread: onread(i) }),
      );
    }
  } catch (error) {
    for (const socket of sockets) socket.destroy();
    throw error;
  }
  return sockets;
}

export function effectiveOf(sockets: TunedSocket[]): EffectiveSocketOptions | undefined {
  return sockets[0]?.effectiveSocketOptions();
}

/** The kernel's TCP_INFO of a data connection, or null for a Unix socket or one already closed. */
export function tcpInfoOf(socket: TunedSocket | undefined): TcpInfo | null {
  if (socket === undefined || socket.remotePort === undefined || socket.destroyed) return null;
  try {
    return readTcpInfo(fdOf(socket));
  } catch {
    return null;
  }
}

/** Sum of TCP_INFO total retransmits over the sockets; undefined on Unix-domain sockets. */
export function totalRetransmits(sockets: TunedSocket[]): number | undefined {
  let total = 0;
  for (const socket of sockets) {
    if (socket.remotePort === undefined) return undefined;
    total += readTcpInfo(fdOf(socket)).retransmits;
  }
  return total;
}

/** Resolves when every socket has closed, destroying the stragglers after `graceMs`. */
export function allClosed(sockets: TunedSocket[], graceMs: number): Promise<void> {
  const open = sockets.filter((socket) => !socket.closed);
  if (open.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let remaining = open.length;
    const timer = setTimeout(() => {
      for (const socket of open) socket.destroy();
    }, graceMs);
    for (const socket of open) {
      socket.once('close', () => {
        if (--remaining === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}
