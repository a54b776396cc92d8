import { parentPort, workerData } from 'node:worker_threads';
import { libc, LINUX } from '../../core/libc.ts';
import { socktuneDatagrams } from '../../framing/datagram.ts';
import { SENDER_COUNTS } from './sender-counts.ts';

/** What a sender thread is given: the streams it sends, each a descriptor of a connected UDP socket. */
export interface SenderThreadData {
  streams: { fd: number; index: number }[];
  datagramBytes: number;
  token: Uint8Array;
  /** Per stream; 0: as fast as the sockets take them. */
  bitsPerSecond: number;
  /** Two flags: [0] set to 1 to stop (and notified), which the thread sees within one send or wait; [1] set to 1 to start. */
  flags: SharedArrayBuffer;
  /** SENDER_COUNTS per stream, by the stream's index. */
  counts: SharedArrayBuffer;
}

/** How long a thread whose every socket is full waits for one to take more. */
const POLL_MS = 10;
/** A stream behind its schedule catches up at most this much at once: a paced rate stays smooth. */
const MAX_CATCH_UP_MS = 2;

/**
 * One sender thread: one datagram per system call (send on a connected socket, as iperf3 writes),
 * its streams in turn, each paced by its own schedule, with no event loop between the calls. A
 * socket that is full (EAGAIN) is waited for with poll; a failed send is counted and skipped. The
 * descriptors are the starting thread's, which closes them once this one has ended.
 */
function send(data: SenderThreadData): void {
  const flags = new Int32Array(data.flags);
  const counts = new Float64Array(data.counts);
  const token = Buffer.from(data.token);
  const gapMs = data.bitsPerSecond > 0 ? (data.datagramBytes * 8 * 1000) / data.bitsPerSecond : 0;
  const streams = data.streams.map(({ fd, index }) => {
    const format = socktuneDatagrams(data.datagramBytes, token, index);
    return { fd, slot: index * SENDER_COUNTS.length, format, buffer: format.template(), sequence: 0, due: 0 };
  });
  const { send: sendCall, poll } = libc();
  const pollfds = Buffer.alloc(8 * streams.length);
  parentPort!.postMessage('ready');
  while (Atomics.load(flags, 1) === 0 && Atomics.load(flags, 0) === 0) Atomics.wait(flags, 1, 0, 100);
  const started = performance.now();
  for (const stream of streams) stream.due = started;
  while (Atomics.load(flags, 0) === 0) {
    const now = gapMs > 0 ? performance.now() : 0;
    let sent = false;
    let blocked = 0;
    let nextDue = Infinity;
    for (const stream of streams) {
      if (gapMs > 0 && stream.due > now) {
        nextDue = Math.min(nextDue, stream.due);
        continue;
      }
      stream.format.stamp(stream.buffer, stream.sequence);
      const result = Number(sendCall(stream.fd, stream.buffer, stream.buffer.length, LINUX.MSG_DONTWAIT | LINUX.MSG_NOSIGNAL));
      if (result < 0 && libc().errno() === LINUX.EAGAIN) {
        pollfds.writeInt32LE(stream.fd, blocked * 8);
        pollfds.writeInt16LE(LINUX.POLLOUT, blocked * 8 + 4);
        blocked++;
        continue;
      }
      sent = true;
      stream.sequence++;
      if (gapMs > 0) stream.due = Math.max(stream.due + gapMs, now - MAX_CATCH_UP_MS);
      if (result === stream.buffer.length) {
        counts[stream.slot]!++;
        counts[stream.slot + 1]! += result;
        counts[stream.slot + 3]!++;
      } else counts[stream.slot + 2]!++;
    }
    if (sent) continue;
    if (blocked > 0) poll(pollfds, blocked, POLL_MS);
    else if (nextDue !== Infinity) Atomics.wait(flags, 0, 0, Math.max(0, nextDue - performance.now()));
  }
}

send(workerData as SenderThreadData);
