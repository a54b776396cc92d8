import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import { AuthBackoff, type AuthBackoffOptions } from '../../../core/auth-backoff.ts';
import { clientKey, DEFAULT_IPV6_PREFIX } from '../../../core/client-key.ts';
import { addCount } from '../../../core/counts.ts';
import { isSocktuneError, SocktuneError, type ErrorCode } from '../../../core/errors.ts';
import { integer, nonEmptyString, validateFields, type FieldCheck } from '../../../core/validate.ts';
import { ByteReader } from '../../../framing/byte-reader.ts';
import { SendBudget } from '../../../transport/io/send-budget.ts';
import { ThreadQuota } from '../../../transport/bulk/thread-quota.ts';
import { createServer, type ServerAddress, type SocktuneServer } from '../../../transport/server/socktune-server.ts';
import { SERVER_DEFAULTS } from '../../../transport/server/options.ts';
import { Iperf3Authenticator, type Iperf3AuthOptions } from './authenticator.ts';
import { closeAfterRead, closeAfterWrite, FLUSH_TIMEOUT_MS } from '../../../transport/io/close-after-write.ts';
import {
  COOKIE_BYTES,
  cookieKey,
  IPERF3_LIMITS,
  Iperf3ServerError,
  MAX_JSON_BYTES,
  STATE,
  stateByte,
} from '../../../protocols/iperf3/codec.ts';
import { Iperf3TestSession, type TestOutcome, type TestPolicy } from './iperf3-session.ts';
import { Iperf3UdpPort } from './udp-port.ts';
import type { UdpStreamFigures } from './udp-stream.ts';
import { formatBits } from '../../results/format.ts';
import { MAX_TIMER_MS, withTimeout } from '../../../core/timeout.ts';

export const IPERF3_DEFAULT_PORT = 5201;

export interface Iperf3ServerOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 5201 */
  port?: number;
  /** Tests at once (a test counts from its accepted parameters to its end); over it, ACCESS_DENIED ("the server is busy"). @default 4 */
  maxTests?: number;
  /**
   * Tests at once from one client address; over it, ACCESS_DENIED too. Below maxTests, so that one address cannot take every test.
   * @default 2
   */
  maxTestsPerClient?: number;
  /** Data streams of every test together; a test that would go over it gets ACCESS_DENIED. @default 256 */
  maxTotalStreams?: number;
  /**
   * Data streams of one client address's tests together; over it, ACCESS_DENIED too. Below
   * maxTotalStreams, so that one address cannot take every stream (a -P 128 test held for
   * --max-duration would lock everyone out). @default 128
   */
  maxStreamsPerClient?: number;
  /**
   * Connections that are not a test yet (before their cookie, or between it and accepted
   * parameters), every address together; over it the oldest of them is closed, so silent holders
   * cannot keep a live client out. The data connections a test is waiting for come on top. @default 16
   */
  maxPending?: number;
  /** The same from one client address (plus the data connections its own tests are waiting for). @default 2 */
  maxPendingPerClient?: number;
  /** Milliseconds a new connection has to send its 37-byte cookie (a stock client sends it as it connects). @default 3000 */
  cookieTimeoutMs?: number;
  /** Milliseconds a client has to send its parameters after PARAM_EXCHANGE (a stock client sends them at once). @default 3000 */
  parametersTimeoutMs?: number;
  /**
   * Longest test, in ms, from its accept to its close: a test whose time + omit + 5 s grace does not
   * fit is refused, a -n/-k test with no time is ended here, and no phase of a test outlasts it. @default 600000
   */
  maxDurationMs?: number;
  /** Streams per test: parallel × (bidir ? 2 : 1); more is refused. @default 128 */
  maxStreams?: number;
  /** Largest socket buffer (-w) a client may ask for, in bytes; more is refused. @default 16777216 (16 MiB) */
  maxWindow?: number;
  /** Largest block (-l) a client may ask for, in bytes; more is refused. @default 1048576 (1 MiB, iperf3's own maximum) */
  maxBlockLength?: number;
  /**
   * Connections open at once, controls, streams and refusals on their way out together; over it, closed at once (the transport's
   * cap, as createServer's maxConnections). @default 10000
   */
  maxConnections?: number;
  /** The same from one client address; keep it above maxTestsPerClient × (maxStreams + 1). @default 1024 */
  maxConnectionsPerIp?: number;
  /**
   * Paces every stream the server sends on (-R, --bidir), together with anything else given the same budget. @default undefined
   * (unpaced)
   */
  sendBudget?: SendBudget;
  /** iperf3's RSA authentication, as `iperf3 -s --rsa-private-key-path --authorized-users-path`. @default undefined (none) */
  auth?: Iperf3AuthOptions;
  /** With auth: how failed authentication is slowed, then refused, per client. @default AUTH_BACKOFF_DEFAULTS */
  authBackoff?: AuthBackoffOptions;
  /**
   * With auth: RSA decryptions a second, every client together; over it a test is refused as busy (ACCESS_DENIED) instead of
   * decrypted. @default 64
   */
  maxAuthPerSecond?: number;
  /** The same for one client (an address, an IPv6 prefix), so that one cannot spend them all. @default 8 */
  maxAuthPerSecondPerClient?: number;
  /** IPv6 clients share every per-client limit by this prefix length (one host may hold a whole /64). @default 64 */
  ipv6Prefix?: number;
  /**
   * SO_RCVBUF of the UDP port every UDP test shares, set when it is bound; a test's -w only grows it. @default undefined (the
   * kernel's default)
   */
  udpReceiveBufferSize?: number;
  /**
   * Threads the server may move TCP test data on, every test together: a test's sending streams
   * (-R, --bidir) send with sendfile from a page-cache file on threads granted from these (unless a
   * -n/-k count or sendBudget needs the event loop's writes), its receiving streams read on others;
   * streams granted none stay on the event loop. 0: never threads. @default the CPUs
   */
  bulkThreads?: number;
}

