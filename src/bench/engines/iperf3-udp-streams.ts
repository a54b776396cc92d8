import { isIPv6 } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import type { EffectiveSocketOptions } from '../../core/socket-options.ts';
import { withTimeout } from '../../core/timeout.ts';
import { countDropsFrom } from '../../core/udp-counters.ts';
import {
  iperf3Datagrams,
  isUdpConnectReply,
  readIperf3Datagram,
  UDP_CONNECT_MESSAGE,
  wallClockMicros,
} from '../../protocols/iperf3/datagram.ts';
import { sendDatagrams, type DatagramSender } from '../../transport/udp/datagram-sender.ts';
import { bindUdp, connectUdp, type BoundUdpSocket } from '../../transport/udp/udp-socket.ts';
import { datagramsPerCall, DatagramStats, sumDatagramCounts, udpSummary } from '../results/datagram-stats.ts';
import type { UdpSummary } from '../results/result.ts';
import type { Iperf3ClientOptions, Iperf3ClientStreams, Iperf3ServerStream } from './iperf3-client-streams.ts';
import type { PerConnection } from './stream-intervals.ts';
import { sleep } from './ticker.ts';

/** How long a stream waits for the server's connect reply (iperf3's own client waits 30 s). */
const CONNECT_REPLY_TIMEOUT_MS = 10_000;
/** -R: datagrams that may come before the reply (iperf3 allows a few, reordered). */
const DATAGRAMS_BEFORE_REPLY = 16;
/** Time for the last datagrams to reach the server before TEST_END, after which iperf3's server counts none. */
const SETTLE_MS = 100;

interface Stream {
  bound: BoundUdpSocket;
  sender: DatagramSender | undefined;
  received: DatagramStats;
  receivedBytes: number;
  receives: number;
}

/**
 * An iperf3 test's UDP streams, as a stock `iperf3 -u` client opens them: each a socket connected to
 * the server's port, announced by iperf3's connect message, then iperf3's datagrams (packet number
 * and send time) paced at -b, or counted as they arrive with -R.
 */
export class Iperf3UdpStreams implements Iperf3ClientStreams {
  readonly #options: Iperf3ClientOptions;
  readonly #server: string;
  readonly #streams: Stream[] = [];
  #drops: (() => { socket: number | null; host: number | null }) | undefined;

  /** `server`: the address the control connection reached (not the name again, which could resolve elsewhere). */
  constructor(options: Iperf3ClientOptions, server: string) {
    this.#options = options;
    this.#server = server;
  }

