import type { Socket as UdpSocket } from 'node:dgram';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SocktuneError } from '../../core/errors.ts';
import { closeFd, duplicateFd } from '../../core/socket-syscalls.ts';
import type { DatagramSender } from './datagram-sender.ts';
import { SENDER_COUNTS } from './sender-counts.ts';
import type { SenderThreadData } from './sender-thread.ts';
import { udpFdOf } from './udp-batching.ts';
import { raiseFlag, startBlockingThreads } from '../io/blocking-threads.ts';

const THREAD_ENTRY = new URL(`./sender-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export interface ThreadedSendOptions {
  datagramBytes: number;
  /** The test's token, in every datagram's socktune header. */
  token: Buffer;
  /** Per stream; 0: as fast as the sockets take them. */
  bitsPerSecond: number;
}

/**
 * Sends socktune datagrams from each connected socket (stream i from `sockets[i]`) on sender
 * threads, one datagram per system call as iperf3 sends: the event loop's per-send cost is what
 * bounds node:dgram's one-per-call rate, so the calls are made where nothing else runs. The threads
 * (as many as the CPUs, at most one a stream) write through duplicates of the sockets' descriptors,
 * each closed here once its thread has ended. Each sender's counts are read from memory the threads
 * share.
 */
export async function sendOnThreads(
  sockets: readonly UdpSocket[],
  options: ThreadedSendOptions,
): Promise<{ senders: DatagramSender[]; start: () => void }> {
  const fds = sockets.map((socket) => {
    const fd = udpFdOf(socket);
    if (fd < 0) throw new SocktuneError('SOCKTUNE_ERR_SOCKOPT', "a UDP socket's descriptor could not be found for its sender thread");
    return duplicateFd(fd);
  });
  const flags = new SharedArrayBuffer(8);
  const counts = new SharedArrayBuffer(sockets.length * SENDER_COUNTS.length * 8);
  const threads = Math.min(sockets.length, availableParallelism());
  const data = Array.from({ length: threads }, (_, thread): SenderThreadData => ({
    streams: fds.flatMap((fd, index) => (index % threads === thread ? [{ fd, index }] : [])),
    datagramBytes: options.datagramBytes,
    token: options.token,
    bitsPerSecond: options.bitsPerSecond,
    flags,
    counts,
  }));
  // Each thread's descriptors are closed once it has ended, whether it ran or failed to start.
  await startBlockingThreads(THREAD_ENTRY, data, flags, 'a UDP sender thread', (worker, { streams }) => {
    worker.once('exit', () => streams.forEach(({ fd }) => closeFd(fd)));
  });
  const slots = new Float64Array(counts);
  const at = (index: number, field: number): number => slots[index * SENDER_COUNTS.length + field]!;
  const senders = sockets.map((_, index) => ({
    get sent() {
      return at(index, 0);
    },
    get sentBytes() {
      return at(index, 1);
    },
    get failed() {
      return at(index, 2);
    },
    get sends() {
      return at(index, 3);
    },
    stop: () => raiseFlag(flags, STOP),
  }));
  // Started apart from the threads' start-up, so that what they send falls in the measured time.
  return { senders, start: () => raiseFlag(flags, START) };
}

const [STOP, START] = [0, 1];
