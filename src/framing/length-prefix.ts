import { SocktuneError } from '../core/errors.ts';
import { PartialMessage, type ByteBudget } from './partial-message.ts';

/** How a message's length is written before it: big-endian u32 (default), big-endian u16, or unsigned LEB128 varint. */
export type PrefixKind = 'u32' | 'u16' | 'varint';

export const PREFIX_KINDS: readonly PrefixKind[] = ['u32', 'u16', 'varint'];

/** 16 MiB: the default cap on one message, checked before anything is allocated for it. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

const PREFIX_LIMIT: Readonly<Record<PrefixKind, number>> = { u32: 0xffff_ffff, u16: 0xffff, varint: 0xffff_ffff };
/** A varint for a 32-bit length takes at most five bytes. */
const MAX_VARINT_BYTES = 5;

export function prefixLength(kind: PrefixKind, length: number): number {
  if (kind === 'u32') return 4;
  if (kind === 'u16') return 2;
  let bytes = 1;
  for (let rest = length >>> 7; rest > 0; rest >>>= 7) bytes++;
  return bytes;
}

/** Writes the length prefix at `offset`; returns the offset after it. */
export function writePrefix(kind: PrefixKind, length: number, target: Uint8Array, offset: number): number {
  if (length > PREFIX_LIMIT[kind]) {
    throw new SocktuneError('SOCKTUNE_ERR_FRAME_TOO_LARGE', `message of ${length} bytes does not fit a ${kind} length prefix`);
  }
  if (kind === 'u32') {
    target[offset] = length >>> 24;
    target[offset + 1] = (length >>> 16) & 0xff;
    target[offset + 2] = (length >>> 8) & 0xff;
    target[offset + 3] = length & 0xff;
    return offset + 4;
  }
  if (kind === 'u16') {
    target[offset] = length >>> 8;
    target[offset + 1] = length & 0xff;
    return offset + 2;
  }
  let rest = length >>> 0;
  while (rest >= 0x80) {
    target[offset++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  target[offset++] = rest;
  return offset;
}

/** One framed message as a new buffer: for tests and one-offs; the hot path uses FrameEncoder. */
export function encodeFrame(message: Uint8Array, kind: PrefixKind = 'u32'): Buffer {
  const frame = Buffer.allocUnsafe(prefixLength(kind, message.length) + message.length);
  frame.set(message, writePrefix(kind, message.length, frame, 0));
  return frame;
}

export interface FrameDecoderOptions {
  /** @default 'u32' */
  prefix?: PrefixKind;
  /** Largest message accepted; a longer length prefix is SOCKTUNE_ERR_FRAME_TOO_LARGE before any allocation. @default 16 MiB */
  maxMessageSize?: number;
  /**
   * Memory that messages split across chunks may hold, shared with other decoders; over it SOCKTUNE_ERR_BUFFER_BUDGET. @default
   * undefined (no shared cap)
   */
  budget?: ByteBudget | undefined;
}

/** `count` whole frames, prefixes included, lie in `buffer[start, end)`; the view is valid only during the call. */
export type FrameRunHandler = (buffer: Buffer, start: number, end: number, count: number) => void;

/**
 * Incremental length-prefix decoder. A message that lies whole inside a pushed chunk is handed
 * out as a view of that chunk (no copy), valid until the chunk's memory is reused; only a message
 * split across chunks is gathered into a buffer of its exact size.
 */
export class FrameDecoder {
  readonly #prefix: PrefixKind;
  readonly #maxMessageSize: number;
  /** Prefix bytes seen so far when a prefix is split across chunks. */
  readonly #prefixBytes = new Uint8Array(MAX_VARINT_BYTES);
  #prefixSeen = 0;
  /** A message being gathered across chunks. */
  #partial: PartialMessage | undefined;
  #partialPrefixBytes = 0;
  readonly #budget: ByteBudget | undefined;
  #mode: 'messages' | 'frames' | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.#prefix = options.prefix ?? 'u32';
    this.#maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#budget = options.budget;
  }

  /** True between frames: nothing half-read. */
  get atBoundary(): boolean {
    return this.#prefixSeen === 0 && this.#partial === undefined;
  }

  /** The completed partial message, which this decoder no longer holds (a listener may feed it again). */
  #takePartial(): Buffer {
    const message = this.#partial!.take();
    this.#partial = undefined;
    return message;
  }

  /** Feeds one chunk; calls `onMessage` for every message it completes, in order. */
  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    this.#useFor('messages');
    let offset = 0;
    const end = chunk.length;
    while (offset < end) {
      if (this.#partial !== undefined) {
        offset += this.#partial.fill(chunk, offset);
        if (this.#partial.complete) onMessage(this.#takePartial());
        continue;
      }
      // Fast path: the whole prefix is inside this chunk.
      let length: number;
      let bodyStart: number;
      if (this.#prefixSeen === 0 && this.#prefix === 'u32' && end - offset >= 4) {
        length = chunk.readUInt32BE(offset);
        bodyStart = offset + 4;
      } else {
        const parsed = this.#readPrefix(chunk, offset);
        if (parsed === undefined) return;
        ({ length, bodyStart } = parsed);
      }
      this.#checkLength(length);
      if (end - bodyStart >= length) {
        offset = bodyStart + length;
        onMessage(chunk.subarray(bodyStart, offset));
      } else {
        // Allocated only now, after the length passed the cap.
        this.#partial = new PartialMessage(length, undefined, this.#budget);
        this.#partialPrefixBytes = prefixLength(this.#prefix, length);
        offset = bodyStart;
      }
    }
  }

  /**
   * Feeds one chunk and reports whole frames as runs of wire bytes, prefixes included:
   * `onFrames(buffer, start, end, count)` says `count` frames lie in `buffer[start, end)`. No object
   * is made per message, so a sink can count and an echo can write back a run in one piece. A run is
   * a range of the chunk (valid only during the call), or one frame gathered across chunks. Limits
   * are checked as in push(). A decoder serves either push() or pushFrames(), not both.
   */
  pushFrames(chunk: Buffer, onFrames: FrameRunHandler): void {
    this.#useFor('frames');
    let offset = 0;
    let runStart = 0;
    let count = 0;
    const end = chunk.length;
    while (offset < end) {
      if (this.#partial !== undefined) {
        offset += this.#partial.fill(chunk, offset);
        if (this.#partial.complete) {
          const frame = this.#takePartial();
          onFrames(frame, 0, frame.length, 1);
        }
        runStart = offset;
        continue;
      }
      const carried = this.#prefixSeen;
      let length: number;
      let bodyStart: number;
      if (carried === 0 && this.#prefix === 'u32' && end - offset >= 4) {
        length = chunk.readUInt32BE(offset);
        bodyStart = offset + 4;
      } else {
        const parsed = this.#readPrefix(chunk, offset);
        if (parsed === undefined) break;
        ({ length, bodyStart } = parsed);
      }
      this.#checkLength(length);
      if (carried === 0 && end - bodyStart >= length) {
        offset = bodyStart + length;
        count++;
        continue;
      }
      if (count > 0) onFrames(chunk, runStart, offset, count);
      count = 0;
      // The frame spans chunks: gathered whole, its prefix first (allocated only now, after the length passed the cap).
      const prefix =
        carried === 0 ? chunk.subarray(offset, bodyStart) : Buffer.from(this.#prefixBytes.subarray(0, carried + bodyStart - offset));
      this.#partial = new PartialMessage(prefix.length + length, prefix, this.#budget);
      this.#partialPrefixBytes = 0;
      offset = bodyStart;
      if (this.#partial.complete) {
        const frame = this.#takePartial();
        onFrames(frame, 0, frame.length, 1);
      }
      runStart = offset;
    }
    if (count > 0) onFrames(chunk, runStart, offset, count);
  }

  #useFor(mode: 'messages' | 'frames'): void {
    if (this.#mode === mode) return;
    if (this.#mode !== undefined)
      throw new SocktuneError('SOCKTUNE_ERR_INVALID_OPTION', `this FrameDecoder serves ${this.#mode}, not ${mode}`);
    this.#mode = mode;
  }

  /** Reads a prefix that may be split across chunks; undefined when the chunk ended inside it. */
  #readPrefix(chunk: Buffer, offset: number): { length: number; bodyStart: number } | undefined {
    const size = this.#prefix === 'u32' ? 4 : this.#prefix === 'u16' ? 2 : MAX_VARINT_BYTES;
    let position = offset;
    while (position < chunk.length) {
      const byte = chunk[position++]!;
      this.#prefixBytes[this.#prefixSeen++] = byte;
      if (this.#prefix === 'varint') {
        if ((byte & 0x80) === 0) return { length: this.#takeVarint(), bodyStart: position };
        if (this.#prefixSeen === MAX_VARINT_BYTES)
          throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'varint length prefix longer than 5 bytes');
      } else if (this.#prefixSeen === size) {
        const bytes = this.#prefixBytes;
        const length =
          size === 4 ? ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0 : (bytes[0]! << 8) | bytes[1]!;
        this.#prefixSeen = 0;
        return { length, bodyStart: position };
      }
    }
    return undefined;
  }

  #takeVarint(): number {
    let length = 0;
    for (let i = 0; i < this.#prefixSeen; i++) length += (this.#prefixBytes[i]! & 0x7f) * 2 ** (7 * i);
    this.#prefixSeen = 0;
    if (length > 0xffff_ffff) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'varint length prefix beyond 32 bits');
    return length;
  }

  #checkLength(length: number): void {
    if (length > this.#maxMessageSize) {
      throw new SocktuneError('SOCKTUNE_ERR_FRAME_TOO_LARGE', `message of ${length} bytes is over maxMessageSize ${this.#maxMessageSize}`);
    }
  }

  /** Gives back the budget a half-gathered message holds: call when the connection is gone. */
  dispose(): void {
    this.#partial?.release();
    this.#partial = undefined;
  }

  /** Call at the end of the stream: a frame cut short is SOCKTUNE_ERR_PROTOCOL. */
  end(): void {
    if (!this.atBoundary) {
      const have = this.#partial === undefined ? this.#prefixSeen : this.#partialPrefixBytes + this.#partial.filled;
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `stream ended inside a frame (${have} bytes of it received)`);
    }
  }
}
