import { SocktuneError } from '../../core/errors.ts';
import { withTimeout } from '../../core/timeout.ts';
import type { EffectiveSocketOptions } from '../../core/socket-options.ts';
import { readTcpInfo } from '../../core/socket-syscalls.ts';
import { ByteReader } from '../../framing/byte-reader.ts';
import type { StreamInterval, StreamResult } from '../results/result.ts';
import { benchResult } from '../results/envelope.ts';
import { SelfMonitor } from './self-check.ts';
import { round } from '../results/stats.ts';
import { iperf3StreamRecord } from '../results/result-options.ts';
import { sleep } from './ticker.ts';
import { startStreamIntervals } from './stream-intervals.ts';
import { tcpInfoOf } from './data-connections.ts';
import { connect, type TunedSocket } from '../../transport/client/connect.ts';
import { fdOf } from '../../transport/io/fd.ts';
import { SendBudget } from '../../transport/io/send-budget.ts';
import { pumpWrites } from '../../transport/io/pump.ts';
import { encodeJson, generateCookie, MAX_JSON_BYTES, readJson, readState, STATE, stateByte } from '../../protocols/iperf3/codec.ts';

export interface Iperf3ClientOptions {
  host: string;
  port: number;
  durationSec: number;
  /** iperf3 -n: end after this many bytes instead of after durationSec. */
  bytes?: number | undefined;
  omitSec: number;
  /** Bytes per write (iperf3 -l). */
  writeSize: number;
  parallel: number;
  direction: 'forward' | 'reverse' | 'bidir';
  /** iperf3 -w: SO_SNDBUF and SO_RCVBUF on both ends. */
  window?: number | undefined;
  noDelay: boolean;
  /** iperf3 -b: bits/s per stream; the iperf3 server paces its own sending (-R, --bidir) with it too. */
  bitrate?: number | undefined;
  /** iperf3 --cport: stream i connects from this port + i. */
  localPort?: number | undefined;
  intervalSec: number;
  onInterval?: (interval: StreamInterval) => void;
  /** Ctrl-C: ends the test early (TEST_END as usual); the result keeps what was measured, marked `interrupted`. */
  interrupt?: AbortSignal | undefined;
}

const HANDSHAKE_TIMEOUT_MS = 10_000;
const RESULTS_TIMEOUT_MS = 30_000;

interface ClientStream {
  socket: TunedSocket;
  sender: boolean;
  bytes: number;
}

