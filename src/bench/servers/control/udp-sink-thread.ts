import { parentPort, workerData } from 'node:worker_threads';
import { pinThread } from '../../../core/affinity.ts';
import { LINUX } from '../../../core/libc.ts';
import {
  closeFd,
  createBoundUdpFd,
  lastErrno,
  receiveFrom,
  sendTo,
  setBlockingTimeouts,
  sourceIs,
  trySetUdpGro,
} from '../../../core/socket-syscalls.ts';
import { eachDatagram, MAX_DATAGRAM_BYTES } from '../../../framing/datagram.ts';
import { SendBudget, type SendBudgetState } from '../../../transport/io/send-budget.ts';
import type { DatagramCounts } from '../../results/datagram-stats.ts';
import { LIVE_COUNTS, UdpTestCounts } from './udp-test-counts.ts';

/** What a thread of a UDP test's server end is given. */
export interface UdpSinkThreadData {
  family: 'ipv4' | 'ipv6';
  host: string;
  port: number;
  buffers: { sendBufferSize?: number | undefined; receiveBufferSize?: number | undefined };
  /** The address the test's datagrams must come from; undefined: any. */
  client: string | undefined;
  token: Uint8Array;
  /** rr -u: each datagram goes back, within `budget` (the server's --max-rate) when there is one. */
  echo: boolean;
  budget: SendBudgetState | undefined;
  /** CPUs this thread pins itself to (the test's --server-affinity). */
  affinity: number[] | undefined;
  /** Ask for UDP GRO: a client's segmented send arrives in one receive. */
  coalesce: boolean;
  /** Set to 1 to stop: the thread sees it within STOP_CHECK_MS. */
  stop: SharedArrayBuffer;
  /** A slot of LIVE_COUNTS per thread, this thread's at `index`. */
  live: SharedArrayBuffer;
  index: number;
}

/** What a thread posts when it stops: its streams' counts and the replies it echoed per stream. */
export interface UdpSinkThreadCounts {
  streams: [number, DatagramCounts][];
  echoed: number[];
}

/** How long a recvfrom waits before the thread looks at the stop flag again. */
const STOP_CHECK_MS = 100;
/** How long a stopping thread reads what is queued: a flood that outpaces it cannot keep the test alive. */
const DRAIN_MS = 100;

/**
 * One thread of a UDP test's server end in a thread model: a blocking socket of its own in the test
 * port's SO_REUSEPORT group (the kernel keeps each client socket on one thread, so a stream's order
 * is seen whole), one recvfrom per receive and, for rr -u, one sendto per reply.
 */
function serve(data: UdpSinkThreadData): void {
  // Only this thread: the kernel keeps affinity per thread.
  if (data.affinity !== undefined) pinThread(data.affinity);
  const fd = createBoundUdpFd(data.family, data.host, data.port, true, data.buffers);
  setBlockingTimeouts(fd, STOP_CHECK_MS);
  const coalesced = data.coalesce && trySetUdpGro(fd);
  parentPort!.postMessage('ready');
  const token = Buffer.from(data.token);
  const counts = new UdpTestCounts(token, new Float64Array(data.live, data.index * LIVE_COUNTS.length * 8, LIVE_COUNTS.length));
  const fromClient = data.client === undefined ? () => true : sourceIs(data.family, data.client);
  const budget = data.budget === undefined ? undefined : SendBudget.fromState(data.budget);
  const stop = new Int32Array(data.stop);
  const buffer = Buffer.allocUnsafe(MAX_DATAGRAM_BYTES + 1);
  const peer = Buffer.alloc(128);
  const peerLength = new Uint32Array(1);
  let arrival = 0n;
  let client = false;
  const visit = (datagram: Buffer): void => {
    const header = counts.accept(datagram, client);
    if (header === undefined) return;
    counts.record(header, arrival, datagram.length);
    if (!data.echo || (budget !== undefined && budget.tryTake(datagram.length) !== 0)) return;
    if (sendTo(fd, datagram, datagram.length, peer, peerLength[0]!) === datagram.length) counts.echo(header.stream, datagram.length);
  };
  let drainUntil = Infinity;
  try {
    for (;;) {
      // Once stopped, what is queued is still counted: the client's last datagrams came before its finish.
      const stopping = Atomics.load(stop, 0) !== 0;
      if (stopping && drainUntil === Infinity) drainUntil = performance.now() + DRAIN_MS;
      else if (stopping && performance.now() > drainUntil) break;
      const length = receiveFrom(fd, buffer, peer, peerLength, !stopping);
      if (length < 0) {
        const errno = lastErrno();
        if (!stopping && (errno === LINUX.EAGAIN || errno === LINUX.EINTR)) continue;
        break;
      }
      arrival = process.hrtime.bigint();
      client = fromClient(peer);
      counts.received();
      if (coalesced) eachDatagram(buffer.subarray(0, length), token, visit);
      else visit(buffer.subarray(0, length));
    }
  } finally {
    closeFd(fd);
    const streams = [...counts.streams].map(([stream, stats]): [number, DatagramCounts] => [stream, stats.counts()]);
    parentPort!.postMessage({ streams, echoed: counts.echoed } satisfies UdpSinkThreadCounts);
  }
}

serve(workerData as UdpSinkThreadData);
