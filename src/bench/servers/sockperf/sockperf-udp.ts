import type { RemoteInfo } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UDP_IPV4_HEADERS_BYTES } from '../../../framing/datagram.ts';
import { replyTo, udpMessageKind } from '../../../protocols/sockperf/codec.ts';
import { SendBudget } from '../../../transport/io/send-budget.ts';
import { bindUdp, type BoundUdpSocket } from '../../../transport/udp/udp-socket.ts';
import type { SockperfUdpThreadData } from './sockperf-udp-thread.ts';

/**
 * What the UDP side replies at most, every client together, when the server is given no --max-rate:
 * sockperf over UDP has no handshake, so a reply may go to a forged source; it is never larger than
 * the datagram it answers, and together the replies stay under this.
 */
export const SOCKPERF_UDP_DEFAULT_MAX_RATE = 1_000_000_000;

const THREAD_ENTRY = new URL(`./sockperf-udp-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
const COUNTS = ['messagesIn', 'replies', 'overRate', 'malformed'] as const;

export interface SockperfUdpCounts {
  /** Datagrams that were one whole sockperf message. */
  messagesIn: number;
  replies: number;
  /** Replies not sent: the server's reply rate was used up (the client counts them lost). */
  overRate: number;
  /** Datagrams that were no sockperf message (too short, or a length that is not the datagram's). */
  malformed: number;
}

/**
 * The UDP side of the sockperf server, on the TCP port's number, as `sockperf sr` serves both: one
 * message per datagram; a message that asks for a reply (CLIENT and PONG_REQUEST, not WARMUP) gets
 * itself back with CLIENT cleared, to the address and port it came from, within the reply budget.
 * On the event loop (node:dgram), or with `threads` on as many threads, each a blocking socket of
 * the port's SO_REUSEPORT group: one recvfrom and one sendto per ping, as sockperf's C server.
 */
export class SockperfUdpServer {
  readonly #budget: SendBudget;
  readonly #threads: number;
  #bound: BoundUdpSocket | undefined;
  readonly #loopCounts: SockperfUdpCounts = { messagesIn: 0, replies: 0, overRate: 0, malformed: 0 };
  #workers: Worker[] = [];
  readonly #stop = new SharedArrayBuffer(4);
  #threadCounts: Float64Array | undefined;

  /** `budget`: shared with the TCP side when the server has a --max-rate; else one of SOCKPERF_UDP_DEFAULT_MAX_RATE. */
  constructor(budget: SendBudget | undefined, threads = 0) {
    this.#budget = budget ?? new SendBudget(SOCKPERF_UDP_DEFAULT_MAX_RATE / 8);
    this.#threads = threads;
  }

  get bitsPerSecond(): number {
    return this.#budget.bytesPerSecond * 8;
  }

  /** Every thread's counts summed (or the loop's). */
  get counts(): SockperfUdpCounts {
    const threadCounts = this.#threadCounts;
    if (threadCounts === undefined) return { ...this.#loopCounts };
    const sum = (field: number): number =>
      Array.from({ length: this.#threads }, (_, i) => threadCounts[i * 4 + field]!).reduce((a, b) => a + b, 0);
    return Object.fromEntries(COUNTS.map((name, field) => [name, sum(field)])) as unknown as SockperfUdpCounts;
  }

  async listen(host: string, port: number): Promise<void> {
    if (this.#threads > 0) return this.#startThreads(host, port);
    const bound = await bindUdp({ host, port });
    this.#bound = bound;
    bound.socket.on('message', (datagram, peer) => this.#receive(datagram, peer));
    bound.socket.on('error', () => {});
  }

  async #startThreads(host: string, port: number): Promise<void> {
    const counts = new SharedArrayBuffer(this.#threads * 4 * 8);
    this.#threadCounts = new Float64Array(counts);
    const family = isIPv6(host) ? 'ipv6' : 'ipv4';
    this.#workers = Array.from({ length: this.#threads }, (_, index) => {
      const data: SockperfUdpThreadData = { family, host, port, budget: this.#budget.state, stop: this.#stop, counts, index };
      return new Worker(THREAD_ENTRY, { workerData: data });
    });
    try {
      await Promise.all(
        this.#workers.map(
          (worker) =>
            new Promise<void>((resolve, reject) => {
              worker.once('message', () => resolve());
              worker.once('error', reject);
              worker.once('exit', () => reject(new Error('a sockperf UDP thread ended before it was ready')));
            }),
        ),
      );
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  #receive(datagram: Buffer, peer: RemoteInfo): void {
    const counts = this.#loopCounts;
    const kind = udpMessageKind(datagram);
    if (kind === 'malformed') {
      counts.malformed++;
      return;
    }
    counts.messagesIn++;
    if (kind === 'silent') return;
    // Charged as on the wire (IP and UDP headers too): tiny requests cannot buy many times the cap in replies.
    if (this.#budget.tryTake(datagram.length + UDP_IPV4_HEADERS_BYTES) !== 0) {
      counts.overRate++;
      return;
    }
    this.#bound?.socket.send(replyTo(datagram), peer.port, peer.address, (error) => {
      if (!error) counts.replies++;
    });
  }

  async close(): Promise<void> {
    Atomics.store(new Int32Array(this.#stop), 0, 1);
    const workers = this.#workers;
    this.#workers = [];
    // Each thread sees the flag within a receive timeout and closes its own socket: terminating it would leak the descriptor.
    await Promise.all(
      workers.map((worker) => new Promise<void>((resolve) => (worker.threadId === -1 ? resolve() : worker.once('exit', () => resolve())))),
    );
    const socket = this.#bound?.socket;
    this.#bound = undefined;
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
