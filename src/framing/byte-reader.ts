import { SocktuneError } from '../core/errors.ts';

/**
 * Sequential reads over a byte stream for protocols that alternate fixed-size fields and
 * length-prefixed bodies (iperf3's control channel): push chunks in, await exact byte counts out.
 * Holds at most `maxBuffered` unread bytes; one pending read at a time.
 */
export class ByteReader {
  readonly #maxBuffered: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #waiting: { count: number; resolve: (bytes: Buffer) => void; reject: (error: Error) => void } | undefined;
  #ended: Error | undefined;

  constructor(maxBuffered = 1024 * 1024) {
    this.#maxBuffered = maxBuffered;
  }

  push(chunk: Buffer): void {
    if (this.#ended) return;
    if (this.#buffered + chunk.length > this.#maxBuffered) {
      // What was held is dropped too: after an overflow no read may succeed, with any bytes.
      this.#chunks = [];
      this.#buffered = 0;
      this.end(new SocktuneError('SOCKTUNE_ERR_FRAME_TOO_LARGE', `more than ${this.#maxBuffered} unread bytes on a control channel`));
      return;
    }
    this.#buffered += chunk.length;
    // Copied: the caller may reuse its buffer after push() returns.
    this.#chunks.push(Buffer.from(chunk));
    this.#deliver();
  }

  /** No more bytes will come: a pending or later read fails with `error`. */
  end(error: Error = new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'the peer closed the connection')): void {
    this.#ended ??= error;
    const waiting = this.#waiting;
    if (waiting && this.#buffered < waiting.count) {
      this.#waiting = undefined;
      waiting.reject(this.#ended);
    }
  }

  get buffered(): number {
    return this.#buffered;
  }

  /** Everything received and not yet read, for a caller that stops reading through this reader. */
  drain(): Buffer {
    const rest = Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#buffered = 0;
    return rest;
  }

  /** Resolves with exactly `count` bytes, in order. */
  read(count: number): Promise<Buffer> {
    if (this.#waiting) return Promise.reject(new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'ByteReader: one read at a time'));
    if (count > this.#maxBuffered)
      return Promise.reject(
        new SocktuneError('SOCKTUNE_ERR_FRAME_TOO_LARGE', `a ${count}-byte field is over the ${this.#maxBuffered}-byte limit`),
      );
    return new Promise((resolve, reject) => {
      this.#waiting = { count, resolve, reject };
      this.#deliver();
      if (this.#waiting && this.#ended) this.end(this.#ended);
    });
  }

  #deliver(): void {
    const waiting = this.#waiting;
    if (!waiting || this.#buffered < waiting.count) return;
    this.#waiting = undefined;
    const joined = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const bytes = joined.subarray(0, waiting.count);
    const rest = joined.subarray(waiting.count);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    waiting.resolve(bytes);
  }
}
