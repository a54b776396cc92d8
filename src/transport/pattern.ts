/**
 * The deterministic byte stream the `source` service sends and `--verify` checks: the byte at
 * stream offset n is n mod 251. A prime period keeps it misaligned with every power-of-two size,
 * so a dropped, repeated or reordered block shows up.
 */
export const PATTERN_PERIOD = 251;

export function patternByte(offset: number): number {
  return offset % PATTERN_PERIOD;
}

/** One buffer from which any chunk of the pattern at any offset is a zero-copy view. */
export class PatternSource {
  readonly #buffer: Buffer;
  readonly #chunkSize: number;
  #offset = 0;

  constructor(chunkSize: number) {
    this.#chunkSize = chunkSize;
    this.#buffer = Buffer.allocUnsafe(chunkSize + PATTERN_PERIOD);
    for (let i = 0; i < this.#buffer.length; i++) this.#buffer[i] = i % PATTERN_PERIOD;
  }

  next(): Buffer {
    const start = this.#offset % PATTERN_PERIOD;
    this.#offset += this.#chunkSize;
    return this.#buffer.subarray(start, start + this.#chunkSize);
  }
}

/** Counts bytes that break the pattern, chunk by chunk, without copying. */
export class PatternVerifier {
  #offset = 0;
  #corrupted = 0;

  check(chunk: Uint8Array): void {
    let expected = this.#offset % PATTERN_PERIOD;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== expected) this.#corrupted++;
      expected = expected === PATTERN_PERIOD - 1 ? 0 : expected + 1;
    }
    this.#offset += chunk.length;
  }

  get bytesChecked(): number {
    return this.#offset;
  }

  get bytesCorrupted(): number {
    return this.#corrupted;
  }
}
