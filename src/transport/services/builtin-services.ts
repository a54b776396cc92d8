import { Socket } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import { timerDelay } from '../../core/timeout.ts';
import { closeFd, duplicateFd, tcpEstablished } from '../../core/socket-syscalls.ts';
import { fdOf } from '../io/fd.ts';
import type { SharedCounters } from '../server/metrics.ts';
import { PatternSource, PatternVerifier } from './pattern.ts';
import { FrameDecoder, type FrameRunHandler } from '../../framing/length-prefix.ts';
import { PacedWriter } from '../io/paced-writer.ts';
import { pumpWrites } from '../io/pump.ts';
import type { ByteBudget } from '../../framing/partial-message.ts';
import type { SendBudget } from '../io/send-budget.ts';
import type { BuiltinService, ReadHandler } from '../server/options.ts';

const READ_BUFFER_SIZE = 64 * 1024;
/**
 * The one read buffer of a thread's sinks (discard, verify, iperf3's streams): a bulk sender's
 * window is megabytes, and a larger read takes it in fewer system calls and callbacks (iperf3
 * reads 128 KiB). One per thread, so its size costs no memory per connection.
 */
const SHARED_READ_BUFFER_SIZE = 256 * 1024;

export interface ServiceContext {
  counters: SharedCounters;
  sourceChunkSize: number;
  /** Caps what the server sends, every connection and thread together (ServerOptions.maxSendRate). */
  sendBudget?: SendBudget | undefined;
  /**
   * Memory for messages split across reads, every connection together (ServerOptions.maxBufferedBytes), as this connection's client
   * draws on it.
   */
  bufferBudget: ByteBudget;
}

/** Reads of each socket copied to wait for the send budget, oldest first; a socket here reads no more. */
const waitingForBudget = new WeakMap<Socket, Buffer[]>();

/**
 * Paces a service that answers what it reads. While the server's budget is behind, a read is kept
 * (copied, its bytes held in the server's buffer budget) and reading stops until the budget has
 * caught up; then it is answered and what the answer wrote is charged. Nothing is booked ahead,
 * so a client that leaves leaves no debt; each answer may overdraw by what one read asks for
 * (echo, read handlers; msg-echo paces its answers with a PacedWriter instead).
 */
function answerPaced(socket: Socket, budget: SendBudget, memory: ByteBudget, view: Buffer, answer: (view: Buffer) => number): boolean {
  const waiting = waitingForBudget.get(socket);
  if (waiting === undefined && budget.behind() === 0) {
    budget.charge(answer(view));
    return true;
  }
  // Whoever resumed this socket meanwhile (a 'drain' handler of the service), it reads no further.
  socket.pause();
  if (!memory.tryReserve(view.length)) {
    socket.destroy(
      new SocktuneError('SOCKTUNE_ERR_BUFFER_BUDGET', `no room to keep a ${view.length}-byte read until the send budget allows its answer`),
    );
    return false;
  }
  if (waiting !== undefined) waiting.push(Buffer.from(view));
  else {
    waitingForBudget.set(socket, [Buffer.from(view)]);
    answerWhenAllowed(socket, budget, memory, answer);
  }
  return false;
}

function answerWhenAllowed(socket: Socket, budget: SendBudget, memory: ByteBudget, answer: (view: Buffer) => number): void {
  setTimeout(() => {
    const waiting = waitingForBudget.get(socket)!;
    // A client that left while its reads waited is owed nothing: its answers would only take the budget from others.
    if (socket.destroyed || (socket.remotePort !== undefined && !tcpEstablished(fdOf(socket)))) {
      waitingForBudget.delete(socket);
      for (const kept of waiting) memory.release(kept.length);
      return void socket.destroy();
    }
    while (waiting.length > 0 && budget.behind() === 0) {
      const kept = waiting.shift()!;
      memory.release(kept.length);
      budget.charge(answer(kept));
    }
    if (waiting.length > 0) return answerWhenAllowed(socket, budget, memory, answer);
    waitingForBudget.delete(socket);
    // A peer that does not read its answers is resumed by 'drain', not here: its queue must not grow.
    if (socket.writableLength < socket.writableHighWaterMark) socket.resume();
  }, timerDelay(budget.behind())).unref();
}

