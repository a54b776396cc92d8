import { SocktuneError } from '../../core/errors.ts';
import type { DatagramFormat } from '../../framing/datagram.ts';

/**
 * iperf3's UDP "connect" (src/iperf_udp.c, 3.12): each stream's socket sends a 4-byte int, the
 * server answers from the same port with another. iperf3 writes them in host order: these are the
 * bytes of every little-endian host (x86, arm64), and what socktune sends.
 */
export const UDP_CONNECT_MESSAGE = Buffer.from('9876', 'latin1');
export const UDP_CONNECT_REPLY = Buffer.from('6789', 'latin1');
/** What clients before iperf3 3.10 sent (123456789) and servers replied (987654321), little-endian. */
const LEGACY_MESSAGE = Buffer.from([0x15, 0xcd, 0x5b, 0x07]);
const LEGACY_REPLY = Buffer.from([0xb1, 0x68, 0xde, 0x3a]);

export function isUdpConnectMessage(datagram: Buffer): boolean {
  return datagram.equals(UDP_CONNECT_MESSAGE) || datagram.equals(LEGACY_MESSAGE);
}

export function isUdpConnectReply(datagram: Buffer): boolean {
  return datagram.equals(UDP_CONNECT_REPLY) || datagram.equals(LEGACY_REPLY);
}

/** iperf3's own bounds on a UDP block (MIN_UDP_BLOCKSIZE, MAX_UDP_BLOCKSIZE in src/iperf.h). */
export const MIN_UDP_BLOCK = 16;
export const MAX_UDP_BLOCK = 65_535 - 8 - 20;

/** The header of an iperf3 UDP datagram: the sender's wall-clock send time and its packet number (from 1). */
export interface Iperf3DatagramHeader {
  packet: number;
  sentNs: bigint;
}

/** Header bytes: seconds, microseconds, then a 32-bit packet count, or a 64-bit one with --udp-counters-64bit. */
export function iperf3HeaderBytes(counters64: boolean): number {
  return counters64 ? 16 : 12;
}

/** The datagram's header, or undefined when it is too short for one (or its count is past an exact number). */
export function readIperf3Datagram(datagram: Buffer, counters64: boolean): Iperf3DatagramHeader | undefined {
  if (datagram.length < iperf3HeaderBytes(counters64)) return undefined;
  const packet = counters64 ? datagram.readBigUInt64BE(8) : BigInt(datagram.readUInt32BE(8));
  if (packet >= BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const sentNs = BigInt(datagram.readUInt32BE(0)) * 1_000_000_000n + BigInt(datagram.readUInt32BE(4)) * 1000n;
  return { packet: Number(packet), sentNs };
}

/**
 * iperf3's datagrams of `bytes` each: the header as iperf3_udp_send writes it (packet numbers from 1,
 * the send time on the wall clock, which the receiver's jitter needs only the differences of).
 */
export function iperf3Datagrams(bytes: number, counters64: boolean, now: () => number = wallClockMicros): DatagramFormat {
  if (!Number.isInteger(bytes) || bytes < iperf3HeaderBytes(counters64) || bytes > MAX_UDP_BLOCK)
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      `an iperf3 datagram is ${iperf3HeaderBytes(counters64)} to ${MAX_UDP_BLOCK} bytes, got ${bytes}`,
    );
  return {
    bytes,
    template: () => Buffer.alloc(bytes, 0x69),
    stamp: (datagram, sequence) => {
      const micros = now();
      datagram.writeUInt32BE(Math.floor(micros / 1e6) >>> 0, 0);
      datagram.writeUInt32BE(Math.floor(micros % 1e6), 4);
      if (counters64) datagram.writeBigUInt64BE(BigInt(sequence + 1), 8);
      else datagram.writeUInt32BE((sequence + 1) >>> 0, 8);
    },
  };
}

/** Microseconds since the epoch, finer than Date.now(). */
export function wallClockMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}
