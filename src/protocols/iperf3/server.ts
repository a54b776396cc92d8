import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { isSocktuneError, SocktuneError } from '../../core/errors.ts';
import { integer, nonEmptyString, validateFields, type FieldCheck } from '../../core/validate.ts';
import { ByteReader } from '../../framing/byte-reader.ts';
import { SendBudget } from '../../transport/send-budget.ts';
import { createServer, type ServerAddress, type SocktuneServer } from '../../transport/server.ts';
import { Iperf3Authenticator, type Iperf3AuthOptions } from './auth.ts';
import { closeAfterWrite } from './close-after-write.ts';
import { COOKIE_BYTES, cookieKey, IPERF3_LIMITS, MAX_JSON_BYTES, STATE, stateByte } from './codec.ts';
import { Iperf3TestSession, type TestOutcome, type TestPolicy } from './test-session.ts';
import { withTimeout } from '../../core/timeout.ts';

export const IPERF3_DEFAULT_PORT = 5201;

/** Node's timers fire at once for anything longer (a 32-bit signed millisecond count). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Iperf3ServerOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 5201 */
  port?: number;
  /** Tests at once; a client over the cap gets ACCESS_DENIED ("the server is busy"). @default 4 */
  maxTests?: number;
  /** Tests at once from one client address; over it, ACCESS_DENIED too. @default 4 */
  maxTestsPerClient?: number;
  /** Milliseconds a new connection has to send its cookie, and then its parameters. @default 10000 */
  handshakeTimeoutMs?: number;
  /**
   * Longest test, in ms: a test whose time + omit + 5 s grace does not fit is refused, a -n/-k
   * test with no time is ended here, and no timer a client chooses runs longer. @default 600000
   */
  maxDurationMs?: number;
  /** Streams per test: parallel × (bidir ? 2 : 1); more is refused. @default 128 */
  maxStreams?: number;
  /** Largest socket buffer (-w) a client may ask for, in bytes; more is refused. @default 16777216 (16 MiB) */
  maxWindow?: number;
  /** Largest block (-l) a client may ask for, in bytes; more is refused. @default 1048576 (1 MiB, iperf3's own maximum) */
  maxBlockLength?: number;
  /** Paces every stream the server sends on (-R, --bidir), together with anything else given the same budget. @default undefined (unpaced) */
  sendBudget?: SendBudget;
  /** iperf3's RSA authentication, as `iperf3 -s --rsa-private-key-path --authorized-users-path`. @default undefined (none) */
  auth?: Iperf3AuthOptions;
}

export const IPERF3_SERVER_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: IPERF3_DEFAULT_PORT,
  maxTests: 4,
  maxTestsPerClient: 4,
  handshakeTimeoutMs: 10_000,
  maxDurationMs: 600_000,
  maxStreams: 128,
  maxWindow: 16 * 1024 * 1024,
  maxBlockLength: 1024 * 1024,
});

export type ResolvedIperf3ServerOptions = { -readonly [K in keyof typeof IPERF3_SERVER_DEFAULTS]: (typeof IPERF3_SERVER_DEFAULTS)[K] extends string ? string : number } & {
  sendBudget?: SendBudget | undefined;
  auth?: Iperf3AuthOptions | undefined;
};

const sendBudgetCheck: FieldCheck = (value) => (value instanceof SendBudget ? undefined : 'a SendBudget');
const objectCheck: FieldCheck = (value) => (typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : 'an object');

const FIELDS = Object.freeze({
  host: nonEmptyString,
  port: integer(0, 65_535),
  maxTests: integer(1, 1_000_000),
  maxTestsPerClient: integer(1, 1_000_000),
  handshakeTimeoutMs: integer(1, MAX_TIMER_MS),
  maxDurationMs: integer(1000, MAX_TIMER_MS),
  maxStreams: integer(1, IPERF3_LIMITS.maxStreams),
  maxWindow: integer(1, IPERF3_LIMITS.maxWindow),
  maxBlockLength: integer(1, 16 * 1024 * 1024),
  sendBudget: sendBudgetCheck,
  auth: objectCheck,
});