function resumeOnDrain(socket: Socket): void {
  socket.on('drain', () => {
    if (!waitingForBudget.has(socket)) socket.resume();
  });
}

/**
 * One read buffer for every socket of this thread whose service never keeps the bytes past the
 * callback (discard, verify, source): callbacks run one at a time, so sharing is safe, and an
 * idle connection costs no buffer of its own.
 */
let sharedReadBuffer: Buffer | undefined;

/**
 * Bytes read before the service started (after a connection token) are its first read. nextTick
 * runs once the caller has set the service up and before any read of the socket can arrive.
 */
function deliverFirst(first: Buffer | undefined, deliver: (view: Buffer) => void): void {
  if (first !== undefined) process.nextTick(deliver, first);
}

/** A socket that reads into the thread's shared buffer: `onData` sees each read as a view, valid during the call. */
export function readIntoSharedBuffer(fd: number, onData: (view: Buffer) => void, first?: Buffer): Socket {
  sharedReadBuffer ??= Buffer.allocUnsafe(SHARED_READ_BUFFER_SIZE);
  deliverFirst(first, onData);
  return new Socket({
    fd,
    readable: true,
    writable: true,
    onread: {
      buffer: sharedReadBuffer,
      callback: (bytesRead: number, view: Uint8Array) => {
        onData((view as Buffer).subarray(0, bytesRead));
        return true;
      },
    },
  });
}

/**
 * An accepted Node socket moved onto the shared buffer: its descriptor is duplicated (Node's own
 * wrapper cannot read into a reused buffer) and the wrapper destroyed. Throws when no descriptor is
 * left (EMFILE); the original socket is destroyed either way.
 */
export function moveToSharedBuffer(socket: Socket, onData: (view: Buffer) => void): Socket {
  const fd = duplicateFd(fdOf(socket));
  try {
    return readIntoSharedBuffer(fd, onData);
  } catch (error) {
    closeFd(fd);
    throw error;
  } finally {
    socket.destroy();
  }
}

/**
 * A user ReadHandler on the shared buffer: its callback sees each read as a view, valid during the
 * call. A handler that throws closes its connection only; what a read makes it send is paced.
 */
export function serveReads(
  fd: number,
  reader: ReadHandler,
  context: Pick<ServiceContext, 'sendBudget' | 'bufferBudget'>,
  first?: Buffer,
): Socket {
  let onRead: ((view: Buffer) => void) | undefined;
  const read = (view: Buffer): void => {
    if (socket.destroyed) return;
    try {
      onRead!(view);
    } catch (error) {
      socket.destroy(error as Error);
    }
  };
  // Only a paced server needs to know what a read made the handler write (bytesWritten walks the write queue).
  const answer = (view: Buffer): number => {
    const before = socket.bytesWritten;
    read(view);
    return socket.bytesWritten - before;
  };
  const budget = context.sendBudget;
  const socket = readIntoSharedBuffer(
    fd,
    budget === undefined ? read : (view) => void answerPaced(socket, budget, context.bufferBudget, view, answer),
    first,
  );
  try {
    onRead = reader(socket, { bufferBudget: context.bufferBudget });
  } catch (error) {
    socket.destroy(error as Error);
  }
  return socket;
}

/**
 * Echo needs the bytes until they are written, and a partial write keeps a reference to them. So a
 * connection reads into the thread's shared buffer only until its first read (that one is echoed
 * from a copy): an idle connection costs no buffer of its own. From then on it reads into a buffer
 * of its own, reused from read to read and swapped for a fresh one while a pending write holds it.
 */
