import { Socket, type OnReadOpts } from 'node:net';
import { fromSystemError, SocktuneError } from '../../core/errors.ts';
import {
  bufferCapWarnings,
  pickSocketOptions,
  SOCKET_OPTION_FIELDS,
  type BufferCapWarning,
  type EffectiveSocketOptions,
  type SocketOptions,
} from '../../core/socket-options.ts';
import {
  applyPreConnectOptions,
  bindFd,
  closeFd,
  createSocketFd,
  familyOf,
  readEffectiveBufferSizes,
  readEffectiveSocketOptions,
  setLingerZero,
  setReuseAddress,
} from '../../core/socket-syscalls.ts';
import { integer, nonEmptyString, validateFields, type FieldCheck } from '../../core/validate.ts';
import { fdOf } from '../io/fd.ts';
import { resolveHost } from '../server/listen-socket.ts';

export interface ConnectOptions extends SocketOptions {
  /** Peer host name or address. @default '127.0.0.1' */
  host?: string;
  /** Peer TCP port. Required unless `path` is set. */
  port?: number;
  /** Unix-domain socket path of the peer. @default undefined */
  path?: string;
  /** Local address to connect from (spreads connections over 127.0.0.x source addresses). @default undefined */
  localAddress?: string;
  /**
   * Local port to connect from, as iperf3 --cport (through a firewall that allows one source port); SO_REUSEADDR is set so a port
   * left in TIME_WAIT by the last run can be taken again. @default undefined (the kernel chooses)
   */
  localPort?: number;
  /** Milliseconds to wait for the connection before SOCKTUNE_ERR_TIMEOUT. @default 10000 */
  timeout?: number;
  /** Node's `onread`: read into a buffer you own instead of 'data' events. @default undefined */
  onread?: OnReadOpts;
  /** Bytes written first, before anything else (a server's `connectionToken`). @default undefined */
  preamble?: Uint8Array | undefined;
}

export const CONNECT_DEFAULTS: Readonly<{ host: string; timeout: number }> = Object.freeze({ host: '127.0.0.1', timeout: 10_000 });

const onreadCheck: FieldCheck = (value) =>
  typeof value === 'object' && value !== null && 'callback' in value && 'buffer' in value ? undefined : '{ buffer, callback }';

const CONNECT_FIELDS = Object.freeze({
  ...SOCKET_OPTION_FIELDS,
  host: nonEmptyString,
  port: integer(1, 65535),
  path: nonEmptyString,
  localAddress: nonEmptyString,
  localPort: integer(1, 65535),
  timeout: integer(1, 3_600_000),
  onread: onreadCheck,
  preamble: (value: unknown) => (value instanceof Uint8Array ? undefined : 'a Uint8Array'),
});

export function validateConnectOptions(options: unknown): ConnectOptions & { host: string; timeout: number } {
  validateFields(options, CONNECT_FIELDS, 'options');
  const resolved = { ...CONNECT_DEFAULTS, ...(options as ConnectOptions) };
  if (resolved.path === undefined && resolved.port === undefined) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      'options.port must be an integer from 1 to 65535 (or set options.path), got undefined',
    );
  }
  return resolved;
}

/** A connected socket that knows what the kernel made of its options. */
export interface TunedSocket extends Socket {
  effectiveSocketOptions(): EffectiveSocketOptions;
  readonly socketWarnings: readonly BufferCapWarning[];
}

export function effectiveSocketOptions(socket: Socket): EffectiveSocketOptions {
  const fd = fdOf(socket);
  if (fd < 0) throw new SocktuneError('SOCKTUNE_ERR_SOCKOPT', 'socket is closed: no descriptor to read options from');
  if (socket.remoteFamily === undefined && socket.remoteAddress === undefined) {
    return { ...readEffectiveBufferSizes(fd), noDelay: false, keepAlive: false };
  }
  return readEffectiveSocketOptions(fd);
}

/**
 * Connects with buffer sizes set before connect(): socktune makes the descriptor, applies the
 * options, and lets a net.Socket connect it, so the SYN already carries the window they imply.
 */
export async function connect(options: ConnectOptions): Promise<TunedSocket> {
  const resolved = validateConnectOptions(options);
  const address = resolved.path ?? (await resolveHost(resolved.host));
  const family = familyOf(resolved.path === undefined ? { host: address } : { path: resolved.path });
  const requested = pickSocketOptions(resolved);
  const fd = createSocketFd(family);
  let socket: Socket;
  try {
    applyPreConnectOptions(fd, family, requested, false);
    if (family !== 'unix' && (resolved.localAddress !== undefined || resolved.localPort !== undefined)) bindLocal(fd, family, resolved);
    if (resolved.lingerZero) setLingerZero(fd);
    socket = new Socket({ fd, readable: true, writable: true, ...(resolved.onread ? { onread: resolved.onread } : {}) });
  } catch (error) {
    closeFd(fd);
    throw error;
  }
  const where = family === 'unix' ? address : `${address}:${resolved.port}`;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SocktuneError('SOCKTUNE_ERR_TIMEOUT', `connect to ${where} timed out after ${resolved.timeout} ms`));
    }, resolved.timeout);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(fromSystemError(error, `connect to ${where}`));
    });
    const onConnect = (): void => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      if (resolved.preamble !== undefined) socket.write(resolved.preamble);
      resolve();
    };
    if (family === 'unix') socket.connect(address, onConnect);
    else socket.connect(resolved.port!, address, onConnect);
  });
  if (family !== 'unix') {
    socket.setNoDelay(resolved.noDelay ?? true);
    if (resolved.keepAlive) socket.setKeepAlive(true, resolved.keepAliveInitialDelay ?? 0);
  }
  const effective =
    family === 'unix'
      ? { ...readEffectiveBufferSizes(fdOf(socket)), noDelay: false, keepAlive: false }
      : readEffectiveSocketOptions(fdOf(socket));
  return Object.assign(socket, {
    effectiveSocketOptions: () => effectiveSocketOptions(socket),
    socketWarnings: bufferCapWarnings(requested, effective),
  });
}

function bindLocal(
  fd: number,
  family: 'ipv4' | 'ipv6',
  { localAddress, localPort }: Pick<ConnectOptions, 'localAddress' | 'localPort'>,
): void {
  if (localPort !== undefined) setReuseAddress(fd);
  bindFd(fd, family, localAddress ?? (family === 'ipv6' ? '::' : '0.0.0.0'), localPort ?? 0, 'SOCKTUNE_ERR_SOCKOPT');
}
