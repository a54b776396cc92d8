import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import { bufferCapWarnings, MAX_BUFFER_SIZE, type BufferCapWarning, type EffectiveSocketOptions } from '../../core/socket-options.ts';
import { socketDrops } from '../../core/udp-counters.ts';
import { boolean, definedOnly, integer, nonEmptyString, validateFields } from '../../core/validate.ts';

export interface UdpSocketOptions {
  /** The address to bind; its family picks the socket's (udp4, or udp6 for an IPv6 address). @default '127.0.0.1' */
  host?: string;
  /** 0: any free port. @default 0 */
  port?: number;
  /**
   * SO_SNDBUF / SO_RCVBUF asked for, set before bind; the kernel doubles them and caps them
   * (net.core.wmem_max / rmem_max): read `effective` for what it gave. @default undefined (the kernel's default)
   */
  sendBufferSize?: number | undefined;
  receiveBufferSize?: number | undefined;
  /** SO_REUSEADDR: share the port with other such sockets, as iperf3's server binds each UDP stream to its one port. @default false */
  reuseAddress?: boolean | undefined;
}

export const UDP_SOCKET_DEFAULTS: Readonly<{ host: string; port: number; reuseAddress: boolean }> = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  reuseAddress: false,
});

const UDP_SOCKET_FIELDS = Object.freeze({
  host: nonEmptyString,
  port: integer(0, 65_535),
  sendBufferSize: integer(1, MAX_BUFFER_SIZE),
  receiveBufferSize: integer(1, MAX_BUFFER_SIZE),
  reuseAddress: boolean,
});

/** Defaults filled in; throws SOCKTUNE_ERR_INVALID_OPTION naming the option (`options.receiveBufferSize must be ...`). */
export function validateUdpSocketOptions(options: UdpSocketOptions = {}): UdpSocketOptions & typeof UDP_SOCKET_DEFAULTS {
  validateFields(options, UDP_SOCKET_FIELDS, 'options');
  return { ...UDP_SOCKET_DEFAULTS, ...definedOnly(options) };
}

/** The buffer sizes of a client's socket settings (which may hold TCP's too), as bindUdp takes them. */
export function udpBuffers(settings: { sendBufferSize?: number | undefined; receiveBufferSize?: number | undefined }): UdpSocketOptions {
  return { sendBufferSize: settings.sendBufferSize, receiveBufferSize: settings.receiveBufferSize };
}

export interface BoundUdpSocket {
  socket: UdpSocket;
  port: number;
  family: 'IPv4' | 'IPv6';
  /** The buffer sizes the kernel gave, read back after bind (UDP has no Nagle or keep-alive: both false). */
  effective: EffectiveSocketOptions;
  warnings: BufferCapWarning[];
  /**
   * Datagrams the kernel has dropped on this socket so far, its receive buffer full (sk_drops, what
   * SO_RXQ_OVFL reports); null where /proc/net/udp cannot be read.
   */
  receiveBufferDrops(): number | null;
}

/** A UDP socket bound to `host:port`, its buffers set before bind and read back after. */
export function bindUdp(options: UdpSocketOptions = {}): Promise<BoundUdpSocket> {
  const resolved = validateUdpSocketOptions(options);
  const family = isIPv6(resolved.host) ? 'IPv6' : 'IPv4';
  const socket = createSocket({
    type: family === 'IPv6' ? 'udp6' : 'udp4',
    reuseAddr: resolved.reuseAddress,
    ...(resolved.receiveBufferSize === undefined ? {} : { recvBufferSize: resolved.receiveBufferSize }),
    ...(resolved.sendBufferSize === undefined ? {} : { sendBufferSize: resolved.sendBufferSize }),
  });
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      socket.close();
      // A bind fails as a listen does (the port taken, the address not this host's), whatever the errno.
      reject(
        new SocktuneError('SOCKTUNE_ERR_LISTEN', `binding UDP ${resolved.host}:${resolved.port}: ${error.message}`, {
          cause: error,
          ...(error.code === undefined ? {} : { errno: error.code }),
        }),
      );
    };
    socket.once('error', failed);
    socket.bind(resolved.port, resolved.host, () => {
      socket.off('error', failed);
      const effective = {
        sendBufferSize: socket.getSendBufferSize(),
        receiveBufferSize: socket.getRecvBufferSize(),
        noDelay: false,
        keepAlive: false,
      };
      const port = socket.address().port;
      const receiveBufferDrops = (): number | null => {
        let remote: { address: string; port: number } | undefined;
        try {
          remote = socket.remoteAddress();
        } catch {
          // Not connected: the socket is known by its local address alone.
        }
        return socketDrops([{ address: resolved.host, port, remote }]);
      };
      resolve({ socket, port, family, effective, warnings: bufferCapWarnings(resolved, effective), receiveBufferDrops });
    });
  });
}

/** Connects a UDP socket to its one peer (a connected socket hears only that peer), as a promise: its failure rejects. */
export function connectUdp(socket: UdpSocket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}