export const IPERF3_SERVER_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: IPERF3_DEFAULT_PORT,
  maxTests: 4,
  maxTestsPerClient: 2,
  maxTotalStreams: 256,
  maxStreamsPerClient: 128,
  maxPending: 16,
  maxPendingPerClient: 2,
  cookieTimeoutMs: 3000,
  parametersTimeoutMs: 3000,
  maxDurationMs: 600_000,
  maxStreams: 128,
  maxWindow: 16 * 1024 * 1024,
  maxBlockLength: 1024 * 1024,
  maxConnections: SERVER_DEFAULTS.maxConnections,
  maxConnectionsPerIp: SERVER_DEFAULTS.maxConnectionsPerIp,
  maxAuthPerSecond: 64,
  maxAuthPerSecondPerClient: 8,
  ipv6Prefix: DEFAULT_IPV6_PREFIX,
  bulkThreads: availableParallelism(),
});

export type ResolvedIperf3ServerOptions = {
  -readonly [K in keyof typeof IPERF3_SERVER_DEFAULTS]: (typeof IPERF3_SERVER_DEFAULTS)[K] extends string ? string : number;
} & {
  sendBudget?: SendBudget | undefined;
  auth?: Iperf3AuthOptions | undefined;
  authBackoff?: AuthBackoffOptions | undefined;
  udpReceiveBufferSize?: number | undefined;
};

const sendBudgetCheck: FieldCheck = (value) => (value instanceof SendBudget ? undefined : 'a SendBudget');
const objectCheck: FieldCheck = (value) => (typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : 'an object');

const FIELDS = Object.freeze({
  host: nonEmptyString,
  port: integer(0, 65_535),
  maxTests: integer(1, 1_000_000),
  maxTestsPerClient: integer(1, 1_000_000),
  maxTotalStreams: integer(1, 10_000_000),
  maxStreamsPerClient: integer(1, 10_000_000),
  maxPending: integer(1, 1_000_000),
  maxPendingPerClient: integer(1, 1_000_000),
  cookieTimeoutMs: integer(1, MAX_TIMER_MS),
  parametersTimeoutMs: integer(1, MAX_TIMER_MS),
  maxDurationMs: integer(1000, MAX_TIMER_MS),
  maxStreams: integer(1, IPERF3_LIMITS.maxStreams),
  maxWindow: integer(1, IPERF3_LIMITS.maxWindow),
  maxBlockLength: integer(1, 16 * 1024 * 1024),
  maxConnections: integer(1, 10_000_000),
  maxConnectionsPerIp: integer(1, 10_000_000),
  sendBudget: sendBudgetCheck,
  auth: objectCheck,
  authBackoff: objectCheck,
  maxAuthPerSecond: integer(1, 1_000_000),
  bulkThreads: integer(0, 1024),
  maxAuthPerSecondPerClient: integer(1, 1_000_000),
  ipv6Prefix: integer(1, 128),
  udpReceiveBufferSize: integer(1, 2 ** 31 - 1),
});