function readIntoOwnBuffer(fd: number, onData: (socket: Socket, view: Buffer) => boolean, first?: Buffer): Socket {
  sharedReadBuffer ??= Buffer.allocUnsafe(SHARED_READ_BUFFER_SIZE);
  let buffer: Buffer | undefined;
  let bufferHeldByWrite = false;
  const socket: Socket = new Socket({
    fd,
    readable: true,
    writable: true,
    onread: {
      buffer: () => {
        if (buffer === undefined) return sharedReadBuffer!;
        if (bufferHeldByWrite) {
          buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
          bufferHeldByWrite = false;
        }
        return buffer;
      },
      callback: (bytesRead: number, view: Uint8Array) => {
        const read = (view as Buffer).subarray(0, bytesRead);
        if (buffer === undefined) {
          buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
          return onData(socket, Buffer.from(read));
        }
        const keepReading = onData(socket, read);
        if (socket.writableLength > 0) bufferHeldByWrite = true;
        return keepReading;
      },
    },
  });
  resumeOnDrain(socket);
  deliverFirst(first, (view) => {
    if (!onData(socket, view)) socket.pause();
  });
  return socket;
}

function serveEcho(fd: number, context: ServiceContext, first?: Buffer): Socket {
  const budget = context.sendBudget;
  const echo = (socket: Socket, view: Buffer): number => {
    // After a graceful close has ended our side, what still arrives is read and dropped.
    if (socket.writableEnded || socket.destroyed) return 0;
    context.counters.addBytesOut(view.length);
    socket.write(view);
    return view.length;
  };
  return readIntoOwnBuffer(
    fd,
    (socket, view) => {
      context.counters.addBytesIn(view.length);
      const keepReading =
        budget === undefined
          ? (echo(socket, view), true)
          : answerPaced(socket, budget, context.bufferBudget, view, (kept) => echo(socket, kept));
      return keepReading && socket.writableLength < socket.writableHighWaterMark;
    },
    first,
  );
}

function serveDiscard(fd: number, context: ServiceContext, first?: Buffer): Socket {
  return readIntoSharedBuffer(fd, (view) => context.counters.addBytesIn(view.length), first);
}

/** Sends the verification pattern as fast as the peer reads, until the peer half-closes. */
function serveSource(fd: number, context: ServiceContext, first?: Buffer): Socket {
  const pattern = new PatternSource(context.sourceChunkSize);
  let peerEnded = false;
  const socket = readIntoSharedBuffer(fd, (view) => context.counters.addBytesIn(view.length), first);
  socket.on('end', () => {
    peerEnded = true;
  });
  pumpWrites(
    socket,
    () => pattern.next(),
    () => !peerEnded,
    (bytes) => context.counters.addBytesOut(bytes),
    context.sendBudget,
  );
  return socket;
}

/** Checks the pattern chunk by chunk; the corrupted count goes to the shared counters as it grows. */
function serveVerify(fd: number, context: ServiceContext, first?: Buffer): Socket {
  const verifier = new PatternVerifier();
  return readIntoSharedBuffer(
    fd,
    (view) => {
      context.counters.addBytesIn(view.length);
      context.counters.addBytesCorrupted(verifier.check(view));
    },
    first,
  );
}

/**
 * A connection read as runs of whole frames (FrameDecoder.pushFrames): `onFrames` sees each run,
 * `afterRead` runs once a read is decoded, `onPeerEnd` once the peer has ended on a frame boundary.
 * A frame over the cap, one that finds no room in the buffer budget, or a stream cut inside a frame
 * closes the connection with its code.
 */
function serveFrameRuns(
  fd: number,
  context: ServiceContext,
  first: Buffer | undefined,
  handlers: { onFrames: FrameRunHandler; afterRead?: () => void; onPeerEnd: () => void },
): Socket {
  const decoder = new FrameDecoder({ budget: context.bufferBudget });
  const socket = readIntoSharedBuffer(
    fd,
    (view) => {
      if (socket.destroyed) return;
      context.counters.addBytesIn(view.length);
      try {
        decoder.pushFrames(view, handlers.onFrames);
      } catch (error) {
        socket.destroy(error as Error);
        return;
      }
      handlers.afterRead?.();
    },
    first,
  );
  socket.on('end', () => {
    try {
      decoder.end();
    } catch (error) {
      socket.destroy(error as Error);
      return;
    }
    handlers.onPeerEnd();
  });
  socket.once('close', () => decoder.dispose());
  return socket;
}

