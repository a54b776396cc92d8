import type { RemoteInfo } from 'node:dgram';
import { fromSystemError } from '../../../core/errors.ts';
import { countDropsFrom } from '../../../core/udp-counters.ts';
import { iperf3Datagrams, readIperf3Datagram, UDP_CONNECT_REPLY, wallClockMicros } from '../../../protocols/iperf3/datagram.ts';
import type { Iperf3Params } from '../../../protocols/iperf3/codec.ts';
import type { SendBudget } from '../../../transport/io/send-budget.ts';
import { sendDatagrams, type DatagramSender } from '../../../transport/udp/datagram-sender.ts';
import { bindUdp, type BoundUdpSocket } from '../../../transport/udp/udp-socket.ts';
import { DatagramStats } from '../../results/datagram-stats.ts';
import { unmapped, type Iperf3UdpPort } from './udp-port.ts';

/** What a UDP stream counted, for the server's log: the receiving end's figures, or what the sending end sent. */
export interface UdpStreamFigures {
  /** Datagrams sent (this end sends) or expected from the highest packet number seen (it receives). */
  packets: number;
  lost: number;
  outOfOrder: number;
  jitterMs: number;
  /** Datagrams the kernel dropped on this stream's socket for a full receive buffer; null where unknown or when sending. */
  receiveBufferDrops: number | null;
}

/**
 * One UDP stream of a stock iperf3 client's test, on the server: a socket on the server's port
 * connected to the stream's peer, receiving (counted as iperf3's server counts: loss from the
 * packet numbers, RFC 3550 jitter from the send times) or sending iperf3's datagrams at the
 * client's -b, within the server's --max-rate.
 */
export class Iperf3UdpStream {
  readonly id: number;
  readonly sender: boolean;
  lastData = performance.now();
  #bytesIn = 0;
  /** Bytes before the end of --omit, not counted. */
  #bytesOmitted = 0;
  readonly #bound: BoundUdpSocket;
  readonly #stats = new DatagramStats();
  readonly #drops: () => { socket: number | null };
  #sending: DatagramSender | undefined;
  #closed = false;

  private constructor(id: number, sender: boolean, bound: BoundUdpSocket, drops: () => { socket: number | null }) {
    this.id = id;
    this.sender = sender;
    this.#bound = bound;
    this.#drops = drops;
  }

  /** Opens the stream's socket for `peer`, and tells the peer it is there (iperf3's connect reply). */
  static async open(port: Iperf3UdpPort, peer: RemoteInfo, params: Iperf3Params, id: number, sender: boolean): Promise<Iperf3UdpStream> {
    const buffers = params.window > 0 ? { sendBufferSize: params.window, receiveBufferSize: params.window } : {};
    const bound = await bindUdp({ host: port.host, port: port.port, reuseAddress: true, ...buffers });
    try {
      await new Promise<void>((resolve, reject) => {
        bound.socket.once('error', reject);
        bound.socket.connect(peer.port, peer.address, () => {
          bound.socket.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      bound.socket.close();
      throw fromSystemError(error, `connecting a UDP stream to ${peer.address}:${peer.port}`);
    }
    bound.socket.on('error', () => {});
    const drops = countDropsFrom([{ address: port.host, port: port.port, remote: { address: peer.address, port: peer.port } }]);
    const stream = new Iperf3UdpStream(id, sender, bound, drops);
    bound.socket.on('message', (datagram, from) => {
      // Queued before the socket was connected: another client's, for the port.
      if (from.port !== peer.port || unmapped(from.address) !== unmapped(peer.address)) port.dispatch(datagram, from);
      else if (!sender) stream.#receive(datagram, params.udpCounters64);
    });
    bound.socket.send(UDP_CONNECT_REPLY);
    return stream;
  }

  #receive(datagram: Buffer, counters64: boolean): void {
    const header = readIperf3Datagram(datagram, counters64);
    if (header === undefined || header.packet === 0) return;
    this.#stats.record(header.packet - 1, header.sentNs, BigInt(wallClockMicros()) * 1000n, datagram.length);
    this.#bytesIn += datagram.length;
    this.lastData = performance.now();
  }

  /** -R, --bidir: iperf3's datagrams of -l bytes at the client's -b, and within the server's budget. */
  startSending(params: Iperf3Params, shared: SendBudget | undefined, streams: number): void {
    this.#sending = sendDatagrams(this.#bound.socket, {
      format: iperf3Datagrams(params.len, params.udpCounters64),
      bitsPerSecond: params.bandwidth,
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
    if (this.sender) {
      const sent = this.#sending?.sent ?? 0;
      return { packets: sent, lost: 0, outOfOrder: 0, jitterMs: 0, receiveBufferDrops: null };
    }
    const counts = this.#stats.counts();
    return {
      packets: counts.expected,
      lost: Math.max(0, counts.expected - counts.received),
      outOfOrder: counts.outOfOrder,
      jitterMs: counts.jitterUs / 1000,
      receiveBufferDrops: this.#drops().socket,
    };
  }

  close(): void {
    this.stopSending();
    if (this.#closed) return;
    this.#closed = true;
    this.#bound.socket.close();
  }
}
