import { parentPort, workerData } from 'node:worker_threads';
import { libc, LINUX } from '../../core/libc.ts';
import { SENDFILE_COUNTS } from './sendfile-counts.ts';

/** What a sendfile thread is given: its connections' descriptors, and the pattern file they all send from. */
export interface SendfileThreadData {
  streams: { fd: number; index: number }[];
  file: { fd: number; bytes: number };
  /** Bytes per sendfile call at most (stream's -l). */
  chunkBytes: number;
  /** Per connection; 0: as fast as the sockets take them. */
  bitsPerSecond: number;
  /** Two flags: [0] set to 1 to stop (and notified), seen within one call or wait; [1] set to 1 to start. */
  flags: SharedArrayBuffer;
  /** SENDFILE_COUNTS per connection, by its index. */
  counts: SharedArrayBuffer;
}

/** How long a thread whose every socket is full waits for one to take more. */
const POLL_MS = 10;
/** A connection behind its schedule catches up at most this much at once: a paced rate stays smooth. */
const MAX_CATCH_UP_MS = 2;
const [SENT_BYTES, CALLS, ERRNO] = SENDFILE_COUNTS.map((_, field) => field) as [number, number, number];

/**
 * One sender thread of stream -Z: sendfile from the page cache to each of its connections in turn,
 * a chunk per call, paced per connection when asked, with no event loop between the calls and no
 * copy of the data through user space. A full socket (EAGAIN: the descriptors are libuv's,
 * non-blocking) is waited for with poll; a connection whose send fails is left, its errno counted.
 * The descriptors are duplicates the starting thread closes once this one has ended.
 */
function send(data: SendfileThreadData): void {
  const flags = new Int32Array(data.flags);
  const counts = new Float64Array(data.counts);
  const bytesPerMs = data.bitsPerSecond / 8000;
  const streams = data.streams.map(({ fd, index }) => ({
    fd,
    slot: index * SENDFILE_COUNTS.length,
    // off_t, little-endian: the file is far below 2 GiB, so the high word stays 0.
    offset: new Int32Array(2),
    due: 0,
    open: true,
  }));
  const { sendfile, poll, errno } = libc();
  const pollfds = Buffer.alloc(8 * streams.length);
  parentPort!.postMessage('ready');
  while (Atomics.load(flags, 1) === 0 && Atomics.load(flags, 0) === 0) Atomics.wait(flags, 1, 0, 100);
  const started = performance.now();
  for (const stream of streams) stream.due = started;
  while (Atomics.load(flags, 0) === 0 && streams.some((stream) => stream.open)) {
    const now = bytesPerMs > 0 ? performance.now() : 0;
    let sent = false;
    let blocked = 0;
    let nextDue = Infinity;
    for (const stream of streams) {
      if (!stream.open) continue;
      if (bytesPerMs > 0 && stream.due > now) {
        nextDue = Math.min(nextDue, stream.due);
        continue;
      }
      const count = Math.min(data.chunkBytes, data.file.bytes - stream.offset[0]!);
      const result = Number(sendfile(stream.fd, data.file.fd, stream.offset, count));
      counts[stream.slot + CALLS]!++;
      if (result < 0) {
        const code = errno();
        if (code === LINUX.EAGAIN) {
          pollfds.writeInt32LE(stream.fd, blocked * 8);
          pollfds.writeInt16LE(LINUX.POLLOUT, blocked * 8 + 4);
          blocked++;
        } else if (code !== LINUX.EINTR) {
          counts[stream.slot + ERRNO] = code;
          stream.open = false;
        }
        continue;
      }
      sent = true;
      counts[stream.slot + SENT_BYTES]! += result;
      if (stream.offset[0]! >= data.file.bytes) stream.offset[0] = 0;
      if (bytesPerMs > 0) stream.due = Math.max(stream.due + result / bytesPerMs, now - MAX_CATCH_UP_MS);
    }
    if (sent) continue;
    if (blocked > 0) poll(pollfds, blocked, POLL_MS);
    else if (nextDue !== Infinity) Atomics.wait(flags, 0, 0, Math.max(0, nextDue - performance.now()));
  }
}

send(workerData as SendfileThreadData);
