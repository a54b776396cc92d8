import { constants as osConstants } from 'node:os';
import { isIP } from 'node:net';
import { SocktuneError, type ErrorCode } from './errors.ts';
import { LINUX, libc } from './libc.ts';
import type { EffectiveSocketOptions, SocketOptions } from './socket-options.ts';

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

function failure(code: ErrorCode, what: string): SocktuneError {
  const name = errnoName(libc().errno());
  return new SocktuneError(code, `${what} failed: ${name}`, { errno: name });
}

function setInt(fd: number, level: number, name: number, value: number, what: string): void {
  if (!trySetInt(fd, level, name, value)) throw failure('SOCKTUNE_ERR_SOCKOPT', `setsockopt(${what}=${value})`);
}

function getInt(fd: number, level: number, name: number, what: string): number {
  const buffer = Buffer.alloc(4);
  if (libc().getsockopt(fd, level, name, buffer, [4]) < 0) throw failure('SOCKTUNE_ERR_SOCKOPT', `getsockopt(${what})`);
  return buffer.readInt32LE(0);
}

/**
 * The socket's own pending error (SO_ERROR, cleared by reading it): an errno value, 0 for none. Unlike errno, no other call can
 * overwrite it.
 */
export function pendingSocketError(fd: number): number {
  return getInt(fd, LINUX.SOL_SOCKET, LINUX.SO_ERROR, 'SO_ERROR');
}

export type AddressFamily = 'ipv4' | 'ipv6' | 'unix';

export function familyOf(hostOrPath: { host?: string; path?: string }): AddressFamily {
  if (hostOrPath.path !== undefined) return 'unix';
  return isIP(hostOrPath.host ?? '') === 6 ? 'ipv6' : 'ipv4';
}

const FAMILY_NUMBER: Readonly<Record<AddressFamily, number>> = { ipv4: LINUX.AF_INET, ipv6: LINUX.AF_INET6, unix: LINUX.AF_UNIX };

