import { randomBytes } from 'node:crypto';
import type { RemoteInfo } from 'node:dgram';
import { countDropsFrom } from '../../../core/udp-counters.ts';
import { isIPv6 } from 'node:net';
import { bufferCapWarnings, type BufferCapWarning, type EffectiveSocketOptions } from '../../../core/socket-options.ts';
import { DATAGRAM_TOKEN_BYTES, socktuneDatagrams } from '../../../framing/datagram.ts';
import { receiveDatagrams } from '../../../transport/udp/udp-batching.ts';
import type { ServerMetrics } from '../../../transport/server/metrics.ts';
import type { ServerAddress } from '../../../transport/server/socktune-server.ts';
import { bindUdp, type BoundUdpSocket } from '../../../transport/udp/udp-socket.ts';
import type { DatagramReport, UdpSourceSettings } from '../../control/control-protocol.ts';
import type { SendBudget } from '../../../transport/io/send-budget.ts';
import { sendDatagrams, type DatagramSender } from '../../../transport/udp/datagram-sender.ts';
import { DatagramStats } from '../../results/datagram-stats.ts';
import { UdpSinkThreads, type UdpSinkThreadsTotals } from './udp-sink-threads.ts';
import { sumLiveCounts, UdpTestCounts } from './udp-test-counts.ts';

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
 * gets nothing. In a thread model (stream -u and rr -u) the port is a SO_REUSEPORT group of
 * blocking sockets, one per thread (UdpSinkThreads), counting the same way.
 */
export class UdpSink {
  readonly token = randomBytes(DATAGRAM_TOKEN_BYTES);
  readonly #host: string;
  readonly #port: number;
  readonly #client: string | undefined;
  readonly #buffers: { sendBufferSize?: number | undefined; receiveBufferSize?: number | undefined };
  /** count 0: the event loop's socket; else this many threads (stream -u and rr -u in a thread model), pinned to `affinity`. */
  readonly #threading: { count: number; affinity?: number[] | undefined };
  readonly #counts = new UdpTestCounts(this.token);
  #bound: BoundUdpSocket | undefined;
  #threads: UdpSinkThreads | undefined;
  #threadTotals: Promise<UdpSinkThreadsTotals> | undefined;
  #effective: EffectiveSocketOptions | undefined;
  #warnings: BufferCapWarning[] = [];
  #drops: (() => { socket: number | null; host: number | null }) | undefined;
  #receives: (() => number) | undefined;

  readonly #role: UdpRole;
  readonly #source: { settings: UdpSourceSettings; shared: SendBudget | undefined } | undefined;
  readonly #senders = new Map<number, DatagramSender>();
  readonly #echo: { shared: SendBudget | undefined } | undefined;

  constructor(
    host: string,
    port: number,
    client: string | undefined,
    buffers: { sendBufferSize?: number; receiveBufferSize?: number },
    role: UdpRole = { kind: 'sink' },
    threads: { count: number; affinity?: number[] | undefined } = { count: 0 },
  ) {
    this.#host = host;
    this.#port = port;
    this.#client = client;
    this.#buffers = buffers;
    this.#role = role;
    this.#threading = threads;
    this.#source = role.kind === 'source' ? role : undefined;
    this.#echo = role.kind === 'echo' ? { shared: role.shared } : undefined;
  }

  get warnings(): BufferCapWarning[] {
    return this.#warnings;
  }

