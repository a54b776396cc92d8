import type { OnReadOpts } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import type { TunedSocket } from '../../transport/client/connect.ts';
import type { BuiltinService } from '../../transport/server/options.ts';
import type { ResultMessage, TestServerSettings } from '../control/control-protocol.ts';
import { allClosed, effectiveOf, openDataConnections, type ClientSocketSettings } from './data-connections.ts';
import { RawPeer, type DataTarget, type TestPeer } from '../control/peer.ts';
import { RemoteTest, type ServerTarget } from '../control/remote-test.ts';
import type { BenchResult, EffectiveBothEnds } from '../results/result.ts';
import { benchResult } from '../results/envelope.ts';
import { bufferCapped } from '../results/warnings.ts';
import type { SelfCheck } from '../results/result.ts';
import type { TimedOptionsRecord } from '../results/result-options.ts';
import { SelfMonitor } from './self-check.ts';
import { sleep, type Ticker } from './ticker.ts';

/** What every client engine on DataSession (stream, rr, crr, msg) is given. */
export interface RunOptions<Interval> {
  /** The socktune server's control port, or with `raw` the service itself. */
  target: ServerTarget;
  /** Drive any TCP service directly: no control channel, only the client's own numbers. */
  raw?: boolean;
  durationSec: number;
  /** Warm-up seconds left out of the summary. */
  omitSec: number;
  client: ClientSocketSettings;
  server: TestServerSettings;
  intervalSec: number;
  onInterval?: (interval: Interval) => void;
  /** Ctrl-C: ends the test early; the result keeps what was measured until then, marked `interrupted`. */
  interrupt?: AbortSignal | undefined;
  /** Awaited once the test is set up (control and data connections open), before the first byte: a start barrier's common instant. */
  beforeTraffic?: (() => Promise<void>) | undefined;
  /**
   * The data target of a test another thread started (--client-threads): this run opens data
   * connections to it and no control channel; the starting thread reports the server's counters.
   */
  joined?: DataTarget | undefined;
}

/** How long the end of a test may take to flush before the stragglers are cut. */
export const DRAIN_GRACE_MS = 10_000;
const RAW_GRACE_MS = 2_000;

/**
 * One test's data connections to a remote `socktune server`: set up through the control channel,
 * watched for a peer that vanishes (which stops the test at once), and ended with a half-close so
 * the server can count every byte before it reports.
 */
export class DataSession {
  readonly peer: TestPeer;
  readonly sockets: TunedSocket[];
  /** Aborted when the test must stop early (a data connection failed) or when it is over. */
  readonly stop = new AbortController();
  /**
   * Seconds from the half-close until every connection closed: a socktune server closes once it
   * has read everything, so this is how long what sat in the socket buffers took to arrive.
   */
  drainSeconds = 0;
  /** Whether the measured phase was cut short by `RunOptions.interrupt`. */
  interrupted = false;
  #failure: Error | undefined;
  #startedAt = Date.now();
  readonly #monitor = new SelfMonitor();
  /** Whether a socktune server is at the other end, which closes each connection once it has read it all. */
  readonly #serverCloses: boolean;

  private constructor(peer: TestPeer, sockets: TunedSocket[], serverCloses: boolean) {
    this.peer = peer;
    this.#serverCloses = serverCloses;
    this.sockets = sockets;
    for (const socket of sockets) {
      socket.on('error', (error: NodeJS.ErrnoException) =>
        this.#fail(`data connection failed mid-test: ${error.code ?? error.message}`, error),
      );
      socket.on('close', () => this.#fail('the server closed a data connection mid-test'));
    }
  }

  /** `reads`: the data connections to open, each reading into its own buffer; none when the engine makes its own (crr, msg). */
  static async open(
    options: RunOptions<never>,
    service: BuiltinService,
    server: TestServerSettings,
    reads?: { connections: number; onread: (index: number) => OnReadOpts },
  ): Promise<DataSession> {
    const peer = options.joined === undefined ? await DataSession.startPeer(options, service, server) : new RawPeer(options.joined);
    try {
      const sockets = reads === undefined ? [] : await openDataConnections(peer.data, reads.connections, options.client, reads.onread);
      await options.beforeTraffic?.();
      return new DataSession(peer, sockets, peer.server !== null || options.joined !== undefined);
    } catch (error) {
      peer.abort();
      throw error;
    }
  }

  /** The other end of a test: a raw service, or a socktune server asked through its control channel to start one. */
  static async startPeer(options: RunOptions<never>, service: BuiltinService, server: TestServerSettings): Promise<TestPeer> {
    if (options.raw)
      return new RawPeer(
        options.target.path === undefined ? { host: options.target.host, port: options.target.port } : { path: options.target.path },
      );
    return RemoteTest.start(options.target, service, server, (options.durationSec + options.omitSec) * 1000 + DRAIN_GRACE_MS);
  }

  #fail(message: string, cause?: unknown): void {
    this.failWith(new SocktuneError('SOCKTUNE_ERR_PEER_GONE', message, cause === undefined ? {} : { cause }));
  }