/** A non-blocking, close-on-exec stream socket, as libuv would make it. */
export function createSocketFd(family: AddressFamily): number {
  const fd = libc().socket(FAMILY_NUMBER[family], LINUX.SOCK_STREAM | LINUX.SOCK_NONBLOCK | LINUX.SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure('SOCKTUNE_ERR_SOCKOPT', 'socket()');
  return fd;
}

/**
 * A blocking, close-on-exec datagram socket bound to `address:port`, for a thread that waits in
 * recvfrom. With `reusePort` it joins the port's SO_REUSEPORT group, whose sockets the kernel
 * spreads datagrams over by their source (only the same user's sockets may join). Buffer sizes are
 * set before bind.
 */
export function createBoundUdpFd(
  family: 'ipv4' | 'ipv6',
  address: string,
  port: number,
  reusePort: boolean,
  buffers: { sendBufferSize?: number | undefined; receiveBufferSize?: number | undefined } = {},
): number {
  const fd = libc().socket(FAMILY_NUMBER[family], LINUX.SOCK_DGRAM | LINUX.SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure('SOCKTUNE_ERR_SOCKOPT', 'socket(SOCK_DGRAM)');
  try {
    if (reusePort) setInt(fd, LINUX.SOL_SOCKET, LINUX.SO_REUSEPORT, 1, 'SO_REUSEPORT');
    if (buffers.sendBufferSize !== undefined) setInt(fd, LINUX.SOL_SOCKET, LINUX.SO_SNDBUF, buffers.sendBufferSize, 'SO_SNDBUF');
    if (buffers.receiveBufferSize !== undefined) setInt(fd, LINUX.SOL_SOCKET, LINUX.SO_RCVBUF, buffers.receiveBufferSize, 'SO_RCVBUF');
    bindFd(fd, family, address, port);
  } catch (error) {
    libc().close(fd);
    throw error;
  }
  return fd;
}

/**
 * recvfrom into `buffer`: the datagram's length, its source in `peer` (its length in `peerLength[0]`),
 * or -1 (errno() says why; EAGAIN at once when `wait` is false and nothing is queued). The length is
 * a typed array, which the FFI hands over in place: a plain array is copied in and out on every call
 * (0.5 µs, a third of the call on this machine).
 */
export function receiveFrom(fd: number, buffer: Buffer, peer: Buffer, peerLength: Uint32Array, wait = true): number {
  peerLength[0] = peer.length;
  return Number(libc().recvfrom(fd, buffer, buffer.length, wait ? 0 : LINUX.MSG_DONTWAIT, peer, peerLength));
}

/** sendto the peer a receiveFrom filled in: the bytes sent, or -1 (errno() says why). */
export function sendTo(fd: number, buffer: Buffer, length: number, peer: Buffer, peerLength: number): number {
  return Number(libc().sendto(fd, buffer, length, LINUX.MSG_NOSIGNAL, peer, peerLength));
}

/** errno of the last failed call on this thread. */
export function lastErrno(): number {
  return libc().errno();
}

export function closeFd(fd: number): void {
  libc().close(fd);
}

/**
 * The options that only setsockopt can set, applied in the order the kernel needs: buffer sizes
 * before listen/connect (the window scale is chosen from them in the SYN).
 */
export function applyPreConnectOptions(fd: number, family: AddressFamily, options: SocketOptions, listening: boolean): void {
  if (listening) setReuseAddress(fd);
  if (listening && options.reusePort) setInt(fd, LINUX.SOL_SOCKET, LINUX.SO_REUSEPORT, 1, 'SO_REUSEPORT');
  if (family === 'ipv6' && options.ipv6Only !== undefined) {
    setInt(fd, LINUX.IPPROTO_IPV6, LINUX.IPV6_V6ONLY, options.ipv6Only ? 1 : 0, 'IPV6_V6ONLY');
  }
  if (options.sendBufferSize !== undefined) setInt(fd, LINUX.SOL_SOCKET, LINUX.SO_SNDBUF, options.sendBufferSize, 'SO_SNDBUF');
  if (options.receiveBufferSize !== undefined) {
    setInt(fd, LINUX.SOL_SOCKET, LINUX.SO_RCVBUF, options.receiveBufferSize, 'SO_RCVBUF');
  }
  // Accepted sockets inherit these from the listener on Linux, before any code of ours sees them.
  if (listening && family !== 'unix') {
    setInt(fd, LINUX.IPPROTO_TCP, LINUX.TCP_NODELAY, options.noDelay === false ? 0 : 1, 'TCP_NODELAY');
    setInt(fd, LINUX.SOL_SOCKET, LINUX.SO_KEEPALIVE, options.keepAlive ? 1 : 0, 'SO_KEEPALIVE');
    if (options.keepAlive && options.keepAliveInitialDelay) {
      setInt(fd, LINUX.IPPROTO_TCP, LINUX.TCP_KEEPIDLE, Math.max(1, Math.ceil(options.keepAliveInitialDelay / 1000)), 'TCP_KEEPIDLE');
    }
  }
}

/** SO_REUSEADDR, which a client needs to bind a port its last connection left in TIME_WAIT. */
export function setReuseAddress(fd: number): void {
  setInt(fd, LINUX.SOL_SOCKET, LINUX.SO_REUSEADDR, 1, 'SO_REUSEADDR');
}

/**
 * UDP_SEGMENT (GSO): one send of up to 64 × `bytes` leaves as datagrams of `bytes` each, cut by
 * the kernel or the NIC, for one system call. false where the kernel or the socket refuses it.
 */
export function trySetUdpSegment(fd: number, bytes: number): boolean {
  return trySetInt(fd, LINUX.SOL_UDP, LINUX.UDP_SEGMENT, bytes);
}

/** UDP_GRO: datagrams a sender sent segmented arrive together, in one receive. false where the kernel refuses it. */
export function trySetUdpGro(fd: number): boolean {
  return trySetInt(fd, LINUX.SOL_UDP, LINUX.UDP_GRO, 1);
}

function trySetInt(fd: number, level: number, name: number, value: number): boolean {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32LE(value);
  return libc().setsockopt(fd, level, name, buffer, 4) === 0;
}

/** SO_LINGER {1, 0}: the next close() resets the connection. */
export function setLingerZero(fd: number): void {
  const linger = Buffer.alloc(8);
  linger.writeInt32LE(1, 0);
  linger.writeInt32LE(0, 4);
  if (libc().setsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_LINGER, linger, 8) < 0) {
    throw failure('SOCKTUNE_ERR_SOCKOPT', 'setsockopt(SO_LINGER)');
  }
}

/** TCP_KEEPIDLE in seconds: the idle time before the first keep-alive probe. */
export function readKeepAliveIdleSeconds(fd: number): number {
  return getInt(fd, LINUX.IPPROTO_TCP, LINUX.TCP_KEEPIDLE, 'TCP_KEEPIDLE');
}

export function readEffectiveSocketOptions(fd: number): EffectiveSocketOptions {
  return {
    sendBufferSize: getInt(fd, LINUX.SOL_SOCKET, LINUX.SO_SNDBUF, 'SO_SNDBUF'),
    receiveBufferSize: getInt(fd, LINUX.SOL_SOCKET, LINUX.SO_RCVBUF, 'SO_RCVBUF'),
    noDelay: getInt(fd, LINUX.IPPROTO_TCP, LINUX.TCP_NODELAY, 'TCP_NODELAY') !== 0,
    keepAlive: getInt(fd, LINUX.SOL_SOCKET, LINUX.SO_KEEPALIVE, 'SO_KEEPALIVE') !== 0,
  };
}

/** Same as readEffectiveSocketOptions for Unix-domain sockets, which have no TCP level. */
export function readEffectiveBufferSizes(fd: number): Pick<EffectiveSocketOptions, 'sendBufferSize' | 'receiveBufferSize'> {
  return {
    sendBufferSize: getInt(fd, LINUX.SOL_SOCKET, LINUX.SO_SNDBUF, 'SO_SNDBUF'),
    receiveBufferSize: getInt(fd, LINUX.SOL_SOCKET, LINUX.SO_RCVBUF, 'SO_RCVBUF'),
  };
}

/**
 * A test for the source a receiveFrom filled in: true when it is `address` (numeric, of `family`),
 * whatever its port; compared as bytes, with no string made per datagram.
 */
export function sourceIs(family: 'ipv4' | 'ipv6', address: string): (peer: Buffer) => boolean {
  const expected = socketAddress(family, address, 0);
  const familyNumber = expected.readUInt16LE(0);
  if (family === 'ipv4') {
    // Asked per datagram: two integer reads, not a compare of byte ranges (a tenth of the time).
    const ipv4 = expected.readUInt32LE(4);
    return (peer) => peer.readUInt16LE(0) === familyNumber && peer.readUInt32LE(4) === ipv4;
  }
  return (peer) => peer.readUInt16LE(0) === familyNumber && peer.compare(expected, 8, 24, 8, 24) === 0;
}

function socketAddress(family: AddressFamily, address: string, port: number): Buffer {
  if (family === 'unix') {
    const path = Buffer.from(address);
    if (path.length >= 108) throw new SocktuneError('SOCKTUNE_ERR_INVALID_OPTION', `options.path is longer than 107 bytes: ${address}`);
    const sockaddr = Buffer.alloc(110);
    sockaddr.writeUInt16LE(LINUX.AF_UNIX, 0);
    path.copy(sockaddr, 2);
    return sockaddr;
  }
  const ipv6 = family === 'ipv6';
  const sockaddr = Buffer.alloc(ipv6 ? 28 : 16);
  sockaddr.writeUInt16LE(ipv6 ? LINUX.AF_INET6 : LINUX.AF_INET, 0);
  sockaddr.writeUInt16BE(port, 2);
  const binary = Buffer.alloc(ipv6 ? 16 : 4);
  if (libc().inet_pton(ipv6 ? LINUX.AF_INET6 : LINUX.AF_INET, address, binary) !== 1) {
    throw new SocktuneError('SOCKTUNE_ERR_INVALID_OPTION', `not a numeric ${family} address: ${address}`);
  }
  binary.copy(sockaddr, ipv6 ? 8 : 4);
  return sockaddr;
}

/** `code`: what a failure is called — a server's listen by default, a client's socket call when it binds its own end. */
export function bindFd(fd: number, family: AddressFamily, address: string, port: number, code: ErrorCode = 'SOCKTUNE_ERR_LISTEN'): void {
  const sockaddr = socketAddress(family, address, port);
  if (libc().bind(fd, sockaddr, sockaddr.length) < 0) {
    const where = family === 'unix' ? address : `${address}:${port}`;
    throw failure(code, `bind(${where})`);
  }
}

/**
 * Whether `address:port` is free for a new socket of `protocol` that joins no group: a trial bind
 * with no SO_REUSEPORT (for TCP with SO_REUSEADDR, so that connections in TIME_WAIT do not count),
 * closed at once. A later bind with SO_REUSEPORT could otherwise join a group another socket of
 * this user already holds on that port.
 */
export function portIsFree(protocol: 'tcp' | 'udp', family: 'ipv4' | 'ipv6', address: string, port: number): boolean {
  const fd = libc().socket(FAMILY_NUMBER[family], (protocol === 'tcp' ? LINUX.SOCK_STREAM : LINUX.SOCK_DGRAM) | LINUX.SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure('SOCKTUNE_ERR_SOCKOPT', 'socket()');
  try {
    if (protocol === 'tcp') setReuseAddress(fd);
    const sockaddr = socketAddress(family, address, port);
    return libc().bind(fd, sockaddr, sockaddr.length) === 0;
  } finally {
    libc().close(fd);
  }
}

/** The port the kernel chose for a socket bound to port 0. */
export function boundPort(fd: number): number {
  const sockaddr = Buffer.alloc(28);
  if (libc().getsockname(fd, sockaddr, [28]) < 0) throw failure('SOCKTUNE_ERR_LISTEN', 'getsockname()');
  return sockaddr.readUInt16BE(2);
}

/** A second descriptor for the same socket, so one thread can hand it to another while the first closes its own. */
export function duplicateFd(fd: number): number {
  const copy = libc().dup(fd);
  if (copy < 0) throw failure('SOCKTUNE_ERR_SOCKOPT', 'dup()');
  return copy;
}

export function setBlocking(fd: number, blocking: boolean): void {
  const flags = libc().fcntl(fd, LINUX.F_GETFL, 0);
  const next = blocking ? flags & ~LINUX.O_NONBLOCK : flags | LINUX.O_NONBLOCK;
  if (flags < 0 || libc().fcntl(fd, LINUX.F_SETFL, next) < 0) throw failure('SOCKTUNE_ERR_SOCKOPT', 'fcntl(O_NONBLOCK)');
}

/** SO_RCVTIMEO and SO_SNDTIMEO: a blocking recv or send returns (EAGAIN) after `ms` without progress. */
export function setBlockingTimeouts(fd: number, ms: number): void {
  const timeval = Buffer.alloc(16);
  timeval.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  timeval.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  for (const [option, name] of [
    [LINUX.SO_RCVTIMEO, 'SO_RCVTIMEO'],
    [LINUX.SO_SNDTIMEO, 'SO_SNDTIMEO'],
  ] as const) {
    if (libc().setsockopt(fd, LINUX.SOL_SOCKET, option, timeval, 16) < 0) throw failure('SOCKTUNE_ERR_SOCKOPT', `setsockopt(${name})`);
  }
}

/** Fields of struct tcp_info (linux/tcp.h) that the benchmarks report. */
export interface TcpInfo {
  retransmits: number;
  /** Segments sent and not yet acknowledged by the peer. */
  unacked: number;
  rttMicros: number;
  rttVarianceMicros: number;
  /** In segments (tcpi_snd_cwnd); times sendMss for bytes, as iperf3 reports snd_cwnd. */
  congestionWindow: number;
  sendMss: number;
}

/** TCP_ESTABLISHED in tcpi_state. */
const TCP_ESTABLISHED = 1;

/**
 * Whether a TCP connection is still open both ways, read from the kernel (tcpi_state): a paused
 * socket reads nothing, so it never sees its peer's FIN or RST on its own. Unix sockets and
 * closed descriptors count as gone only when the call fails.
 */
export function tcpEstablished(fd: number): boolean {
  const info = Buffer.alloc(8);
  if (libc().getsockopt(fd, LINUX.IPPROTO_TCP, LINUX.TCP_INFO, info, [info.length]) < 0) return false;
  return info[0] === TCP_ESTABLISHED;
}

export function readTcpInfo(fd: number): TcpInfo {
  const info = Buffer.alloc(232);
  if (libc().getsockopt(fd, LINUX.IPPROTO_TCP, LINUX.TCP_INFO, info, [info.length]) < 0) {
    throw failure('SOCKTUNE_ERR_SOCKOPT', 'getsockopt(TCP_INFO)');
  }
  // Offsets: tcpi_snd_mss at 16, tcpi_unacked at 24, tcpi_rtt at 68, tcpi_rttvar at 72, tcpi_snd_cwnd at 80, tcpi_total_retrans at 100.
  return {
    sendMss: info.readUInt32LE(16),
    unacked: info.readUInt32LE(24),
    rttMicros: info.readUInt32LE(68),
    rttVarianceMicros: info.readUInt32LE(72),
    congestionWindow: info.readUInt32LE(80),
    retransmits: info.readUInt32LE(100),
  };
}
