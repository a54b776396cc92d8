import type { Socket } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import { withTimeout } from '../../core/timeout.ts';
import { applyPreConnectOptions, duplicateFd, readTcpInfo } from '../../core/sockopts.ts';
import { serveReads } from '../../transport/services.ts';
import type { ByteReader } from '../../framing/byte-reader.ts';
import { fdOf } from '../../transport/fd.ts';
import { pumpWrites } from '../../transport/pump.ts';
import { encodeJson, EPROTONOSUPPORT, IE_NO_SCTP, IE_PROTOCOL, parseParams, readJson, readState, serverError, STATE, stateByte, type Iperf3Params } from './codec.ts';

/** How long the client has to open its data connections after CREATE_STREAMS. */
const STREAMS_TIMEOUT_MS = 10_000;
/** Like iperf3's server: a test ends by itself this long after its duration and omit. */
const GRACE_SEC = 5;
/** The longest test a client may ask for with -n/-k and no time. */
const MAX_TEST_SEC = 3600;

interface DataStream {
  id: number;
  socket: Socket;
  /** The server sends on it (reverse, or the second half of a bidir test). */
  sender: boolean;
  bytes: number;
  /** performance.now() of the last data received. */
  lastData: number;
}

/** After TEST_END, receiving streams are read until this long passes with no data (bytes the client sent before TEST_END may still be in flight). */
const DRAIN_IDLE_MS = 50;
const DRAIN_MAX_MS = 2000;

export interface TestOutcome {
  params: Iperf3Params | undefined;
  streams: { id: number; sender: boolean; bytes: number }[];
}

/**
 * One iperf3 test, driven from the server side as iperf3's server does: parameters, streams,
 * start, data until the client's TEST_END, results exchange. Every wait has a deadline.
 */
export class Iperf3TestSession {
  readonly control: Socket;
  readonly #reader: ByteReader;
  readonly #streams: DataStream[] = [];
  #expectedStreams = 0;
  #streamsArrived: (() => void) | undefined;
  #params: Iperf3Params | undefined;
  #sending = false;

  constructor(control: Socket, reader: ByteReader) {
    this.control = control;
    this.#reader = reader;
  }

  /** Phase 1: parameters. Returns false when the test was refused (UDP/SCTP). */
  async exchangeParameters(timeoutMs: number): Promise<Iperf3Params | undefined> {
    this.control.write(stateByte(STATE.PARAM_EXCHANGE));
    const params = parseParams(await withTimeout(readJson(this.#reader), timeoutMs, 'iperf3 parameters'));
    if (params.udp || params.sctp) {
      this.control.end(serverError(params.udp ? IE_PROTOCOL : IE_NO_SCTP, EPROTONOSUPPORT));
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `iperf3 client asked for ${params.udp ? 'UDP' : 'SCTP'}: socktune's iperf3 server speaks TCP only`);
    }
    this.#params = params;
    this.#expectedStreams = params.parallel * (params.bidirectional ? 2 : 1);
    return params;
  }

  /** Phase 2: asks for the data connections and waits for all of them (addStream delivers them). */
  async createStreams(): Promise<void> {
    const arrived = new Promise<void>((resolve) => (this.#streamsArrived = resolve));
    // A client that goes away meanwhile ends the wait at once, not at the timeout.
    const gone = new Promise<never>((_, reject) => {
      const onClose = (): void => reject(new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'the iperf3 client closed its control connection before its streams arrived'));
      this.control.once('close', onClose);
      void arrived.then(() => this.control.off('close', onClose));
    });
    this.control.write(stateByte(STATE.CREATE_STREAMS));
    await withTimeout(Promise.race([arrived, gone]), STREAMS_TIMEOUT_MS, `${this.#expectedStreams} iperf3 data connection(s)`);
  }

  get wantsStreams(): boolean {
    return this.#streams.length < this.#expectedStreams;
  }

  /** A data connection whose cookie matched: the first `parallel` carry client→server data. */
  addStream(accepted: Socket, leftover: Buffer): void {
    const params = this.#params!;
    const index = this.#streams.length;
    const sender = params.reverse || (params.bidirectional && index >= params.parallel);
    const fd = fdOf(accepted);
    if (params.window > 0) applyPreConnectOptions(fd, 'ipv4', { sendBufferSize: params.window, receiveBufferSize: params.window }, false);
    accepted.setNoDelay(params.nodelay);
    accepted.on('error', () => {});
    let socket = accepted;
    const stream: DataStream = { id: index === 0 ? 1 : index + 2, socket, sender, bytes: leftover.length, lastData: performance.now() };
    if (sender) accepted.resume();
    else {
      // Received data is only counted: read it into the thread's shared buffer, not a fresh allocation per read.
      socket = serveReads(duplicateFd(fd), () => (view) => {
        stream.bytes += view.length;
        stream.lastData = performance.now();
      });
      accepted.destroy();
      socket.on('error', () => {});
      stream.socket = socket;
    }
    this.#streams.push(stream);
    if (!this.wantsStreams) this.#streamsArrived?.();
  }

  /** Phase 3: start, run until TEST_END (or the deadline), stop the streams. */
  async run(): Promise<void> {
    const params = this.#params!;
    this.control.write(Buffer.from([STATE.TEST_START, STATE.TEST_RUNNING]));
    this.#startSenders(params);
    // Like iperf3's server, count nothing of the --omit warm-up.
    const omitTimer = params.omit > 0 ? setTimeout(() => this.#streams.forEach((stream) => (stream.bytes = 0)), params.omit * 1000) : undefined;
    const deadlineSec = params.time > 0 ? params.time + params.omit + GRACE_SEC : MAX_TEST_SEC;
    try {
      for (;;) {
        const state = await withTimeout(readState(this.#reader), deadlineSec * 1000, 'TEST_END from the iperf3 client');
        if (state === STATE.TEST_END) break;
        if (state === STATE.CLIENT_TERMINATE) throw new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'the iperf3 client terminated the test');
        throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `unexpected iperf3 state ${state} during the test`);
      }
    } finally {
      clearTimeout(omitTimer);
      this.#sending = false;
    }
    await this.#drainReceivers();
  }

  /** Reads what the client sent before its TEST_END and is still on the way, so the byte counts agree. */
  async #drainReceivers(): Promise<void> {
    const receivers = this.#streams.filter((stream) => !stream.sender);
    const started = performance.now();
    // setImmediate runs after the poll phase: reads already waiting are counted before each check.
    const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    await settle();
    while (receivers.some((stream) => performance.now() - stream.lastData < DRAIN_IDLE_MS) && performance.now() - started < DRAIN_MAX_MS) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_IDLE_MS / 2));
      await settle();
    }
  }

