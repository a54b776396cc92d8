import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { trySetUdpGro, trySetUdpSegment } from '../../core/socket-syscalls.ts';
import { eachDatagram, MAX_DATAGRAM_BYTES } from '../../framing/datagram.ts';

/** The kernel's limit on the segments of one GSO send (UDP_MAX_SEGMENTS). */
export const MAX_SEGMENTS = 64;
/** A paced stream batches at most this much of its traffic in one send: its pace stays smooth at this grain. */
const BATCH_WINDOW_SECONDS = 0.001;

/** The descriptor under a node:dgram socket (libuv keeps it on the handle behind Node's state symbol); -1 when it cannot be found. */
export function udpFdOf(socket: UdpSocket): number {
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    if (symbol.description !== 'state symbol') continue;
    const fd = (socket as unknown as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[symbol]?.handle?.fd;
    return typeof fd === 'number' ? fd : -1;
  }
  return -1;
}

/**
 * How many datagrams of `bytes` one send may carry on this socket (UDP GSO: the kernel cuts them),
 * set up on the socket: at most `most`, as many as fit in one UDP payload and the kernel's limit,
 * or for a paced stream as many as a millisecond of its traffic; 1 where the kernel refuses it.
 */
export function segmentSends(socket: UdpSocket, bytes: number, bitsPerSecond: number, most = MAX_SEGMENTS): number {
  const paced = bitsPerSecond > 0 ? Math.floor(((bitsPerSecond / 8) * BATCH_WINDOW_SECONDS) / bytes) : Infinity;
  const segments = Math.min(most, MAX_SEGMENTS, Math.floor(MAX_DATAGRAM_BYTES / bytes), paced);
  if (segments < 2) return 1;
  const fd = udpFdOf(socket);
  return fd >= 0 && trySetUdpSegment(fd, bytes) ? segments : 1;
}

/** Undoes segmentSends: each send is one datagram again (a path whose MTU is below the datagram refuses segmented sends). */
export function unsegmentSends(socket: UdpSocket): void {
  const fd = udpFdOf(socket);
  if (fd >= 0) trySetUdpSegment(fd, 0);
}

/** UDP GRO on this socket: a sender's segmented send arrives in one receive (eachDatagram splits it); false where refused. */
export function coalesceReceives(socket: UdpSocket): boolean {
  const fd = udpFdOf(socket);
  return fd >= 0 && trySetUdpGro(fd);
}

/**
 * Hands `visit` each datagram of a test that `socket` receives, with the time its receive arrived:
 * one by one even where the kernel handed over a segmented send whole (with `coalesce`, UDP GRO is
 * asked for, and eachDatagram finds the datagrams by the test's token). The function returned says
 * how many receives brought them.
 */
export function receiveDatagrams(
  socket: UdpSocket,
  token: Buffer,
  coalesce: boolean,
  visit: (datagram: Buffer, from: RemoteInfo, arrivalNs: bigint) => void,
): () => number {
  const coalesced = coalesce && coalesceReceives(socket);
  let receives = 0;
  socket.on('message', (message, from) => {
    const arrival = process.hrtime.bigint();
    receives++;
    if (coalesced) eachDatagram(message, token, (datagram) => visit(datagram, from, arrival));
    else visit(message, from, arrival);
  });
  return () => receives;
}
