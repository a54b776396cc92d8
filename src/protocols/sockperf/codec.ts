import { SocktuneError } from '../../core/errors.ts';
import { PartialMessage, type ByteBudget } from '../../framing/partial-message.ts';

/** sockperf's message header: u64 sequence, u16 flags, u32 length of the whole message, big-endian. */
export const HEADER_BYTES = 14;
export const FLAG_CLIENT = 1;
export const FLAG_PONG_REQUEST = 2;
export const FLAG_WARMUP = 4;
/** sockperf's TCP limit: 1 MiB − 1 per message, header included. */
export const MAX_MESSAGE_BYTES = 1024 * 1024 - 1;

const FLAGS_OFFSET = 8;
const LENGTH_OFFSET = 10;

export function messageLength(header: Uint8Array, offset = 0): number {
  return (
    ((header[offset + LENGTH_OFFSET]! << 24) |
      (header[offset + LENGTH_OFFSET + 1]! << 16) |
      (header[offset + LENGTH_OFFSET + 2]! << 8) |
      header[offset + LENGTH_OFFSET + 3]!) >>>
    0
  );
}

export function messageFlags(message: Uint8Array): number {
  return (message[FLAGS_OFFSET]! << 8) | message[FLAGS_OFFSET + 1]!;
}

/** A server answers only messages that ask for it: both CLIENT and PONG_REQUEST set. */
export function wantsReply(message: Uint8Array): boolean {
  return (messageFlags(message) & (FLAG_CLIENT | FLAG_PONG_REQUEST)) === (FLAG_CLIENT | FLAG_PONG_REQUEST);
}

/** A whole message: header and filler, with the given sequence number and flags. */
export function encodeMessage(sequence: bigint, flags: number, length: number): Buffer {
  if (length < HEADER_BYTES || length > MAX_MESSAGE_BYTES) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      `a sockperf message is ${HEADER_BYTES} to ${MAX_MESSAGE_BYTES} bytes, got ${length}`,
    );
  }
  const message = Buffer.alloc(length, 0x61);
  message.writeBigUInt64BE(sequence, 0);
  message.writeUInt16BE(flags, FLAGS_OFFSET);
  message.writeUInt32BE(length, LENGTH_OFFSET);
  return message;
}

/** What a ping-pong client sends: a client message that asks for its reply (the sequence number does not matter to sockperf sr). */
export function pingRequest(length: number): Buffer {
  return encodeMessage(1n, FLAG_CLIENT | FLAG_PONG_REQUEST, length);
}

/**
 * Re-frames a sockperf stream: many messages per read, one message across many reads. Whole
 * messages are views of the chunk; a split one is gathered into a buffer of its exact length,
 * allocated only after the length passed the limits.
 */
export class SockperfDecoder {
  readonly #header = Buffer.alloc(HEADER_BYTES);
  #headerSeen = 0;
  #partial: PartialMessage | undefined;
  readonly #budget: ByteBudget | undefined;

  /** `budget`: memory that messages split across reads may hold, shared with other connections. */
  constructor(budget?: ByteBudget) {
    this.#budget = budget;
  }

  get atBoundary(): boolean {
    return this.#headerSeen === 0 && this.#partial === undefined;
  }

  /** The completed partial message, which this decoder no longer holds (a listener may feed it again). */
  #takePartial(): Buffer {
    const message = this.#partial!.take();
    this.#partial = undefined;
    return message;
  }

  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#partial !== undefined) {
        offset += this.#partial.fill(chunk, offset);
        if (this.#partial.complete) onMessage(this.#takePartial());
        continue;
      }
      if (this.#headerSeen === 0 && chunk.length - offset >= HEADER_BYTES) {
        const length = checkedLength(messageLength(chunk, offset));
        if (chunk.length - offset >= length) {
          onMessage(chunk.subarray(offset, offset + length));
          offset += length;
          continue;
        }
        this.#partial = new PartialMessage(length, chunk.subarray(offset, offset + HEADER_BYTES), this.#budget);
        offset += HEADER_BYTES;
        continue;
      }
      // A header split across reads.
      const take = Math.min(HEADER_BYTES - this.#headerSeen, chunk.length - offset);
      chunk.copy(this.#header, this.#headerSeen, offset, offset + take);
      this.#headerSeen += take;
      offset += take;
      if (this.#headerSeen === HEADER_BYTES) {
        this.#headerSeen = 0;
        const length = checkedLength(messageLength(this.#header));
        if (length === HEADER_BYTES) onMessage(Buffer.from(this.#header));
        else this.#partial = new PartialMessage(length, this.#header, this.#budget);
      }
    }
  }

  /** Gives back the budget a half-gathered message holds: call when the connection is gone. */
  dispose(): void {
    this.#partial?.release();
    this.#partial = undefined;
  }

  /** At the end of the stream: a message cut short is SOCKTUNE_ERR_PROTOCOL. */
  end(): void {
    if (this.atBoundary) return;
    const have = this.#partial === undefined ? this.#headerSeen : this.#partial.filled;
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `sockperf stream ended inside a message (${have} bytes of it received)`);
  }
}

function checkedLength(length: number): number {
  if (length < HEADER_BYTES)
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `sockperf message length ${length} is shorter than its ${HEADER_BYTES}-byte header`);
  if (length > MAX_MESSAGE_BYTES)
    throw new SocktuneError(
      'SOCKTUNE_ERR_FRAME_TOO_LARGE',
      `sockperf message length ${length} is over the ${MAX_MESSAGE_BYTES}-byte limit`,
    );
  return length;
}

/**
 * Replies gathered for one write: each answered message is copied with the CLIENT flag cleared
 * (sequence, length and payload unchanged) into a growing buffer that is reused between flushes.
 */
const INITIAL_REPLY_BYTES = 64 * 1024;

/** Turns a message into its reply where it lies: the CLIENT flag cleared, everything else as it came. */
export function clearClientFlag(message: Uint8Array): void {
  message[FLAGS_OFFSET + 1]! &= ~FLAG_CLIENT & 0xff;
}

/**
 * One datagram over UDP, as `sockperf sr` takes it: one whole message (else malformed), answered
 * when it asks for a reply and is not a warm-up.
 */
export function udpMessageKind(datagram: Uint8Array): 'malformed' | 'silent' | 'ping' {
  if (datagram.length < HEADER_BYTES || messageLength(datagram) !== datagram.length) return 'malformed';
  return wantsReply(datagram) && (messageFlags(datagram) & FLAG_WARMUP) === 0 ? 'ping' : 'silent';
}

export class ReplyWriter {
  #buffer = Buffer.allocUnsafe(INITIAL_REPLY_BYTES);
  #length = 0;

  add(message: Uint8Array): void {
    if (this.#length + message.length > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + message.length));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    this.#buffer.set(message, this.#length);
    this.#buffer[this.#length + FLAGS_OFFSET + 1]! &= ~FLAG_CLIENT & 0xff;
    this.#length += message.length;
  }

  get length(): number {
    return this.#length;
  }

  /** The gathered replies, in a buffer of their exact size (a write may hold on to it); the writer starts empty. */
  take(): Buffer {
    const replies = Buffer.from(this.#buffer.subarray(0, this.#length));
    this.#length = 0;
    // One large reply must not keep a large buffer for the rest of the connection's life.
    if (this.#buffer.length > INITIAL_REPLY_BYTES) this.#buffer = Buffer.allocUnsafe(INITIAL_REPLY_BYTES);
    return replies;
  }
}
