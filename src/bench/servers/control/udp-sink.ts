import { randomBytes } from 'node:crypto';
import type { RemoteInfo } from 'node:dgram';
import type { BufferCapWarning, EffectiveSocketOptions } from '../../../core/socket-options.ts';
import { countDropsFrom } from '../../../core/udp-counters.ts';
import { DATAGRAM_TOKEN_BYTES, readDatagram, socktuneDatagrams } from '../../../framing/datagram.ts';
import { receiveDatagrams } from '../../../transport/udp/udp-batching.ts';
import type { ServerMetrics } from '../../../transport/server/metrics.ts';
import type { ServerAddress } from '../../../transport/server/socktune-server.ts';
import { bindUdp, type BoundUdpSocket } from '../../../transport/udp/udp-socket.ts';
import type { DatagramReport, UdpSourceSettings } from '../../control/control-protocol.ts';
import type { SendBudget } from '../../../transport/io/send-budget.ts';
import { sendDatagrams, type DatagramSender } from '../../../transport/udp/datagram-sender.ts';
import { DatagramStats } from '../../results/datagram-stats.ts';

/**
 * Streams one test may count (stream -u -P takes at most 128): a client cannot grow the server's
 * memory with stream numbers (each stream's reorder window is 8 KiB).
 */
const MAX_STREAMS = 128;

/** What a UDP test's server does besides counting: send (stream -u -R) or send each datagram back (rr -u). */
export type UdpRole =
  | { kind: 'sink' }
  | { kind: 'source'; settings: UdpSourceSettings; shared: SendBudget | undefined }
  | { kind: 'echo'; shared: SendBudget | undefined };

/**
 * The server's end of a `stream -u` or `rr -u` test: one UDP socket on the address the client
 * reached the control port on. It counts the datagrams that carry this test's token and come from
 * the client's own address; with `source` (-R) it sends, to each client socket that said hello with
 * the token from that address, the datagrams asked for, paced and within the server's --max-rate;
 * with `echo` (rr -u) it sends each such datagram back, byte for byte, while --max-rate allows (a
 * reply over it is not sent: the client counts it lost). It answers nothing else: a spoofed source
 * gets nothing.
 */
export class UdpSink {
  readonly token = randomBytes(DATAGRAM_TOKEN_BYTES);
  readonly #host: string;
  readonly #client: string | undefined;
  readonly #buffers: { sendBufferSize?: number | undefined; receiveBufferSize?: number | undefined };
  readonly #streams = new Map<number, DatagramStats>();
  #bound: BoundUdpSocket | undefined;
  #bytesIn = 0;
  #foreign = 0;
  #receives: (() => number) | undefined;
  #drops: (() => { socket: number | null; host: number | null }) | undefined;

  readonly #role: UdpRole;
  readonly #source: { settings: UdpSourceSettings; shared: SendBudget | undefined } | undefined;
  readonly #senders = new Map<number, DatagramSender>();
  readonly #echo: { shared: SendBudget | undefined; echoed: number[]; bytes: number } | undefined;

  constructor(
    host: string,
    client: string | undefined,
    buffers: { sendBufferSize?: number; receiveBufferSize?: number },
    role: UdpRole = { kind: 'sink' },
  ) {
    this.#host = host;
    this.#client = client;
    this.#buffers = buffers;
    this.#role = role;
    this.#source = role.kind === 'source' ? role : undefined;
    this.#echo = role.kind === 'echo' ? { shared: role.shared, echoed: [], bytes: 0 } : undefined;
  }

  get warnings(): BufferCapWarning[] {
    return this.#bound?.warnings ?? [];
  }