/** Defaults filled in; throws SOCKTUNE_ERR_INVALID_OPTION naming the option (`options.maxWindow must be ...`). */
export function validateIperf3ServerOptions(options: Iperf3ServerOptions = {}): ResolvedIperf3ServerOptions {
  validateFields(options, FIELDS, 'options');
  const resolved: ResolvedIperf3ServerOptions = { ...IPERF3_SERVER_DEFAULTS };
  for (const [key, value] of Object.entries(options) as [string, unknown][])
    if (value !== undefined) Object.assign(resolved, { [key]: value });
  return resolved;
}

export interface Iperf3TestLog {
  peer: string;
  /** The key the client's limits count under (clientKey): its address, or its IPv6 prefix. */
  client: string;
  /** 'refused': turned away by the server's policy (busy, over a limit, not authenticated); 'failed': an error or a malformed message. */
  outcome: 'done' | 'failed' | 'refused';
  /** Why a test was refused or failed (SOCKTUNE_ERR_REFUSED for every "busy"); the same code starts `error`. */
  code?: ErrorCode;
  error?: string;
  /** What a finished test moved, as iperf3's server prints it (describeIperf3Test makes that text). */
  figures?: Iperf3TestFigures;
}

/** One finished iperf3 test as the server counted it. */
export interface Iperf3TestFigures {
  reverse: boolean;
  bidirectional: boolean;
  /** The test's wall time on the server, from its start to the results exchange. */
  seconds: number;
  /** The time the bytes were counted over, and each stream's rate is of: after --omit, to the last byte. */
  countedSeconds: number;
  /** Bytes this server received (client → server streams) and sent (server → client). */
  bytesIn: number;
  bytesOut: number;
  /** A UDP test's streams carry `udp`: datagrams, loss, reordering, jitter. */
  streams: { id: number; sender: boolean; bytes: number; bitsPerSecond: number; udp?: UdpStreamFigures }[];
  /**
   * A UDP test: datagrams the server's UDP port dropped during it, its receive buffer full (with other UDP tests at once, theirs
   * too); null where unknown.
   */
  udpReceiveBufferDrops?: number | null;
}

const REFUSAL_CODES: ReadonlySet<string> = new Set(['SOCKTUNE_ERR_REFUSED', 'SOCKTUNE_ERR_AUTH']);

/**
 * Answers stock iperf3 clients (TCP). Unlike iperf3's own server it runs several tests at once:
 * data connections find their test by the cookie they send first. Every number a client sends is
 * checked against the options before it is used, and nothing a client does ends more than its
 * own test.
 *
 * A connection is "pending" until its cookie makes it a data stream, or its parameters are
 * accepted (and authenticated) and make it a test: pending connections have their own small pool
 * and short deadlines, so connections that say nothing, or cannot authenticate, never hold a test.
 *
 * Events: 'test' (Iperf3TestLog) when a test ends, or a connection is turned away.
 */
export class Iperf3Server extends EventEmitter {
  readonly options: Readonly<ResolvedIperf3ServerOptions>;
  readonly #policy: TestPolicy;
  readonly #server: SocktuneServer;
  readonly #awaitingStreams = new Map<string, Iperf3TestSession>();
  /** Admitted tests, each with the client address it counts against. */
  readonly #tests = new Map<Iperf3TestSession, string>();
  readonly #testsByClient = new Map<string, number>();
  /** Streams the admitted tests asked for, all together. */
  #streams = 0;
  readonly #streamsByClient = new Map<string, number>();
  readonly #pending = new Set<Socket>();
  #udpPort: Iperf3UdpPort | undefined;
  readonly #pendingByClient = new Map<string, number>();
  readonly #authBackoff: AuthBackoff;
  /** RSA decryptions granted in the current second, in all and by client, and when that second began. */
  #authWindow = { start: -Infinity, granted: 0, byClient: new Map<string, number>() };

