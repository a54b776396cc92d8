import { SocktuneError } from '../core/errors.ts';

/**
 * The header of every datagram of a socktune UDP test:
 *
 *   0  u32  magic "STU1"
 *   4  u32  stream: which of the test's sockets sent it (0-based)
 *   8  u64  sequence number in its stream, from 0
 *  16  u64  send time in ns on the sender's monotonic clock (only differences are used: jitter)
 *  24  16   the test's token, from the server's ready message: a datagram without it is not counted
 *
 * Big-endian, as on the wire of iperf3 and sockperf. The rest of the datagram is filler.
 */
export const DATAGRAM_MAGIC = 0x53545531;
export const DATAGRAM_TOKEN_BYTES = 16;
export const DATAGRAM_HEADER_BYTES = 24 + DATAGRAM_TOKEN_BYTES;
/** An IPv4 and a UDP header: what each datagram costs on the wire beyond its payload. */
export const UDP_IPV4_HEADERS_BYTES = 28;
/** The largest UDP payload over IPv4 (65,535 − 20 − 8). */
export const MAX_DATAGRAM_BYTES = 65_507;

export interface DatagramHeader {
  stream: number;
  sequence: number;
  sentNs: bigint;
}

/** A datagram of `size` bytes with the token in place: `stamp` then writes each one's header in place, no allocation. */
export function datagramTemplate(size: number, token: Buffer): Buffer {
  if (!Number.isInteger(size) || size < DATAGRAM_HEADER_BYTES || size > MAX_DATAGRAM_BYTES)
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      `a socktune datagram is ${DATAGRAM_HEADER_BYTES} to ${MAX_DATAGRAM_BYTES} bytes, got ${size}`,
    );
  if (token.length !== DATAGRAM_TOKEN_BYTES)
    throw new SocktuneError('SOCKTUNE_ERR_INVALID_OPTION', `a datagram token is ${DATAGRAM_TOKEN_BYTES} bytes, got ${token.length}`);
  const datagram = Buffer.alloc(size, 0x75);
  datagram.writeUInt32BE(DATAGRAM_MAGIC, 0);
  token.copy(datagram, 24);
  return datagram;
}

export function stampDatagram(datagram: Buffer, header: DatagramHeader): void {
  datagram.writeUInt32BE(header.stream, 4);
  stampSequence(viewOf(datagram), header.sequence, header.sentNs);
}

function viewOf(datagram: Buffer): DataView {
  return new DataView(datagram.buffer, datagram.byteOffset, datagram.length);
}

/**
 * The per-datagram part of the header, the stream's being in place: written on every send, so no
 * BigInt is made for the number, and through a DataView (a third of the cost of Buffer's writers).
 */
function stampSequence(view: DataView, sequence: number, sentNs: bigint): void {
  view.setUint32(8, Math.floor(sequence / 0x1_0000_0000));
  view.setUint32(12, sequence >>> 0);
  view.setBigUint64(16, sentNs);
}

/** The header of a datagram of this test, or undefined for anything else (short, another magic, another token). */
export function readDatagram(datagram: Buffer, token: Buffer): DatagramHeader | undefined {
  if (datagram.length < DATAGRAM_HEADER_BYTES || datagram.readUInt32BE(0) !== DATAGRAM_MAGIC) return undefined;
  if (datagram.compare(token, 0, DATAGRAM_TOKEN_BYTES, 24, DATAGRAM_HEADER_BYTES) !== 0) return undefined;
  // Read in halves, no BigInt made per datagram. The receiver counts up to sequence + 1: that must stay an exact number too.
  const high = datagram.readUInt32BE(8);
  const sequence = high * 0x1_0000_0000 + datagram.readUInt32BE(12);
  if (sequence >= Number.MAX_SAFE_INTEGER) return undefined;
  return { stream: datagram.readUInt32BE(4), sequence, sentNs: datagram.readBigUInt64BE(16) };
}

/**
 * Each datagram of a received message: one, or several of one size when the kernel handed over a
 * sender's segmented send at once (UDP GRO). Their size is where the second one's token is, so no
 * control message is needed; each is checked by its reader as any datagram is.
 */
export function eachDatagram(message: Buffer, token: Buffer, visit: (datagram: Buffer) => void): void {
  const size = coalescedSize(message, token);
  for (let offset = 0; offset < message.length; offset += size) visit(message.subarray(offset, Math.min(offset + size, message.length)));
}

/** Where the second datagram starts: its token 24 bytes on, with its magic there (a token's bytes may also end the header before it). */
function coalescedSize(message: Buffer, token: Buffer): number {
  if (message.length <= 2 * DATAGRAM_HEADER_BYTES) return message.length;
  for (let at = message.indexOf(token, DATAGRAM_HEADER_BYTES + 24); at >= 0; at = message.indexOf(token, at + 1))
    if (message.readUInt32BE(at - 24) === DATAGRAM_MAGIC) return at - 24;
  return message.length;
}

/** How a paced sender writes one stream's datagrams, whatever the protocol: a template per buffer, then each header in place. */
export interface DatagramFormat {
  /** Bytes of every datagram. */
  readonly bytes: number;
  /** A datagram with everything fixed in place: made once per buffer the sender keeps. */
  template(): Buffer;
  /** Writes, just before the send, the header of the datagram numbered `sequence` (from 0): its number and the time. */
  stamp(datagram: Buffer, sequence: number): void;
}

/** socktune's own datagrams for stream `stream` of a test: its token in every one, the send time on the monotonic clock. */
export function socktuneDatagrams(bytes: number, token: Buffer, stream: number): DatagramFormat {
  datagramTemplate(bytes, token);
  // Stamped once per datagram sent: the view of the buffer last stamped is kept (a sender reuses its buffers).
  let view: DataView | undefined;
  let viewed: Buffer | undefined;
  return {
    bytes,
    template: () => {
      const datagram = datagramTemplate(bytes, token);
      datagram.writeUInt32BE(stream, 4);
      return datagram;
    },
    stamp: (datagram, sequence) => {
      if (viewed !== datagram) [view, viewed] = [viewOf(datagram), datagram];
      stampSequence(view!, sequence, process.hrtime.bigint());
    },
  };
}
