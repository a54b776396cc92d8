import type { RemoteInfo } from 'node:dgram';
import { FLAG_WARMUP, HEADER_BYTES, messageFlags, messageLength, replyTo, wantsReply } from '../../../protocols/sockperf/codec.ts';
import { SendBudget } from '../../../transport/io/send-budget.ts';
import { bindUdp, type BoundUdpSocket } from '../../../transport/udp/udp-socket.ts';

/**
 * What the UDP side replies at most, every client together, when the server is given no --max-rate:
 * sockperf over UDP has no handshake, so a reply may go to a forged source; it is never larger than
 * the datagram it answers, and together the replies stay under this.
 */
export const SOCKPERF_UDP_DEFAULT_MAX_RATE = 100_000_000;

/** An IPv4 and a UDP header: what each reply costs on the wire beyond its payload. */
const WIRE_OVERHEAD_BYTES = 28;

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
 */
export class SockperfUdpServer {
  readonly counts: SockperfUdpCounts = { messagesIn: 0, replies: 0, overRate: 0, malformed: 0 };
  readonly #budget: SendBudget;
  #bound: BoundUdpSocket | undefined;

  /** `budget`: shared with the TCP side when the server has a --max-rate; else one of SOCKPERF_UDP_DEFAULT_MAX_RATE. */
  constructor(budget: SendBudget | undefined) {
    this.#budget = budget ?? new SendBudget(SOCKPERF_UDP_DEFAULT_MAX_RATE / 8);
  }

  get bitsPerSecond(): number {
    return this.#budget.bytesPerSecond * 8;
  }

  async listen(host: string, port: number): Promise<void> {
    const bound = await bindUdp({ host, port });
    this.#bound = bound;
    bound.socket.on('message', (datagram, peer) => this.#receive(datagram, peer));
    bound.socket.on('error', () => {});
  }

  #receive(datagram: Buffer, peer: RemoteInfo): void {
    if (datagram.length < HEADER_BYTES || messageLength(datagram) !== datagram.length) {
      this.counts.malformed++;
      return;
    }
    this.counts.messagesIn++;
    if (!wantsReply(datagram) || (messageFlags(datagram) & FLAG_WARMUP) !== 0) return;
    // Charged as on the wire (IP and UDP headers too): tiny requests cannot buy many times the cap in replies.
    if (this.#budget.tryTake(datagram.length + WIRE_OVERHEAD_BYTES) !== 0) {
      this.counts.overRate++;
      return;
    }
    this.#bound?.socket.send(replyTo(datagram), peer.port, peer.address, (error) => {
      if (!error) this.counts.replies++;
    });
  }

  close(): Promise<void> {
    const socket = this.#bound?.socket;
    this.#bound = undefined;
    return socket === undefined ? Promise.resolve() : new Promise((resolve) => socket.close(() => resolve()));
  }
}
