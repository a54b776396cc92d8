import { Socket } from 'node:net';
import { availableParallelism, constants as osConstants } from 'node:os';
import { errnoOf, isSocktuneError, SocktuneError } from '../../../core/errors.ts';
import { withTimeout } from '../../../core/timeout.ts';
import { applyPreConnectOptions, readTcpInfo } from '../../../core/socket-syscalls.ts';
import type { ByteReader } from '../../../framing/byte-reader.ts';
import { fdOf } from '../../../transport/io/fd.ts';
import { pumpWrites } from '../../../transport/io/pump.ts';
import { bulkOnThreads, type BulkThreads } from '../../../transport/bulk/bulk-threads.ts';
import type { ThreadQuota } from '../../../transport/bulk/thread-quota.ts';
import { moveToSharedBuffer } from '../../../transport/services/builtin-services.ts';
import { SendBudget } from '../../../transport/io/send-budget.ts';
import type { Iperf3Authenticator } from './authenticator.ts';
import type { Iperf3UdpPort } from './udp-port.ts';
import { Iperf3UdpStream, type UdpStreamFigures } from './udp-stream.ts';
import { closeAfterWrite, FLUSH_TIMEOUT_MS } from '../../../transport/io/close-after-write.ts';
import {
  encodeJson,
  EPROTONOSUPPORT,
  GRACE_SEC,
  IPERF3_ERRNO,
  Iperf3ServerError,
  parseParams,
  readJson,
  readState,
  STATE,
  stateByte,
  type Iperf3ParamLimits,
  type Iperf3Params,
} from '../../../protocols/iperf3/codec.ts';

/** How long the client has to open its data connections after CREATE_STREAMS. */
const STREAMS_TIMEOUT_MS = 10_000;
/** How long the client has to send its results after EXCHANGE_RESULTS, and its IPERF_DONE after them. */
const RESULTS_TIMEOUT_MS = 10_000;
const DONE_TIMEOUT_MS = 5_000;

/**
 * Sender streams write chunks of at least this many bytes, made of whole blocks: TCP keeps no
 * block boundaries, and one write() per block of `-l 1` would be millions of calls per second.
 */
export const MIN_SEND_CHUNK_BYTES = 64 * 1024;

/** The length of each sender write for blocks of `blockLength` bytes: whole blocks, MIN_SEND_CHUNK_BYTES or more. */
export function sendChunkBytes(blockLength: number): number {
  return blockLength * Math.max(1, Math.ceil(MIN_SEND_CHUNK_BYTES / blockLength));
}

/** What the server allows a test; every timer a client's parameters choose stays under maxDurationMs. */
export interface TestPolicy {
  limits: Readonly<Iperf3ParamLimits>;
  /** From accept to close: every phase of a test, whatever its own timer, ends by then. */
  maxDurationMs: number;
  /** How long the client has to send its parameters after PARAM_EXCHANGE. */
  parametersTimeoutMs: number;
  auth?: Iperf3Authenticator | undefined;
  /** Paces every stream the server sends on (-R, --bidir). */
  sendBudget?: SendBudget | undefined;
  /**
   * Threads the server's tests may move their TCP data on, all together (sendfile to send, a recv
   * loop to receive); a test granted none, or one with a pace or a byte count to send, uses its
   * event loop. undefined: never threads.
   */
  bulkThreads?: ThreadQuota | undefined;
}

interface TcpStream {
  id: number;
  socket: Socket;
  /** The server sends on it (reverse, or the second half of a bidir test). */
  sender: boolean;
  bytes: number;
  /** performance.now() of the last data received. */
  lastData: number;
}

type DataStream = TcpStream | Iperf3UdpStream;

/**
 * After TEST_END, receiving streams are read until this long passes with no data (bytes the client sent before TEST_END may still be
 * in flight).
 */
const DRAIN_IDLE_MS = 50;
const DRAIN_MAX_MS = 2000;

