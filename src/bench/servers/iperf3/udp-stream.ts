import type { RemoteInfo } from 'node:dgram';
import { iperf3Datagrams, readIperf3Datagram, wallClockMicros } from '../../../protocols/iperf3/datagram.ts';
import type { Iperf3Params } from '../../../protocols/iperf3/codec.ts';
import type { SendBudget } from '../../../transport/io/send-budget.ts';
import { sendDatagrams, type DatagramSender } from '../../../transport/udp/datagram-sender.ts';
import { DatagramStats } from '../../results/datagram-stats.ts';
import type { Iperf3UdpPort, PortStream } from './udp-port.ts';

/** What a UDP stream counted, for the server's log: the receiving end's figures, or what the sending end sent. */
export interface UdpStreamFigures {
  /** Datagrams sent (this end sends) or expected from the highest packet number seen (it receives). */
  packets: number;
  lost: number;
  outOfOrder: number;
  jitterMs: number;
}

/**
 * One UDP stream of a stock iperf3 client's test, on the server's port: it receives its peer's
 * datagrams (counted as iperf3's server counts: loss from the packet numbers, RFC 3550 jitter from
 * the send times) or sends iperf3's datagrams to the peer at the client's -b, within the server's
 * --max-rate.
 */
export class Iperf3UdpStream implements PortStream {
  readonly id: number;
  readonly sender: boolean;
  lastData = performance.now();
  readonly #port: Iperf3UdpPort;
  readonly #peer: RemoteInfo;
  readonly #counters64: boolean;
  readonly #stats = new DatagramStats();
  readonly #detach: () => void;
  #bytesIn = 0;
  /** Bytes before the end of --omit, not counted. */
  #bytesOmitted = 0;
  #sending: DatagramSender | undefined;

  /** Takes `peer`'s datagrams from the port from now on, and tells the peer so (iperf3's connect reply). */
  constructor(port: Iperf3UdpPort, peer: RemoteInfo, params: Iperf3Params, id: number, sender: boolean) {
    this.id = id;
    this.sender = sender;
    this.#port = port;
    this.#peer = peer;
    this.#counters64 = params.udpCounters64;
    this.#detach = port.attach(peer, this);
  }

  receive(datagram: Buffer): void {
    if (this.sender) return;
    const header = readIperf3Datagram(datagram, this.#counters64);
    if (header === undefined || header.packet === 0) return;
    this.#stats.record(header.packet - 1, header.sentNs, BigInt(wallClockMicros()) * 1000n, datagram.length);
    this.#bytesIn += datagram.length;
    this.lastData = performance.now();
  }

  /** -R, --bidir: iperf3's datagrams of -l bytes at the client's -b, and within the server's budget. */
  startSending(params: Iperf3Params, shared: SendBudget | undefined, streams: number): void {
    this.#sending = sendDatagrams(this.#port.socket, {
      format: iperf3Datagrams(params.len, params.udpCounters64),
      bitsPerSecond: params.bandwidth,
      to: { address: this.#peer.address, port: this.#peer.port },
      shared,
      streams,
    });
  }

  stopSending(): void {
    this.#sending?.stop();
  }

  /** Bytes sent or received since the end of --omit. */
  get bytes(): number {
    return (this.sender ? (this.#sending?.sentBytes ?? 0) : this.#bytesIn) - this.#bytesOmitted;
  }

  /** Bytes counted from now on only (the end of --omit); packets, loss and jitter go on, as iperf3's server reports them. */
  resetBytes(): void {
    this.#bytesOmitted += this.bytes;
  }

  figures(): UdpStreamFigures {
    if (this.sender) return { packets: this.#sending?.sent ?? 0, lost: 0, outOfOrder: 0, jitterMs: 0 };
    const counts = this.#stats.counts();
    return {
      packets: counts.expected,
      lost: Math.max(0, counts.expected - counts.received),
      outOfOrder: counts.outOfOrder,
      jitterMs: counts.jitterUs / 1000,
    };
  }

  close(): void {
    this.stopSending();
    this.#detach();
  }
}