/** Defaults filled in; throws SOCKTUNE_ERR_INVALID_OPTION naming the option (`options.maxWindow must be ...`). */
export function validateIperf3ServerOptions(options: Iperf3ServerOptions = {}): ResolvedIperf3ServerOptions {
  validateFields(options, FIELDS, 'options');
  const resolved: ResolvedIperf3ServerOptions = { ...IPERF3_SERVER_DEFAULTS };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) Object.assign(resolved, { [key]: value });
  return resolved;
}

export interface Iperf3TestLog {
  peer: string;
  /** 'refused': turned away by the server's policy (busy, over a limit, not authenticated); 'failed': an error or a malformed message. */
  outcome: 'done' | 'failed' | 'refused';
  error?: string;
  summary?: string;
}

const REFUSAL_CODES: ReadonlySet<string> = new Set(['SOCKTUNE_ERR_REFUSED', 'SOCKTUNE_ERR_AUTH']);

/**
 * Answers stock iperf3 clients (TCP). Unlike iperf3's own server it runs several tests at once:
 * data connections find their test by the cookie they send first. Every number a client sends is
 * checked against the options before it is used, and nothing a client does ends more than its
 * own test.
 *
 * Events: 'test' (Iperf3TestLog) when a test ends.
 */
export class Iperf3Server extends EventEmitter {
  readonly options: Readonly<ResolvedIperf3ServerOptions>;
  readonly #policy: TestPolicy;
  readonly #server: SocktuneServer;
  readonly #awaitingStreams = new Map<string, Iperf3TestSession>();
  readonly #sessions = new Set<Iperf3TestSession>();
  readonly #testsByClient = new Map<string, number>();

