import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import { boolean, definedOnly, integer, oneOf, validateFields, type FieldCheck } from '../../core/validate.ts';
import { FrameEncoder } from '../../framing/frame-encoder.ts';
import { DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, PREFIX_KINDS, type PrefixKind } from '../../framing/length-prefix.ts';
import type { ByteBudget } from '../../framing/partial-message.ts';

export interface MessageOptions {
  /** Length prefix: big-endian u32, u16, or varint. @default 'u32' */
  prefix?: PrefixKind;
  /** Largest message either way; a longer one closes the connection with SOCKTUNE_ERR_FRAME_TOO_LARGE. @default 16 MiB */
  maxMessageSize?: number;
  /** Queued outgoing bytes above which send() returns false (wait for 'drain'). @default 1 MiB */
  highWaterMark?: number;
  /** Queued outgoing bytes never exceeded: past it `overflow` decides. @default 16 MiB */
  maxQueuedBytes?: number;
  /**
   * At maxQueuedBytes: 'error' closes the connection with SOCKTUNE_ERR_SLOW_CONSUMER, 'drop' drops the message and counts it.
   * @default 'error'
   */
  overflow?: 'error' | 'drop';
  /** 'auto' flushes once per tick; a number also flushes every N messages. @default 'auto' */
  batch?: 'auto' | number;
  /** Queued bytes that trigger a flush at once instead of at the end of the tick. @default 262144 */
  flushThreshold?: number;
  /** Stop reading while send() is over highWaterMark, so a peer that does not read cannot grow our queue. @default true */
  pauseReadsWhileBackpressured?: boolean;
}

export const MESSAGE_DEFAULTS = Object.freeze({
  prefix: 'u32',
  maxMessageSize: DEFAULT_MAX_MESSAGE_SIZE,
  highWaterMark: 1024 * 1024,
  maxQueuedBytes: 16 * 1024 * 1024,
  overflow: 'error',
  batch: 'auto',
  flushThreshold: 256 * 1024,
  pauseReadsWhileBackpressured: true,
});

const batchCheck: FieldCheck = (value) =>
  value === 'auto' || (Number.isSafeInteger(value) && (value as number) >= 1) ? undefined : "'auto' or a positive integer";

export const MESSAGE_OPTION_FIELDS = Object.freeze({
  prefix: oneOf(PREFIX_KINDS),
  maxMessageSize: integer(0, 0xffff_ffff),
  highWaterMark: integer(1, 2 ** 40),
  maxQueuedBytes: integer(1, 2 ** 40),
  overflow: oneOf(['error', 'drop']),
  batch: batchCheck,
  flushThreshold: integer(1, 2 ** 40),
  pauseReadsWhileBackpressured: boolean,
});

export interface MessageStats {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  flushes: number;
  /** Messages per flush on average: how well small sends were coalesced. */
  averageBatch: number;
  dropped: number;
}

/**
 * Length-prefixed messages over a stream socket. Sends are gathered and flushed once per tick
 * (or at a size threshold) as one write/writev; received messages are handed out as views of the
 * read chunk where they lie whole. Memory stays bounded both ways: send() reports backpressure,
 * a hard cap ends slow consumers, and reading pauses while the queue is full.
 *
 * Events: 'message' (Buffer, a view valid during the call), 'drain', 'end', 'error' (SocktuneError), 'close'.
 */
export class MessageSocket extends EventEmitter {
  readonly socket: Socket;
  readonly options: Readonly<Required<MessageOptions>>;
  readonly #decoder: FrameDecoder;
  readonly #encoder: FrameEncoder;
  readonly #stats = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, flushes: 0, dropped: 0 };
  #flushScheduled = false;
  /** options.flushThreshold and options.batch as numbers, read for every message sent. */
  readonly #flushThreshold: number;
  readonly #flushEvery: number;
  #pausedForBackpressure = false;
  /** Messages handed to the socket whose write has not completed yet. */
  #inFlightMessages = 0;
  /** Whether handed-out views point into a buffer the socket reuses (then iteration must copy). */
  readonly #reusedReadBuffer: boolean;

