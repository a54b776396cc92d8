import { Socket } from 'node:net';
import type { SharedCounters } from './metrics.ts';
import { PatternSource } from './pattern.ts';
import { pumpWrites } from './pump.ts';
import type { BuiltinService } from './server-options.ts';

const READ_BUFFER_SIZE = 64 * 1024;

export interface ServiceContext {
  counters: SharedCounters;
  sourceChunkSize: number;
}

/**
 * Wraps an accepted descriptor with Node's `onread`, so reads land in a reused buffer instead of
 * a fresh allocation per chunk. A buffer still referenced by a pending write is swapped out.
 */
function readIntoReusedBuffer(fd: number, onData: (socket: Socket, view: Buffer) => boolean): Socket {
  let buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  let bufferHeldByWrite = false;
  const socket: Socket = new Socket({
    fd,
    readable: true,
    writable: true,
    onread: {
      buffer: () => {
        if (bufferHeldByWrite) {
          buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
          bufferHeldByWrite = false;
        }
        return buffer;
      },
      callback: (bytesRead: number, view: Uint8Array) => {
        const keepReading = onData(socket, (view as Buffer).subarray(0, bytesRead));
        if (socket.writableLength > 0) bufferHeldByWrite = true;
        return keepReading;
      },
    },
  });
  socket.on('drain', () => socket.resume());
  return socket;
}

function serveEcho(fd: number, context: ServiceContext): Socket {
  return readIntoReusedBuffer(fd, (socket, view) => {
    context.counters.addBytesIn(view.length);
    context.counters.addBytesOut(view.length);
    return socket.write(view);
  });
}

function serveDiscard(fd: number, context: ServiceContext): Socket {
  return readIntoReusedBuffer(fd, (_socket, view) => {
    context.counters.addBytesIn(view.length);
    return true;
  });
}

/** Sends the verification pattern as fast as the peer reads, until the peer half-closes. */
function serveSource(fd: number, context: ServiceContext): Socket {
  const pattern = new PatternSource(context.sourceChunkSize);
  let peerEnded = false;
  const socket = readIntoReusedBuffer(fd, (_socket, view) => {
    context.counters.addBytesIn(view.length);
    return true;
  });
  socket.on('end', () => {
    peerEnded = true;
  });
  pumpWrites(socket, () => pattern.next(), () => !peerEnded, (bytes) => context.counters.addBytesOut(bytes));
  return socket;
}

const SERVICES: Readonly<Record<BuiltinService, (fd: number, context: ServiceContext) => Socket>> = {
  echo: serveEcho,
  discard: serveDiscard,
  source: serveSource,
};

export function serveBuiltin(service: BuiltinService, fd: number, context: ServiceContext): Socket {
  return SERVICES[service](fd, context);
}
