import { parentPort, workerData } from 'node:worker_threads';
import { LINUX } from '../../../core/libc.ts';
import { closeFd, createBoundUdpFd, lastErrno, receiveFrom, sendTo, setBlockingTimeouts } from '../../../core/socket-syscalls.ts';
import { SendBudget, type SendBudgetState } from '../../../transport/io/send-budget.ts';
import { answerable, REPLIES, UDP_COUNTS } from './sockperf-udp-answer.ts';

/** What a sockperf UDP thread is given. */
export interface SockperfUdpThreadData {
  family: 'ipv4' | 'ipv6';
  host: string;
  port: number;
  /** The reply budget every thread shares, in shared memory. */
  budget: SendBudgetState;
  /** Set to 1 to stop: each thread sees it within STOP_CHECK_MS. */
  stop: SharedArrayBuffer;
  /** A slot of counters per thread (UDP_COUNTS), this thread's at `index`. */
  counts: SharedArrayBuffer;
  index: number;
}

/** How long a recvfrom waits before the thread looks at the stop flag again. */
const STOP_CHECK_MS = 100;

/**
 * One thread of the sockperf server's UDP side: a blocking socket of its own in the port's
 * SO_REUSEPORT group, one recvfrom and (for a ping) one sendto per datagram, and nothing else: no
 * event loop between the two system calls, as sockperf's own server does it.
 */
function serve(data: SockperfUdpThreadData): void {
  const fd = createBoundUdpFd(data.family, data.host, data.port, true);
  setBlockingTimeouts(fd, STOP_CHECK_MS);
  parentPort!.postMessage('ready');
  const budget = SendBudget.fromState(data.budget);
  const stop = new Int32Array(data.stop);
  const counts = new Float64Array(data.counts, data.index * UDP_COUNTS.length * 8, UDP_COUNTS.length);
  const buffer = Buffer.allocUnsafe(65_536);
  const peer = Buffer.alloc(128);
  const peerLength = new Uint32Array(1);
  try {
    while (Atomics.load(stop, 0) === 0) {
      const length = receiveFrom(fd, buffer, peer, peerLength);
      if (length < 0) {
        const errno = lastErrno();
        if (errno === LINUX.EAGAIN || errno === LINUX.EINTR) continue;
        break;
      }
      if (!answerable(buffer.subarray(0, length), budget, counts)) continue;
      if (sendTo(fd, buffer, length, peer, peerLength[0]!) === length) counts[REPLIES]!++;
    }
  } finally {
    closeFd(fd);
  }
}

serve(workerData as SockperfUdpThreadData);
