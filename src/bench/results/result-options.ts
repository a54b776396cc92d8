/**
 * The settings a result records, built field by field from an explicit list: never a copy of the
 * settings object, which holds the auth token and, with --payload, the user's own request bytes.
 * docs/schema gives each command's `options` this shape with no room for another field.
 */

export interface TargetRecord {
  host: string;
  port: number;
  path?: string;
}

export interface SocketRecord {
  sendBufferSize?: number;
  receiveBufferSize?: number;
  noDelay?: boolean;
  localAddress?: string;
  /** The first data connection's local port (--cport); the next ones take the ports after it. */
  localPort?: number;
}

export interface ServerRecord extends Omit<SocketRecord, 'localAddress' | 'localPort'> {
  ioModel?: string;
  workers?: number;
  blocking?: boolean;
  sourceChunkSize?: number;
  affinity?: number[];
}

export interface CommonOptionsRecord {
  target: TargetRecord;
  /** Whether the client proved an auth token; the token itself is never recorded. */
  auth: boolean;
  raw: boolean;
  client: SocketRecord;
  /** What the client asked of the server's test; null for peers that are not a socktune server. */
  server: ServerRecord | null;
}

export interface TimedOptionsRecord extends CommonOptionsRecord {
  durationSec: number;
  omitSec: number;
  intervalSec: number;
}

/** The fields of a settings object that may be published, in a fixed order, without undefined ones. */
function pick<T extends object, K extends keyof T>(from: T, keys: readonly K[]): Pick<T, K> {
  const picked = {} as Pick<T, K>;
  for (const key of keys) if (from[key] !== undefined) picked[key] = from[key];
  return picked;
}

export function targetRecord(target: { host: string; port: number; path?: string | undefined }): TargetRecord {
  return target.path === undefined ? { host: target.host, port: target.port } : { host: target.host, port: target.port, path: target.path };
}

export function socketRecord(settings: SocketRecord): SocketRecord {
  return pick(settings, ['sendBufferSize', 'receiveBufferSize', 'noDelay', 'localAddress', 'localPort']);
}

export function serverRecord(settings: ServerRecord): ServerRecord {
  const record = pick(settings, ['ioModel', 'workers', 'blocking', 'sendBufferSize', 'receiveBufferSize', 'noDelay', 'sourceChunkSize']);
  return settings.affinity === undefined ? record : { ...record, affinity: [...settings.affinity] };
}

/** What every client engine records of its target and sockets. */
export function commonOptionsRecord(options: {
  target: { host: string; port: number; path?: string | undefined; authToken?: unknown };
  raw?: boolean | undefined;
  client: SocketRecord;
  server: ServerRecord;
}): CommonOptionsRecord {
  const raw = options.raw === true;
  return {
    target: targetRecord(options.target),
    auth: options.target.authToken !== undefined,
    raw,
    client: socketRecord(options.client),
    server: raw ? null : serverRecord(options.server),
  };
}

export function timedOptionsRecord(
  options: Parameters<typeof commonOptionsRecord>[0] & { durationSec: number; omitSec: number; intervalSec: number },
): TimedOptionsRecord {
  return { ...commonOptionsRecord(options), durationSec: options.durationSec, omitSec: options.omitSec, intervalSec: options.intervalSec };
}

/** A request's public description for rr and crr: its size, and with --payload only the payload's length (its bytes are the user's). */
export function requestRecord(
  options: { responseSize?: number | undefined; payload?: Uint8Array | undefined },
  size: number,
): { size: number; responseSize?: number; payloadBytes?: number } {
  return {
    size,
    ...(options.responseSize === undefined ? {} : { responseSize: options.responseSize }),
    ...(options.payload === undefined ? {} : { payloadBytes: options.payload.length }),
  };
}

