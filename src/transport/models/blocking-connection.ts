import { countedErrorOf, SocktuneError, type CountedError } from '../../core/errors.ts';
import { LINUX, libc } from '../../core/libc.ts';
import { closeFd, errnoName, pendingSocketError, setBlocking, setBlockingTimeouts } from '../../core/socket-syscalls.ts';
import type { ByteBudget } from '../../framing/partial-message.ts';
import type { SharedCounters } from '../server/metrics.ts';
import type { SendBudget } from '../io/send-budget.ts';
import { FrameEncoder } from '../../framing/frame-encoder.ts';
import { FrameDecoder } from '../../framing/length-prefix.ts';
import { PatternSource, PatternVerifier } from '../services/pattern.ts';
import type { BuiltinService } from '../server/options.ts';

/** Slot of the shared flags set while connections wait for a thread (thread-per-conn). */
export const WAITING_FOR_THREADS = 1;
/** How long a connection may stay quiet in its thread while others wait for one. */
export const PRESSURE_IDLE_MS = 5000;

/** How long a blocked recv or send waits before the thread looks at the stop flag again. */
const WAIT_SLICE_MS = 50;

/**
 * The classic blocking style: the thread waits in the kernel for each read and write, one system
 * call each, as a C server would. A thread blocked in a foreign call cannot be stopped, so the
 * socket's receive and send timeouts (SO_RCVTIMEO, SO_SNDTIMEO) end every wait after a short slice;
 * between slices the thread checks a flag the main thread sets on close, and its idle limits.
 */
export class BlockingConnection {
  readonly #fd: number;
  readonly #stop: Int32Array;
  /** thread-per-conn: the flags the main thread sets to take a thread back, and this thread's slot in them. */
  readonly #giveUp: Int32Array | undefined;
  readonly #giveUpSlot: number;
  readonly #counters: SharedCounters;
  readonly #pollfd = Buffer.alloc(8);
  /** The two calls of every request, looked up once. */
  readonly #recv = libc().recv;
  readonly #send = libc().send;
  #closed = false;

  readonly #idleTimeout: number;
  readonly #sendBudget: SendBudget | undefined;
  /** Memory for messages split across reads, shared with the server's other connections: give it to decoders. */
  readonly bufferBudget: ByteBudget | undefined;

  /** Bytes read before this thread got the connection (after its token): what recv returns first. */
  #first: Uint8Array | undefined;

  constructor(
    fd: number,
    stop: Int32Array,
    counters: SharedCounters,
    limits: {
      idleTimeout?: number;
      sendBudget?: SendBudget | undefined;
      bufferBudget?: ByteBudget | undefined;
      first?: Uint8Array | undefined;
      giveUp?: { flags: Int32Array; slot: number } | undefined;
    } = {},
  ) {
    this.#fd = fd;
    this.#stop = stop;
    this.#counters = counters;
    this.#idleTimeout = limits.idleTimeout ?? 0;
    this.#sendBudget = limits.sendBudget;
    this.bufferBudget = limits.bufferBudget;
    this.#first = limits.first !== undefined && limits.first.length > 0 ? limits.first : undefined;
    this.#giveUp = limits.giveUp?.flags;
    this.#giveUpSlot = limits.giveUp?.slot ?? 0;
    this.#pollfd.writeInt32LE(fd, 0);
    setBlocking(fd, true);
    setBlockingTimeouts(fd, WAIT_SLICE_MS);
  }

  get stopRequested(): boolean {
    return Atomics.load(this.#stop, 0) !== 0;
  }

  /** Before each call and between wait slices: the server closes, or the pool takes this thread back for another client. */
  #checkStop(): void {
    if (this.stopRequested) throw new SocktuneError('SOCKTUNE_ERR_CLOSE_TIMEOUT', 'server closing: connection stopped');
    if (this.#giveUp !== undefined && Atomics.load(this.#giveUp, this.#giveUpSlot) !== 0) {
      throw new SocktuneError('SOCKTUNE_ERR_MAX_THREADS', 'thread taken back for a client holding fewer threads than its share');
    }
  }