export interface TestOutcome {
  params: Iperf3Params | undefined;
  streams: { id: number; sender: boolean; bytes: number; udp?: UdpStreamFigures }[];
  /** UDP: what the port's receive buffer dropped during the test (with other UDP tests at once, theirs too); null where unknown. */
  udpReceiveBufferDrops?: number | null;
  /** The time the bytes were counted over (after --omit, to the last byte after TEST_END); 0 before the test ran. */
  countedSeconds: number;
}

/**
 * One iperf3 test, driven from the server side as iperf3's server does: parameters, streams,
 * start, data until the client's TEST_END, results exchange. Every wait has a deadline, none past
 * the test's own (`deadline`), and a failure ends this test only (`fail`), telling a stock client
 * why when iperf3 has a word for it.
 */
export class Iperf3TestSession {
  readonly control: Socket;
  readonly #reader: ByteReader;
  readonly #policy: TestPolicy;
  /** performance.now() by which the test is over, whatever phase it is in. */
  readonly deadline: number;
  readonly #streams: DataStream[] = [];
  #expectedStreams = 0;
  #streamsArrived: (() => void) | undefined;
  #streamsFailed: ((error: Error) => void) | undefined;
  #params: Iperf3Params | undefined;
  #sending = false;
  /** The TCP streams moved on threads, senders and receivers apart (each stops at its own time). */
  #threaded: { senders?: ThreadedStreams | undefined; receivers?: ThreadedStreams | undefined } = {};
  /** Torn down (finished, failed, refused, destroyed): threads that were starting meanwhile are stopped as they come. */
  #ended = false;
  /** When the counted part of the test began (TEST_RUNNING, or the end of --omit), and how long it ran until TEST_END. */
  #countedFrom = 0;
  #countedSec = 0;
  /** Each UDP stream's figures, read as the test ends. */
  #udpFigures: (UdpStreamFigures | undefined)[] = [];
  /** The UDP port's drops since this test's streams were asked for (every UDP test of the port at that time together). */
  #udpDrops: (() => number | null) | undefined;
  #udpDropsSeen: number | null = null;
  /** The authenticated iperf3 user, when the server asks for authentication. */
  user: string | undefined;

  /** Asked just before an RSA decryption: it throws SOCKTUNE_ERR_REFUSED when the server cannot spend one now. */
  readonly #authGate: (() => void) | undefined;
  /** Where UDP streams say they are there; undefined: the server takes no UDP test. */
  readonly #udpPort: Iperf3UdpPort | undefined;

  /** `deadline`: performance.now() by which the whole test is over (from its accept, plus maxDurationMs). */
  constructor(
    control: Socket,
    reader: ByteReader,
    policy: TestPolicy,
    session: { deadline?: number; authGate?: () => void; udpPort?: Iperf3UdpPort | undefined } = {},
  ) {
    this.control = control;
    this.#reader = reader;
    this.#policy = policy;
    this.deadline = session.deadline ?? performance.now() + policy.maxDurationMs;
    this.#authGate = session.authGate;
    this.#udpPort = session.udpPort;
  }

