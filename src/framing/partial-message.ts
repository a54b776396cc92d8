/**
 * A message that spans reads, gathered into a buffer of its exact size: allocated only once its
 * length has passed the decoder's limits, filled chunk by chunk.
 */
export class PartialMessage {
  readonly buffer: Buffer;
  filled: number;

  /** `prefill`: bytes of the message already seen (a header that must stay part of it). */
  constructor(length: number, prefill?: Buffer) {
    this.buffer = Buffer.allocUnsafe(length);
    this.filled = prefill ? prefill.copy(this.buffer, 0) : 0;
  }

  /** Copies what the message still lacks from `chunk` at `offset`; returns how many bytes it took. */
  fill(chunk: Buffer, offset: number): number {
    const take = Math.min(this.buffer.length - this.filled, chunk.length - offset);
    chunk.copy(this.buffer, this.filled, offset, offset + take);
    this.filled += take;
    return take;
  }

  get complete(): boolean {
    return this.filled === this.buffer.length;
  }
}