  get #reverse(): boolean {
    return this.#options.direction === 'reverse';
  }

  parameters(): Record<string, unknown> {
    const options = this.#options;
    return {
      udp: true,
      len: options.writeSize,
      ...(options.window === undefined ? {} : { window: options.window }),
      // A stock client leaves the key out for -b 0: as fast as it goes.
      ...(options.bitrate === undefined || options.bitrate === 0 ? {} : { bandwidth: options.bitrate }),
    };
  }

  async open(): Promise<void> {
    const options = this.#options;
    const buffers = options.window === undefined ? {} : { sendBufferSize: options.window, receiveBufferSize: options.window };
    for (let index = 0; index < options.parallel; index++) {
      const bound = await bindUdp({
        host: isIPv6(this.#server) ? '::' : '0.0.0.0',
        port: options.localPort === undefined ? 0 : options.localPort + index,
        ...buffers,
      });
      const stream: Stream = { bound, sender: undefined, received: new DatagramStats(), receivedBytes: 0, receives: 0 };
      this.#streams.push(stream);
      bound.socket.on('error', () => {});
      await connectUdp(bound.socket, options.port, this.#server);
      await withTimeout(this.#connected(stream), CONNECT_REPLY_TIMEOUT_MS, `the iperf3 server's UDP connect reply (stream ${index + 1})`);
      bound.socket.on('message', (datagram) => this.#receive(stream, datagram));
    }
    if (this.#reverse) this.#drops = countDropsFrom(this.#streams.map((stream) => stream.bound.socket.address()));
  }

  /** Says the stream is there and waits for the server's reply (with -R, its first datagrams may come first: counted). */
  #connected(stream: Stream): Promise<void> {
    const socket = stream.bound.socket;
    return new Promise((resolve, reject) => {
      let before = 0;
      const onMessage = (datagram: Buffer): void => {
        if (isUdpConnectReply(datagram)) {
          socket.off('message', onMessage);
          resolve();
        } else if (++before > DATAGRAMS_BEFORE_REPLY) {
          socket.off('message', onMessage);
          reject(new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `the iperf3 server sent ${before} datagrams and no UDP connect reply`));
        } else this.#receive(stream, datagram);
      };
      socket.on('message', onMessage);
      socket.send(UDP_CONNECT_MESSAGE);
    });
  }

  #receive(stream: Stream, datagram: Buffer): void {
    stream.receives++;
    const header = readIperf3Datagram(datagram, false);
    if (header === undefined || header.packet === 0) return;
    stream.received.record(header.packet - 1, header.sentNs, BigInt(wallClockMicros()) * 1000n, datagram.length);
    stream.receivedBytes += datagram.length;
  }

  effective(): EffectiveSocketOptions | null {
    return this.#streams[0]?.bound.effective ?? null;
  }

  start(): void {
    if (this.#reverse) return;
    const options = this.#options;
    for (const stream of this.#streams)
      stream.sender = sendDatagrams(stream.bound.socket, {
        format: iperf3Datagrams(options.writeSize, false),
        bitsPerSecond: options.bitrate ?? 0,
        streams: this.#streams.length,
        batch: options.batch,
      });
  }

  sentBytes(): number {
    return this.#streams.reduce((sum, stream) => sum + (stream.sender?.sentBytes ?? 0), 0);
  }

  receivedBytes(): number {
    return this.#streams.reduce((sum, stream) => sum + stream.receivedBytes, 0);
  }

  perConnection(): PerConnection {
    return {
      counts: () =>
        this.#streams.map((stream) => ({
          sent: stream.sender?.sentBytes ?? 0,
          received: stream.receivedBytes,
          sends: !this.#reverse,
        })),
      tcpInfo: () => null,
    };
  }

  async stop(): Promise<void> {
    for (const stream of this.#streams) stream.sender?.stop();
    await sleep(SETTLE_MS);
  }

  results(durationSec: number): Record<string, unknown>[] {
    return this.#streams.map((stream, index) => {
      const counts = stream.received.counts();
      return {
        id: index === 0 ? 1 : index + 2,
        bytes: this.#reverse ? stream.receivedBytes : (stream.sender?.sentBytes ?? 0),
        retransmits: -1,
        jitter: counts.jitterUs / 1e6,
        errors: Math.max(0, counts.expected - counts.received),
        packets: this.#reverse ? counts.expected : (stream.sender?.sent ?? 0),
        start_time: 0,
        end_time: durationSec,
      };
    });
  }

  summarize(server: Iperf3ServerStream[]): ReturnType<Iperf3ClientStreams['summarize']> {
    if (server.length !== this.#streams.length)
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `the iperf3 server reported ${server.length} streams of ${this.#streams.length}`);
    const serverBytes = server.reduce((sum, stream) => sum + stream.bytes, 0);
    const side = (mine: boolean, bytes: number): { bytes: number; side: 'client' | 'server' } => ({
      bytes,
      side: mine ? 'client' : 'server',
    });
    return {
      sender: side(!this.#reverse, this.#reverse ? serverBytes : this.sentBytes()),
      receiver: side(this.#reverse, this.#reverse ? this.receivedBytes() : serverBytes),
      retransmits: null,
      udp: this.#reverse ? this.#reverseSummary(server) : this.#forwardSummary(server),
    };
  }

  /** This client sent; the server counted (iperf3's server reports loss and jitter, not reordering). */
  #forwardSummary(server: Iperf3ServerStream[]): UdpSummary {
    const sent = this.#streams.reduce((sum, stream) => sum + (stream.sender?.sent ?? 0), 0);
    const received = server.reduce((sum, stream) => sum + Math.max(0, stream.packets - stream.errors), 0);
    if (received > sent)
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `the iperf3 server counted ${received} datagrams; this client sent ${sent}`);
    return udpSummary(this.#options.writeSize, sent, received, {
      sendErrors: this.#streams.reduce((sum, stream) => sum + (stream.sender?.failed ?? 0), 0),
      outOfOrder: null,
      duplicates: null,
      jitterUs: server.length === 0 ? 0 : (server.reduce((sum, stream) => sum + stream.jitter, 0) / server.length) * 1e6,
      receiveBufferDrops: null,
      hostReceiveBufferErrors: null,
      foreign: 0,
      datagramsPerSend: datagramsPerCall(
        sent,
        this.#streams.reduce((sum, stream) => sum + (stream.sender?.sends ?? 0), 0),
      ),
      datagramsPerReceive: null,
    });
  }

  /** The server sent; this client counted, and read its own sockets' drop counters. */
  #reverseSummary(server: Iperf3ServerStream[]): UdpSummary {
    const sent = server.reduce((sum, stream) => sum + stream.packets, 0);
    const counted = sumDatagramCounts(this.#streams.map((stream) => stream.received.counts()));
    const drops = this.#drops?.() ?? { socket: null, host: null };
    return udpSummary(this.#options.writeSize, Math.max(sent, counted.received), counted.received, {
      sendErrors: 0,
      outOfOrder: counted.outOfOrder,
      duplicates: counted.duplicates,
      jitterUs: counted.jitterUs,
      receiveBufferDrops: drops.socket,
      hostReceiveBufferErrors: drops.host,
      foreign: 0,
      datagramsPerSend: null,
      datagramsPerReceive: datagramsPerCall(
        counted.received,
        this.#streams.reduce((sum, stream) => sum + stream.receives, 0),
      ),
    });
  }

  close(): void {
    for (const stream of this.#streams) {
      stream.sender?.stop();
      stream.bound.socket.close();
    }
  }
}
