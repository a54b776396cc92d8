import type { Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SocktuneError } from '../../core/errors.ts';
import { closeFd, duplicateFd } from '../../core/socket-syscalls.ts';
import { raiseFlag, startBlockingThreads, stopBlockingThreads } from '../io/blocking-threads.ts';
import { fdOf } from '../io/fd.ts';
import { BULK_COUNTS } from './bulk-counts.ts';
import type { BulkThreadData } from './bulk-thread.ts';
import { openPatternFile, type PatternFile } from './pattern-file.ts';

const THREAD_ENTRY = new URL(`./bulk-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
/** What a receiving thread reads per call: as much as a bulk sender's window gives it in one go (iperf3 reads 128 KiB). */
const READ_BYTES = 256 * 1024;

export interface BulkOptions {
  /** Bytes per sendfile call at most. */
  chunkBytes: number;
  /** Per sending connection; 0: as fast as the sockets take them. */
  bitsPerSecond: number;
  /** Threads at most. @default the CPUs, and at most one a connection */
  threads?: number | undefined;
}

/** What one connection's thread has moved so far, read from the memory it writes. */
export interface BulkStream {
  readonly bytes: number;
  /** The errno that ended this connection's transfer; 0 while it runs. */
  readonly errno: number;
  /** A receiver: performance.now() (this thread's clock) of its last data; 0 before any. */
  readonly lastData: number;
}

export interface BulkThreads {
  streams: BulkStream[];
  /** Starts every thread's transfer at once. */
  start(): void;
  /** Stops them and resolves once every thread has ended: nothing is sent or read after (a FIN may follow). */
  stop(): Promise<void>;
}

/**
 * Bulk transfer of connected sockets on threads (as many as the CPUs, at most one a connection),
 * so the event loop neither copies nor reads nor writes: each connection either sends with
 * sendfile from a page-cache file of the verify pattern (iperf3's -Z) or receives into one buffer
 * per thread, counted and dropped. A receiving socket must not be read meanwhile by its own event
 * loop (pause it). The threads work on duplicates of the descriptors, each closed here once its
 * thread has ended, and the file once all have.
 */
export async function bulkOnThreads(
  connections: readonly { socket: Socket; role: 'send' | 'receive' }[],
  options: BulkOptions,
): Promise<BulkThreads> {
  const fds = connections.map(({ socket }) => {
    const fd = fdOf(socket);
    if (fd < 0) throw new SocktuneError('SOCKTUNE_ERR_SOCKOPT', "a connection's descriptor could not be found for its thread");
    return fd;
  });
  const file: PatternFile | undefined = connections.some(({ role }) => role === 'send') ? openPatternFile(options.chunkBytes) : undefined;
  const flags = new SharedArrayBuffer(8);
  const counts = new SharedArrayBuffer(connections.length * BULK_COUNTS.length * 8);
  const threads = Math.max(1, Math.min(connections.length, options.threads ?? availableParallelism()));
  const data: BulkThreadData[] = [];
  try {
    for (let thread = 0; thread < threads; thread++) {
      const mine = connections.flatMap(({ role }, index) => (index % threads === thread ? [{ index, role }] : []));
      data.push({
        streams: [],
        file: file === undefined ? undefined : { fd: file.fd, bytes: file.bytes },
        chunkBytes: options.chunkBytes,
        readBytes: READ_BYTES,
        bitsPerSecond: options.bitsPerSecond,
        flags,
        counts,
      });
      for (const { index, role } of mine) data[thread]!.streams.push({ fd: duplicateFd(fds[index]!), index, role });
    }
  } catch (error) {
    data.forEach(({ streams }) => streams.forEach(({ fd }) => closeFd(fd)));
    file?.close();
    throw error;
  }
  let running = threads;
  // Each thread's descriptors are closed once it has ended, whether it ran or failed to start.
  const workers = await startBlockingThreads(THREAD_ENTRY, data, flags, 'a bulk transfer thread', (worker, { streams }) => {
    worker.once('exit', () => {
      streams.forEach(({ fd }) => closeFd(fd));
      if (--running === 0) file?.close();
    });
  });
  const slots = new Float64Array(counts);
  const at = (index: number, field: (typeof BULK_COUNTS)[number]): number =>
    slots[index * BULK_COUNTS.length + BULK_COUNTS.indexOf(field)]!;
  const streams = connections.map((_, index): BulkStream => ({
    get bytes() {
      return at(index, 'bytes');
    },
    get errno() {
      return at(index, 'errno');
    },
    get lastData() {
      const epochMs = at(index, 'lastDataAt');
      return epochMs === 0 ? 0 : epochMs - performance.timeOrigin;
    },
  }));
  return {
    streams,
    start: () => raiseFlag(flags, START),
    stop: async () => {
      // A paced thread may be waiting on the flag: woken, it sees it at once.
      raiseFlag(flags, STOP);
      await stopBlockingThreads(workers, flags);
    },
  };
}

const [STOP, START] = [0, 1];
