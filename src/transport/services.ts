import { Socket } from 'node:net';
import type { SharedCounters } from './metrics.ts';
import { PatternSource, PatternVerifier } from './pattern.ts';
import { MessageSocket } from './message-socket.ts';
import { pumpWrites } from './pump.ts';
import type { BufferBudget } from './buffer-budget.ts';
import type { SendBudget } from './send-budget.ts';
import type { BuiltinService, ReadHandler } from './server-options.ts';

const READ_BUFFER_SIZE = 64 * 1024;

export interface ServiceContext {
  counters: SharedCounters;
  sourceChunkSize: number;
  /** Caps what the server sends, every connection and thread together (ServerOptions.maxSendRate). */
  sendBudget?: SendBudget | undefined;
  /** Memory for messages split across reads, every connection together (ServerOptions.maxBufferedBytes). */
  bufferBudget: BufferBudget;
}

/** Sockets whose reading waits for the send budget: a 'drain' must not resume them early. */
const waitingForBudget = new WeakSet<Socket>();

/**
 * Paces a service that answers what it reads: the bytes a read made it send are reserved after
 * the fact, and reading stops until the budget has paid for them. Each connection can so overdraw
 * by one read's answers; every byte is still counted, so the rate holds over time.
 */
function payForReplies(socket: Socket, budget: SendBudget | undefined, bytes: number): boolean {
  if (budget === undefined || bytes === 0) return true;
  const wait = budget.reserve(bytes);
  if (wait === 0) return true;
  waitingForBudget.add(socket);
  socket.pause();
  setTimeout(() => {
    waitingForBudget.delete(socket);
    if (!socket.destroyed) socket.resume();
  }, wait).unref();
  return false;
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

function readIntoSharedBuffer(fd: number, onData: (view: Buffer) => void, first?: Buffer): Socket {
  sharedReadBuffer ??= Buffer.allocUnsafe(READ_BUFFER_SIZE);
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
 * A user ReadHandler on the shared buffer: its callback sees each read as a view, valid during the
 * call. A handler that throws closes its connection only; what a read makes it send is paced.
 */
export function serveReads(fd: number, reader: ReadHandler, context: Pick<ServiceContext, 'sendBudget' | 'bufferBudget'>, first?: Buffer): Socket {
  let onRead: ((view: Buffer) => void) | undefined;
  const socket = readIntoSharedBuffer(fd, (view) => {
    if (socket.destroyed) return;
    const before = socket.bytesWritten;
    try {
      onRead!(view);
    } catch (error) {
      socket.destroy(error as Error);
      return;
    }
    payForReplies(socket, context.sendBudget, socket.bytesWritten - before);
  }, first);
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
  sharedReadBuffer ??= Buffer.allocUnsafe(READ_BUFFER_SIZE);
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
  return readIntoOwnBuffer(fd, (socket, view) => {
    context.counters.addBytesIn(view.length);
    // After a graceful close has ended our side, what still arrives is read and dropped.
    if (socket.writableEnded) return true;
    context.counters.addBytesOut(view.length);
    const writable = socket.write(view);
    return payForReplies(socket, context.sendBudget, view.length) && writable;
  }, first);
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
  pumpWrites(socket, () => pattern.next(), () => !peerEnded, (bytes) => context.counters.addBytesOut(bytes), context.sendBudget);
  return socket;
}

/** Checks the pattern chunk by chunk; the corrupted count goes to the shared counters as it grows. */
function serveVerify(fd: number, context: ServiceContext, first?: Buffer): Socket {
  const verifier = new PatternVerifier();
  return readIntoSharedBuffer(fd, (view) => {
    context.counters.addBytesIn(view.length);
    context.counters.addBytesCorrupted(verifier.check(view));
  }, first);
}

const U32_PREFIX_BYTES = 4;

/** Framed messages on the shared read buffer; the writer copies what it sends, so views may be echoed. */
function serveMessages(fd: number, context: ServiceContext, echo: boolean, first?: Buffer): Socket {
  let messages: MessageSocket | undefined;
  let echoed = 0;
  const socket = readIntoSharedBuffer(fd, (view) => {
    context.counters.addBytesIn(view.length);
    echoed = 0;
    messages!.feed(view);
    payForReplies(socket, context.sendBudget, echoed);
  }, first);
  messages = new MessageSocket(socket, {}, { attach: false, budget: context.bufferBudget });
  messages.on('error', () => {});
  messages.on('message', (message: Buffer) => {
    context.counters.addMessagesIn(1);
    if (echo) {
      messages!.send(message);
      echoed += message.length + U32_PREFIX_BYTES;
      context.counters.addBytesOut(message.length + U32_PREFIX_BYTES);
    }
  });
  messages.on('end', () => void messages!.close());
  return socket;
}

const SERVICES: Readonly<Record<BuiltinService, (fd: number, context: ServiceContext, first?: Buffer) => Socket>> = {
  echo: serveEcho,
  discard: serveDiscard,
  source: serveSource,
  verify: serveVerify,
  'msg-echo': (fd, context, first) => serveMessages(fd, context, true, first),
  'msg-sink': (fd, context, first) => serveMessages(fd, context, false, first),
};

/** `first`: bytes already read for this connection (after its connection token), served as its first read. */
export function serveBuiltin(service: BuiltinService, fd: number, context: ServiceContext, first?: Buffer): Socket {
  return SERVICES[service](fd, context, first);
}
