import { SocktuneError } from '../../core/errors.ts';
import { withTimeout } from '../../core/timeout.ts';
import type { EffectiveSocketOptions } from '../../core/socket-options.ts';
import { ByteReader } from '../../framing/byte-reader.ts';
import type { StreamInterval, StreamResult } from '../results/result.ts';
import { benchResult } from '../results/envelope.ts';
import { SelfMonitor } from './self-check.ts';
import { round } from '../results/stats.ts';
import { iperf3StreamRecord } from '../results/result-options.ts';
import { sleep } from './ticker.ts';
import { startStreamIntervals } from './stream-intervals.ts';
import { connect } from '../../transport/client/connect.ts';
import { serverStreamsOf, type Iperf3ClientOptions, type Iperf3ClientStreams } from './iperf3-client-streams.ts';
import { Iperf3TcpStreams } from './iperf3-tcp-streams.ts';
import { Iperf3UdpStreams } from './iperf3-udp-streams.ts';
import { encodeJson, generateCookie, MAX_JSON_BYTES, readJson, readState, STATE, stateByte } from '../../protocols/iperf3/codec.ts';

const HANDSHAKE_TIMEOUT_MS = 10_000;
/** The server's states that start a step of the test, each at most once. */
/** '{', the first byte of a socktune control server's greeting. */
const JSON_OPENING_BRACE = 0x7b;
const STEPS: readonly number[] = [STATE.PARAM_EXCHANGE, STATE.CREATE_STREAMS, STATE.TEST_START, STATE.TEST_RUNNING, STATE.EXCHANGE_RESULTS];
const RESULTS_TIMEOUT_MS = 30_000;

/** A test against a stock `iperf3 -s`, TCP or UDP (-u), reported in socktune's schema with the server's own counts. */
export async function runIperf3Stream(options: Iperf3ClientOptions): Promise<StreamResult> {
  const control = await connect({ host: options.host, port: options.port, noDelay: true });
  const reader = new ByteReader(MAX_JSON_BYTES + 1024);
  control.on('data', (chunk: Buffer) => reader.push(chunk));
  control.on('close', () => reader.end());
  control.on('error', () => reader.end());
  const cookie = generateCookie();
  control.write(cookie);
  const streams: Iperf3ClientStreams =
    options.protocol === 'udp' ? new Iperf3UdpStreams(options, control.remoteAddress ?? options.host) : new Iperf3TcpStreams(options);
  let sending = false;
  let serverResults: Record<string, unknown> | undefined;
  let measured = { seconds: 0, bytes: 0 };
  let selfCheck: ReturnType<SelfMonitor['stop']> | undefined;
  let effectiveClient: EffectiveSocketOptions | null = null;
  let cpuAtStart = process.cpuUsage();
  let wallAtStart = performance.now();
  let intervals: StreamInterval[] = [];
  const startedAt = Date.now();
  const seen = new Set<number>();
  try {
    for (;;) {
      const state = await withTimeout(
        readState(reader),
        sending
          ? (options.bytes ? MAX_BYTES_TEST_MS : (options.durationSec + options.omitSec) * 1000) + RESULTS_TIMEOUT_MS
          : HANDSHAKE_TIMEOUT_MS,
        'control message from the iperf3 server',
      );
      // Each step comes once, in order: a server that repeats one (to have this client open streams without end) is refused.
      if (STEPS.includes(state)) {
        if (seen.has(state)) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `the iperf3 server sent state ${state} twice`);
        seen.add(state);
      }
      if (state === STATE.PARAM_EXCHANGE) {
        control.write(
          encodeJson({
            omit: options.omitSec,
            time: options.bytes ? 0 : options.durationSec,
            num: options.bytes ?? 0,
            blockcount: 0,
            parallel: options.parallel,
            pacing_timer: 1000,
            client_version: '3.12',
            ...(options.direction === 'reverse' ? { reverse: true } : {}),
            ...(options.direction === 'bidir' ? { bidirectional: true } : {}),
            ...streams.parameters(),
          }),
        );
      } else if (state === STATE.CREATE_STREAMS) {
        await streams.open(cookie);
        effectiveClient = streams.effective();
      } else if (state === STATE.TEST_START) {
        // Streams are up; data starts at TEST_RUNNING.
      } else if (state === STATE.TEST_RUNNING) {
        sending = true;
        cpuAtStart = process.cpuUsage();
        wallAtStart = performance.now();
        const monitor = new SelfMonitor().start();
        streams.start();
        const counted = (): number => (options.direction === 'reverse' ? streams.receivedBytes() : streams.sentBytes());
        const started = startStreamIntervals(
          options,
          options.direction,
          () => streams.sentBytes(),
          () => streams.receivedBytes(),
          streams.perConnection(),
        );
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
        await streams.stop();
        control.write(stateByte(STATE.TEST_END));
      } else if (state === STATE.EXCHANGE_RESULTS) {
        const cpu = process.cpuUsage(cpuAtStart);
        const percent = (micros: number): number => (micros / ((performance.now() - wallAtStart) * 1000)) * 100;
        control.write(
          encodeJson({
            cpu_util_total: percent(cpu.user + cpu.system),
            cpu_util_user: percent(cpu.user),
            cpu_util_system: percent(cpu.system),
            sender_has_retransmits: options.protocol === 'udp' ? 0 : 1,
            streams: streams.results(options.durationSec),
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
      } else if (state === JSON_OPENING_BRACE) {
        // A socktune control server greets with a JSON line: not iperf3.
        throw new SocktuneError(
          'SOCKTUNE_ERR_PROTOCOL',
          'this is a socktune server, not an iperf3 one (it answered with a JSON line): ' +
            "drop --iperf3, or give the iperf3 server's port with -p",
        );
      } else {
        throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `unexpected iperf3 state ${state}`);
      }
    }
    if (!serverResults || !selfCheck)
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'the iperf3 server ended the test before exchanging results');
    const traffic = streams.summarize(serverStreamsOf(serverResults));
    // UDP sent is not UDP received: the rate is what arrived (the server's count is from the end of --omit, as this client's).
    const rateBytes = options.protocol === 'udp' && options.direction === 'forward' ? (traffic.receiver?.bytes ?? 0) : measured.bytes;
    return benchResult({
      command: 'stream',
      startedAt,
      serverEnvironment: null,
      options: iperf3StreamRecord(options),
      effective: { client: effectiveClient, server: null },
      intervals,
      summary: {
        direction: options.direction,
        measuredSeconds: round(measured.seconds, 3),
        bitsPerSecond: Math.round((rateBytes * 8) / measured.seconds),
        drainSeconds: null,
        ...traffic,
        verify: null,
        serverCpuPercent: typeof serverResults.cpu_util_total === 'number' ? round(serverResults.cpu_util_total, 1) : null,
      },
      selfCheck,
      interrupted: options.interrupt?.aborted === true,
      warnings: [],
    });
  } finally {
    streams.close();
    control.destroySoon();
  }
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