  async listen(): Promise<ServerAddress> {
    const family = isIPv6(this.#host) ? 'ipv6' : 'ipv4';
    const port = this.#threading.count > 0 ? await this.#startThreads(family) : await this.#bind();
    this.#warnings = bufferCapWarnings(this.#buffers, this.#effective!);
    this.#drops = countDropsFrom([{ address: this.#host, port }]);
    return { family, address: this.#host, port };
  }

  async #bind(): Promise<number> {
    const bound = await bindUdp({ host: this.#host, port: this.#port, ...this.#buffers });
    this.#bound = bound;
    this.#effective = bound.effective;
    // Counting only: a client's segmented sends may arrive whole, one receive for many datagrams.
    this.#receives = receiveDatagrams(bound.socket, this.token, this.#role.kind === 'sink', (datagram, source, arrival) =>
      this.#receive(datagram, source, arrival),
    );
    bound.socket.on('error', () => {});
    return bound.port;
  }

  async #startThreads(family: 'ipv4' | 'ipv6'): Promise<number> {
    const threads = await UdpSinkThreads.start({
      family,
      host: this.#host,
      port: this.#port,
      client: this.#client,
      token: this.token,
      buffers: this.#buffers,
      threads: this.#threading.count,
      affinity: this.#threading.affinity,
      echo: this.#echo !== undefined,
      budget: this.#echo?.shared,
      coalesce: this.#role.kind === 'sink',
    });
    this.#threads = threads;
    this.#effective = { ...threads.effective, noDelay: false, keepAlive: false };
    return threads.port;
  }

  #receive(datagram: Buffer, source: RemoteInfo, arrival: bigint): void {
    const header = this.#counts.accept(datagram, source.address === this.#client || this.#client === undefined);
    if (header === undefined) return;
    if (this.#source !== undefined) return this.#hello(header.stream, source);
    this.#counts.record(header, arrival, datagram.length);
    if (this.#echo !== undefined) this.#reply(header.stream, datagram, source);
  }

  /** rr -u: the datagram back to where it came from (the client's own address, checked above), within --max-rate. */
  #reply(stream: number, datagram: Buffer, to: RemoteInfo): void {
    const { shared } = this.#echo!;
    const socket = this.#bound?.socket;
    if (socket === undefined || (shared !== undefined && shared.tryTake(datagram.length) !== 0)) return;
    // The datagram is the socket's own view of what it read: a copy outlives the next read.
    socket.send(Buffer.from(datagram), to.port, to.address, (error) => {
      if (!error) this.#counts.echo(stream, datagram.length);
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
        batch: settings.batch,
      }),
    );
  }

  effectiveSocketOptions(): EffectiveSocketOptions {
    return this.#effective ?? { sendBufferSize: 0, receiveBufferSize: 0, noDelay: false, keepAlive: false };
  }

  metrics(): ServerMetrics {
    const live = this.#threads?.live() ?? sumLiveCounts(this.#counts.live);
    return {
      connectionsCurrent: 0,
      connectionsTotal: 0,
      bytesIn: live.bytesIn,
      bytesOut: [...this.#senders.values()].reduce((sum, sender) => sum + sender.sentBytes, live.echoedBytes),
      bytesCorrupted: 0,
      messagesIn: live.datagrams,
      errors: {},
    };
  }

  /** What the test counted; in a thread model its threads stop first (the client has finished sending). */
  async report(): Promise<DatagramReport> {
    // The sockets' drops are read while they are open: the kernel forgets a closed socket's.
    const drops = this.#effective === undefined ? undefined : this.#drops?.();
    const threaded = this.#threads === undefined ? undefined : await this.#stopThreads();
    const live = this.#threads?.live() ?? sumLiveCounts(this.#counts.live);
    const byStream = threaded?.streams ?? new Map([...this.#counts.streams].map(([stream, stats]) => [stream, stats.counts()]));
    const echoed = threaded?.echoed ?? this.#counts.echoed;
    // Streams by their index, one entry up to the highest that sent (a stream that sent nothing counts zeros).
    const length = byStream.size === 0 ? 0 : Math.max(...byStream.keys()) + 1;
    const streams = Array.from({ length }, (_, index) => byStream.get(index) ?? new DatagramStats().counts());
    return {
      streams,
      socketDrops: drops?.socket ?? null,
      hostReceiveBufferErrors: drops?.host ?? null,
      foreign: live.foreign,
      ...(this.#source === undefined
        ? {}
        : { sent: Array.from({ length: this.#source.settings.streams }, (_, stream) => this.#senders.get(stream)?.sent ?? 0) }),
      ...(this.#echo === undefined ? {} : { sent: Array.from({ length }, (_, stream) => echoed[stream] ?? 0) }),
      ...(this.#role.kind === 'sink' ? { receives: this.#receives?.() ?? live.receives } : {}),
      ...(this.#source === undefined ? {} : { sends: [...this.#senders.values()].reduce((sum, sender) => sum + sender.sends, 0) }),
    };
  }

  #stopThreads(): Promise<UdpSinkThreadsTotals> {
    this.#threadTotals ??= this.#threads!.stop();
    return this.#threadTotals;
  }

  async close(): Promise<void> {
    for (const sender of this.#senders.values()) sender.stop();
    if (this.#threads !== undefined) await this.#stopThreads();
    const socket = this.#bound?.socket;
    this.#bound = undefined;
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
