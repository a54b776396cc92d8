import type { RemoteInfo } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { SendBudget } from '../../../transport/io/send-budget.ts';
import { bindUdp, type BoundUdpSocket } from '../../../transport/udp/udp-socket.ts';
import { startBlockingThreads, stopBlockingThreads } from '../../../transport/io/blocking-threads.ts';
import type { SockperfUdpThreadData } from './sockperf-udp-thread.ts';
import { answerable, REPLIES, UDP_COUNTS } from './sockperf-udp-answer.ts';

/**
 * What the UDP side replies at most, every client together, when the server is given no --max-rate:
 * sockperf over UDP has no handshake, so a reply may go to a forged source; it is never larger than
 * the datagram it answers, and together the replies stay under this.
 */
export const SOCKPERF_UDP_DEFAULT_MAX_RATE = 1_000_000_000;

const THREAD_ENTRY = new URL(`./sockperf-udp-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

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
  #workers: Worker[] = [];
  readonly #stop = new SharedArrayBuffer(4);
  /** A slot of UDP_COUNTS per thread (one for the loop), in memory the threads share. */
  readonly #counts: SharedArrayBuffer;
  /** The loop's own slot: the first. */
  readonly #loopCounts: Float64Array;

  /** `budget`: shared with the TCP side when the server has a --max-rate; else one of SOCKPERF_UDP_DEFAULT_MAX_RATE. */
  constructor(budget: SendBudget | undefined, threads = 0) {
    this.#budget = budget ?? new SendBudget(SOCKPERF_UDP_DEFAULT_MAX_RATE / 8);
    this.#threads = threads;
    this.#counts = new SharedArrayBuffer(Math.max(1, threads) * UDP_COUNTS.length * 8);
    this.#loopCounts = new Float64Array(this.#counts, 0, UDP_COUNTS.length);
  }

  get bitsPerSecond(): number {
    return this.#budget.bytesPerSecond * 8;
  }

  /** Every thread's counts summed (or the loop's). */
  get counts(): SockperfUdpCounts {
    const slots = new Float64Array(this.#counts);
    const sum = (field: number): number => slots.filter((_, index) => index % UDP_COUNTS.length === field).reduce((a, b) => a + b, 0);
    return Object.fromEntries(UDP_COUNTS.map((name, field) => [name, sum(field)])) as unknown as SockperfUdpCounts;
  }

  async listen(host: string, port: number): Promise<void> {
    if (this.#threads > 0) return this.#startThreads(host, port);
    const bound = await bindUdp({ host, port });
    this.#bound = bound;
    bound.socket.on('message', (datagram, peer) => this.#receive(datagram, peer));
    bound.socket.on('error', () => {});
  }

  async #startThreads(host: string, port: number): Promise<void> {
    const family = isIPv6(host) ? 'ipv6' : 'ipv4';
    const [budget, stop, counts] = [this.#budget.state, this.#stop, this.#counts];
    const data = Array.from({ length: this.#threads }, (_, index): SockperfUdpThreadData => ({
      family,
      host,
      port,
      budget,
      stop,
      counts,
      index,
    }));
    this.#workers = await startBlockingThreads(THREAD_ENTRY, data, this.#stop, 'a sockperf UDP thread');
  }

  #receive(datagram: Buffer, peer: RemoteInfo): void {
    const counts = this.#loopCounts;
    if (!answerable(datagram, this.#budget, counts)) return;
    // A copy: the reply outlives the view the socket handed over.
    this.#bound?.socket.send(Buffer.from(datagram), peer.port, peer.address, (error) => {
      if (!error) counts[REPLIES]!++;
    });
  }

  async close(): Promise<void> {
    const workers = this.#workers;
    this.#workers = [];
    await stopBlockingThreads(workers, this.#stop);
    const socket = this.#bound?.socket;
    this.#bound = undefined;
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
