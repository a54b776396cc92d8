import type { EffectiveSocketOptions } from '../../core/socket-options.ts';
import { readTcpInfo } from '../../core/socket-syscalls.ts';
import { connect, type TunedSocket } from '../../transport/client/connect.ts';
import { fdOf } from '../../transport/io/fd.ts';
import { pumpWrites } from '../../transport/io/pump.ts';
import { SendBudget } from '../../transport/io/send-budget.ts';
import type { Iperf3ClientOptions, Iperf3ClientStreams, Iperf3ServerStream } from './iperf3-client-streams.ts';
import { tcpInfoOf } from './data-connections.ts';
import type { PerConnection } from './stream-intervals.ts';
import { sleep } from './ticker.ts';

interface Stream {
  socket: TunedSocket;
  sender: boolean;
  bytes: number;
}

/** How long to wait for sent data to be acknowledged before TEST_END. */
const DELIVERY_WAIT_MS = 1000;
const SETTLE_MS = 50;

/** An iperf3 test's TCP data connections, as a stock client opens and drives them. */
export class Iperf3TcpStreams implements Iperf3ClientStreams {
  readonly #options: Iperf3ClientOptions;
  readonly #streams: Stream[] = [];
  #sending = false;
  /** Each stream's retransmits, read before TEST_END (iperf3's server closes the streams when it reads it). */
  #retransmits: number[] = [];

  constructor(options: Iperf3ClientOptions) {
    this.#options = options;
  }

  parameters(): Record<string, unknown> {
    const options = this.#options;
    return {
      tcp: true,
      len: options.writeSize,
      ...(options.window === undefined ? {} : { window: options.window }),
      ...(options.noDelay ? { nodelay: true } : {}),
      ...(options.bitrate === undefined ? {} : { bandwidth: options.bitrate }),
    };
  }

  async open(cookie: Buffer): Promise<void> {
    const options = this.#options;
    const total = options.parallel * (options.direction === 'bidir' ? 2 : 1);
    const bufferSizes = options.window === undefined ? {} : { sendBufferSize: options.window, receiveBufferSize: options.window };
    for (let i = 0; i < total; i++) {
      const stream: Stream = {
        socket: undefined as unknown as TunedSocket,
        sender: options.direction === 'forward' || (options.direction === 'bidir' && i < options.parallel),
        bytes: 0,
      };
      stream.socket = await connect({
        host: options.host,
        port: options.port,
        ...bufferSizes,
        noDelay: options.noDelay,
        ...(options.localPort === undefined ? {} : { localPort: options.localPort + i }),
        onread: { buffer: Buffer.allocUnsafe(128 * 1024), callback: (bytes: number) => ((stream.bytes += bytes), true) },
      });
      stream.socket.on('error', () => {});
      stream.socket.write(cookie);
      this.#streams.push(stream);
    }
  }

  effective(): EffectiveSocketOptions | null {
    return this.#streams[0]?.socket.effectiveSocketOptions() ?? null;
  }

  start(): void {
    const options = this.#options;
    this.#sending = true;
    const block = Buffer.alloc(options.writeSize, 0x73);
    const limit = options.bytes ?? Infinity;
    let sentTotal = 0;
    for (const stream of this.#streams.filter((s) => s.sender)) {
      pumpWrites(
        stream.socket,
        () => block,
        () => this.#sending && sentTotal < limit,
        (bytes) => {
          stream.bytes += bytes;
          sentTotal += bytes;
        },
        options.bitrate === undefined ? undefined : new SendBudget(options.bitrate / 8),
      );
    }
  }

  sentBytes(): number {
    return this.#bytes(true);
  }

  receivedBytes(): number {
    return this.#bytes(false);
  }

  #bytes(sender: boolean): number {
    return this.#streams.filter((stream) => stream.sender === sender).reduce((sum, stream) => sum + stream.bytes, 0);
  }

  perConnection(): PerConnection {
    return {
      counts: () =>
        this.#streams.map((stream) => ({
          sent: stream.sender ? stream.bytes : 0,
          received: stream.sender ? 0 : stream.bytes,
          sends: stream.sender,
        })),
      tcpInfo: (index) => tcpInfoOf(this.#streams[index]?.socket),
    };
  }

  async stop(): Promise<void> {
    this.#sending = false;
    await untilDelivered(this.#streams.filter((stream) => stream.sender).map((stream) => stream.socket));
    this.#retransmits = this.#streams.map((stream) => readTcpInfo(fdOf(stream.socket)).retransmits);
  }

  results(durationSec: number): Record<string, unknown>[] {
    return this.#streams.map((stream, index) => ({
      id: index === 0 ? 1 : index + 2,
      bytes: stream.bytes,
      retransmits: this.#retransmits[index] ?? 0,
      jitter: 0,
      errors: 0,
      packets: 0,
      start_time: 0,
      end_time: durationSec,
    }));
  }

  summarize(server: Iperf3ServerStream[]): ReturnType<Iperf3ClientStreams['summarize']> {
    const { direction, parallel } = this.#options;
    const forwardIndex = (index: number): boolean => direction === 'forward' || (direction === 'bidir' && index < parallel);
    const serverBytes = (ids: (index: number) => boolean): number =>
      server.filter((_, index) => ids(index)).reduce((sum, stream) => sum + stream.bytes, 0);
    const serverReceived = serverBytes(forwardIndex);
    const serverSent = serverBytes((index) => !forwardIndex(index));
    const serverRetransmits = server.filter((_, index) => !forwardIndex(index)).reduce((sum, stream) => sum + stream.retransmits, 0);
    const clientRetransmits = this.#streams.reduce((sum, stream, index) => sum + (stream.sender ? (this.#retransmits[index] ?? 0) : 0), 0);
    const [clientSent, clientReceived] = [this.sentBytes(), this.receivedBytes()];
    return {
      sender: direction === 'reverse' ? { bytes: serverSent, side: 'server' } : { bytes: clientSent, side: 'client' },
      receiver: direction === 'reverse' ? { bytes: clientReceived, side: 'client' } : { bytes: serverReceived, side: 'server' },
      ...(direction === 'bidir' ? { reverseBytes: { sent: serverSent, received: clientReceived } } : {}),
      retransmits: direction === 'reverse' ? serverRetransmits : clientRetransmits,
    };
  }

  close(): void {
    this.#sending = false;
    for (const stream of this.#streams) stream.socket.destroy();
  }
}

/**
 * iperf3's server closes its streams when it reads TEST_END, dropping data still on the way; so
 * TEST_END waits (briefly) until the kernel has every byte written and the peer acknowledged it.
 */
async function untilDelivered(sockets: TunedSocket[]): Promise<void> {
  const deadline = performance.now() + DELIVERY_WAIT_MS;
  const pending = (): boolean =>
    sockets.some((socket) => !socket.destroyed && (socket.writableLength > 0 || readTcpInfo(fdOf(socket)).unacked > 0));
  while (pending() && performance.now() < deadline) await sleep(1);
  // Acknowledged is not yet read: give the server's reader a moment before TEST_END closes the streams.
  await sleep(SETTLE_MS);
}
