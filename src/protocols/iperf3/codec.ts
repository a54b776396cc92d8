import { randomInt } from 'node:crypto';
import { SocktuneError, type ErrorCode, type SocktuneErrorDetails } from '../../core/errors.ts';
import type { ByteReader } from '../../framing/byte-reader.ts';
import { MAX_UDP_BLOCK, MIN_UDP_BLOCK } from './datagram.ts';

/** iperf3's UDP block when a client gives none (DEFAULT_UDP_BLKSIZE). */
const DEFAULT_UDP_BLOCK = 1460;

/** iperf3's control states: one signed byte each on the control connection. */
export const STATE = Object.freeze({
  TEST_START: 1,
  TEST_RUNNING: 2,
  TEST_END: 4,
  PARAM_EXCHANGE: 9,
  CREATE_STREAMS: 10,
  SERVER_TERMINATE: 11,
  CLIENT_TERMINATE: 12,
  EXCHANGE_RESULTS: 13,
  DISPLAY_RESULTS: 14,
  IPERF_DONE: 16,
  ACCESS_DENIED: -1,
  SERVER_ERROR: -2,
});

export const COOKIE_BYTES = 37;
const COOKIE_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
/** Control-channel JSON over this is refused before it is read. */
export const MAX_JSON_BYTES = 64 * 1024;
/**
 * iperf3's i_errno values (src/iperf_api.h, 3.12) that socktune sends with SERVER_ERROR. A stock
 * client prints its own text for each (iperf_error.c); the ones marked "+ errno" append
 * strerror(errno), so they go with a meaningful errno.
 */
export const IPERF3_ERRNO = Object.freeze({
  /** "test duration too long (maximum = 86400 seconds)": the client prints its own maximum, not ours. */
  DURATION: 5,
  /** "number of parallel streams too large (maximum = 128)" */
  NUM_STREAMS: 6,
  /** "block size too large (maximum = 1048576 bytes)" */
  BLOCK_SIZE: 7,
  /** "socket buffer size too large (maximum = 536870912 bytes)" */
  BUF_SIZE: 8,
  /** "TCP MSS too large (maximum = 9216 bytes)" */
  MSS: 10,
  /** "bogus value for --omit" */
  OMIT: 12,
  /** "No SCTP support available" */
  NO_SCTP: 18,
  /** "unable to receive parameters from client" + errno */
  RECV_PARAMS: 114,
  /** "unable to set socket buffer size" + errno */
  SET_BUF: 124,
  /** "block size invalid" (a UDP block outside 16 to 65507 bytes) */
  UDP_BLOCK_SIZE: 20,
  /** "Protocol does not exist" */
  PROTOCOL: 131,
  /** "test authorization failed" (what iperf3's own server sends for a missing or wrong authtoken) */
  AUTH_TEST: 142,
  /** "unable to create a new stream" + errno */
  CREATE_STREAM: 200,
});
/** Linux errno values sent with them (the client runs strerror on its own side). */
export const EPROTONOSUPPORT = 93;
export const EINVAL = 22;

/** Like iperf3's server: a test ends by itself this long after its duration and omit. */
export const GRACE_SEC = 5;

export function generateCookie(): Buffer {
  const cookie = Buffer.alloc(COOKIE_BYTES);
  for (let i = 0; i < COOKIE_BYTES - 1; i++) cookie[i] = COOKIE_ALPHABET.charCodeAt(randomInt(COOKIE_ALPHABET.length));
  return cookie;
}

export function cookieKey(cookie: Buffer): string {
  return cookie.toString('latin1');
}

export function stateByte(state: number): Buffer {
  return Buffer.from([state & 0xff]);
}

/** SERVER_ERROR followed by iperf3's error number and errno, big-endian int32 each. */
export function serverError(iperfErrno: number, errno = 0): Buffer {
  const message = Buffer.alloc(9);
  message.writeInt8(STATE.SERVER_ERROR, 0);
  message.writeInt32BE(iperfErrno, 1);
  message.writeInt32BE(errno, 5);
  return message;
}

export function encodeJson(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value));
  const message = Buffer.alloc(4 + json.length);
  message.writeUInt32BE(json.length, 0);
  json.copy(message, 4);
  return message;
}

export async function readState(reader: ByteReader): Promise<number> {
  return (await reader.read(1)).readInt8(0);
}

