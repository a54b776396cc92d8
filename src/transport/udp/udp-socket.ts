import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { fromSystemError } from '../../core/errors.ts';
import { bufferCapWarnings, type BufferCapWarning, type EffectiveSocketOptions } from '../../core/socket-options.ts';

export interface UdpSocketOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** SO_SNDBUF / SO_RCVBUF asked for, set before bind; the kernel doubles them and caps them (net.core.wmem_max / rmem_max). */
  sendBufferSize?: number | undefined;
  receiveBufferSize?: number | undefined;
  /** SO_REUSEADDR: share the port with other such sockets, as iperf3's server binds each UDP stream to its one port. */
  reuseAddress?: boolean | undefined;
}

export interface BoundUdpSocket {
  socket: UdpSocket;
  port: number;
  family: 'IPv4' | 'IPv6';
  /** The buffer sizes the kernel gave, read back after bind (UDP has no Nagle or keep-alive: both false). */
  effective: EffectiveSocketOptions;
  warnings: BufferCapWarning[];
}

/** A UDP socket bound to `host:port`, its buffers set before bind and read back after. */
export function bindUdp(options: UdpSocketOptions): Promise<BoundUdpSocket> {
  const family = isIPv6(options.host) ? 'IPv6' : 'IPv4';
  const socket = createSocket({
    type: family === 'IPv6' ? 'udp6' : 'udp4',
    reuseAddr: options.reuseAddress === true,
    ...(options.receiveBufferSize === undefined ? {} : { recvBufferSize: options.receiveBufferSize }),
    ...(options.sendBufferSize === undefined ? {} : { sendBufferSize: options.sendBufferSize }),
  });
  return new Promise((resolve, reject) => {
    const failed = (error: Error): void => {
      socket.close();
      reject(fromSystemError(error, `binding UDP ${options.host}:${options.port}`));
    };
    socket.once('error', failed);
    socket.bind(options.port, options.host, () => {
      socket.off('error', failed);
      const effective = {
        sendBufferSize: socket.getSendBufferSize(),
        receiveBufferSize: socket.getRecvBufferSize(),
        noDelay: false,
        keepAlive: false,
      };
      resolve({ socket, port: socket.address().port, family, effective, warnings: bufferCapWarnings(options, effective) });
    });
  });
}
