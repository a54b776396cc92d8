import { SocktuneError } from '../core/errors.ts';

/** The control channel's default cap on one JSON line, checked before anything is buffered past it. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;

const NEWLINE = 0x0a;

/**
 * Incremental decoder for newline-delimited JSON. Whole lines inside one chunk are parsed from
 * views of it; only a line split across chunks is gathered, and never past `maxLineBytes`.
 */
export class JsonLinesDecoder {
  readonly #maxLineBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(maxLineBytes: number = DEFAULT_MAX_LINE_BYTES) {
    this.#maxLineBytes = maxLineBytes;
  }

  /** Returns every JSON value completed by this chunk, in order. */
  push(chunk: Buffer): unknown[] {
    const values: unknown[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE, start); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, end);
      this.#checkLength(this.#pendingBytes + piece.length);
      const line = this.#pendingBytes === 0 ? piece : Buffer.concat([...this.#pending, piece]);
      this.#pending = [];
      this.#pendingBytes = 0;
      values.push(parseLine(line));
      start = end + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.#checkLength(this.#pendingBytes + rest.length);
      // Copied: the caller may reuse `chunk` for its next read.
      this.#pending.push(Buffer.from(rest));
      this.#pendingBytes += rest.length;
    }
    return values;
  }

  /** Bytes of an unfinished line; non-zero at the end of a stream means it was cut short. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  #checkLength(length: number): void {
    if (length > this.#maxLineBytes) {
      throw new SocktuneError('SOCKTUNE_ERR_FRAME_TOO_LARGE', `JSON line longer than ${this.#maxLineBytes} bytes`);
    }
  }
}

function parseLine(line: Buffer): unknown {
  try {
    return JSON.parse(line.toString('utf8'));
  } catch {
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `not a JSON line: ${JSON.stringify(line.subarray(0, 80).toString('utf8'))}`);
  }
}

export function encodeJsonLine(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`);
}