/** A TCP test against a stock `iperf3 -s`, reported in socktune's schema with the server's own byte counts. */
export async function runIperf3Stream(options: Iperf3ClientOptions): Promise<StreamResult> {
  const control = await connect({ host: options.host, port: options.port, noDelay: true });
  const reader = new ByteReader(MAX_JSON_BYTES + 1024);
  control.on('data', (chunk: Buffer) => reader.push(chunk));
  control.on('close', () => reader.end());
  control.on('error', () => reader.end());
  const cookie = generateCookie();
  control.write(cookie);
  const streams: ClientStream[] = [];
  const total = options.parallel * (options.direction === 'bidir' ? 2 : 1);
  const bufferSizes = options.window === undefined ? {} : { sendBufferSize: options.window, receiveBufferSize: options.window };
  let sending = false;
  let serverResults: Record<string, unknown> | undefined;
  let measured = { seconds: 0, bytes: 0 };
  let selfCheck: ReturnType<SelfMonitor['stop']> | undefined;
  let effectiveClient: EffectiveSocketOptions | null = null;
  let clientRetransmits = 0;
  let retransmits: number[] = [];
  let cpuAtStart = process.cpuUsage();
  let wallAtStart = performance.now();
  let intervals: StreamInterval[] = [];
  const startedAt = Date.now();
  try {
    for (;;) {
      const state = await withTimeout(
        readState(reader),
        sending
          ? (options.bytes ? MAX_BYTES_TEST_MS : (options.durationSec + options.omitSec) * 1000) + RESULTS_TIMEOUT_MS
          : HANDSHAKE_TIMEOUT_MS,
        'control message from the iperf3 server',
      );
      if (state === STATE.PARAM_EXCHANGE) {
        control.write(
          encodeJson({
            tcp: true,
            omit: options.omitSec,
            time: options.bytes ? 0 : options.durationSec,
            num: options.bytes ?? 0,
            blockcount: 0,
            parallel: options.parallel,
            len: options.writeSize,
            pacing_timer: 1000,
            client_version: '3.12',
            ...(options.direction === 'reverse' ? { reverse: true } : {}),
            ...(options.direction === 'bidir' ? { bidirectional: true } : {}),
            ...(options.window === undefined ? {} : { window: options.window }),
            ...(options.noDelay ? { nodelay: true } : {}),
            ...(options.bitrate === undefined ? {} : { bandwidth: options.bitrate }),
          }),
        );
      } else if (state === STATE.CREATE_STREAMS) {
        for (let i = 0; i < total; i++) {
          const stream: ClientStream = {
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
          streams.push(stream);
        }
        effectiveClient = streams[0]?.socket.effectiveSocketOptions() ?? null;
      } else if (state === STATE.TEST_START) {
        // Streams are up; data starts at TEST_RUNNING.
      } else if (state === STATE.TEST_RUNNING) {
        sending = true;
        cpuAtStart = process.cpuUsage();
        wallAtStart = performance.now();
        const monitor = new SelfMonitor().start();
        const block = Buffer.alloc(options.writeSize, 0x73);
        const limit = options.bytes ?? Infinity;
        let sentTotal = 0;
        for (const stream of streams.filter((s) => s.sender)) {
          pumpWrites(
            stream.socket,
            () => block,
            () => sending && sentTotal < limit,
            (bytes) => {
              stream.bytes += bytes;
              sentTotal += bytes;
            },
            options.bitrate === undefined ? undefined : new SendBudget(options.bitrate / 8),
          );
        }
        const bytesOf = (sender: boolean) => (): number => streams.filter((s) => s.sender === sender).reduce((sum, s) => sum + s.bytes, 0);
        const counted = bytesOf(options.direction !== 'reverse');
        const started = startStreamIntervals(options, options.direction, bytesOf(true), bytesOf(false), {
          counts: () =>
            streams.map((stream) => ({
              sent: stream.sender ? stream.bytes : 0,
              received: stream.sender ? 0 : stream.bytes,
              sends: stream.sender,
            })),
          tcpInfo: (index) => tcpInfoOf(streams[index]?.socket),
        });
        const ticker = started.ticker;
        intervals = started.intervals;
        await sleep(options.omitSec * 1000, options.interrupt);
        const atOmit = counted();
        const measureStart = ticker.elapsedSec;
        if (options.bytes) await untilCounted(counted, options.bytes, options.interrupt);
        else await sleep(options.durationSec * 1000, options.interrupt);
        measured = { seconds: ticker.elapsedSec - measureStart, bytes: counted() - atOmit };
        ticker.stop();
        sending = false;
        selfCheck = monitor.stop();
        await untilDelivered(streams.filter((stream) => stream.sender).map((stream) => stream.socket));
        // Read now: iperf3's server closes the data connections as soon as it sees TEST_END.
        retransmits = streams.map((stream) => readTcpInfo(fdOf(stream.socket)).retransmits);
        control.write(stateByte(STATE.TEST_END));
      } else if (state === STATE.EXCHANGE_RESULTS) {
        clientRetransmits = streams.reduce((sum, stream, index) => sum + (stream.sender ? retransmits[index]! : 0), 0);
        const cpu = process.cpuUsage(cpuAtStart);
        const percent = (micros: number): number => (micros / ((performance.now() - wallAtStart) * 1000)) * 100;
        control.write(
          encodeJson({
            cpu_util_total: percent(cpu.user + cpu.system),
            cpu_util_user: percent(cpu.user),
            cpu_util_system: percent(cpu.system),
            sender_has_retransmits: 1,
            streams: streams.map((stream, index) => ({
              id: index === 0 ? 1 : index + 2,
              bytes: stream.bytes,
              retransmits: retransmits[index],
              jitter: 0,
              errors: 0,
              packets: 0,
              start_time: 0,
              end_time: options.durationSec,
            })),
          }),
        );
        serverResults = await withTimeout(readJson(reader), RESULTS_TIMEOUT_MS, 'results from the iperf3 server');
      } else if (state === STATE.DISPLAY_RESULTS) {
        control.end(stateByte(STATE.IPERF_DONE));
        break;
      } else if (state === STATE.ACCESS_DENIED) {
        throw new SocktuneError('SOCKTUNE_ERR_REFUSED', 'the iperf3 server is busy running a test (ACCESS_DENIED)');
      } else if (state === STATE.SERVER_ERROR) {
        const detail = await withTimeout(reader.read(8), HANDSHAKE_TIMEOUT_MS, 'error detail from the iperf3 server');
        throw new SocktuneError(
          'SOCKTUNE_ERR_PROTOCOL',
          `the iperf3 server reported error ${detail.readInt32BE(0)} (errno ${detail.readInt32BE(4)})`,
        );
      } else if (state === STATE.SERVER_TERMINATE) {
        throw new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'the iperf3 server terminated the test');
      } else {
        throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `unexpected iperf3 state ${state}`);
      }
    }
  } finally {
    sending = false;
    for (const stream of streams) stream.socket.destroy();
    control.destroySoon();
  }
  if (!serverResults || !selfCheck)
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'the iperf3 server ended the test before exchanging results');
  return toStreamResult(options, streams, serverResults, { measured, selfCheck, intervals, startedAt, effectiveClient, clientRetransmits });
}

