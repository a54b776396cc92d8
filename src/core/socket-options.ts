import { boolean, integer, type FieldSpec } from './validate.ts';

/** 2 GiB - 1: the largest value setsockopt takes as an int. */
export const MAX_BUFFER_SIZE = 2 ** 31 - 1;

/** Options applied to a socket through setsockopt before listen() or connect(). */
export interface SocketOptions {
  /**
   * SO_SNDBUF request in bytes. Linux doubles it (bookkeeping overhead) and caps it at
   * net.core.wmem_max; read the result with effectiveSocketOptions().
   * @default undefined (kernel default, send autotuning stays on)
   */
  sendBufferSize?: number;
  /**
   * SO_RCVBUF request in bytes. Setting it turns off the kernel's receive autotuning for the
   * socket (which could otherwise grow to tcp_rmem's max); doubled and capped at net.core.rmem_max.
   * @default undefined (kernel default, autotuning on)
   */
  receiveBufferSize?: number;
  /** TCP_NODELAY: send small segments at once instead of waiting (Nagle). @default true */
  noDelay?: boolean;
  /** SO_KEEPALIVE: probe idle connections. @default false */
  keepAlive?: boolean;
  /** Idle time before the first keep-alive probe, in milliseconds. @default 0 (kernel default) */
  keepAliveInitialDelay?: number;
  /** SO_REUSEPORT on the listening socket: several listeners share one port. @default false */
  reusePort?: boolean;
  /** Length of the accept queue passed to listen(); the kernel caps it at net.core.somaxconn. @default 511 */
  backlog?: number;
  /** IPV6_V6ONLY on an IPv6 listener: refuse IPv4-mapped peers. @default false */
  ipv6Only?: boolean;
  /** SO_LINGER {on, 0}: close() sends RST instead of FIN and drops unsent data. @default false */
  lingerZero?: boolean;
}

/** Buffer sizes have no default on purpose: unset leaves the kernel's default and its autotuning. */
export const SOCKET_OPTION_DEFAULTS = Object.freeze({
  noDelay: true,
  keepAlive: false,
  keepAliveInitialDelay: 0,
  reusePort: false,
  backlog: 511,
  ipv6Only: false,
  lingerZero: false,
});

export const SOCKET_OPTION_FIELDS: FieldSpec = Object.freeze({
  sendBufferSize: integer(1, MAX_BUFFER_SIZE),
  receiveBufferSize: integer(1, MAX_BUFFER_SIZE),
  noDelay: boolean,
  keepAlive: boolean,
  keepAliveInitialDelay: integer(0, 2 ** 31 - 1),
  reusePort: boolean,
  backlog: integer(1, 65535),
  ipv6Only: boolean,
  lingerZero: boolean,
});

/** What the kernel really applied, read back with getsockopt. */
export interface EffectiveSocketOptions {
  sendBufferSize: number;
  receiveBufferSize: number;
  noDelay: boolean;
  keepAlive: boolean;
}

/** A buffer request the kernel capped below twice the asked size. */
export interface BufferCapWarning {
  kind: 'buffer-capped';
  option: 'sendBufferSize' | 'receiveBufferSize';
  requested: number;
  effective: number;
  sysctl: 'net.core.wmem_max' | 'net.core.rmem_max';
  message: string;
}

export function pickSocketOptions(options: SocketOptions): SocketOptions {
  const picked: SocketOptions = {};
  for (const key of Object.keys(SOCKET_OPTION_FIELDS) as (keyof SocketOptions)[]) {
    if (options[key] !== undefined) (picked as Record<string, unknown>)[key] = options[key];
  }
  return picked;
}

const CAP_SYSCTLS = { sendBufferSize: 'net.core.wmem_max', receiveBufferSize: 'net.core.rmem_max' } as const;

/** The warning for one capped buffer, its message made from the facts. */
export function bufferCapWarning(option: BufferCapWarning['option'], requested: number, effective: number): BufferCapWarning {
  const sysctl = CAP_SYSCTLS[option];
  const message =
    `${option} ${requested} was capped by the kernel: effective ${effective} bytes, not ${requested * 2}. ` +
    `Raise it with: sysctl -w ${sysctl}=${requested}`;
  return { kind: 'buffer-capped', option, requested, effective, sysctl, message };
}

/** Linux stores twice the request; anything less means a cap (wmem_max / rmem_max) was hit. */
export function bufferCapWarnings(requested: SocketOptions, effective: EffectiveSocketOptions): BufferCapWarning[] {
  const warnings: BufferCapWarning[] = [];
  for (const option of ['sendBufferSize', 'receiveBufferSize'] as const) {
    const asked = requested[option];
    if (asked === undefined || effective[option] >= asked * 2) continue;
    warnings.push(bufferCapWarning(option, asked, effective[option]));
  }
  return warnings;
}
