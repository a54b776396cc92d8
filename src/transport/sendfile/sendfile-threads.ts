import type { Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SocktuneError } from '../../core/errors.ts';
import { closeFd, duplicateFd } from '../../core/socket-syscalls.ts';
import { raiseFlag, startBlockingThreads, stopBlockingThreads } from '../io/blocking-threads.ts';
import { fdOf } from '../io/fd.ts';
import { openPatternFile } from './pattern-file.ts';
import { SENDFILE_COUNTS } from './sendfile-counts.ts';
import type { SendfileThreadData } from './sendfile-thread.ts';

const THREAD_ENTRY = new URL(`./sendfile-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export interface SendfileOptions {
  /** Bytes per sendfile call at most. */
  chunkBytes: number;
  /** Per connection; 0: as fast as the sockets take them. */
  bitsPerSecond: number;
}

/** What one connection's sender has done so far, read from the memory its thread writes. */
export interface SendfileSender {
  readonly sentBytes: number;
  readonly calls: number;
  /** The errno that ended this connection's sending; 0 while it sends. */
  readonly errno: number;
}

export interface SendfileSenders {
  senders: SendfileSender[];
  /** Starts every thread's sending at once. */
  start(): void;
  /** Stops them and resolves once every thread has ended: nothing is sent after (a FIN may follow). */
  stop(): Promise<void>;
}

/**
 * A zero-copy sender for each connected socket (iperf3's -Z): sendfile from a page-cache file of
 * the verify pattern, on threads (as many as the CPUs, at most one a connection), so the event
 * loop neither copies nor writes. The threads send through duplicates of the sockets' descriptors,
 * each closed here once its thread has ended, and the file once all have.
 */
export async function sendfileOnThreads(sockets: readonly Socket[], options: SendfileOptions): Promise<SendfileSenders> {
  const fds = sockets.map((socket) => {
    const fd = fdOf(socket);
    if (fd < 0) throw new SocktuneError('SOCKTUNE_ERR_SOCKOPT', "a connection's descriptor could not be found for its sendfile thread");
    return fd;
  });
  const file = openPatternFile(options.chunkBytes);
  const flags = new SharedArrayBuffer(8);
  const counts = new SharedArrayBuffer(sockets.length * SENDFILE_COUNTS.length * 8);
  const threads = Math.min(sockets.length, availableParallelism());
  const data = Array.from({ length: threads }, (_, thread): SendfileThreadData => ({
    streams: fds.flatMap((fd, index) => (index % threads === thread ? [{ fd: duplicateFd(fd), index }] : [])),
    file: { fd: file.fd, bytes: file.bytes },
    chunkBytes: options.chunkBytes,
    bitsPerSecond: options.bitsPerSecond,
    flags,
    counts,
  }));
  let running = threads;
  const ended = (): void => {
    if (--running === 0) file.close();
  };
  // Each thread's descriptors are closed once it has ended, whether it ran or failed to start.
  const workers = await startBlockingThreads(THREAD_ENTRY, data, flags, 'a sendfile thread', (worker, { streams }) => {
    worker.once('exit', () => {
      streams.forEach(({ fd }) => closeFd(fd));
      ended();
    });
  });
  const slots = new Float64Array(counts);
  const at = (index: number, field: number): number => slots[index * SENDFILE_COUNTS.length + field]!;
  const senders = sockets.map((_, index): SendfileSender => ({
    get sentBytes() {
      return at(index, 0);
    },
    get calls() {
      return at(index, 1);
    },
    get errno() {
      return at(index, 2);
    },
  }));
  return {
    senders,
    start: () => raiseFlag(flags, START),
    stop: async () => {
      // A paced thread may be waiting on the flag: woken, it sees it at once.
      raiseFlag(flags, STOP);
      await stopBlockingThreads(workers, flags);
    },
  };
}

const [STOP, START] = [0, 1];