export interface StreamOptionsRecord extends TimedOptionsRecord {
  writeSize: number;
  parallel: number;
  direction: 'forward' | 'reverse' | 'bidir';
  verify: boolean;
  /** -b: bits/s each connection sent at. */
  bitrate?: number;
  /** Set when the peer is a stock iperf3 server (stream --iperf3). */
  peer?: 'iperf3';
  /** iperf3 -n: the test ended after this many bytes. */
  bytes?: number;
  /** stream -u: datagrams of writeSize bytes, at bitrate per stream (0: as fast as the socket takes them). */
  protocol?: 'udp';
  /** stream -Z: this client sent with sendfile from a page-cache file, on threads (absent: writes from a buffer). */
  sender?: 'sendfile';
}

/** stream --iperf3: stream's record, against a peer that is not a socktune server (no auth, no server settings). */
export function iperf3StreamRecord(options: {
  host: string;
  port: number;
  noDelay: boolean;
  window?: number | undefined;
  localPort?: number | undefined;
  durationSec: number;
  omitSec: number;
  intervalSec: number;
  writeSize: number;
  parallel: number;
  direction: StreamOptionsRecord['direction'];
  bitrate?: number | undefined;
  bytes?: number | undefined;
  protocol?: 'tcp' | 'udp' | undefined;
}): StreamOptionsRecord {
  return {
    target: targetRecord(options),
    auth: false,
    raw: false,
    client: socketRecord({
      noDelay: options.noDelay,
      ...(options.window === undefined ? {} : { sendBufferSize: options.window, receiveBufferSize: options.window }),
      ...(options.localPort === undefined ? {} : { localPort: options.localPort }),
    }),
    server: null,
    peer: 'iperf3',
    durationSec: options.durationSec,
    omitSec: options.omitSec,
    intervalSec: options.intervalSec,
    writeSize: options.writeSize,
    parallel: options.parallel,
    direction: options.direction,
    verify: false,
    ...(options.bitrate === undefined || options.bitrate === 0 ? {} : { bitrate: options.bitrate }),
    ...(options.bytes === undefined ? {} : { bytes: options.bytes }),
    ...(options.protocol === 'udp' ? { protocol: 'udp' as const } : {}),
  };
}

/** stream -u: stream's record for datagrams (writeSize is the datagram's size). */
export function udpStreamRecord(options: {
  target: { host: string; port: number; authToken?: unknown };
  direction: 'forward' | 'reverse';
  durationSec: number;
  intervalSec: number;
  datagramBytes: number;
  bitsPerSecond: number;
  parallel: number;
  client: SocketRecord;
  server: ServerRecord;
}): StreamOptionsRecord {
  return {
    ...commonOptionsRecord(options),
    durationSec: options.durationSec,
    omitSec: 0,
    intervalSec: options.intervalSec,
    writeSize: options.datagramBytes,
    parallel: options.parallel,
    direction: options.direction,
    verify: false,
    ...(options.bitsPerSecond > 0 ? { bitrate: options.bitsPerSecond } : {}),
    protocol: 'udp',
  };
}

export interface RrOptionsRecord extends TimedOptionsRecord {
  size: number;
  responseSize?: number;
  /** Length of the request given with --payload (its bytes are the user's and stay out of results). */
  payloadBytes?: number;
  connections: number;
  depth: number;
  rate?: number;
  /** --client-threads: the client threads the connections were spread over; absent: the event loop alone. */
  clientThreads?: number;
  /** rr -u: UDP ping-pong. */
  protocol?: 'udp';
}

export interface CrrOptionsRecord extends TimedOptionsRecord {
  size: number;
  responseSize?: number;
  payloadBytes?: number;
  concurrency: number;
  /** --client-threads: the client threads the concurrency was spread over. */
  clientThreads?: number;
}

export interface MsgOptionsRecord extends TimedOptionsRecord {
  size: number;
  connections: number;
  mode: 'one-way' | 'echo';
  batch: 'auto' | number;
  depth: number;
  /** --client-threads: the client threads the connections were spread over. */
  clientThreads?: number;
}

export interface ConnsOptionsRecord extends CommonOptionsRecord {
  count: number;
  holdSec: number;
  sourceAddresses: string[];
  concurrency: number;
  openTimeoutSec: number;
  /** --client-threads: the client threads that opened and held the connections. */
  clientThreads?: number;
}
