import { SocktuneError } from '../core/errors.ts';
import { DEFAULT_MAX_MESSAGE_SIZE, prefixLength, writePrefix, type PrefixKind } from './length-prefix.ts';

export interface FrameEncoderOptions {
  /** @default 'u32' */
  prefix?: PrefixKind;
  /** @default 16 MiB */
  maxMessageSize?: number;
  /** Messages up to this size are copied next to their prefix; larger ones are passed by reference (writev). @default 4096 */
  copyThreshold?: number;
  /** Size of each slab small messages are gathered in. @default 65536 */
  slabSize?: number;
}

/**
 * Gathers framed messages into few large chunks for one write/writev: small messages are copied
 * into a slab (a copy is far cheaper than a write per message), large ones go by reference. The
 * slab only moves forward, so chunks already taken stay valid until written.
 */
export class FrameEncoder {
  readonly #prefix: PrefixKind;
  readonly #maxMessageSize: number;
  readonly #copyThreshold: number;
  readonly #slabSize: number;
  #slab: Buffer;
  #slabOffset = 0;
  #chunkStart = 0;
  #chunks: Buffer[] = [];
  #queuedBytes = 0;
  #queuedMessages = 0;

  constructor(options: FrameEncoderOptions = {}) {
    this.#prefix = options.prefix ?? 'u32';
    this.#maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#copyThreshold = options.copyThreshold ?? 4096;
    this.#slabSize = options.slabSize ?? 64 * 1024;
    this.#slab = Buffer.allocUnsafe(this.#slabSize);
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  get queuedMessages(): number {
    return this.#queuedMessages;
  }

  add(message: Uint8Array): void {
    const length = message.length;
    if (length > this.#maxMessageSize) {
      throw new SocktuneError('SOCKTUNE_ERR_FRAME_TOO_LARGE', `message of ${length} bytes is over maxMessageSize ${this.#maxMessageSize}`);
    }
    if (this.#prefix === 'u32' && length <= this.#copyThreshold) return this.#addSmallU32(message, length);
    const header = prefixLength(this.#prefix, length);
    const copied = length <= this.#copyThreshold;
    this.#reserve(copied ? header + length : header);
    this.#slabOffset = writePrefix(this.#prefix, length, this.#slab, this.#slabOffset);
    if (copied) {
      this.#slab.set(message, this.#slabOffset);
      this.#slabOffset += length;
    } else {
      this.#closeChunk();
      this.#chunks.push(Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, length));
    }
    this.#queuedBytes += header + length;
    this.#queuedMessages++;
  }

  /** The common case: a small message behind a u32 prefix, the prefix written in place. */
  #addSmallU32(message: Uint8Array, length: number): void {
    if (this.#slabOffset + 4 + length > this.#slab.length) this.#reserve(4 + length);
    const slab = this.#slab;
    const offset = this.#slabOffset;
    slab[offset] = length >>> 24;
    slab[offset + 1] = (length >>> 16) & 0xff;
    slab[offset + 2] = (length >>> 8) & 0xff;
    slab[offset + 3] = length & 0xff;
    slab.set(message, offset + 4);
    this.#slabOffset = offset + 4 + length;
    this.#queuedBytes += 4 + length;
    this.#queuedMessages++;
  }

  #reserve(bytes: number): void {
    if (this.#slabOffset + bytes <= this.#slab.length) return;
    this.#closeChunk();
    this.#slab = Buffer.allocUnsafe(Math.max(this.#slabSize, bytes));
    this.#slabOffset = 0;
    this.#chunkStart = 0;
  }

  #closeChunk(): void {
    if (this.#slabOffset > this.#chunkStart) this.#chunks.push(this.#slab.subarray(this.#chunkStart, this.#slabOffset));
    this.#chunkStart = this.#slabOffset;
  }

  /** Everything queued, as chunks to write in order; the encoder starts empty again. */
  take(): Buffer[] {
    this.#closeChunk();
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#queuedBytes = 0;
    this.#queuedMessages = 0;
    return chunks;
  }
}