  /** Between two slices of a wait: stop asked, idle too long, or quiet while others wait for a thread. */
  #checkWaiting(idleSince: number): void {
    this.#checkStop();
    const idle = performance.now() - idleSince;
    if (this.#idleTimeout > 0 && idle > this.#idleTimeout) {
      throw new SocktuneError('SOCKTUNE_ERR_TIMEOUT', `connection idle for ${this.#idleTimeout} ms`);
    }
    // Others wait for a thread: a connection that stays quiet gives this one up.
    if (Atomics.load(this.#stop, WAITING_FOR_THREADS) !== 0 && idle > PRESSURE_IDLE_MS) {
      throw new SocktuneError('SOCKTUNE_ERR_TIMEOUT', `connection quiet for ${PRESSURE_IDLE_MS} ms while others wait for a thread`);
    }
  }

  #error(call: string, errno: number): SocktuneError {
    const name = errnoName(errno);
    const code = name === 'ECONNRESET' || name === 'EPIPE' ? 'SOCKTUNE_ERR_PEER_GONE' : 'SOCKTUNE_ERR_SOCKOPT';
    return new SocktuneError(code, `${call} failed: ${name}`, { errno: name });
  }

  /**
   * recv/send returned -1. errno says why, but the runtime can overwrite errno between the call and
   * its reading (it makes calls of its own on this thread), so anything but "try again" is checked
   * against the socket itself — its pending error and its poll state — before the connection is
   * given up; an errno the socket does not confirm means: wait and try again.
   */
  #afterFailure(call: string, events: number, idleSince: number): void {
    const errno = libc().errno();
    if (errno !== LINUX.EAGAIN && errno !== LINUX.EINTR) {
      const pending = pendingSocketError(this.#fd);
      if (pending !== 0) throw this.#error(call, pending);
      this.#pollfd.writeInt16LE(events, 4);
      this.#pollfd.writeInt16LE(0, 6);
      if (libc().poll(this.#pollfd, 1, 0) > 0) {
        const revents = this.#pollfd.readInt16LE(6);
        if (revents & (LINUX.POLLERR | LINUX.POLLNVAL)) throw this.#error(call, errno);
        if (call === 'send' && revents & LINUX.POLLHUP) throw this.#error(call, LINUX.EPIPE);
      }
    }
    this.#checkWaiting(idleSince);
  }

  /** Blocks until at least one byte arrives; 0 means the peer closed its side. */
  recv(buffer: Buffer): number {
    // A peer that never pauses never makes a wait time out: the stop flag is checked here too.
    this.#checkStop();
    if (this.#first !== undefined) return this.#takeFirst(buffer);
    // Idle time counts from the first slice that ended empty (a slice late at most): the clock is read only when a wait times out.
    let idleSince = -1;
    for (;;) {
      const count = Number(this.#recv(this.#fd, buffer, buffer.length, 0));
      if (count >= 0) {
        this.#counters.addBytesIn(count);
        return count;
      }
      if (idleSince < 0) idleSince = performance.now();
      this.#afterFailure('recv', LINUX.POLLIN, idleSince);
    }
  }

  #takeFirst(buffer: Buffer): number {
    const first = this.#first!;
    const count = Math.min(first.length, buffer.length);
    buffer.set(first.subarray(0, count));
    this.#first = count < first.length ? first.subarray(count) : undefined;
    this.#counters.addBytesIn(count);
    return count;
  }

  /** Blocks until the kernel has taken the first `length` bytes; with a send budget, each slice waits for its share first. */
  sendAll(data: Buffer, length = data.length): void {
    this.#checkStop();
    const budget = this.#sendBudget;
    if (budget === undefined) return this.#sendAll(data, length);
    for (let offset = 0; offset < length; offset += budget.maxWriteBytes) {
      const slice = data.subarray(offset, Math.min(length, offset + budget.maxWriteBytes));
      for (let wait = budget.tryTake(slice.length); wait > 0; wait = budget.tryTake(slice.length)) this.#sleep(wait);
      this.#sendAll(slice, slice.length);
    }
  }

  /** Sleeps this thread for `ms`, in slices so a stop request is seen. */
  #sleep(ms: number): void {
    const until = performance.now() + ms;
    for (let left = ms; left > 0; left = until - performance.now()) {
      this.#checkStop();
      Atomics.wait(this.#stop, 0, 0, Math.min(left, WAIT_SLICE_MS));
    }
  }

  /** The first `length` bytes of `data`; a send the kernel takes whole (the usual case) needs no view and no clock reading. */
  #sendAll(data: Buffer, length: number): void {
    let offset = 0;
    let idleSince = -1;
    while (offset < length) {
      const view = offset === 0 ? data : data.subarray(offset);
      const count = Number(this.#send(this.#fd, view, length - offset, LINUX.MSG_NOSIGNAL));
      if (count >= 0) {
        offset += count;
        this.#counters.addBytesOut(count);
        idleSince = -1;
        continue;
      }
      if (idleSince < 0) idleSince = performance.now();
      this.#afterFailure('send', LINUX.POLLOUT, idleSince);
    }
  }

  shutdownWrite(): void {
    libc().shutdown(this.#fd, LINUX.SHUT_WR);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.#fd);
  }
}

export type BlockingHandler = (connection: BlockingConnection) => void;

const READ_BUFFER_SIZE = 64 * 1024;

function blockingEcho(connection: BlockingConnection): void {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  for (let count = connection.recv(buffer); count > 0; count = connection.recv(buffer)) connection.sendAll(buffer, count);
}

function blockingDiscard(connection: BlockingConnection): void {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  while (connection.recv(buffer) > 0);
}

/** Without an event loop the thread cannot see the peer's FIN while sending; it sends until the peer resets or stop is asked. */
function blockingSource(chunkSize: number): BlockingHandler {
  return (connection) => {
    const pattern = new PatternSource(chunkSize);
    for (;;) connection.sendAll(pattern.next());
  };
}

function blockingVerify(counters: SharedCounters): BlockingHandler {
  return (connection) => {
    const buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
    const verifier = new PatternVerifier();
    for (let count = connection.recv(buffer); count > 0; count = connection.recv(buffer)) {
      counters.addBytesCorrupted(verifier.check(buffer.subarray(0, count)));
    }
  };
}

/** msg-sink: frames counted a run at a time, no object per message (see FrameDecoder.pushFrames). */
function blockingSink(counters: SharedCounters): BlockingHandler {
  const count = (_buffer: Buffer, _start: number, _end: number, frames: number): void => counters.addMessagesIn(frames);
  return (connection) => {
    const buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
    const decoder = new FrameDecoder({ budget: connection.bufferBudget });
    try {
      for (let read = connection.recv(buffer); read > 0; read = connection.recv(buffer))
        decoder.pushFrames(buffer.subarray(0, read), count);
      decoder.end();
    } finally {
      decoder.dispose();
    }
  };
}

/** Framed messages, blocking style: every message a read completes is answered in one send. */
function blockingMessageEcho(counters: SharedCounters): BlockingHandler {
  return (connection) => {
    const buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
    const decoder = new FrameDecoder({ budget: connection.bufferBudget });
    const encoder = new FrameEncoder({ copyThreshold: Infinity });
    try {
      for (let count = connection.recv(buffer); count > 0; count = connection.recv(buffer)) {
        let held = 0;
        try {
          decoder.push(buffer.subarray(0, count), (message) => {
            counters.addMessagesIn(1);
            // The echo waits for a peer that may not read: it holds room in the server's budget meanwhile.
            if (connection.bufferBudget !== undefined && !connection.bufferBudget.tryReserve(message.length)) {
              throw new SocktuneError(
                'SOCKTUNE_ERR_BUFFER_BUDGET',
                `no room to hold a ${message.length}-byte echo: the server's buffer budget is taken`,
              );
            }
            held += message.length;
            encoder.add(message);
          });
          for (const chunk of encoder.take()) connection.sendAll(chunk);
        } finally {
          connection.bufferBudget?.release(held);
        }
      }
      decoder.end();
    } finally {
      decoder.dispose();
    }
  };
}

export function blockingBuiltin(service: BuiltinService, sourceChunkSize: number, counters: SharedCounters): BlockingHandler {
  switch (service) {
    case 'echo':
      return blockingEcho;
    case 'discard':
      return blockingDiscard;
    case 'verify':
      return blockingVerify(counters);
    case 'source':
      return blockingSource(sourceChunkSize);
    case 'msg-echo':
      return blockingMessageEcho(counters);
    case 'msg-sink':
      return blockingSink(counters);
  }
}

export type BlockingOutcome = 'finished' | 'stopped' | { errorCode: CountedError };

/** Runs a handler to the end of its connection; errors from the peer end the connection, not the thread. */
export function runBlocking(handler: BlockingHandler, connection: BlockingConnection): BlockingOutcome {
  try {
    handler(connection);
    connection.shutdownWrite();
    return 'finished';
  } catch (error) {
    if (!(error instanceof SocktuneError)) throw error;
    return connection.stopRequested ? 'stopped' : { errorCode: countedErrorOf(error) };
  } finally {
    connection.close();
  }
}
