import { randomInt } from 'node:crypto';
import { SocktuneError } from '../../core/errors.ts';
import type { ByteReader } from '../../framing/byte-reader.ts';

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
/** iperf3's i_errno values sent with SERVER_ERROR: "Protocol does not exist" and "No SCTP support available". */
export const IE_PROTOCOL = 131;
export const IE_NO_SCTP = 18;
/** Linux EPROTONOSUPPORT, the errno sent with them. */
export const EPROTONOSUPPORT = 93;

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
  if (length > MAX_JSON_BYTES) throw new SocktuneError('SOCKTUNE_ERR_FRAME_TOO_LARGE', `iperf3 JSON message of ${length} bytes is over ${MAX_JSON_BYTES}`);
  const text = (await reader.read(length)).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `iperf3 control message is not JSON: ${JSON.stringify(text.slice(0, 60))}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'iperf3 control message is not a JSON object');
  return value as Record<string, unknown>;
}

/** The test parameters a client sends (iperf3 3.12 keys), with defaults for what it leaves out. */
export interface Iperf3Params {
  tcp: boolean;
  udp: boolean;
  sctp: boolean;
  time: number;
  omit: number;
  bytes: number;
  blocks: number;
  parallel: number;
  len: number;
  reverse: boolean;
  bidirectional: boolean;
  window: number;
  nodelay: boolean;
  getServerOutput: boolean;
  clientVersion: string;
}

const number = (value: unknown, fallback: number): number => (typeof value === 'number' && Number.isFinite(value) ? value : fallback);
const flag = (value: unknown): boolean => value === true || value === 1;

export function parseParams(json: Record<string, unknown>): Iperf3Params {
  const params: Iperf3Params = {
    tcp: flag(json.tcp),
    udp: flag(json.udp),
    sctp: flag(json.sctp),
    time: number(json.time, 10),
    omit: number(json.omit, 0),
    bytes: number(json.num, 0),
    blocks: number(json.blockcount, 0),
    parallel: number(json.parallel, 1),
    len: number(json.len, 128 * 1024),
    reverse: flag(json.reverse),
    bidirectional: flag(json.bidirectional),
    window: number(json.window, 0),
    nodelay: flag(json.nodelay),
    getServerOutput: flag(json.get_server_output),
    clientVersion: typeof json.client_version === 'string' ? json.client_version : 'unknown',
  };
  if (!Number.isInteger(params.parallel) || params.parallel < 1 || params.parallel > 128) {
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `iperf3 parallel must be 1 to 128, got ${String(json.parallel)}`);
  }
  if (!Number.isInteger(params.len) || params.len < 1 || params.len > 16 * 1024 * 1024) {
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `iperf3 block length must be 1 B to 16 MiB, got ${String(json.len)}`);
  }
  return params;
}
