/** Bytes a stream may hold for a slow reader before new lines are dropped and counted. */
export const MAX_QUEUED_LOG_BYTES = 4 * 1024 * 1024;

/**
 * One line writer for stdout or stderr that cannot hurt the process: when the reader is gone
 * (EPIPE: a `| head`, a restarted log shipper, a closed terminal) writing stops, and when it reads
 * too slowly (a full pipe) lines are dropped instead of queued without bound, with one line saying
 * how many once it catches up.
 */
export class LineWriter {
  readonly #stream: NodeJS.WritableStream & { writableLength: number };
  #closed = false;
  #dropped = 0;

  constructor(stream: NodeJS.WritableStream & { writableLength: number }) {
    this.#stream = stream;
    // Without a listener, a write error (EPIPE) is an uncaught exception that ends the process.
    stream.on('error', () => {
      this.#closed = true;
    });
  }

  /** Lines dropped so far because the reader was slow. */
  get dropped(): number {
    return this.#dropped;
  }

  write(line: string): void {
    if (this.#closed) return;
    if (this.#stream.writableLength > MAX_QUEUED_LOG_BYTES) {
      this.#dropped++;
      return;
    }
    const notice = this.#dropped === 0 ? '' : `socktune: ${this.#dropped} lines dropped: this output was not read fast enough\n`;
    this.#dropped = 0;
    try {
      this.#stream.write(`${notice}${line}\n`);
    } catch {
      this.#closed = true;
    }
  }
}
