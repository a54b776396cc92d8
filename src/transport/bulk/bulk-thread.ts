import { parentPort, workerData } from 'node:worker_threads';
import { libc, LINUX } from '../../core/libc.ts';
import { BULK_COUNTS } from './bulk-counts.ts';

/** What a bulk thread is given: its connections' descriptors, each to send on or to receive from. */
export interface BulkThreadData {
  streams: { fd: number; index: number; role: 'send' | 'receive' }[];
  /** The pattern file senders send from; undefined when this thread only receives. */
  file: { fd: number; bytes: number } | undefined;
  /** Bytes per sendfile call at most. */
  chunkBytes: number;
  /** Bytes per receive at most. */
  readBytes: number;
  /** Per sending connection; 0: as fast as the sockets take them. */
  bitsPerSecond: number;
  /** Two flags: [0] set to 1 to stop (and notified), seen within one call or wait; [1] set to 1 to start. */
  flags: SharedArrayBuffer;
  /** BULK_COUNTS per connection, by its index. */
  counts: SharedArrayBuffer;
}

/** How long a thread whose every socket is full (or empty) waits for one to be ready. */
const POLL_MS = 10;
/** While others move data, how many rounds pass between looks at the sockets that were not ready (one poll for all of them). */
const ROUNDS_BETWEEN_LOOKS = 8;
/** How long a stopping thread reads what its receivers still hold: a flood that outpaces it cannot keep it alive. */
const DRAIN_MS = 100;
/** A connection behind its schedule catches up at most this much at once: a paced rate stays smooth. */
const MAX_CATCH_UP_MS = 2;
const [BYTES, ERRNO, LAST_DATA_AT] = BULK_COUNTS.map((_, field) => field) as [number, number, number];

/**
 * One thread of bulk transfer, with no event loop between its system calls: to each sending
 * connection, sendfile from the page cache (a chunk per call, paced per connection when asked; no
 * copy through user space); from each receiving one, recv into one buffer, counted and dropped.
 * The descriptors are libuv's, non-blocking: a socket that is full or empty (EAGAIN) is waited for
 * with poll. A connection whose call fails is left, its errno counted; a receiver that reads the
 * end is done. The descriptors are duplicates the starting thread closes once this one has ended.
 */
function transfer(data: BulkThreadData): void {
  const flags = new Int32Array(data.flags);
  const counts = new Float64Array(data.counts);
  const bytesPerMs = data.bitsPerSecond / 8000;
  const streams = data.streams.map(({ fd, index, role }) => ({
    fd,
    slot: index * BULK_COUNTS.length,
    sends: role === 'send',
    // off_t, little-endian: the file is far below 2 GiB, so the high word stays 0.
    offset: new Int32Array(2),
    due: 0,
    open: true,
    /** Not known to be full (or empty): the next round tries it. */
    ready: true,
  }));
  const { sendfile, recv, poll, errno } = libc();
  const buffer = Buffer.allocUnsafe(streams.some((stream) => !stream.sends) ? data.readBytes : 0);
  const pollfds = Buffer.alloc(8 * streams.length);
  const paced = bytesPerMs > 0;
  let rounds = 0;
  parentPort!.postMessage('ready');
  while (Atomics.load(flags, 1) === 0 && Atomics.load(flags, 0) === 0) Atomics.wait(flags, 1, 0, 100);
  const started = performance.now();
  for (const stream of streams) stream.due = started;
  while (Atomics.load(flags, 0) === 0 && streams.some((stream) => stream.open)) {
    const now = paced ? performance.now() : 0;
    let moved = false;
    let nextDue = Infinity;
    for (const stream of streams) {
      if (!stream.open || !stream.ready) continue;
      if (paced && stream.sends && stream.due > now) {
        nextDue = Math.min(nextDue, stream.due);
        continue;
      }
      const result = stream.sends
        ? Number(sendfile(stream.fd, data.file!.fd, stream.offset, Math.min(data.chunkBytes, data.file!.bytes - stream.offset[0]!)))
        : Number(recv(stream.fd, buffer, buffer.length, 0));
      if (result < 0) {
        const code = errno();
        if (code === LINUX.EAGAIN) stream.ready = false;
        else if (code !== LINUX.EINTR) {
          counts[stream.slot + ERRNO] = code;
          stream.open = false;
        }
        continue;
      }
      // A receiver read the end: the peer closed its side.
      if (result === 0 && !stream.sends) {
        stream.open = false;
        continue;
      }
      moved = true;
      counts[stream.slot + BYTES]! += result;
      if (stream.sends) {
        if (stream.offset[0]! >= data.file!.bytes) stream.offset[0] = 0;
        if (paced) stream.due = Math.max(stream.due + result / bytesPerMs, now - MAX_CATCH_UP_MS);
      } else counts[stream.slot + LAST_DATA_AT] = performance.timeOrigin + performance.now();
    }
    // Sockets that were full or empty are looked at together, with one poll: at once when nothing else moved, every few rounds otherwise.
    const waiting = streams.filter((stream) => stream.open && !stream.ready);
    if (waiting.length > 0 && (!moved || ++rounds >= ROUNDS_BETWEEN_LOOKS)) {
      rounds = 0;
      waiting.forEach((stream, at) => {
        pollfds.writeInt32LE(stream.fd, at * 8);
        pollfds.writeInt16LE(stream.sends ? LINUX.POLLOUT : LINUX.POLLIN, at * 8 + 4);
        pollfds.writeInt16LE(0, at * 8 + 6);
      });
      const timeout = moved ? 0 : nextDue === Infinity ? POLL_MS : Math.min(POLL_MS, Math.max(0, Math.ceil(nextDue - performance.now())));
      if (poll(pollfds, waiting.length, timeout) > 0)
        waiting.forEach((stream, at) => (stream.ready = pollfds.readInt16LE(at * 8 + 6) !== 0));
    } else if (!moved && nextDue !== Infinity) Atomics.wait(flags, 0, 0, Math.max(0, nextDue - performance.now()));
  }
  // Stopped: what the receivers' sockets already hold arrived before the stop (a thread descheduled
  // for a while has not read it yet), so it is read and counted, for DRAIN_MS at most.
  const drainUntil = performance.now() + DRAIN_MS;
  for (const stream of streams) {
    while (stream.open && !stream.sends && performance.now() < drainUntil) {
      const result = Number(recv(stream.fd, buffer, buffer.length, LINUX.MSG_DONTWAIT));
      if (result <= 0) break;
      counts[stream.slot + BYTES]! += result;
      counts[stream.slot + LAST_DATA_AT] = performance.timeOrigin + performance.now();
    }
  }
}

transfer(workerData as BulkThreadData);