  /**
   * `readsFrom: 'onread'` when the socket was made with Node's `onread` into a reused buffer and its
   * callback calls feed(); then received views die with the callback, so every sent message is
   * copied (one might be such a view). 'data': the socket's 'data' events feed the decoder.
   * `budget`: memory for messages split across reads, shared with the server's other connections.
   */
  constructor(
    socket: Socket,
    options: MessageOptions = {},
    { readsFrom = 'data', budget }: { readsFrom?: 'data' | 'onread'; budget?: ByteBudget } = {},
  ) {
    super();
    validateFields(options, MESSAGE_OPTION_FIELDS, 'options');
    this.socket = socket;
    this.options = Object.freeze({ ...MESSAGE_DEFAULTS, ...definedOnly(options) });
    this.#flushThreshold = this.options.flushThreshold;
    this.#flushEvery = this.options.batch === 'auto' ? Infinity : this.options.batch;
    this.#decoder = new FrameDecoder({ prefix: this.options.prefix, maxMessageSize: this.options.maxMessageSize, budget });
    this.#encoder = new FrameEncoder({
      prefix: this.options.prefix,
      maxMessageSize: this.options.maxMessageSize,
      ...(readsFrom === 'onread' ? { copyThreshold: Infinity } : {}),
    });
    this.#reusedReadBuffer = readsFrom === 'onread';
    if (readsFrom === 'data') socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('drain', () => this.#onSocketDrain());
    // Our own failures (#fail) reach the socket's listeners with their code; here they were told already.
    socket.on(
      'error',
      (error: NodeJS.ErrnoException) =>
        error instanceof SocktuneError ||
        this.emit(
          'error',
          new SocktuneError('SOCKTUNE_ERR_PEER_GONE', `connection failed: ${error.code ?? error.message}`, {
            cause: error,
            ...(error.code ? { errno: error.code } : {}),
          }),
        ),
    );
    socket.on('close', () => {
      this.#decoder.dispose();
      this.emit('close');
    });
  }

  /** Feeds received bytes; for sockets read through `onread`. */
  feed(chunk: Buffer): void {
    this.#stats.bytesIn += chunk.length;
    let inListener = false;
    try {
      this.#decoder.push(chunk, (message) => {
        this.#stats.messagesIn++;
        inListener = true;
        this.emit('message', message);
        inListener = false;
      });
    } catch (error) {
      // The decoder throws only SocktuneErrors about the bytes; a listener's own exception is the application's, not the peer's.
      this.#fail(inListener ? listenerFailure(error) : (error as SocktuneError));
    }
  }

  #onEnd(): void {
    try {
      this.#decoder.end();
    } catch (error) {
      this.#fail(error as SocktuneError);
      return;
    }
    try {
      this.emit('end');
    } catch (error) {
      this.#fail(listenerFailure(error));
    }
  }

  #fail(error: SocktuneError): void {
    this.emit('error', error);
    this.socket.destroy(error);
  }

  /** Bytes waiting to be written: queued here and in the socket. */
  get queuedBytes(): number {
    return this.#encoder.queuedBytes + this.socket.writableLength;
  }

  /** Queues one message; false means over highWaterMark (wait for 'drain') or, once this side has ended, that it was not sent. */
  send(message: Uint8Array): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    if (this.queuedBytes + message.length > this.options.maxQueuedBytes) return this.#overflow(message.length);
    this.#encoder.add(message);
    if (!this.#flushIfDue()) this.#scheduleFlush();
    return this.#underHighWaterMark();
  }

  /**
   * Queues messages as send() would, one by one (the same caps, flushes and overflow rule), with
   * the socket's state read once per batch instead of once per message: the cheaper way to send
   * many small messages. False as for send(), after the whole batch.
   */
  sendBatch(messages: readonly Uint8Array[]): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    const { maxQueuedBytes } = this.options;
    let socketQueued = this.socket.writableLength;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      if (this.#encoder.queuedBytes + socketQueued + message.length > maxQueuedBytes) {
        this.#overflow(message.length);
        if (this.socket.destroyed) return false;
        continue;
      }
      this.#encoder.add(message);
      if (this.#flushIfDue()) socketQueued = this.socket.writableLength;
    }
    if (this.#encoder.queuedMessages > 0) this.#scheduleFlush();
    return this.#underHighWaterMark();
  }

  #overflow(length: number): boolean {
    if (this.options.overflow === 'drop') {
      this.#stats.dropped++;
      return false;
    }
    this.#fail(
      new SocktuneError(
        'SOCKTUNE_ERR_SLOW_CONSUMER',
        `peer is not reading: ${this.queuedBytes + length} bytes would be queued, over maxQueuedBytes ${this.options.maxQueuedBytes}`,
      ),
    );
    return false;
  }

  /** Flushes now when the queue has reached `flushThreshold` bytes or `batch` messages; true when it did. */
  #flushIfDue(): boolean {
    if (this.#encoder.queuedBytes < this.#flushThreshold && this.#encoder.queuedMessages < this.#flushEvery) return false;
    this.flush();
    return true;
  }

  /** Otherwise what is queued goes out once, at the end of the tick. */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => this.flush());
  }

  #underHighWaterMark(): boolean {
    if (this.queuedBytes < this.options.highWaterMark) return true;
    if (this.options.pauseReadsWhileBackpressured && !this.#pausedForBackpressure) {
      this.#pausedForBackpressure = true;
      this.socket.pause();
    }
    return false;
  }

  /** Writes everything queued now, as one write or one writev. */
  flush(): void {
    this.#flushScheduled = false;
    const messages = this.#encoder.queuedMessages;
    if (messages === 0 || this.socket.destroyed || this.socket.writableEnded) return;
    const chunks = this.#encoder.take();
    this.#stats.flushes++;
    this.#stats.messagesOut += messages;
    this.#inFlightMessages += messages;
    const written = (error?: Error | null): void => {
      if (!error) this.#inFlightMessages -= messages;
    };
    if (chunks.length === 1) {
      this.#stats.bytesOut += chunks[0]!.length;
      this.socket.write(chunks[0]!, written);
      return;
    }
    this.socket.cork();
    for (let i = 0; i < chunks.length; i++) {
      this.#stats.bytesOut += chunks[i]!.length;
      this.socket.write(chunks[i]!, i === chunks.length - 1 ? written : undefined);
    }
    this.socket.uncork();
  }

  #onSocketDrain(): void {
    if (this.queuedBytes >= this.options.highWaterMark) return;
    if (this.#pausedForBackpressure) {
      this.#pausedForBackpressure = false;
      this.socket.resume();
    }
    this.emit('drain');
  }

  /** Stops reading (the peer's sends back up in the kernel), e.g. while the handler catches up. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.#pausedForBackpressure) this.socket.resume();
  }

  stats(): MessageStats {
    const { messagesOut, flushes } = this.#stats;
    return { ...this.#stats, averageBatch: flushes === 0 ? 0 : messagesOut / flushes };
  }

  /**
   * Flushes what is queued, half-closes, and waits until the socket closes (at most `timeoutMs`,
   * then it is destroyed). `unsent` counts messages that never reached the kernel.
   */
  close(timeoutMs = 5000): Promise<{ unsent: number }> {
    this.flush();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        resolve({ unsent: this.#encoder.queuedMessages + this.#inFlightMessages });
      };
      const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
      if (this.socket.closed) return finish();
      this.socket.once('close', finish);
      this.socket.end();
    });
  }

  /**
   * Messages as an async iterable. Reading pauses while more than highWaterMark bytes wait to be
   * consumed; messages are copied only when the socket reuses its read buffer.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    const queue: Buffer[] = [];
    let queuedBytes = 0;
    let wake: (() => void) | undefined;
    let done = false;
    let failure: Error | undefined;
    const onMessage = (message: Buffer): void => {
      const kept = this.#reusedReadBuffer ? Buffer.from(message) : message;
      queue.push(kept);
      queuedBytes += kept.length;
      if (queuedBytes > this.options.highWaterMark) this.socket.pause();
      wake?.();
    };
    const onDone = (): void => {
      done = true;
      wake?.();
    };
    const onError = (error: Error): void => {
      failure = error;
      onDone();
    };
    this.on('message', onMessage);
    this.once('end', onDone);
    this.once('close', onDone);
    this.once('error', onError);
    try {
      for (;;) {
        const message = queue.shift();
        if (message !== undefined) {
          queuedBytes -= message.length;
          if (queuedBytes <= this.options.highWaterMark / 2 && !this.#pausedForBackpressure) this.socket.resume();
          yield message;
          continue;
        }
        if (failure) throw failure;
        if (done) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      this.off('message', onMessage);
      this.off('end', onDone);
      this.off('close', onDone);
      this.off('error', onError);
    }
  }
}

function listenerFailure(error: unknown): SocktuneError {
  const reason = error instanceof Error ? error.message : String(error);
  return new SocktuneError('SOCKTUNE_ERR_HANDLER', `a listener of this MessageSocket threw: ${reason}`, { cause: error });
}
