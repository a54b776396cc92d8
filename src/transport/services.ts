import { Socket } from 'node:net';
import type { SharedCounters } from './metrics.ts';
import { PatternSource, PatternVerifier } from './pattern.ts';
import { MessageSocket } from './message-socket.ts';
import { pumpWrites } from './pump.ts';
import type { SendPace } from './send-pace.ts';
import type { BuiltinService, ReadHandler } from './server-options.ts';

const READ_BUFFER_SIZE = 64 * 1024;

export interface ServiceContext {
  counters: SharedCounters;
  sourceChunkSize: number;
  /** Caps what the 'source' service sends on this event loop (ServerOptions.maxSendRate). */
  sendPace?: SendPace | undefined;
}

/**
 * One read buffer for every socket of this thread whose service never keeps the bytes past the
 * callback (discard, verify, source): callbacks run one at a time, so sharing is safe, and an
 * idle connection costs no buffer of its own.
 */
let sharedReadBuffer: Buffer | undefined;

function readIntoSharedBuffer(fd: number, onData: (view: Buffer) => void): Socket {
  sharedReadBuffer ??= Buffer.allocUnsafe(READ_BUFFER_SIZE);
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

/** A user ReadHandler on the shared buffer: its callback sees each read as a view, valid during the call. */
export function serveReads(fd: number, reader: ReadHandler): Socket {
  let onRead: ((view: Buffer) => void) | undefined;
  const socket = readIntoSharedBuffer(fd, (view) => onRead!(view));
  onRead = reader(socket);
  return socket;
}

/**
 * Echo needs the bytes until they are written, and a partial write keeps a reference to them. So a
 * connection reads into the thread's shared buffer only until its first read (that one is echoed
 * from a copy): an idle connection costs no buffer of its own. From then on it reads into a buffer
 * of its own, reused from read to read and swapped for a fresh one while a pending write holds it.
 */
function readIntoOwnBuffer(fd: number, onData: (socket: Socket, view: Buffer) => boolean): Socket {
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
  socket.on('drain', () => socket.resume());
  return socket;
}

function serveEcho(fd: number, context: ServiceContext): Socket {
  return readIntoOwnBuffer(fd, (socket, view) => {
    context.counters.addBytesIn(view.length);
    // After a graceful close has ended our side, what still arrives is read and dropped.
    if (socket.writableEnded) return true;
    context.counters.addBytesOut(view.length);
    return socket.write(view);
  });
}

function serveDiscard(fd: number, context: ServiceContext): Socket {
  return readIntoSharedBuffer(fd, (view) => context.counters.addBytesIn(view.length));
}

/** Sends the verification pattern as fast as the peer reads, until the peer half-closes. */
function serveSource(fd: number, context: ServiceContext): Socket {
  const pattern = new PatternSource(context.sourceChunkSize);
  let peerEnded = false;
  const socket = readIntoSharedBuffer(fd, (view) => context.counters.addBytesIn(view.length));
  socket.on('end', () => {
    peerEnded = true;
  });
  pumpWrites(socket, () => pattern.next(), () => !peerEnded, (bytes) => context.counters.addBytesOut(bytes), context.sendPace);
  return socket;
}

/** Checks the pattern chunk by chunk; the corrupted count goes to the shared counters as it grows. */
function serveVerify(fd: number, context: ServiceContext): Socket {
  const verifier = new PatternVerifier();
  return readIntoSharedBuffer(fd, (view) => {
    context.counters.addBytesIn(view.length);
    context.counters.addBytesCorrupted(verifier.check(view));
  });
}

const U32_PREFIX_BYTES = 4;

/** Framed messages on the shared read buffer; the writer copies what it sends, so views may be echoed. */
function serveMessages(fd: number, context: ServiceContext, echo: boolean): Socket {
  let messages: MessageSocket | undefined;
  const socket = readIntoSharedBuffer(fd, (view) => {
    context.counters.addBytesIn(view.length);
    messages!.feed(view);
  });
  messages = new MessageSocket(socket, {}, { attach: false });
  messages.on('error', () => {});
  messages.on('message', (message: Buffer) => {
    context.counters.addMessagesIn(1);
    if (echo) {
      messages!.send(message);
      context.counters.addBytesOut(message.length + U32_PREFIX_BYTES);
    }
  });
  messages.on('end', () => void messages!.close());
  return socket;
}

const SERVICES: Readonly<Record<BuiltinService, (fd: number, context: ServiceContext) => Socket>> = {
  echo: serveEcho,
  discard: serveDiscard,
  source: serveSource,
  verify: serveVerify,
  'msg-echo': (fd, context) => serveMessages(fd, context, true),
  'msg-sink': (fd, context) => serveMessages(fd, context, false),
};

export function serveBuiltin(service: BuiltinService, fd: number, context: ServiceContext): Socket {
  return SERVICES[service](fd, context);
}