  /** Stops the test at once with `failure`, which finish() then throws (a peer that breaks the protocol). */
  failWith(failure: SocktuneError): void {
    if (this.stop.signal.aborted) return;
    this.#failure = failure;
    this.stop.abort();
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Marks the start of the traffic: the result's startedAt, and the client's self-check from here on. */
  startTraffic(): void {
    this.#startedAt = Date.now();
    this.#monitor.start();
  }

  /**
   * The phase every engine shares: the warm-up, then the measured time (cut short by a failure or
   * Ctrl-C). `onMeasureStart` runs at the boundary; `stopTraffic` before the last interval report
   * and the self-check. Returns the measured seconds and the client's self-check.
   */
  async run(
    options: RunOptions<never>,
    ticker: Ticker,
    phase: { onMeasureStart: () => void; stopTraffic: () => void; scheduleLagP99Us?: () => number },
  ): Promise<{ measuredSeconds: number; selfCheck: SelfCheck }> {
    const until = options.interrupt === undefined ? this.stop.signal : AbortSignal.any([this.stop.signal, options.interrupt]);
    await sleep(options.omitSec * 1000, until);
    phase.onMeasureStart();
    const start = ticker.elapsedSec;
    await sleep(options.durationSec * 1000, until);
    this.interrupted = options.interrupt?.aborted === true && !this.failed;
    const measuredSeconds = ticker.elapsedSec - start;
    phase.stopTraffic();
    ticker.stop();
    return { measuredSeconds, selfCheck: this.#monitor.stop(phase.scheduleLagP99Us?.()) };
  }

  /**
   * Half-closes every connection, waits for the server to finish, and returns its counters (or
   * throws the failure). A raw peer may never close its side: its connections are cut after a grace.
   */
  async finish(): Promise<ResultMessage | null> {
    this.stop.abort();
    // A test that already failed has nothing to drain: waiting for a peer that broke the protocol to close would only add its grace.
    const failed = this.#failure;
    if (failed !== undefined) {
      for (const socket of this.sockets) socket.destroy();
      this.peer.abort();
      throw failed;
    }
    const drainStart = performance.now();
    for (const socket of this.sockets) socket.end();
    await allClosed(this.sockets, this.#serverCloses ? DRAIN_GRACE_MS : RAW_GRACE_MS);
    this.drainSeconds = (performance.now() - drainStart) / 1000;
    if (this.#failure) {
      this.peer.abort();
      throw this.#failure;
    }
    return this.peer.finish();
  }

  /**
   * The result document (one envelope for every command: results/envelope.ts); `record` is the engine's own public settings
   * (result-options.ts).
   */
  result<Summary, Interval, Record extends TimedOptionsRecord>(
    command: string,
    record: Record,
    selfCheck: SelfCheck,
    measured: { effective: EffectiveBothEnds; intervals: Interval[]; summary: Summary },
  ): BenchResult<Summary, Interval, Record> {
    return benchResult({
      command,
      startedAt: this.#startedAt,
      serverEnvironment: this.peer.server?.environment ?? null,
      options: record,
      ...measured,
      selfCheck,
      interrupted: this.interrupted,
      warnings: [
        ...(this.peer.server?.warnings ?? []).map((warning) => bufferCapped('server', warning)),
        ...(this.sockets[0]?.socketWarnings ?? []).map((warning) => bufferCapped('client', warning)),
      ],
    });
  }

  effective(): EffectiveBothEnds {
    return { client: effectiveOf(this.sockets) ?? null, server: this.peer.server?.effective ?? null };
  }
}