/** Counts framed messages without making an object per message: a read of a thousand small messages costs one callback. */
function serveSink(fd: number, context: ServiceContext, first?: Buffer): Socket {
  const socket = serveFrameRuns(fd, context, first, {
    onFrames: (_buffer, _start, _end, frames) => context.counters.addMessagesIn(frames),
    onPeerEnd: () => socket.end(),
  });
  return socket;
}

/** Echoes waiting in the socket above which reading stops until they drain. */
const ECHO_HIGH_WATER = 1024 * 1024;

/**
 * Framed messages echoed a read at a time: the decoder reports runs of whole frames, which go back
 * verbatim, prefixes included, in one write (a copy, since the read buffer is shared). No object is
 * made per message. Echoes waiting in the socket take room from the server's buffer budget, as
 * partly received messages do, and reading stops above ECHO_HIGH_WATER; under a send budget the
 * echoes go through a PacedWriter (a 16 MiB message is answered at the rate, slice by slice).
 */
function serveMessageEcho(fd: number, context: ServiceContext, first?: Buffer): Socket {
  const runs: Buffer[] = [];
  let runBytes = 0;
  let frames = 0;
  let paced: PacedWriter | undefined;
  let held = 0;
  let peerEnded = false;
  const echo = (): void => {
    if (frames === 0) return;
    const out = Buffer.concat(runs, runBytes);
    runs.length = 0;
    runBytes = 0;
    context.counters.addMessagesIn(frames);
    context.counters.addBytesOut(out.length);
    frames = 0;
    if (paced !== undefined) {
      paced.write(out);
      if (paced.queued > context.sendBudget!.maxWriteBytes) socket.pause();
      return;
    }
    if (!context.bufferBudget.tryReserve(out.length)) {
      socket.destroy(
        new SocktuneError(
          'SOCKTUNE_ERR_BUFFER_BUDGET',
          `no room to queue ${out.length} bytes of echoes: the server's buffer budget is taken`,
        ),
      );
      return;
    }
    held += out.length;
    socket.write(out, () => {
      held -= out.length;
      context.bufferBudget.release(out.length);
    });
    if (socket.writableLength > ECHO_HIGH_WATER) socket.pause();
  };
  const socket = serveFrameRuns(fd, context, first, {
    onFrames: (buffer, start, end, count) => {
      runs.push(buffer.subarray(start, end));
      runBytes += end - start;
      frames += count;
    },
    afterRead: echo,
    onPeerEnd: () => {
      peerEnded = true;
      if (paced === undefined || paced.queued === 0) socket.end();
    },
  });
  // Once all that waited is written: read on, or, after the peer's end, close.
  const onIdle = (): void => void (peerEnded ? socket.end() : socket.resume());
  if (context.sendBudget !== undefined) paced = new PacedWriter(socket, context.sendBudget, context.bufferBudget, onIdle);
  else socket.on('drain', () => socket.resume());
  // Writes a destroyed socket never made give their room back here.
  socket.once('close', () => {
    context.bufferBudget.release(held);
    held = 0;
  });
  return socket;
}

const SERVICES: Readonly<Record<BuiltinService, (fd: number, context: ServiceContext, first?: Buffer) => Socket>> = {
  echo: serveEcho,
  discard: serveDiscard,
  source: serveSource,
  verify: serveVerify,
  'msg-echo': serveMessageEcho,
  'msg-sink': serveSink,
};

/** `first`: bytes already read for this connection (after its connection token), served as its first read. */
export function serveBuiltin(service: BuiltinService, fd: number, context: ServiceContext, first?: Buffer): Socket {
  return SERVICES[service](fd, context, first);
}