  constructor(options: Iperf3ServerOptions = {}) {
    super();
    this.options = Object.freeze(validateIperf3ServerOptions(options));
    const { maxDurationMs, maxStreams, maxWindow, maxBlockLength, handshakeTimeoutMs, sendBudget, auth } = this.options;
    this.#policy = Object.freeze({
      limits: Object.freeze({ maxDurationSec: maxDurationMs / 1000, maxStreams, maxWindow, maxBlockLength }),
      maxDurationMs,
      handshakeTimeoutMs,
      sendBudget,
      auth: auth === undefined ? undefined : new Iperf3Authenticator(auth, 'options.auth'),
    });
    // iperf3's control connection is quiet for a whole test; the test's own timeouts bound it.
    this.#server = createServer({ host: this.options.host, port: this.options.port, closeTimeout: 1000, idleTimeout: 0 }, (socket) => this.#onConnection(socket));
  }

  listen(): Promise<ServerAddress> {
    return this.#server.listen();
  }

  get activeTests(): number {
    return this.#sessions.size;
  }

  #onConnection(socket: Socket): void {
    // #accept handles every failure it expects; this catch is the last line, so that nothing a client does reaches the top of the process.
    this.#accept(socket).catch((error: unknown) => {
      socket.destroy();
      this.#log({ peer: peerOf(socket), outcome: 'failed', error: describe(error) });
    });
  }

  async #accept(socket: Socket): Promise<void> {
    const reader = new ByteReader(MAX_JSON_BYTES + 1024);
    const feed = (chunk: Buffer): void => reader.push(chunk);
    socket.on('data', feed);
    socket.once('end', () => reader.end());
    socket.once('close', () => reader.end());
    socket.on('error', (error) => reader.end(new SocktuneError('SOCKTUNE_ERR_PEER_GONE', `connection failed: ${error.message}`)));
    const peer = peerOf(socket);
    let cookie: Buffer;
    try {
      cookie = await withTimeout(reader.read(COOKIE_BYTES), this.options.handshakeTimeoutMs, 'iperf3 cookie');
    } catch (error) {
      socket.destroy();
      this.#log({ peer, outcome: 'failed', error: describe(error) });
      return;
    }
    const key = cookieKey(cookie);
    const session = this.#awaitingStreams.get(key);
    if (session?.wantsStreams) {
      // Stop this socket's reads now: nothing may arrive between the cookie and the stream's own reader.
      socket.pause();
      socket.off('data', feed);
      session.addStream(socket, reader.drain());
      return;
    }
    const client = clientAddress(socket);
    const busy = this.#busyReason(client);
    if (busy !== undefined) {
      // Like iperf3's server: the state byte, then close at once, whatever the client does next.
      closeAfterWrite(socket, stateByte(STATE.ACCESS_DENIED));
      this.#log({ peer, outcome: 'refused', error: `SOCKTUNE_ERR_REFUSED: ${busy}` });
      return;
    }
    await this.#runTest(new Iperf3TestSession(socket, reader, this.#policy), key, peer, client);
  }

  #busyReason(client: string): string | undefined {
    const { maxTests, maxTestsPerClient } = this.options;
    if (this.#sessions.size >= maxTests) return `server busy: ${this.#sessions.size} tests running (max ${maxTests})`;
    const mine = this.#testsByClient.get(client) ?? 0;
    if (mine >= maxTestsPerClient) return `server busy: ${mine} tests running from ${client} (max ${maxTestsPerClient} per client)`;
    return undefined;
  }

  async #runTest(session: Iperf3TestSession, key: string, peer: string, client: string): Promise<void> {
    this.#sessions.add(session);
    this.#testsByClient.set(client, (this.#testsByClient.get(client) ?? 0) + 1);
    let summary: string;
    try {
      await session.exchangeParameters();
      this.#awaitingStreams.set(key, session);
      await session.createStreams();
      this.#forgetCookie(key, session);
      const cpuBefore = process.cpuUsage();
      const started = process.hrtime.bigint();
      await session.run();
      const cpu = process.cpuUsage(cpuBefore);
      const wallMicros = Number(process.hrtime.bigint() - started) / 1000;
      const outcome = await session.exchangeResults({ ...cpu, wallMicros }, () => describeOutcome(session.outcome(), wallMicros));
      summary = describeOutcome(outcome, wallMicros);
      session.finish();
    } catch (error) {
      session.fail(error);
      const refused = isSocktuneError(error) && REFUSAL_CODES.has(error.code);
      this.#log({ peer, outcome: refused ? 'refused' : 'failed', error: describe(error) });
      return;
    } finally {
      this.#forgetCookie(key, session);
      this.#sessions.delete(session);
      const left = (this.#testsByClient.get(client) ?? 1) - 1;
      if (left > 0) this.#testsByClient.set(client, left);
      else this.#testsByClient.delete(client);
    }
    this.#log({ peer, outcome: 'done', summary });
  }

  /** Only this session's entry: a client may reuse a cookie for another test of its own. */
  #forgetCookie(key: string, session: Iperf3TestSession): void {
    if (this.#awaitingStreams.get(key) === session) this.#awaitingStreams.delete(key);
  }

  #log(entry: Iperf3TestLog): void {
    try {
      this.emit('test', entry);
    } catch (error) {
      // A listener's bug must not end a test, nor escape into the accept path.
      process.emitWarning(`an Iperf3Server 'test' listener threw: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async close(): Promise<void> {
    for (const session of this.#sessions) session.destroy();
    await this.#server.close();
  }
}

function peerOf(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

/** One address per client, whether it came over IPv4 or as an IPv4-mapped IPv6 address. */
function clientAddress(socket: Socket): string {
  return (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
}

function describe(error: unknown): string {
  return isSocktuneError(error) ? `${error.code}: ${error.message}` : String(error);
}

function describeOutcome(outcome: TestOutcome, wallMicros: number): string {
  const seconds = wallMicros / 1e6;
  const lines = outcome.streams.map((stream) => {
    const bits = seconds > 0 ? (stream.bytes * 8) / seconds : 0;
    return `[${String(stream.id).padStart(3)}] ${stream.sender ? 'sender  ' : 'receiver'} ${stream.bytes} bytes in ${seconds.toFixed(2)} s = ${(bits / 1e9).toFixed(2)} Gbit/s`;
  });
  return `socktune iperf3 server: ${outcome.params?.reverse ? 'reverse ' : ''}${outcome.params?.bidirectional ? 'bidirectional ' : ''}test, ${outcome.streams.length} stream(s)\n${lines.join('\n')}\n`;
}