  async listen(): Promise<ServerAddress> {
    const bound = await bindUdp({ host: this.#host, port: 0, ...this.#buffers });
    this.#bound = bound;
    this.#drops = countDropsFrom([{ address: this.#host, port: bound.port }]);
    // Counting only: a client's segmented sends may arrive whole, one receive for many datagrams.
    this.#receives = receiveDatagrams(bound.socket, this.token, this.#role.kind === 'sink', (datagram, source, arrival) =>
      this.#receive(datagram, source, arrival),
    );
    bound.socket.on('error', () => {});
    return { family: bound.family === 'IPv6' ? 'ipv6' : 'ipv4', address: this.#host, port: bound.port };
  }

  #receive(datagram: Buffer, source: RemoteInfo, arrival: bigint): void {
    const header = source.address === this.#client || this.#client === undefined ? readDatagram(datagram, this.token) : undefined;
    if (header === undefined || (header.stream >= MAX_STREAMS && !this.#streams.has(header.stream))) {
      this.#foreign++;
      return;
    }
    if (this.#source !== undefined) return this.#hello(header.stream, source);
    let stats = this.#streams.get(header.stream);
    if (stats === undefined) this.#streams.set(header.stream, (stats = new DatagramStats()));
    stats.record(header.sequence, header.sentNs, arrival, datagram.length);
    this.#bytesIn += datagram.length;
    if (this.#echo !== undefined) this.#reply(header.stream, datagram, source);
  }

  /** rr -u: the datagram back to where it came from (the client's own address, checked above), within --max-rate. */
  #reply(stream: number, datagram: Buffer, to: RemoteInfo): void {
    const echo = this.#echo!;
    const socket = this.#bound?.socket;
    if (socket === undefined || (echo.shared !== undefined && echo.shared.tryTake(datagram.length) !== 0)) return;
    // The datagram is the socket's own view of what it read: a copy outlives the next read.
    socket.send(Buffer.from(datagram), to.port, to.address, (error) => {
      if (error) return;
      echo.echoed[stream] = (echo.echoed[stream] ?? 0) + 1;
      echo.bytes += datagram.length;
    });
  }

  /** A client socket of this test says where its stream goes: sending starts, once per stream. */
  #hello(stream: number, from: RemoteInfo): void {
    const { settings, shared } = this.#source!;
    const socket = this.#bound?.socket;
    if (stream >= settings.streams || this.#senders.has(stream) || socket === undefined) return;
    this.#senders.set(
      stream,
      sendDatagrams(socket, {
        format: socktuneDatagrams(settings.datagramBytes, this.token, stream),
        bitsPerSecond: settings.bitsPerSecond,
        to: { port: from.port, address: from.address },
        shared,
        streams: settings.streams,
        segmented: settings.segmented !== false,
      }),
    );
  }

  effectiveSocketOptions(): EffectiveSocketOptions {
    return this.#bound?.effective ?? { sendBufferSize: 0, receiveBufferSize: 0, noDelay: false, keepAlive: false };
  }

  metrics(): ServerMetrics {
    const received = [...this.#streams.values()].reduce((sum, stats) => sum + stats.counts().received, 0);
    return {
      connectionsCurrent: 0,
      connectionsTotal: 0,
      bytesIn: this.#bytesIn,
      bytesOut: [...this.#senders.values()].reduce((sum, sender) => sum + sender.sentBytes, this.#echo?.bytes ?? 0),
      bytesCorrupted: 0,
      messagesIn: received,
      errors: {},
    };
  }

  report(): DatagramReport {
    // Streams by their index, one entry up to the highest that sent (a stream that sent nothing counts zeros).
    const length = this.#streams.size === 0 ? 0 : Math.max(...this.#streams.keys()) + 1;
    const streams = Array.from({ length }, (_, index) => (this.#streams.get(index) ?? new DatagramStats()).counts());
    const drops = this.#bound === undefined ? undefined : this.#drops?.();
    return {
      streams,
      socketDrops: drops?.socket ?? null,
      hostReceiveBufferErrors: drops?.host ?? null,
      foreign: this.#foreign,
      ...(this.#source === undefined
        ? {}
        : { sent: Array.from({ length: this.#source.settings.streams }, (_, stream) => this.#senders.get(stream)?.sent ?? 0) }),
      ...(this.#echo === undefined ? {} : { sent: Array.from({ length }, (_, stream) => this.#echo!.echoed[stream] ?? 0) }),
      ...(this.#role.kind === 'sink' ? { receives: this.#receives?.() ?? 0 } : {}),
      ...(this.#source === undefined ? {} : { sends: [...this.#senders.values()].reduce((sum, sender) => sum + sender.sends, 0) }),
    };
  }

  close(): Promise<void> {
    for (const sender of this.#senders.values()) sender.stop();
    const socket = this.#bound?.socket;
    this.#bound = undefined;
    return socket === undefined ? Promise.resolve() : new Promise((resolve) => socket.close(() => resolve()));
  }
}
