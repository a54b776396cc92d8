import { isIP } from 'node:net';
import { cpuNumbers } from '../../core/affinity.ts';
import { SocktuneError } from '../../core/errors.ts';
import type { BufferCapWarning, EffectiveSocketOptions } from '../../core/socket-options.ts';
import { boolean, integer, oneOf, validateFields } from '../../core/validate.ts';
import type { ServerMetrics } from '../../transport/server/metrics.ts';
import { BUILTIN_SERVICES, IO_MODELS, type BuiltinService, type IoModel } from '../../transport/server/options.ts';
import type { Environment } from '../results/environment.ts';
import type { ProcessMemory } from '../results/memory.ts';
import type { DatagramCounts } from '../results/datagram-stats.ts';
import { DATAGRAM_HEADER_BYTES, MAX_DATAGRAM_BYTES } from '../../framing/datagram.ts';
import { MAX_SEGMENTS } from '../../transport/udp/udp-batching.ts';
import {
  isBarrierMessageType,
  parseBarrierMessage,
  type BarrierClientMessage,
  type ClockReply,
  type JoinedMessage,
  type ReleaseMessage,
  type WaitingMessage,
} from './barrier-protocol.ts';

/** Bumped when a message changes incompatibly; both ends must agree. */
export const CONTROL_PROTOCOL_VERSION = 3;

/** Server-side settings a client may ask for one test. */
export interface TestServerSettings {
  ioModel?: IoModel;
  workers?: number;
  blocking?: boolean;
  sendBufferSize?: number;
  receiveBufferSize?: number;
  noDelay?: boolean;
  sourceChunkSize?: number;
  /** CPUs for the test's own server threads (workers, thread-per-conn): -A N,M. */
  affinity?: number[];
}

/**
 * Tests over UDP: the server counts the client's datagrams (stream -u), sends its own to the
 * client's sockets (-u -R), or sends each back (rr -u).
 */
export const UDP_SERVICES = ['udp-sink', 'udp-source', 'udp-echo'] as const;
export type UdpService = (typeof UDP_SERVICES)[number];
export type TestService = BuiltinService | UdpService;

export function isUdpService(service: TestService): service is UdpService {
  return (UDP_SERVICES as readonly string[]).includes(service);
}

export interface StartMessage {
  type: 'start';
  protocol: number;
  service: TestService;
  server: TestServerSettings;
  /** The server ends the test by itself after this long, whatever the client does. */
  maxDurationMs: number;
  /** Collect garbage before each memory reading (conns: memory per connection). */
  settleMemory?: boolean;
  /** Addresses the data connections will come from besides the control connection's (conns --source-ips). */
  dataFrom?: string[];
  /** udp-source: what the server sends to each client socket that says hello. */
  udp?: UdpSourceSettings;
}

export interface UdpSourceSettings {
  datagramBytes: number;
  /** Per stream; 0: as fast as the server's socket takes them (and its --max-rate allows). */
  bitsPerSecond: number;
  streams: number;
  /** Most datagrams per system call (1: one each, as iperf3 sends); absent: up to 64, cut by the kernel (UDP GSO). */
  batch?: number;
}

export interface ReadyMessage {
  type: 'ready';
  dataPort: number;
  /** Set instead of dataPort when the control socket is Unix-domain. */
  dataPath?: string;
  /** With auth: hex bytes each data connection must send first, proving it belongs to this test. */
  dataToken?: string;
  effective: EffectiveSocketOptions;
  /** Buffer requests the kernel capped on the server's sockets: the facts, rendered by the client. */
  warnings: BufferCapWarning[];
  environment: Environment;
  memory: ProcessMemory;
}

export interface FinishMessage {
  type: 'finish';
}

/** The server's answer to a start message when it needs an auth token: prove you know it. */
export interface ChallengeMessage {
  type: 'challenge';
  nonce: string;
}

/** HMAC-SHA256(token, nonce) in hex, answering a challenge. */
export interface AuthMessage {
  type: 'auth';
  proof: string;
}

/** What a UDP test's receiving server counted. */
export interface DatagramReport {
  /** One entry per stream (client socket), by its index in the datagram header. */
  streams: DatagramCounts[];
  /** Datagrams the kernel dropped on the server's socket, its receive buffer full (sk_drops); null where unknown. */
  socketDrops: number | null;
  /** The host's UdpRcvbufErrors over the test (every UDP socket of the server's network namespace); null where unknown. */
  hostReceiveBufferErrors: number | null;
  /** Datagrams that were not this test's (another source address, another token): dropped uncounted. */
  foreign: number;
  /** udp-source: datagrams the server's kernel took, per stream; udp-echo: replies it sent, per stream. */
  sent?: number[];
  /** udp-sink: the receives that brought the datagrams (fewer where the kernel coalesced segmented sends: UDP GRO). */
  receives?: number;
  /** udp-source: the system calls that sent the datagrams (fewer where the kernel segmented them: UDP GSO). */
  sends?: number;
}