/** A length-prefixed JSON object, its length checked before it is read. */
export async function readJson(reader: ByteReader): Promise<Record<string, unknown>> {
  const length = (await reader.read(4)).readUInt32BE(0);
  if (length > MAX_JSON_BYTES)
    throw new SocktuneError('SOCKTUNE_ERR_FRAME_TOO_LARGE', `iperf3 JSON message of ${length} bytes is over ${MAX_JSON_BYTES}`);
  const text = (await reader.read(length)).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `iperf3 control message is not JSON: ${JSON.stringify(text.slice(0, 60))}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'iperf3 control message is not a JSON object');
  return value as Record<string, unknown>;
}

/**
 * A test the server ends with SERVER_ERROR: the i_errno and errno a stock iperf3 client turns
 * into its message travel with the error up to the control connection.
 */
export class Iperf3ServerError extends SocktuneError {
  readonly iperfErrno: number;
  readonly osErrno: number;

  constructor(code: ErrorCode, message: string, iperfErrno: number, osErrno = 0, details: SocktuneErrorDetails = {}) {
    super(code, message, details);
    this.name = 'Iperf3ServerError';
    this.iperfErrno = iperfErrno;
    this.osErrno = osErrno;
  }

  /** The 9 bytes a stock client reads: SERVER_ERROR, i_errno, errno. */
  toWire(): Buffer {
    return serverError(this.iperfErrno, this.osErrno);
  }
}

/** The test parameters a client sends (iperf3 3.12 keys), with defaults for what it leaves out. */
export interface Iperf3Params {
  tcp: boolean;
  udp: boolean;
  sctp: boolean;
  /** Seconds; 0 with -n/-k (or -t 0): no time limit of the client's own. */
  time: number;
  /** Seconds of warm-up not counted (-O). */
  omit: number;
  bytes: number;
  blocks: number;
  parallel: number;
  len: number;
  reverse: boolean;
  bidirectional: boolean;
  /** Socket buffer size (-w); 0 leaves the kernel's default. */
  window: number;
  nodelay: boolean;
  getServerOutput: boolean;
  clientVersion: string;
  /** -b: bits/s per stream (the sender paces each stream at it); 0: as fast as it goes. */
  bandwidth: number;
  /** UDP datagrams carry a 64-bit packet count (--udp-counters-64bit), else 32-bit. */
  udpCounters64: boolean;
}

/** What a server accepts; a test over any of them is refused (SOCKTUNE_ERR_REFUSED, SERVER_ERROR). */
export interface Iperf3ParamLimits {
  /** time + omit + GRACE_SEC must fit, in seconds. */
  maxDurationSec: number;
  /** parallel × (bidirectional ? 2 : 1). */
  maxStreams: number;
  maxWindow: number;
  maxBlockLength: number;
}

/** iperf3's own maxima (src/iperf.h, 3.12): MAX_TIME, 2 × MAX_STREAMS (bidir), MAX_TCP_BUFFER, MAX_BLOCKSIZE. */
export const IPERF3_LIMITS: Readonly<Iperf3ParamLimits> = Object.freeze({
  maxDurationSec: 86_400,
  maxStreams: 2 * 128,
  maxWindow: 512 * 1024 * 1024,
  maxBlockLength: 1024 * 1024,
});

interface NumericField {
  /** The smallest and largest value a well-formed message may carry, whatever the server's limits. */
  min: number;
  max: number;
  integer: boolean;
  /** What iperf3 itself reports for a bad value of this field. */
  iperfErrno: number;
  unit: string;
}

/**
 * Every number read from the wire, with the range it must be in before anything uses it. A value
 * outside is a malformed message (a stock client never sends one); the server's own, lower limits
 * come after, in checkLimits.
 */
const NUMERIC_FIELDS: Readonly<Record<string, NumericField>> = Object.freeze({
  time: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: false, iperfErrno: IPERF3_ERRNO.DURATION, unit: ' s' },
  omit: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: false, iperfErrno: IPERF3_ERRNO.OMIT, unit: ' s' },
  num: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true, iperfErrno: IPERF3_ERRNO.RECV_PARAMS, unit: ' bytes' },
  blockcount: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true, iperfErrno: IPERF3_ERRNO.RECV_PARAMS, unit: '' },
  parallel: { min: 1, max: 128, integer: true, iperfErrno: IPERF3_ERRNO.NUM_STREAMS, unit: '' },
  len: { min: 1, max: 16 * 1024 * 1024, integer: true, iperfErrno: IPERF3_ERRNO.BLOCK_SIZE, unit: ' bytes' },
  // setsockopt takes an int; iperf3's MAX_TCP_BUFFER is well below 2^31.
  window: { min: 0, max: 512 * 1024 * 1024, integer: true, iperfErrno: IPERF3_ERRNO.BUF_SIZE, unit: ' bytes' },
  // iperf3 keeps it in a uint64; beyond 2^53 it would not be an exact number here.
  bandwidth: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true, iperfErrno: IPERF3_ERRNO.RECV_PARAMS, unit: ' bits/s' },
  // Checked though unused: socktune's accepted sockets cannot take an MSS before the handshake.
  MSS: { min: 0, max: 9216, integer: true, iperfErrno: IPERF3_ERRNO.MSS, unit: ' bytes' },
});

/** errno to go with an i_errno: only the "+ errno" messages print it. */
function errnoFor(iperfErrno: number): number {
  return iperfErrno === IPERF3_ERRNO.RECV_PARAMS ? EINVAL : 0;
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** A present field must be a JSON number in its range: a string, null or object is refused, never defaulted. */
function readNumber(json: Record<string, unknown>, key: string, fallback: number): number {
  if (!Object.hasOwn(json, key)) return fallback;
  const value = json[key];
  const field = NUMERIC_FIELDS[key]!;
  if (typeof value !== 'number') {
    throw new Iperf3ServerError(
      'SOCKTUNE_ERR_PROTOCOL',
      `iperf3 ${key} must be a number, got ${describeValue(value)}`,
      IPERF3_ERRNO.RECV_PARAMS,
      EINVAL,
    );
  }
  const expected = !(value >= field.min && value <= field.max)
    ? `${field.min} to ${field.max}${field.unit}`
    : field.integer && !Number.isInteger(value)
      ? 'a whole number'
      : undefined;
  if (expected !== undefined) {
    throw new Iperf3ServerError(
      'SOCKTUNE_ERR_PROTOCOL',
      `iperf3 ${key} must be ${expected}, got ${describeValue(value)}`,
      field.iperfErrno,
      errnoFor(field.iperfErrno),
    );
  }
  return value;
}

/** iperf3's server takes a key's presence as "on" (it never reads the value); so does this, but not false/0/null. */
const flag = (value: unknown): boolean => value === true || value === 1;

/**
 * The parameters of a test, each number range-checked before it can reach an allocation, a
 * socket option, a timer or a stream count. Throws Iperf3ServerError: SOCKTUNE_ERR_PROTOCOL for a
 * malformed message, SOCKTUNE_ERR_REFUSED for a test over `limits`.
 */
export function parseParams(json: Record<string, unknown>, limits: Readonly<Iperf3ParamLimits> = IPERF3_LIMITS): Iperf3Params {
  readNumber(json, 'MSS', 0);
  const udp = flag(json.udp);
  const params: Iperf3Params = {
    tcp: flag(json.tcp),
    udp,
    sctp: flag(json.sctp),
    time: readNumber(json, 'time', 10),
    omit: readNumber(json, 'omit', 0),
    bytes: readNumber(json, 'num', 0),
    blocks: readNumber(json, 'blockcount', 0),
    parallel: readNumber(json, 'parallel', 1),
    len: readNumber(json, 'len', udp ? DEFAULT_UDP_BLOCK : 128 * 1024),
    reverse: flag(json.reverse),
    bidirectional: flag(json.bidirectional),
    window: readNumber(json, 'window', 0),
    nodelay: flag(json.nodelay),
    getServerOutput: flag(json.get_server_output),
    clientVersion: typeof json.client_version === 'string' ? json.client_version.slice(0, 64) : 'unknown',
    // A stock client leaves it out for -b 0 only (it sends its 1 Mbit/s UDP default): absent is unlimited, as on iperf3's server.
    bandwidth: readNumber(json, 'bandwidth', 0),
    udpCounters64: flag(json.udp_counters_64bit),
  };
  if (udp && (params.len < MIN_UDP_BLOCK || params.len > MAX_UDP_BLOCK))
    throw new Iperf3ServerError(
      'SOCKTUNE_ERR_PROTOCOL',
      `iperf3 UDP block of ${params.len} bytes is outside ${MIN_UDP_BLOCK} to ${MAX_UDP_BLOCK}`,
      IPERF3_ERRNO.UDP_BLOCK_SIZE,
    );
  checkLimits(params, limits);
  return params;
}

function refuse(message: string, iperfErrno: number): Iperf3ServerError {
  return new Iperf3ServerError('SOCKTUNE_ERR_REFUSED', message, iperfErrno, errnoFor(iperfErrno));
}

function checkLimits(params: Iperf3Params, limits: Readonly<Iperf3ParamLimits>): void {
  // A test with no time of its own (-n, -k, -t 0) is ended at the maximum; only its warm-up must fit.
  const duration = params.time > 0 ? params.time + params.omit + GRACE_SEC : params.omit;
  if (duration > limits.maxDurationSec) {
    const asked = params.time > 0 ? `${params.time} s + ${params.omit} s omitted + ${GRACE_SEC} s grace` : `${params.omit} s omitted`;
    throw refuse(`iperf3 test of ${asked} is over the server's maximum of ${limits.maxDurationSec} s`, IPERF3_ERRNO.DURATION);
  }
  const streams = params.parallel * (params.bidirectional ? 2 : 1);
  if (streams > limits.maxStreams) {
    throw refuse(`iperf3 test of ${streams} streams is over the server's maximum of ${limits.maxStreams}`, IPERF3_ERRNO.NUM_STREAMS);
  }
  if (params.window > limits.maxWindow) {
    throw refuse(`iperf3 window of ${params.window} bytes is over the server's maximum of ${limits.maxWindow}`, IPERF3_ERRNO.BUF_SIZE);
  }
  if (params.len > limits.maxBlockLength) {
    throw refuse(
      `iperf3 block length of ${params.len} bytes is over the server's maximum of ${limits.maxBlockLength}`,
      IPERF3_ERRNO.BLOCK_SIZE,
    );
  }
}