  constructor(options: Iperf3ServerOptions = {}) {
    super();
    this.options = Object.freeze(validateIperf3ServerOptions(options));
    const {
      maxDurationMs,
      maxStreams,
      maxWindow,
      maxBlockLength,
      parametersTimeoutMs,
      sendBudget,
      auth,
      maxConnections,
      maxConnectionsPerIp,
      ipv6Prefix,
    } = this.options;
    this.#authBackoff = new AuthBackoff(this.options.authBackoff);
    this.#policy = Object.freeze({
      limits: Object.freeze({ maxDurationSec: maxDurationMs / 1000, maxStreams, maxWindow, maxBlockLength }),
      maxDurationMs,
      parametersTimeoutMs,
      sendBudget,
      auth: auth === undefined ? undefined : new Iperf3Authenticator(auth, 'options.auth'),
      bulkThreads: this.options.bulkThreads > 0 ? new ThreadQuota(this.options.bulkThreads) : undefined,
    });
    // iperf3's control connection is quiet for a whole test; the test's own deadlines bound it.
    this.#server = createServer(
      {
        host: this.options.host,
        port: this.options.port,
        closeTimeout: 1000,
        idleTimeout: 0,
        maxConnections,
        maxConnectionsPerIp,
        ipv6Prefix,
      },
      (socket) => this.#onConnection(socket),
    );
  }

  /** Listens on TCP; UDP tests get the same port number on UDP, bound when the first one starts. */
  async listen(): Promise<ServerAddress> {
    const address = await this.#server.listen();
    if ('port' in address) this.#udpPort = new Iperf3UdpPort(address.address, address.port, this.options.udpReceiveBufferSize);
    return address;
  }

  /** Tests whose parameters were accepted and that have not ended. */
  get activeTests(): number {
    return this.#tests.size;
  }

  /** Connections before their cookie, or between it and accepted parameters. */
  get pendingConnections(): number {
    return this.#pending.size;
  }

  #onConnection(socket: Socket): void {
    const peer = peerOf(socket);
    const client = clientKey(socket.remoteAddress, this.options.ipv6Prefix) || 'unknown';
    // The whole test, from here to its close, fits in maxDurationMs.
    const deadline = performance.now() + this.options.maxDurationMs;
    const crowded = this.#pendingRefusal(client);
    if (crowded !== undefined) {
      // Like iperf3's server when busy: ACCESS_DENIED without reading anything but the cookie on its way.
      closeAfterRead(socket, stateByte(STATE.ACCESS_DENIED), COOKIE_BYTES, Math.min(FLUSH_TIMEOUT_MS, this.options.cookieTimeoutMs));
      this.#refused(peer, client, crowded);
      return;
    }
    const release = this.#holdPending(socket, client);
    // #accept handles every failure it expects; this catch is the last line, so that nothing a client does reaches the top of the process.
    this.#accept(socket, peer, client, deadline, release)
      .catch((error: unknown) => {
        socket.destroy();
        this.#log({ peer, client, outcome: 'failed', ...describe(error) });
      })
      .finally(release);
  }

  /** Counts `socket` as pending until the returned function is called (once is enough; more do nothing). */
  #holdPending(socket: Socket, client: string): () => void {
    this.#pending.add(socket);
    addCount(this.#pendingByClient, client, 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#pending.delete(socket);
      addCount(this.#pendingByClient, client, -1);
    };
  }

  #pendingRefusal(client: string): string | undefined {
    const { maxPending, maxPendingPerClient } = this.options;
    // A stock client opens all its data connections at once: those its tests wait for come on top.
    let awaited = 0;
    let awaitedHere = 0;
    for (const [session, owner] of this.#tests) {
      const streams = session.awaitedStreams;
      awaited += streams;
      if (owner === client) awaitedHere += streams;
    }
    const mine = this.#pendingByClient.get(client) ?? 0;
    if (mine >= maxPendingPerClient + awaitedHere)
      return `server busy: ${mine} connections from ${client} before their parameters (max ${maxPendingPerClient} per client)`;
    // Full from other clients: the oldest gives way. A live client sends its cookie and parameters within a round trip,
    // so whoever has waited longest is the likeliest to be holding a place without using it.
    if (this.#pending.size >= maxPending + awaited) this.#pending.values().next().value?.destroy();
    return undefined;
  }

  async #accept(socket: Socket, peer: string, client: string, deadline: number, release: () => void): Promise<void> {
    const reader = new ByteReader(MAX_JSON_BYTES + 1024);
    const feed = (chunk: Buffer): void => reader.push(chunk);
    socket.on('data', feed);
    socket.once('end', () => reader.end());
    socket.once('close', () => reader.end());
    socket.on('error', (error) => reader.end(new SocktuneError('SOCKTUNE_ERR_PEER_GONE', `connection failed: ${error.message}`)));
    let cookie: Buffer;
    try {
      cookie = await withTimeout(
        reader.read(COOKIE_BYTES),
        Math.min(this.options.cookieTimeoutMs, this.options.maxDurationMs),
        'iperf3 cookie',
      );
    } catch (error) {
      socket.destroy();
      this.#log({ peer, client, outcome: 'failed', ...describe(error) });
      return;
    }
    const key = cookieKey(cookie);
    const session = this.#awaitingStreams.get(key);
    if (session?.wantsStreams) {
      release();
      // Stop this socket's reads now: nothing may arrive between the cookie and the stream's own reader.
      socket.pause();
      socket.off('data', feed);
      session.addStream(socket, reader.drain());
      return;
    }
    // Full already, or not allowed to try: say so before the client spends its parameters (and the server an RSA decryption).
    const busy = this.#busyReason(client, undefined) ?? this.#blockedReason(client);
    if (busy !== undefined) {
      release();
      // Like iperf3's server: the state byte, then close at once, whatever the client does next.
      closeAfterWrite(socket, stateByte(STATE.ACCESS_DENIED));
      this.#refused(peer, client, busy.reason, busy.code);
      return;
    }
    const test = new Iperf3TestSession(socket, reader, this.#policy, {
      deadline,
      authGate: () => this.#spendDecryption(client),
      udpPort: this.#udpPort,
    });
    await this.#runTest(test, key, peer, client, release);
  }

  /** Why a test cannot start now, if it cannot; `streams` undefined before its parameters are known. */
  #busyReason(client: string, streams: number | undefined): { reason: string; code?: ErrorCode } | undefined {
    const { maxTests, maxTestsPerClient, maxTotalStreams, maxStreamsPerClient } = this.options;
    if (this.#tests.size >= maxTests) return { reason: `server busy: ${this.#tests.size} tests running (max ${maxTests})` };
    const mine = this.#testsByClient.get(client) ?? 0;
    if (mine >= maxTestsPerClient)
      return { reason: `server busy: ${mine} tests running from ${client} (max ${maxTestsPerClient} per client)` };
    const asked = streams === undefined ? '' : `, this test asks for ${streams}`;
    const myStreams = this.#streamsByClient.get(client) ?? 0;
    if (myStreams + (streams ?? 1) > maxStreamsPerClient)
      return { reason: `server busy: ${myStreams} streams open from ${client}${asked} (max ${maxStreamsPerClient} per client)` };
    if (this.#streams + (streams ?? 1) > maxTotalStreams)
      return { reason: `server busy: ${this.#streams} streams open${asked} (max ${maxTotalStreams}, every test together)` };
    return undefined;
  }

  /** With auth: a client past its failed authentications is refused before its token is read. */
  #blockedReason(client: string): { reason: string; code: ErrorCode } | undefined {
    if (this.#policy.auth === undefined) return undefined;
    const blockedMs = this.#authBackoff.blockedFor(client);
    if (blockedMs === 0) return undefined;
    return {
      reason: `too many failed authentications from ${client}: refused for ${Math.ceil(blockedMs / 1000)} s more`,
      code: 'SOCKTUNE_ERR_AUTH',
    };
  }

  /**
   * Each authenticated test costs one RSA decryption, spent only on a token that passed every cheap
   * check: at most maxAuthPerSecond a second in all, and maxAuthPerSecondPerClient for one client,
   * so a flood from one address cannot spend the second's decryptions of everyone else.
   */
  #spendDecryption(client: string): void {
    const now = performance.now();
    if (now - this.#authWindow.start >= 1000) this.#authWindow = { start: now, granted: 0, byClient: new Map() };
    const mine = this.#authWindow.byClient.get(client) ?? 0;
    const { maxAuthPerSecond, maxAuthPerSecondPerClient } = this.options;
    if (mine >= maxAuthPerSecondPerClient)
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `server busy: ${mine} authentications from ${client} this second (max ${maxAuthPerSecondPerClient} per client)`,
      );
    if (this.#authWindow.granted >= maxAuthPerSecond)
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `server busy: ${maxAuthPerSecond} authentications this second (max, every client together)`,
      );
    this.#authWindow.granted++;
    this.#authWindow.byClient.set(client, mine + 1);
  }

  async #runTest(session: Iperf3TestSession, key: string, peer: string, client: string, release: () => void): Promise<void> {
    let admitted = false;
    let figures: Iperf3TestFigures;
    try {
      await this.#parametersOf(session, client);
      // Accepted and authenticated: from here on it is a test, or it is turned away.
      release();
      if (this.#policy.auth !== undefined) this.#authBackoff.succeeded(client);
      const streams = session.expectedStreams;
      const busy = this.#busyReason(client, streams);
      if (busy !== undefined) {
        session.refuse();
        this.#refused(peer, client, busy.reason);
        return;
      }
      this.#tests.set(session, client);
      addCount(this.#testsByClient, client, 1);
      this.#streams += streams;
      addCount(this.#streamsByClient, client, streams);
      admitted = true;
      this.#awaitingStreams.set(key, session);
      await session.createStreams();
      this.#forgetCookie(key, session);
      const cpuBefore = process.cpuUsage();
      const started = process.hrtime.bigint();
      await session.run();
      const cpu = process.cpuUsage(cpuBefore);
      const wallMicros = Number(process.hrtime.bigint() - started) / 1000;
      const outcome = await session.exchangeResults({ ...cpu, wallMicros }, () =>
        describeIperf3Test(figuresOf(session.outcome(), wallMicros)),
      );
      figures = figuresOf(outcome, wallMicros);
      session.finish();
    } catch (error) {
      if (isSocktuneError(error) && error.code === 'SOCKTUNE_ERR_REFUSED' && !(error instanceof Iperf3ServerError)) {
        // Out of decryptions this second: busy, as iperf3's own server says, before any RSA work.
        session.refuse();
        this.#refused(peer, client, error.message);
        return;
      }
      // A wrong token is answered late, later with each failure from the same client, until it is refused outright.
      const delayMs = isSocktuneError(error) && error.code === 'SOCKTUNE_ERR_AUTH' ? this.#authBackoff.failed(client) : 0;
      if (delayMs > 0) await sleep(Math.min(delayMs, Math.max(0, session.deadline - performance.now())));
      session.fail(error);
      const refused = isSocktuneError(error) && REFUSAL_CODES.has(error.code);
      this.#log({ peer, client, outcome: refused ? 'refused' : 'failed', ...describe(error) });
      return;
    } finally {
      this.#forgetCookie(key, session);
      if (admitted) {
        this.#tests.delete(session);
        this.#streams -= session.expectedStreams;
        addCount(this.#streamsByClient, client, -session.expectedStreams);
        addCount(this.#testsByClient, client, -1);
      }
    }
    this.#log({ peer, client, outcome: 'done', figures });
  }

  /**
   * The test's parameters. With auth, a client that leaves or stalls before sending them counts as a
   * failed authentication too: a stock client sends them at once, and it has held a pending place.
   */
  async #parametersOf(session: Iperf3TestSession, client: string): Promise<void> {
    try {
      await session.exchangeParameters();
    } catch (error) {
      const code = isSocktuneError(error) ? error.code : undefined;
      if (this.#policy.auth !== undefined && (code === 'SOCKTUNE_ERR_PEER_GONE' || code === 'SOCKTUNE_ERR_TIMEOUT'))
        this.#authBackoff.failed(client);
      throw error;
    }
  }

  /** Only this session's entry: a client may reuse a cookie for another test of its own. */
  #forgetCookie(key: string, session: Iperf3TestSession): void {
    if (this.#awaitingStreams.get(key) === session) this.#awaitingStreams.delete(key);
  }

  #refused(peer: string, client: string, reason: string, code: ErrorCode = 'SOCKTUNE_ERR_REFUSED'): void {
    this.#log({ peer, client, outcome: 'refused', code, error: `${code}: ${reason}` });
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
    for (const session of this.#tests.keys()) session.destroy();
    for (const socket of this.#pending) socket.destroy();
    await this.#udpPort?.close();
    await this.#server.close();
  }
}

function peerOf(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

function describe(error: unknown): Pick<Iperf3TestLog, 'code' | 'error'> {
  return isSocktuneError(error) ? { code: error.code, error: `${error.code}: ${error.message}` } : { error: String(error) };
}

function figuresOf(outcome: TestOutcome, wallMicros: number): Iperf3TestFigures {
  const seconds = wallMicros / 1e6;
  // The bytes were counted after --omit: so is their time.
  const counted = outcome.countedSeconds > 0 ? outcome.countedSeconds : seconds;
  const bytes = (sender: boolean): number =>
    outcome.streams.filter((stream) => stream.sender === sender).reduce((sum, stream) => sum + stream.bytes, 0);
  return {
    reverse: outcome.params?.reverse === true,
    bidirectional: outcome.params?.bidirectional === true,
    seconds,
    countedSeconds: counted,
    bytesIn: bytes(false),
    bytesOut: bytes(true),
    streams: outcome.streams.map(({ id, sender, bytes, udp }) => ({
      id,
      sender,
      bytes,
      bitsPerSecond: counted > 0 ? Math.round((bytes * 8) / counted) : 0,
      ...(udp === undefined ? {} : { udp }),
    })),
    ...(outcome.udpReceiveBufferDrops === undefined ? {} : { udpReceiveBufferDrops: outcome.udpReceiveBufferDrops }),
  };
}

/** A UDP stream's figures after its rate: what it sent, or what it lost. */
function describeUdp(udp: UdpStreamFigures | undefined, sender: boolean): string {
  if (udp === undefined) return '';
  if (sender) return `, ${udp.packets} datagrams`;
  const percent = udp.packets > 0 ? ((udp.lost / udp.packets) * 100).toFixed(2) : '0.00';
  return `, lost ${udp.lost}/${udp.packets} (${percent}%), ${udp.outOfOrder} out of order, jitter ${udp.jitterMs.toFixed(3)} ms`;
}

/** The text iperf3's --get-server-output shows (and the server's log): one line per stream. */
export function describeIperf3Test(figures: Iperf3TestFigures): string {
  const lines = figures.streams.map(
    (stream) =>
      `[${String(stream.id).padStart(3)}] ${stream.sender ? 'sender  ' : 'receiver'} ${stream.bytes} bytes in ` +
      `${figures.countedSeconds.toFixed(2)} s, ${formatBits(stream.bitsPerSecond)}${describeUdp(stream.udp, stream.sender)}`,
  );
  const kind = `${figures.reverse ? 'reverse ' : ''}${figures.bidirectional ? 'bidirectional ' : ''}`;
  const receiving = figures.streams.some((stream) => !stream.sender);
  const drops =
    figures.udpReceiveBufferDrops === undefined || figures.udpReceiveBufferDrops === null || !receiving
      ? []
      : [`the UDP port's receive buffer dropped ${figures.udpReceiveBufferDrops} datagrams during the test`];
  return `socktune iperf3 server: ${kind}test, ${figures.streams.length} stream(s)\n${[...lines, ...drops].join('\n')}\n`;
}