export interface ResultMessage {
  type: 'result';
  metrics: ServerMetrics;
  /** UDP tests only. */
  datagrams?: DatagramReport;
  /** Server process CPU time during the test, in percent of one core. */
  cpuPercent: number;
  memory: ProcessMemory;
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

export type ServerMessage =
  ReadyMessage | ResultMessage | ErrorMessage | ChallengeMessage | JoinedMessage | ClockReply | WaitingMessage | ReleaseMessage;
export type ClientMessage = StartMessage | FinishMessage | AuthMessage | BarrierClientMessage;

const SERVER_SETTINGS_FIELDS = Object.freeze({
  ioModel: oneOf(IO_MODELS),
  workers: integer(1, 256),
  blocking: boolean,
  sendBufferSize: integer(1, 2 ** 31 - 1),
  receiveBufferSize: integer(1, 2 ** 31 - 1),
  noDelay: boolean,
  sourceChunkSize: integer(1, 16 * 1024 * 1024),
  affinity: cpuNumbers,
});

/** The longest test a server runs for one client (one hour). */
export const MAX_TEST_DURATION_MS = 3_600_000;

const UDP_SOURCE_FIELDS = Object.freeze({
  datagramBytes: integer(DATAGRAM_HEADER_BYTES, MAX_DATAGRAM_BYTES),
  bitsPerSecond: integer(0, 1e12),
  streams: integer(1, 128),
  batch: integer(1, MAX_SEGMENTS),
});
const UDP_SOURCE_REQUIRED = ['datagramBytes', 'bitsPerSecond', 'streams'] as const;

const START_FIELDS = Object.freeze({
  type: oneOf(['start']),
  protocol: integer(0, 1_000_000),
  service: oneOf([...BUILTIN_SERVICES, ...UDP_SERVICES]),
  server: () => undefined,
  maxDurationMs: integer(1, MAX_TEST_DURATION_MS),
  settleMemory: boolean,
  udp: () => undefined,
  dataFrom: (value: unknown) =>
    Array.isArray(value) && value.length <= 1024 && value.every((address) => typeof address === 'string' && isIP(address) !== 0)
      ? undefined
      : 'up to 1024 IP addresses',
});

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks a client's message strictly: the control port may face strangers. */
export function parseClientMessage(value: unknown): ClientMessage {
  if (!isRecord(value)) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'control message must be a JSON object');
  if (value.type === 'finish') return { type: 'finish' };
  if (value.type === 'auth') {
    if (typeof value.proof !== 'string' || !/^[0-9a-f]{1,128}$/.test(value.proof))
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'auth.proof must be a hex string');
    return { type: 'auth', proof: value.proof };
  }
  if (isBarrierMessageType(value.type)) return parseBarrierMessage(value);
  if (value.type !== 'start')
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `unknown control message type ${JSON.stringify(value.type)}`);
  for (const field of ['service', 'maxDurationMs'] as const) {
    if (value[field] === undefined) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `start.${field} is missing`);
  }
  if (value.server !== undefined && !isRecord(value.server))
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'start.server must be an object');
  validateFields(value, START_FIELDS, 'start');
  validateFields(value.server ?? {}, SERVER_SETTINGS_FIELDS, 'start.server');
  if (value.protocol !== CONTROL_PROTOCOL_VERSION) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_PROTOCOL',
      `control protocol ${String(value.protocol)} not supported; this server speaks ${CONTROL_PROTOCOL_VERSION}`,
    );
  }
  if (value.service === 'udp-source' && value.udp === undefined)
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'start.udp is missing: a udp-source test says what to send');
  if (value.udp !== undefined) {
    if (!isRecord(value.udp)) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'start.udp must be an object');
    validateFields(value.udp, UDP_SOURCE_FIELDS, 'start.udp');
    const missing = UDP_SOURCE_REQUIRED.find((key) => !Object.hasOwn(value.udp as object, key));
    if (missing !== undefined) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `start.udp.${missing} is missing`);
  }
  // A missing server object means no settings: every later reader may take start.server as given.
  return { ...(value as unknown as StartMessage), server: value.server ?? {} };
}