/** How long to wait for sent data to be acknowledged before TEST_END. */
const DELIVERY_WAIT_MS = 1000;
const SETTLE_MS = 50;

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

/** The longest a -n test may take before socktune gives up on it. */
const MAX_BYTES_TEST_MS = 600_000;

/** Resolves when `counted()` reaches `bytes` (the -n end condition, sent or received). */
async function untilCounted(counted: () => number, bytes: number, interrupt: AbortSignal | undefined): Promise<void> {
  const deadline = performance.now() + MAX_BYTES_TEST_MS;
  while (counted() < bytes && interrupt?.aborted !== true) {
    if (performance.now() > deadline)
      throw new SocktuneError('SOCKTUNE_ERR_TIMEOUT', `-n ${bytes}: not done within ${MAX_BYTES_TEST_MS / 1000} s`);
    await sleep(2);
  }
}

interface ServerStream {
  id: number;
  bytes: number;
  retransmits: number;
}

interface ClientSide {
  measured: { seconds: number; bytes: number };
  selfCheck: ReturnType<SelfMonitor['stop']>;
  intervals: StreamInterval[];
  startedAt: number;
  effectiveClient: EffectiveSocketOptions | null;
  clientRetransmits: number;
}

function toStreamResult(
  options: Iperf3ClientOptions,
  streams: ClientStream[],
  server: Record<string, unknown>,
  client: ClientSide,
): StreamResult {
  const { measured, selfCheck } = client;
  const serverStreams = (Array.isArray(server.streams) ? server.streams : []) as ServerStream[];
  const serverBytes = (ids: (index: number) => boolean): number =>
    serverStreams.filter((_, index) => ids(index)).reduce((sum, stream) => sum + (stream.bytes ?? 0), 0);
  const forwardIndex = (index: number): boolean =>
    options.direction === 'forward' || (options.direction === 'bidir' && index < options.parallel);
  const clientSent = streams.filter((s) => s.sender).reduce((sum, s) => sum + s.bytes, 0);
  const clientReceived = streams.filter((s) => !s.sender).reduce((sum, s) => sum + s.bytes, 0);
  const serverReceived = serverBytes(forwardIndex);
  const serverSent = serverBytes((index) => !forwardIndex(index));
  const serverRetransmits = serverStreams
    .filter((_, index) => !forwardIndex(index))
    .reduce((sum, stream) => sum + Math.max(0, stream.retransmits ?? 0), 0);
  return benchResult({
    command: 'stream',
    startedAt: client.startedAt,
    serverEnvironment: null,
    options: iperf3StreamRecord(options),
    effective: { client: client.effectiveClient, server: null },
    intervals: client.intervals,
    summary: {
      direction: options.direction,
      measuredSeconds: round(measured.seconds, 3),
      bitsPerSecond: Math.round((measured.bytes * 8) / measured.seconds),
      drainSeconds: null,
      sender: options.direction === 'reverse' ? { bytes: serverSent, side: 'server' } : { bytes: clientSent, side: 'client' },
      receiver: options.direction === 'reverse' ? { bytes: clientReceived, side: 'client' } : { bytes: serverReceived, side: 'server' },
      ...(options.direction === 'bidir' ? { reverseBytes: { sent: serverSent, received: clientReceived } } : {}),
      retransmits: options.direction === 'reverse' ? serverRetransmits : client.clientRetransmits,
      verify: null,
      serverCpuPercent: typeof server.cpu_util_total === 'number' ? round(server.cpu_util_total, 1) : null,
    },
    selfCheck,
    interrupted: options.interrupt?.aborted === true,
    warnings: [],
  });
}