  #startSenders(params: Iperf3Params): void {
    const senders = this.#streams.filter((stream) => stream.sender);
    if (senders.length === 0) return;
    this.#sending = true;
    const block = Buffer.alloc(params.len, 0x69);
    // -n / -k limit what the sender sends, counted over all its streams.
    const limit = params.bytes > 0 ? params.bytes : params.blocks > 0 ? params.blocks * params.len : Infinity;
    let sent = 0;
    for (const stream of senders) {
      pumpWrites(stream.socket, () => block, () => this.#sending && sent < limit, (bytes) => {
        sent += bytes;
        stream.bytes += bytes;
      });
    }
  }

  /** Phase 4: results both ways, then DISPLAY_RESULTS; resolves when the client says IPERF_DONE or goes. */
  async exchangeResults(cpu: { user: number; system: number; wallMicros: number }, serverOutputText: () => string): Promise<TestOutcome> {
    const retransmits = this.#streams.map((stream) => {
      try {
        return readTcpInfo(fdOf(stream.socket)).retransmits;
      } catch {
        return 0;
      }
    });
    for (const stream of this.#streams) stream.socket.destroy();
    const params = this.#params!;
    const percent = (micros: number): number => (cpu.wallMicros > 0 ? (micros / cpu.wallMicros) * 100 : 0);
    this.control.write(stateByte(STATE.EXCHANGE_RESULTS));
    await withTimeout(readJson(this.#reader), 10_000, 'the iperf3 client\'s results');
    const duration = params.time;
    const results = {
      cpu_util_total: percent(cpu.user + cpu.system),
      cpu_util_user: percent(cpu.user),
      cpu_util_system: percent(cpu.system),
      sender_has_retransmits: this.#streams.some((stream) => stream.sender) ? 1 : 0,
      streams: this.#streams.map((stream, index) => ({
        id: stream.id,
        bytes: stream.bytes,
        retransmits: retransmits[index]!,
        jitter: 0,
        errors: 0,
        packets: 0,
        start_time: 0,
        end_time: duration,
      })),
      ...(params.getServerOutput ? { server_output_text: serverOutputText() } : {}),
    };
    this.control.write(encodeJson(results));
    this.control.write(stateByte(STATE.DISPLAY_RESULTS));
    try {
      await withTimeout(readState(this.#reader), 5_000, 'IPERF_DONE');
    } catch {
      // A client that just closes after the results is fine.
    }
    return this.outcome();
  }

  outcome(): TestOutcome {
    return { params: this.#params, streams: this.#streams.map(({ id, sender, bytes }) => ({ id, sender, bytes })) };
  }

  destroy(): void {
    this.#sending = false;
    for (const stream of this.#streams) stream.socket.destroy();
    this.control.destroy();
  }
}

