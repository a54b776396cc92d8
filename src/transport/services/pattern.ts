/**
 * The deterministic byte stream the `source` service sends and `--verify` checks: the byte at
 * stream offset n is n mod 251. A prime period keeps it misaligned with every power-of-two size,
 * so a dropped, repeated or reordered block shows up.
 */
export const PATTERN_PERIOD = 251;

export function patternByte(offset: number): number {
  return offset % PATTERN_PERIOD;
}

/** The pattern's first `length` bytes (stream offsets 0 to length − 1). */
export function patternBytes(length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let offset = 0; offset < length; offset++) bytes[offset] = offset % PATTERN_PERIOD;
  return bytes;
}

/** Pattern buffers by chunk size, shared by every source of this thread: a connection costs no chunk of its own. */
const patternBuffers = new Map<number, Buffer>();
/** Chunk sizes kept at once; a source still using an older one keeps its own reference. */
const KEPT_SIZES = 4;

function patternBuffer(chunkSize: number): Buffer {
  let buffer = patternBuffers.get(chunkSize);
  if (buffer === undefined) {
    buffer = patternBytes(chunkSize + PATTERN_PERIOD);
    if (patternBuffers.size >= KEPT_SIZES) patternBuffers.delete(patternBuffers.keys().next().value!);
    patternBuffers.set(chunkSize, buffer);
  }
  return buffer;
}

/** Chunks of the pattern at any offset, as zero-copy views of one read-only buffer. */
export class PatternSource {
  readonly #buffer: Buffer;
  readonly #chunkSize: number;
  #offset = 0;

  constructor(chunkSize: number) {
    this.#chunkSize = chunkSize;
    this.#buffer = patternBuffer(chunkSize);
  }

  next(): Buffer {
    const start = this.#offset % PATTERN_PERIOD;
    this.#offset += this.#chunkSize;
    return this.#buffer.subarray(start, start + this.#chunkSize);
  }
}

const VERIFY_SLICE = 64 * 1024;
let reference: Buffer | undefined;

/** Counts bytes that break the pattern; a whole slice that matches costs one native compare. */
export class PatternVerifier {
  #offset = 0;
  #corrupted = 0;

  /** Returns how many bytes of this chunk break the pattern. */
  check(chunk: Uint8Array): number {
    const before = this.#corrupted;
    reference ??= patternBytes(VERIFY_SLICE + PATTERN_PERIOD);
    for (let at = 0; at < chunk.length; at += VERIFY_SLICE) {
      const slice = chunk.subarray(at, Math.min(chunk.length, at + VERIFY_SLICE));
      const phase = (this.#offset + at) % PATTERN_PERIOD;
      const expected = reference.subarray(phase, phase + slice.length);
      if (Buffer.compare(slice, expected) !== 0) {
        for (let i = 0; i < slice.length; i++) if (slice[i] !== expected[i]) this.#corrupted++;
      }
    }
    this.#offset += chunk.length;
    return this.#corrupted - before;
  }

  get bytesChecked(): number {
    return this.#offset;
  }

  get bytesCorrupted(): number {
    return this.#corrupted;
  }
}