  /** Phase 1: parameters, authenticated and checked against the policy; throws Iperf3ServerError for a refused test. */
  async exchangeParameters(): Promise<Iperf3Params> {
    this.control.write(stateByte(STATE.PARAM_EXCHANGE));
    const json = await withTimeout(readJson(this.#reader), this.#bounded(this.#policy.parametersTimeoutMs), 'iperf3 parameters');
    // Like iperf3's server: an unauthenticated client learns nothing about the server's limits.
    this.#authenticate(json.authtoken);
    const params = parseParams(json, this.#policy.limits);
    if (params.sctp)
      throw new Iperf3ServerError(
        'SOCKTUNE_ERR_PROTOCOL',
        "iperf3 client asked for SCTP: socktune's iperf3 server speaks TCP and UDP",
        IPERF3_ERRNO.NO_SCTP,
        EPROTONOSUPPORT,
      );
    if (params.udp && this.#udpPort === undefined)
      throw new Iperf3ServerError('SOCKTUNE_ERR_PROTOCOL', 'this iperf3 server takes no UDP test', IPERF3_ERRNO.PROTOCOL, EPROTONOSUPPORT);
    this.#params = params;
    this.#expectedStreams = params.parallel * (params.bidirectional ? 2 : 1);
    return params;
  }

  #authenticate(token: unknown): void {
    const { auth } = this.#policy;
    if (auth === undefined) return;
    try {
      this.user = auth.verify(token, undefined, this.#authGate);
    } catch (error) {
      if (isSocktuneError(error) && error.code === 'SOCKTUNE_ERR_REFUSED') throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new Iperf3ServerError('SOCKTUNE_ERR_AUTH', message, IPERF3_ERRNO.AUTH_TEST, 0, { cause: error });
    }
  }

  /** Phase 2: asks for the data connections and waits for all of them (addStream delivers them). */
  async createStreams(): Promise<void> {
    // Before any promise below exists: a port that cannot be bound fails the test here, leaving nothing to reject unheard.
    const stopExpecting = this.#params!.udp ? await this.#expectUdpStreams() : undefined;
    const arrived = new Promise<void>((resolve, reject) => {
      this.#streamsArrived = resolve;
      this.#streamsFailed = reject;
    });
    // A client that goes away meanwhile ends the wait at once, not at the timeout.
    let onClose: (() => void) | undefined;
    const gone = new Promise<never>((_, reject) => {
      onClose = (): void =>
        reject(new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'the iperf3 client closed its control connection before its streams arrived'));
      this.control.once('close', onClose);
    });
    this.control.write(stateByte(STATE.CREATE_STREAMS));
    try {
      await withTimeout(
        Promise.race([arrived, gone]),
        this.#bounded(STREAMS_TIMEOUT_MS),
        `${this.#expectedStreams} iperf3 data connection(s)`,
      );
    } finally {
      stopExpecting?.();
      this.control.off('close', onClose!);
      this.#streamsArrived = undefined;
      this.#streamsFailed = undefined;
    }
  }

  /**
   * Binds the server's UDP port if it is not yet, and takes the UDP streams that say they are there
   * from the control connection's own address, in the order they come (the first `parallel` send to
   * the server), until the test has them all.
   */
  async #expectUdpStreams(): Promise<() => void> {
    const port = this.#udpPort!;
    const params = this.#params!;
    try {
      await port.open();
      if (params.window > 0) port.growBuffers(params.window);
    } catch (error) {
      throw setupError(error, IPERF3_ERRNO.CREATE_STREAM);
    }
    this.#udpDrops = port.dropsFromNow();
    return port.expect(this.control.remoteAddress ?? '', (peer) => {
      if (!this.#waitingForStreams) return false;
      const index = this.#streams.length;
      const sender = params.reverse || (params.bidirectional && index >= params.parallel);
      this.#streams.push(new Iperf3UdpStream(port, peer, params, streamId(index), sender));
      if (this.#streams.length >= this.#expectedStreams) this.#streamsArrived?.();
      return true;
    });
  }

  get #waitingForStreams(): boolean {
    return this.#streamsArrived !== undefined && this.#streams.length < this.#expectedStreams;
  }

  /** TCP data connections the test is waiting for (a UDP test's streams come to the UDP port instead). */
  get wantsStreams(): boolean {
    return this.#waitingForStreams && this.#params?.udp === false;
  }

  /** Data connections the test asks for: parallel × (bidir ? 2 : 1); 0 before its parameters. */
  get expectedStreams(): number {
    return this.#expectedStreams;
  }

  /** Data connections still to come while the test waits for them; 0 in any other phase. */
  get awaitedStreams(): number {
    return this.wantsStreams ? this.#expectedStreams - this.#streams.length : 0;
  }

  /**
   * A data connection whose cookie matched: the first `parallel` carry client→server data. Never
   * throws: a connection that cannot be set up (a socket option refused, no descriptor left for
   * dup) ends this test, with SERVER_ERROR for the client.
   */
  addStream(accepted: Socket, leftover: Buffer): void {
    try {
      this.#addStream(accepted, leftover);
    } catch (error) {
      accepted.destroy();
      this.#streamsFailed?.(error instanceof Iperf3ServerError ? error : setupError(error, IPERF3_ERRNO.CREATE_STREAM));
    }
  }

  #addStream(accepted: Socket, leftover: Buffer): void {
    const params = this.#params!;
    const index = this.#streams.length;
    const sender = params.reverse || (params.bidirectional && index >= params.parallel);
    accepted.on('error', () => {});
    const fd = fdOf(accepted);
    if (fd < 0) throw new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'an iperf3 data connection closed before it was set up');
    if (params.window > 0) {
      try {
        applyPreConnectOptions(fd, 'ipv4', { sendBufferSize: params.window, receiveBufferSize: params.window }, false);
      } catch (error) {
        throw setupError(error, IPERF3_ERRNO.SET_BUF);
      }
    }
    accepted.setNoDelay(params.nodelay);
    const stream: TcpStream = {
      id: streamId(index),
      socket: accepted,
      sender,
      bytes: leftover.length,
      lastData: performance.now(),
    };
    if (sender) accepted.resume();
    else {
      // Received data is only counted: read into the buffer the thread's services share, not a fresh allocation per read.
      stream.socket = moveToSharedBuffer(accepted, (view) => {
        stream.bytes += view.length;
        stream.lastData = performance.now();
      });
      stream.socket.on('error', () => {});
    }
    this.#streams.push(stream);
    if (this.#streams.length >= this.#expectedStreams) this.#streamsArrived?.();
  }

  /** Phase 3: start, run until TEST_END (or the deadline), stop the streams. */
  async run(): Promise<void> {
    const params = this.#params!;
    await this.#moveToThreads(params);
    // The clock starts before the client may send: read after the write, a server descheduled in
    // between would count the first bytes over less time than they took, and claim more than the path carries.
    this.#countedFrom = performance.now();
    this.control.write(Buffer.from([STATE.TEST_START, STATE.TEST_RUNNING]));
    this.#startSenders(params);
    // Like iperf3's server, count nothing of the --omit warm-up.
    const omitTimer =
      params.omit > 0
        ? setTimeout(
            () => {
              this.#streams.forEach((stream) => (stream instanceof Iperf3UdpStream ? stream.resetBytes() : (stream.bytes = 0)));
              for (const group of [this.#threaded.senders, this.#threaded.receivers]) group?.omit();
              this.#countedFrom = performance.now();
            },
            this.#bounded(params.omit * 1000),
          )
        : undefined;
    // A test with no time of its own (-n, -k, -t 0) ends at the server's maximum.
    const deadlineMs = this.#bounded(params.time > 0 ? (params.time + params.omit + GRACE_SEC) * 1000 : Infinity);
    try {
      const state = await withTimeout(readState(this.#reader), deadlineMs, 'TEST_END from the iperf3 client');
      if (state === STATE.CLIENT_TERMINATE) throw new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'the iperf3 client terminated the test');
      if (state !== STATE.TEST_END) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `unexpected iperf3 state ${state} during the test`);
    } catch (error) {
      // A stock client prints what it measured so far, then "the server has terminated".
      if (isSocktuneError(error) && error.code === 'SOCKTUNE_ERR_TIMEOUT') this.control.write(stateByte(STATE.SERVER_TERMINATE));
      void this.#stopThreads('senders');
      void this.#stopThreads('receivers');
      throw error;
    } finally {
      clearTimeout(omitTimer);
      this.#sending = false;
      for (const stream of this.#streams) if (stream instanceof Iperf3UdpStream) stream.stopSending();
    }
    const testEnd = performance.now();
    await this.#stopThreads('senders');
    await this.#drainReceivers();
    await this.#stopThreads('receivers');
    // Bytes still on their way at TEST_END are counted, so the time they arrived in is too: a rate of
    // those bytes over the time to TEST_END alone would claim more than the path carries.
    const lastByte = Math.max(testEnd, ...this.#streams.filter((stream) => !stream.sender).map((stream) => this.#lastData(stream)));
    this.#countedSec = (lastByte - this.#countedFrom) / 1000;
  }

  /** Reads what the client sent before its TEST_END and is still on the way, so the byte counts agree. */
  async #drainReceivers(): Promise<void> {
    const receivers = this.#streams.filter((stream) => !stream.sender);
    const started = performance.now();
    // setImmediate runs after the poll phase: reads already waiting are counted before each check.
    const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    await settle();
    const drainMs = this.#bounded(DRAIN_MAX_MS);
    while (
      receivers.some((stream) => performance.now() - this.#lastData(stream) < DRAIN_IDLE_MS) &&
      performance.now() - started < drainMs
    ) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_IDLE_MS / 2));
      await settle();
    }
  }

  /** A receiving stream's last data, read by the event loop or by its thread. */
  #lastData(stream: DataStream): number {
    return stream instanceof Iperf3UdpStream ? stream.lastData : Math.max(stream.lastData, this.#threaded.receivers?.lastData(stream) ?? 0);
  }

  /**
   * Moves the TCP streams onto threads where the server's quota has them free: senders with
   * sendfile (unless a -n/-k count or --max-rate needs the event loop's writes), receivers with a
   * recv loop. Done before TEST_START, so the test's time holds no thread start-up.
   */
  async #moveToThreads(params: Iperf3Params): Promise<void> {
    const quota = this.#policy.bulkThreads;
    if (quota === undefined || params.udp) return;
    const tcp = this.#streams.filter((stream): stream is TcpStream => !(stream instanceof Iperf3UdpStream));
    const senders = tcp.filter((stream) => stream.sender);
    const receivers = tcp.filter((stream) => !stream.sender);
    if (params.bytes === 0 && params.blocks === 0 && this.#policy.sendBudget === undefined)
      this.#threaded.senders = await ThreadedStreams.start(senders, 'send', quota, sendChunkBytes(params.len), params.bandwidth);
    this.#threaded.receivers = await ThreadedStreams.start(receivers, 'receive', quota, sendChunkBytes(params.len), 0);
    // Ended while the threads started (the deadline, the server closing): they stop at once.
    if (this.#ended) return this.#stopStreams();
    this.#threaded.receivers?.threads.start();
  }

  /** Stops one group's threads (once) and counts what its streams moved. */
  async #stopThreads(group: 'senders' | 'receivers'): Promise<void> {
    const threaded = this.#threaded[group];
    this.#threaded[group] = undefined;
    await threaded?.stop();
  }

  #startSenders(params: Iperf3Params): void {
    const udpSenders = this.#streams.filter((stream): stream is Iperf3UdpStream => stream instanceof Iperf3UdpStream && stream.sender);
    for (const stream of udpSenders) stream.startSending(params, this.#policy.sendBudget, udpSenders.length);
    if (this.#threaded.senders) return this.#threaded.senders.threads.start();
    const senders = this.#streams.filter((stream): stream is TcpStream => !(stream instanceof Iperf3UdpStream) && stream.sender);
    if (senders.length === 0) return;
    this.#sending = true;
    const chunk = Buffer.alloc(sendChunkBytes(params.len), 0x69);
    // -n / -k limit what the sender sends, counted over all its streams: the chunk that reaches the limit is cut to it.
    const limit = params.bytes > 0 ? params.bytes : params.blocks > 0 ? params.blocks * params.len : Infinity;
    let handedOut = 0;
    for (const stream of senders) {
      // Handed to this stream's pump and not written yet (a paced pump holds the rest of a chunk until its budget allows).
      let unwritten = 0;
      const next = (): Buffer => {
        const size = Math.min(chunk.length, limit - handedOut);
        handedOut += size;
        unwritten += size;
        return size === chunk.length ? chunk : chunk.subarray(0, size);
      };
      const onWrite = (bytes: number): void => {
        unwritten -= bytes;
        stream.bytes += bytes;
      };
      // The server's --max-rate, when it has one, caps every stream together; otherwise the client's -b
      // paces each stream, as iperf3's server does.
      const budget = this.#policy.sendBudget ?? (params.bandwidth > 0 ? new SendBudget(params.bandwidth / 8) : undefined);
      pumpWrites(stream.socket, next, () => this.#sending && (unwritten > 0 || handedOut < limit), onWrite, budget);
    }
  }

  /** Phase 4: results both ways, then DISPLAY_RESULTS; resolves when the client says IPERF_DONE or goes. */
  async exchangeResults(cpu: { user: number; system: number; wallMicros: number }, serverOutputText: () => string): Promise<TestOutcome> {
    const retransmits = this.#streams.map((stream) => {
      if (stream instanceof Iperf3UdpStream) return 0;
      try {
        return readTcpInfo(fdOf(stream.socket)).retransmits;
      } catch {
        return 0;
      }
    });
    // UDP figures as the test ends: before the streams let go of the port, and before a later test's datagrams add to its drops.
    this.#udpFigures = this.#streams.map((stream) => (stream instanceof Iperf3UdpStream ? stream.figures() : undefined));
    this.#udpDropsSeen = this.#udpDrops?.() ?? null;
    this.#closeStreams();
    const params = this.#params!;
    const percent = (micros: number): number => (cpu.wallMicros > 0 ? (micros / cpu.wallMicros) * 100 : 0);
    this.control.write(stateByte(STATE.EXCHANGE_RESULTS));
    await withTimeout(readJson(this.#reader), this.#bounded(RESULTS_TIMEOUT_MS), "the iperf3 client's results");
    // The time the bytes were counted over, as iperf3's own server reports it: the client's TEST_END
    // comes after -t by however late it was (or after -n bytes, when -t is 0), and the rate the client
    // prints is these bytes over this time.
    const duration = this.#countedSec;
    const results = {
      cpu_util_total: percent(cpu.user + cpu.system),
      cpu_util_user: percent(cpu.user),
      cpu_util_system: percent(cpu.system),
      sender_has_retransmits: !params.udp && this.#streams.some((stream) => stream.sender) ? 1 : 0,
      streams: this.#streams.map((stream, index) => {
        const udp = this.#udpFigures[index];
        return {
          id: stream.id,
          bytes: stream.bytes,
          retransmits: retransmits[index]!,
          // iperf3's units: jitter in seconds; errors are the datagrams lost, packets the highest number seen (or sent).
          jitter: (udp?.jitterMs ?? 0) / 1000,
          errors: udp?.lost ?? 0,
          packets: udp?.packets ?? 0,
          start_time: 0,
          end_time: duration,
        };
      }),
      ...(params.getServerOutput ? { server_output_text: serverOutputText() } : {}),
    };
    this.control.write(encodeJson(results));
    this.control.write(stateByte(STATE.DISPLAY_RESULTS));
    try {
      await withTimeout(readState(this.#reader), this.#bounded(DONE_TIMEOUT_MS), 'IPERF_DONE');
    } catch {
      // A client that just closes after the results is fine.
    }
    return this.outcome();
  }

  outcome(): TestOutcome {
    return {
      params: this.#params,
      streams: this.#streams.map((stream, index) => {
        const udp = this.#udpFigures[index];
        return { id: stream.id, sender: stream.sender, bytes: stream.bytes, ...(udp === undefined ? {} : { udp }) };
      }),
      ...(this.#params?.udp === true ? { udpReceiveBufferDrops: this.#udpDropsSeen } : {}),
      countedSeconds: this.#countedSec,
    };
  }

  /** The test is over: close the control connection without waiting for the client to close its side. */
  finish(): void {
    this.#stopStreams();
    closeAfterWrite(this.control, undefined, this.#bounded(FLUSH_TIMEOUT_MS));
  }

  /** Ends the test after `error`; a stock client gets SERVER_ERROR when the error carries iperf3's numbers. */
  fail(error: unknown): void {
    this.#stopStreams();
    closeAfterWrite(this.control, error instanceof Iperf3ServerError ? error.toWire() : undefined, this.#bounded(FLUSH_TIMEOUT_MS));
  }

  /**
   * Turns the test away after its parameters (the server filled up meanwhile): ACCESS_DENIED, which iperf3 prints as "the server is
   * busy".
   */
  refuse(): void {
    this.#stopStreams();
    closeAfterWrite(this.control, stateByte(STATE.ACCESS_DENIED), this.#bounded(FLUSH_TIMEOUT_MS));
  }

  destroy(): void {
    this.#stopStreams();
    this.control.destroy();
  }

  #stopStreams(): void {
    this.#ended = true;
    this.#sending = false;
    // The threads see the flag within one call or poll and close their own descriptors; nothing waits for them here.
    void this.#stopThreads('senders');
    void this.#stopThreads('receivers');
    this.#closeStreams();
  }

  #closeStreams(): void {
    for (const stream of this.#streams) {
      if (stream instanceof Iperf3UdpStream) stream.close();
      else stream.socket.destroy();
    }
  }

  /** No timer, whoever chose it, runs past the test's deadline. */
  #bounded(ms: number): number {
    return Math.max(0, Math.ceil(Math.min(ms, this.deadline - performance.now())));
  }
}

/** iperf3 numbers streams 1, 3, 4, 5, ... (2 is skipped). */
function streamId(index: number): number {
  return index === 0 ? 1 : index + 2;
}

/** A data connection that could not be set up, with the i_errno and errno a stock client prints. */
function setupError(error: unknown, iperfErrno: number): Iperf3ServerError {
  const errnoName = errnoOf(error);
  const osErrno = (osConstants.errno as Readonly<Record<string, number>>)[errnoName] ?? 0;
  const code = isSocktuneError(error) ? error.code : 'SOCKTUNE_ERR_SOCKOPT';
  const reason = error instanceof Error ? error.message : String(error);
  return new Iperf3ServerError(code, `iperf3 data connection set-up failed: ${reason}`, iperfErrno, osErrno, {
    cause: error,
    errno: errnoName,
  });
}

/**
 * A test's TCP streams of one role on bulk threads, granted from the server's quota: their counts
 * at the end of --omit, and, once stopped, what each moved added to its own count.
 */
class ThreadedStreams {
  readonly threads: BulkThreads;
  readonly #streams: TcpStream[];
  readonly #quota: ThreadQuota;
  readonly #granted: number;
  #omitted: number[];

  private constructor(threads: BulkThreads, streams: TcpStream[], quota: ThreadQuota, granted: number) {
    this.threads = threads;
    this.#streams = streams;
    this.#quota = quota;
    this.#granted = granted;
    this.#omitted = streams.map(() => 0);
  }

  /**
   * `bitsPerSecond`: a sender's pace per stream (the client's -b), 0 for none. undefined when there
   * is nothing to move, no thread is free, or the threads cannot start: the event loop keeps the streams.
   */
  static async start(
    streams: TcpStream[],
    role: 'send' | 'receive',
    quota: ThreadQuota,
    chunkBytes: number,
    bitsPerSecond: number,
  ): Promise<ThreadedStreams | undefined> {
    if (streams.length === 0) return undefined;
    const granted = quota.take(Math.min(streams.length, availableParallelism()));
    if (granted === 0) return undefined;
    // A receiver's event loop stops reading: its thread reads from here on.
    if (role === 'receive') streams.forEach((stream) => stream.socket.pause());
    try {
      const threads = await bulkOnThreads(
        streams.map((stream) => ({ socket: stream.socket, role })),
        { chunkBytes, bitsPerSecond, threads: granted },
      );
      return new ThreadedStreams(threads, streams, quota, granted);
    } catch {
      quota.give(granted);
      if (role === 'receive') streams.forEach((stream) => stream.socket.resume());
      return undefined;
    }
  }

  /** --omit ended: what was moved so far is not counted (the event loop's share is reset by the session). */
  omit(): void {
    this.#omitted = this.threads.streams.map((stream) => stream.bytes);
  }

  lastData(stream: TcpStream): number {
    const index = this.#streams.indexOf(stream);
    return index < 0 ? 0 : this.threads.streams[index]!.lastData;
  }

  async stop(): Promise<void> {
    await this.threads.stop();
    this.#quota.give(this.#granted);
    this.#streams.forEach((stream, index) => (stream.bytes += this.threads.streams[index]!.bytes - this.#omitted[index]!));
  }
}
