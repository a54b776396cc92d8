import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { SocktuneError, type ErrorCode } from '../../../core/errors.ts';
import { cpuNumbers, currentAffinity, formatCpuList } from '../../../core/affinity.ts';
import { AuthBackoff, type AuthBackoffOptions } from '../../../core/auth-backoff.ts';
import { addCount } from '../../../core/counts.ts';
import { openFilesLimit, raiseOpenFilesLimit } from '../../../core/limits.ts';
import { MAX_TIMER_MS } from '../../../core/timeout.ts';
import { anyOf, boolean, definedOnly, integer, nonEmptyString, validateFields } from '../../../core/validate.ts';
import { Secret } from '../../../core/secret.ts';
import { clientKey, DEFAULT_IPV6_PREFIX, plainAddress } from '../../../core/client-key.ts';
import { ConnectionPool } from '../../../transport/server/admission.ts';
import { BufferBudget, MAX_BUFFER_BUDGET } from '../../../transport/io/buffer-budget.ts';
import { SendBudget } from '../../../transport/io/send-budget.ts';
import { createServer, type ServerAddress, type SocktuneServer } from '../../../transport/server/socktune-server.ts';
import { authChallenge, authProofValid } from '../../control/auth.ts';
import { ControlChannel } from '../../control/control-channel.ts';
import {
  isUdpService,
  MAX_TEST_DURATION_MS,
  parseClientMessage,
  type ResultMessage,
  type StartMessage,
} from '../../control/control-protocol.ts';
import { RING_SERVICES, ringRefusal, servesOnWorkers, type BuiltinService } from '../../../transport/server/options.ts';
import { DataPorts, type PortRange } from './data-ports.ts';
import { Rendezvous } from './rendezvous.ts';
import type { BarrierMessage } from '../../control/barrier-protocol.ts';
import { UdpSink, type UdpRole } from './udp-sink.ts';
import { collectEnvironment } from '../../results/environment.ts';
import { processMemory } from '../../results/memory.ts';
import { round } from '../../results/stats.ts';

export interface ControlServerOptions {
  /** Address the control port binds. @default '127.0.0.1' */
  host?: string;
  /** Control port. @default 5210 */
  port?: number;
  /** Unix-domain control socket instead of TCP; test servers get paths beside it. @default undefined */
  path?: string;
  /** Tests at once; a client over the cap gets SOCKTUNE_ERR_REFUSED. @default 16 */
  maxTests?: number;
  /** Close after the first test ends. @default false */
  oneOff?: boolean;
  /** Milliseconds a new control connection has to send its start message (and auth proof). @default 10000 */
  handshakeTimeoutMs?: number;
  /**
   * Control connections still in their handshake, every client together; a newcomer over it ends the
   * oldest handshake (a flood of silent connections from many addresses cannot keep others out). @default 64
   */
  maxHandshakes?: number;
  /** Tests at once from one client address; the next is refused. @default 8 */
  maxTestsPerPeer?: number;
  /** IPv6 clients are counted per prefix of this many bits by every per-client limit (one host may hold a whole /64). @default 64 */
  ipv6Prefix?: number;
  /**
   * Longest a test may last, in ms, the client's grace periods included (a 10 s stream asks for 20 s); longer asks are refused, and
   * no test outlives it. @default 600000
   */
  maxTestDurationMs?: number;
  /** A test with no traffic (no byte either way, no connection opened or closed) for this long is ended. @default 60000 */
  testIdleTimeoutMs?: number;
  /** Shared secret: clients must answer an HMAC-SHA256 challenge with it before any test. @default undefined (no auth) */
  authToken?: string | Secret;
  /** Clients waiting at start barriers at once (`--barrier` clients of every group together). @default 1024 */
  maxBarrierClients?: number;
  /** Data connections one test may have open (stream -P, rr -C, conns --target). @default 10000 */
  maxConnectionsPerTest?: number;
  /** Data connections every test together may have open. @default 20000 */
  maxConnections?: number;
  /** Server threads every test together may hold (workers, thread-per-conn); a test that would need more is refused. @default 64 */
  maxThreads?: number;
  /** Threads one test may have: the most `workers` a client may ask for, and the pool size of a thread-per-conn test. @default 16 */
  maxThreadsPerTest?: number;
  /**
   * Threads one client (clientKey) may hold, every test of it together: one address cannot take every thread. @default a quarter of
   * maxThreads, at least maxThreadsPerTest
   */
  maxThreadsPerClient?: number;
  /** Largest SO_SNDBUF / SO_RCVBUF a client may ask for, in bytes. @default 67108864 (64 MiB) */
  maxSocketBuffer?: number;
  /** Largest write (the source service's chunk) a client may ask for, in bytes. @default 1048576 (1 MiB) */
  maxChunkSize?: number;
  /** Bytes that partly received messages may hold, every test together. @default 268435456 (256 MiB) */
  maxBufferedBytes?: number;
  /**
   * Bytes per second the server may send, every test, connection and thread together: not a free traffic cannon. @default undefined
   * (no cap)
   */
  maxSendRate?: number;
  /**
   * CPUs a client may pin its test's threads to (start.server.affinity); a request outside them is
   * refused. @default the CPUs this process may run on when it listens (what `-A` pinned it to)
   */
  allowedCpus?: number[];
  /** How failed authentication is slowed, then refused, per client (with authToken). @default AUTH_BACKOFF_DEFAULTS */
  authBackoff?: AuthBackoffOptions;
  /**
   * The ports tests' data listeners (TCP and UDP) bind, the next free one each, so a firewall or a
   * NetworkPolicy can open just these; a test finding none free is refused. @default undefined (any free port)
   */
  dataPorts?: PortRange;
}

type OptionalSettings = 'path' | 'authToken' | 'maxSendRate' | 'allowedCpus' | 'authBackoff' | 'maxThreadsPerClient' | 'dataPorts';
export type ResolvedControlServerOptions = Required<Omit<ControlServerOptions, OptionalSettings>> &
  Pick<ControlServerOptions, 'path' | 'maxSendRate' | 'allowedCpus' | 'authBackoff' | 'maxThreadsPerClient' | 'dataPorts'> & {
    authToken?: Secret;
  };

export const CONTROL_SERVER_DEFAULTS: Readonly<Required<Omit<ControlServerOptions, OptionalSettings>>> = Object.freeze({
  host: '127.0.0.1',
  port: 5210,
  maxTests: 16,
  oneOff: false,
  handshakeTimeoutMs: 10_000,
  maxHandshakes: 64,
  maxBarrierClients: 1024,
  maxTestsPerPeer: 8,
  ipv6Prefix: DEFAULT_IPV6_PREFIX,
  maxTestDurationMs: 600_000,
  testIdleTimeoutMs: 60_000,
  maxConnectionsPerTest: 10_000,
  maxConnections: 20_000,
  maxThreads: 64,
  maxThreadsPerTest: 16,
  maxSocketBuffer: 64 * 1024 * 1024,
  maxChunkSize: 1024 * 1024,
  maxBufferedBytes: 256 * 1024 * 1024,
});

const BENCH_SERVER_FIELDS = Object.freeze({
  host: nonEmptyString,
  port: integer(0, 65535),
  path: nonEmptyString,
  maxTests: integer(1, 10_000),
  oneOff: boolean,
  handshakeTimeoutMs: integer(1, MAX_TIMER_MS),
  maxHandshakes: integer(1, 100_000),
  maxBarrierClients: integer(1, 100_000),
  maxTestsPerPeer: integer(1, 100_000),
  ipv6Prefix: integer(1, 128),
  maxTestDurationMs: integer(1, MAX_TEST_DURATION_MS),
  testIdleTimeoutMs: integer(1, MAX_TIMER_MS),
  authToken: anyOf(nonEmptyString, (value) => (value instanceof Secret && value.reveal().length > 0 ? undefined : 'a Secret')),
  maxConnectionsPerTest: integer(1, 10_000_000),
  maxConnections: integer(1, 10_000_000),
  maxThreads: integer(1, 65_536),
  maxThreadsPerTest: integer(1, 65_536),
  maxThreadsPerClient: integer(1, 65_536),
  maxSocketBuffer: integer(1, 2 ** 31 - 1),
  maxChunkSize: integer(1, 64 * 1024 * 1024),
  maxBufferedBytes: integer(1, MAX_BUFFER_BUDGET),
  maxSendRate: integer(1, 1e12),
  allowedCpus: cpuNumbers,
  authBackoff: (value: unknown) => (typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : 'an object'),
  dataPorts: (value: unknown) => {
    const { from, to } = (value ?? {}) as Partial<PortRange>;
    return Number.isInteger(from) && Number.isInteger(to) && from! >= 1 && from! <= to! && to! <= 65_535
      ? undefined
      : '{ from, to }: ports from 1 to 65535, from <= to';
  },
});

/** Grace beyond a test's own maximum duration before the server ends it (never past the server's own maximum). */
const FINISH_GRACE_MS = 10_000;
/** How often a running test's counters are looked at for the idle timeout. */
const IDLE_CHECK_MS = 1000;
/** Descriptors kept besides data connections, tests, threads and handshakes: the process's own, stdio, the control listener. */
const FD_RESERVE = 128;
/** Control connections beyond tests and handshakes, so a newcomer is always seen (and can end the oldest handshake). */
const CONTROL_SPARE = 16;

/** A client may ask for a full garbage collection before a memory reading (conns) at most this often, every client together. */
const SETTLE_INTERVAL_MS = 1000;

/** Bytes of the token each data connection of an authenticated test sends first. */
const DATA_TOKEN_BYTES = 16;

export interface TestLog {
  peer: string;
  /** A start barrier's client (service 'barrier'): its group, its name, the clients the group waited for. */
  barrier?: { group: string; name: string; clients: number };
  /** The key the client's limits count under (clientKey): its address, or its IPv6 prefix. */
  client: string;
  service: string;
  ioModel: string;
  outcome: 'done' | 'failed';
  code?: ErrorCode;
  error?: string;
  bytesIn?: number;
  bytesOut?: number;
}

function barrierLog(peer: string, client: string, barrier: BarrierMessage): Omit<TestLog, 'outcome'> {
  return {
    peer,
    client,
    service: 'barrier',
    ioModel: '-',
    barrier: { group: barrier.group, name: barrier.name, clients: barrier.clients },
  };
}

/**
 * `socktune server`: one control port; each client's test gets a server of its own on a fresh
 * port with the I/O model and socket options it asked for, so several clients can test at once.
 *
 * Events: 'test' (TestLog) when a test ends, 'done' when a one-off server has served its test.
 */
export class ControlServer extends EventEmitter {
  readonly options: ResolvedControlServerOptions;
  readonly #control: SocktuneServer;
  readonly #tests = new Set<SocktuneServer | UdpSink>();
  /** Open control connections by client address, handshaking or testing. */
  readonly #perPeer = new Map<string, number>();
  /**
   * What every test server shares, so the caps hold for the whole server, not per test (made at listen, once the open-files limit is
   * known).
   */
  #pool: ConnectionPool | undefined;
  /** Control connections in their handshake, oldest first. */
  readonly #handshaking = new Set<Socket>();
  #connectionCap = 0;
  readonly #bufferBudget: BufferBudget;
  readonly #sendBudget: SendBudget | undefined;
  /** Threads held by each client's tests (their sum is threadsInUse). */
  readonly #threadsByClient = new Map<string, number>();
  #nextTestId = 0;
  #closing = false;
  readonly #authBackoff: AuthBackoff;
  readonly #dataPorts: DataPorts;
  readonly #rendezvous: Rendezvous;
  #allowedCpus: readonly number[] = [];
  #lastSettle = -Infinity;

  constructor(options: ControlServerOptions = {}) {
    super();
    validateFields(options, BENCH_SERVER_FIELDS, 'options');
    const { authToken, ...settings } = definedOnly(options);
    this.options = {
      ...CONTROL_SERVER_DEFAULTS,
      ...settings,
      ...(authToken === undefined ? {} : { authToken: authToken instanceof Secret ? authToken : new Secret(authToken) }),
    };
    const { host, port, path, dataPorts } = this.options;
    if (dataPorts !== undefined && port >= dataPorts.from && port <= dataPorts.to)
      throw new SocktuneError(
        'SOCKTUNE_ERR_INVALID_OPTION',
        `options.dataPorts ${dataPorts.from}-${dataPorts.to} holds the control port ${port}: the tests' ports must be others`,
      );
    this.#bufferBudget = new BufferBudget(this.options.maxBufferedBytes);
    this.#sendBudget = this.options.maxSendRate === undefined ? undefined : new SendBudget(this.options.maxSendRate);
    this.#authBackoff = new AuthBackoff(this.options.authBackoff);
    this.#dataPorts = new DataPorts(this.options.dataPorts);
    this.#rendezvous = new Rendezvous({
      maxWaiting: this.options.maxBarrierClients,
      maxWaitMs: this.options.maxTestDurationMs,
      stepTimeoutMs: this.options.handshakeTimeoutMs,
    });
    // A control connection is quiet while its test runs; the handshake timeout and the test's own end bound it instead.
    // Room for every test's connection and every handshake, so that newcomers reach #serve, which ends the oldest handshake.
    const controlConnections = this.options.maxTests + this.options.maxHandshakes + this.options.maxBarrierClients + CONTROL_SPARE;
    this.#control = createServer(
      {
        host,
        port,
        ...(path === undefined ? {} : { path }),
        closeTimeout: 1000,
        idleTimeout: 0,
        maxConnections: controlConnections,
        maxConnectionsPerIp: controlConnections,
      },
      (socket) => void this.#serve(socket),
    );
  }

  /**
   * Listens on the control port. The soft open-files limit goes up to the hard one, as servers
   * holding many connections need, and the data connections of all tests together are capped
   * below it, so descriptors are left for the control port, new tests and their threads.
   */
  listen(): Promise<ServerAddress> {
    const openFiles = raiseOpenFilesLimit(openFilesLimit().hard).soft;
    const reserve =
      FD_RESERVE + 4 * this.options.maxTests + 2 * this.options.maxThreads + this.options.maxHandshakes + this.options.maxBarrierClients;
    // Under a small limit the reserve cannot be whole: half the descriptors still go to data connections.
    this.#connectionCap = Math.max(1, Math.min(this.options.maxConnections, Math.max(Math.floor(openFiles / 2), openFiles - reserve)));
    this.#pool = new ConnectionPool(this.#connectionCap, this.options.maxConnectionsPerTest);
    this.#allowedCpus = this.options.allowedCpus ?? currentAffinity();
    return this.#control.listen();
  }

  /** Data connections all tests together may hold: --max-connections, or less when the open-files limit leaves less room. */
  get connectionCap(): number {
    return this.#connectionCap;
  }

  address(): ServerAddress | null {
    return this.#control.address();
  }

  get testsRunning(): number {
    return this.#tests.size;
  }

  /** Threads the running tests hold. */
  get threadsInUse(): number {
    let held = 0;
    for (const threads of this.#threadsByClient.values()) held += threads;
    return held;
  }

  /** Counts a new handshake; over the cap the oldest one is ended, so the newest (a live client, likely) gets its chance. */
  #startHandshake(socket: Socket): void {
    if (this.#handshaking.size >= this.options.maxHandshakes) {
      const oldest = this.#handshaking.values().next().value!;
      this.#handshaking.delete(oldest);
      oldest.destroy();
    }
    this.#handshaking.add(socket);
    socket.once('close', () => this.#handshaking.delete(socket));
  }

  async #serve(socket: Socket): Promise<void> {
    this.#startHandshake(socket);
    const channel = new ControlChannel(socket);
    const peer = `${socket.remoteAddress ?? 'local'}:${socket.remotePort ?? ''}`;
    const address = clientKey(socket.remoteAddress, this.options.ipv6Prefix) || 'local';
    addCount(this.#perPeer, address, 1);
    const fromPeer = this.#perPeer.get(address)!;
    let testServer: SocktuneServer | UdpSink | undefined;
    let start: StartMessage | undefined;
    let barrier: BarrierMessage | undefined;
    let threads = 0;
    /** Authenticated and started: what a --one-off server waits for. */
    let ran = false;
    let releasePort = (): void => {};
    /** Closes a test server: one that could not listen on its data port, or the test's at its end. */
    const endTestServer = async (ending: SocktuneServer | UdpSink): Promise<void> => {
      if (testServer === ending) testServer = undefined;
      await ending.close();
      this.#tests.delete(ending);
    };
    /** Closes the test's server and gives its threads and data port back; once. */
    const endTest = async (): Promise<void> => {
      const ending = testServer;
      const held = threads;
      threads = 0;
      if (ending) await endTestServer(ending);
      releasePort();
      releasePort = () => {};
      addCount(this.#threadsByClient, address, -held);
    };
    try {
      if (this.options.authToken !== undefined) this.#refuseIfBlocked(address);
      if (fromPeer > this.options.maxTestsPerPeer) {
        throw new SocktuneError(
          'SOCKTUNE_ERR_REFUSED',
          `too many connections from ${address}: ${fromPeer - 1} open (max ${this.options.maxTestsPerPeer} per client address)`,
        );
      }
      const raw = await channel.next(this.options.handshakeTimeoutMs, 'start message');
      const first = parseClientMessage(raw);
      if (first.type !== 'start' && first.type !== 'barrier')
        throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'expected a start or barrier message first');
      if (first.type === 'barrier') barrier = first;
      if (this.options.authToken !== undefined) await this.#authenticate(channel, this.options.authToken, JSON.stringify(raw), address);
      this.#handshaking.delete(socket);
      if (this.#closing) throw new SocktuneError('SOCKTUNE_ERR_REFUSED', 'server is shutting down');
      if (first.type === 'barrier') {
        await this.#rendezvous.serve(channel, first);
        channel.close();
        this.emit('test', { ...barrierLog(peer, address, first), outcome: 'done' } satisfies TestLog);
        return;
      }
      start = first;
      this.#checkLimits(start);
      if (this.#tests.size >= this.options.maxTests) {
        throw new SocktuneError('SOCKTUNE_ERR_REFUSED', `server busy: ${this.#tests.size} tests running (max ${this.options.maxTests})`);
      }
      const needed = this.#threadsFor(start);
      if (this.threadsInUse + needed > this.options.maxThreads) {
        throw new SocktuneError(
          'SOCKTUNE_ERR_REFUSED',
          `server busy: the test needs ${needed} threads and ${this.threadsInUse} of ${this.options.maxThreads} are in use by other tests`,
        );
      }
      const perClient = this.#maxThreadsPerClient();
      const mine = this.#threadsByClient.get(address) ?? 0;
      if (needed > 0 && mine + needed > perClient) {
        throw new SocktuneError(
          'SOCKTUNE_ERR_REFUSED',
          `server busy: the test needs ${needed} threads and ${address} holds ${mine} of the ` +
            `${perClient} one client may hold (--max-threads-per-client)`,
        );
      }
      threads = needed;
      addCount(this.#threadsByClient, address, threads);
      const dataToken = this.options.authToken === undefined ? undefined : randomBytes(DATA_TOKEN_BYTES);
      const begun = start;
      const udp = isUdpService(begun.service);
      const {
        server: running,
        address: listening,
        release,
      } = await this.#dataPorts.listen<SocktuneServer | UdpSink>(
        udp ? 'udp' : 'tcp',
        this.#dataHost(socket),
        (port) => {
          // Held before it listens, so that a server closing meanwhile closes it too.
          testServer = isUdpService(begun.service)
            ? this.#udpSink(begun, socket, port)
            : this.#testServer({ ...begun, service: begun.service }, socket, dataToken, port);
          this.#tests.add(testServer);
          return testServer;
        },
        endTestServer,
      );
      releasePort = release;
      const cpuBefore = process.cpuUsage();
      const startedAt = process.hrtime.bigint();
      channel.send({
        type: 'ready',
        dataPort: listening.family === 'unix' ? 0 : listening.port,
        ...(listening.family === 'unix' ? { dataPath: listening.path } : {}),
        ...(running instanceof UdpSink
          ? { dataToken: running.token.toString('hex') }
          : dataToken === undefined
            ? {}
            : { dataToken: dataToken.toString('hex') }),
        effective: running.effectiveSocketOptions(),
        warnings: running.warnings,
        environment: collectEnvironment(),
        memory: this.#memory(start.settleMemory),
      });
      ran = true;
      const deadline = Math.min(start.maxDurationMs + FINISH_GRACE_MS, this.options.maxTestDurationMs);
      const finish = parseClientMessage(await this.#untilFinishOrIdle(channel, running, deadline));
      if (finish.type !== 'finish') throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'expected a finish message');
      const cpu = process.cpuUsage(cpuBefore);
      const wallMicros = Number(process.hrtime.bigint() - startedAt) / 1000;
      // A UDP test's threads stop and count what is queued first: its metrics then include it.
      const datagrams = running instanceof UdpSink ? await running.report() : undefined;
      const metrics = running.metrics();
      const result: ResultMessage = {
        type: 'result',
        metrics,
        ...(datagrams === undefined ? {} : { datagrams }),
        cpuPercent: round(((cpu.user + cpu.system) / wallMicros) * 100, 1),
        memory: this.#memory(start.settleMemory),
      };
      // Its threads are given back before the client hears the result: its next test must find them free.
      await endTest();
      channel.send(result);
      channel.close();
      this.emit('test', {
        peer,
        client: address,
        service: start.service,
        ioModel: start.server.ioModel ?? 'loop',
        outcome: 'done',
        bytesIn: metrics.bytesIn,
        bytesOut: metrics.bytesOut,
      } satisfies TestLog);
    } catch (error) {
      const failure = error instanceof SocktuneError ? error : new SocktuneError('SOCKTUNE_ERR_PROTOCOL', String(error));
      channel.send({ type: 'error', code: failure.code, message: failure.message });
      channel.close();
      // A connection that closed before saying a word (a readiness probe, a port scan) is no test: nothing to log.
      if (failure.code === 'SOCKTUNE_ERR_PEER_GONE' && channel.firstBytes.length === 0) return;
      const failed = { outcome: 'failed', code: failure.code, error: `${failure.code}: ${failure.message}` } as const;
      if (barrier !== undefined) return void this.emit('test', { ...barrierLog(peer, address, barrier), ...failed } satisfies TestLog);
      this.emit('test', {
        peer,
        client: address,
        service: start?.service ?? '?',
        ioModel: start?.server?.ioModel ?? (start === undefined ? '?' : 'loop'),
        outcome: 'failed',
        code: failure.code,
        error: `${failure.code}: ${failure.message}`,
      } satisfies TestLog);
    } finally {
      addCount(this.#perPeer, address, -1);
      await endTest();
      if (this.options.oneOff && ran) this.emit('done');
    }
  }

  /** A client past its failed authentications is refused before it may send anything. */
  #refuseIfBlocked(address: string): void {
    const blockedMs = this.#authBackoff.blockedFor(address);
    if (blockedMs > 0) {
      throw new SocktuneError(
        'SOCKTUNE_ERR_AUTH',
        `too many failed authentications from ${address}: refused for ${Math.ceil(blockedMs / 1000)} s more`,
      );
    }
  }

  /**
   * HMAC challenge-response: the client proves it knows the token, for this start message, without
   * sending it. A wrong proof is answered late, later with each failure, until the client is refused.
   */
  async #authenticate(channel: ControlChannel, token: Secret, startText: string, address: string): Promise<void> {
    const nonce = authChallenge();
    channel.send({ type: 'challenge', nonce });
    const answer = parseClientMessage(await channel.next(this.options.handshakeTimeoutMs, 'auth message'));
    if (answer.type === 'auth' && authProofValid(token, nonce, startText, answer.proof)) {
      this.#authBackoff.succeeded(address);
      return;
    }
    const delayMs = this.#authBackoff.failed(address);
    if (delayMs > 0 && !this.#closing) await sleep(delayMs);
    throw new SocktuneError('SOCKTUNE_ERR_AUTH', 'authentication failed: wrong or missing auth token');
  }

  /** The process's memory; a full garbage collection first only if asked and none ran in the last SETTLE_INTERVAL_MS. */
  #memory(settle: boolean | undefined): ReturnType<typeof processMemory> {
    const now = performance.now();
    const collect = settle === true && now - this.#lastSettle >= SETTLE_INTERVAL_MS;
    if (collect) this.#lastSettle = now;
    return processMemory(collect);
  }

  /** Every size a client asks for is a request this server may refuse, never a value it adopts. */
  #checkLimits(start: StartMessage): void {
    const { sendBufferSize, receiveBufferSize, sourceChunkSize, workers, ioModel } = start.server;
    const { maxSocketBuffer, maxChunkSize, maxThreadsPerTest, maxTestDurationMs } = this.options;
    if (start.maxDurationMs > maxTestDurationMs) {
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `the test would last up to ${Math.ceil(start.maxDurationMs / 1000)} s (its time plus the ` +
          `client's grace); this server allows at most ${maxTestDurationMs / 1000} s`,
      );
    }
    for (const [name, size] of [
      ['sendBufferSize', sendBufferSize],
      ['receiveBufferSize', receiveBufferSize],
    ] as const) {
      if (size !== undefined && size > maxSocketBuffer)
        throw new SocktuneError(
          'SOCKTUNE_ERR_REFUSED',
          `start.server.${name} ${size} is over this server's ${maxSocketBuffer}-byte limit (--max-socket-buffer)`,
        );
    }
    if (sourceChunkSize !== undefined && sourceChunkSize > maxChunkSize) {
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `start.server.sourceChunkSize ${sourceChunkSize} is over this server's ${maxChunkSize}-byte limit (--max-chunk)`,
      );
    }
    const outside = start.server.affinity?.filter((cpu) => !this.#allowedCpus.includes(cpu)) ?? [];
    if (outside.length > 0) {
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `start.server.affinity asks for CPU ${outside.join(', ')}: this server runs its tests on ` +
          `CPUs ${formatCpuList(this.#allowedCpus)} only (its -A)`,
      );
    }
    if (start.server.affinity !== undefined && (ioModel ?? 'loop') === 'loop') {
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        "start.server.affinity pins the test's own threads: the loop model serves on this server's " +
          'main thread (start the server with -A instead)',
      );
    }
    if (ioModel === 'io-uring') this.#checkRing(start);
    if (
      (servesOnWorkers(ioModel ?? 'loop') || (ioModel === 'thread-per-conn' && isUdpService(start.service))) &&
      workers !== undefined &&
      workers > maxThreadsPerTest
    ) {
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `start.server.workers ${workers} is over this server's ${maxThreadsPerTest} threads per test (--max-threads-per-test)`,
      );
    }
  }

  /** A ring serves bytes in and bytes out over TCP, unpaced: not msg's framed services, UDP, or a server that caps its send rate. */
  #checkRing(start: StartMessage): void {
    const refusal = ringRefusal(start.service, this.#sendBudget !== undefined);
    if (refusal === 'handler') {
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `--io-model io-uring serves stream, rr, crr and conns tests over TCP (${RING_SERVICES.join(', ')}), not ${start.service}: ` +
          'use loop, workers or thread-per-conn for it',
      );
    }
    if (refusal === 'maxSendRate') {
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `this server caps what it sends (--max-rate), and --io-model io-uring does not pace what it sends (${start.service}): ` +
          'use loop, workers or thread-per-conn, or a test where the server only receives (stream without -R)',
      );
    }
  }

  /** --max-threads-per-client, by default a quarter of --max-threads, and never less than one test's worth. */
  #maxThreadsPerClient(): number {
    const { maxThreads, maxThreadsPerTest, maxThreadsPerClient } = this.options;
    return maxThreadsPerClient ?? Math.min(maxThreads, Math.max(maxThreadsPerTest, Math.floor(maxThreads / 4)));
  }

  /** Threads a test holds: its workers, or the whole pool a thread-per-conn test may grow to (a UDP test: its workers). */
  #threadsFor(start: StartMessage): number {
    const workers = start.server.workers ?? Math.min(availableParallelism(), this.options.maxThreadsPerTest);
    if (servesOnWorkers(start.server.ioModel ?? 'loop')) return workers;
    // A UDP port has no connections to give a thread each: both thread models serve it with --workers threads.
    if (start.server.ioModel === 'thread-per-conn') return isUdpService(start.service) ? workers : this.options.maxThreadsPerTest;
    return 0;
  }

  /**
   * The client's finish message, or SOCKTUNE_ERR_TIMEOUT when the test ran past its deadline or
   * went `testIdleTimeoutMs` without a byte or a connection either way: a quiet client cannot
   * hold a test slot until the maximum duration.
   */
  #untilFinishOrIdle(channel: ControlChannel, testServer: SocktuneServer | UdpSink, deadlineMs: number): Promise<unknown> {
    const idleMs = this.options.testIdleTimeoutMs;
    let last = '';
    let quietSince = performance.now();
    let watch: NodeJS.Timeout | undefined;
    const idle = new Promise<never>((_, reject) => {
      watch = setInterval(
        () => {
          const { bytesIn, bytesOut, connectionsTotal, connectionsCurrent } = testServer.metrics();
          const now = `${bytesIn}/${bytesOut}/${connectionsTotal}/${connectionsCurrent}`;
          if (now !== last) {
            last = now;
            quietSince = performance.now();
          } else if (performance.now() - quietSince >= idleMs) {
            reject(
              new SocktuneError(
                'SOCKTUNE_ERR_TIMEOUT',
                `test idle for ${Math.round(idleMs / 1000)} s (no traffic, no connection): ended by the server (--test-idle-timeout)`,
              ),
            );
          }
        },
        Math.min(IDLE_CHECK_MS, idleMs),
      );
    });
    return Promise.race([channel.next(deadlineMs, 'finish message'), idle]).finally(() => clearInterval(watch));
  }

  /** A UDP test: datagrams to the address the client reached the control port on, counted only from the client's own address. */
  #udpSink(start: StartMessage, control: Socket, port: number): UdpSink {
    if (this.options.path !== undefined)
      throw new SocktuneError('SOCKTUNE_ERR_REFUSED', 'UDP tests need an IP control port: this server listens on a Unix-domain socket');
    const threads = this.#threadsFor(start);
    if (threads > 0 && start.service === 'udp-source')
      throw new SocktuneError(
        'SOCKTUNE_ERR_REFUSED',
        `stream -u -R runs in the loop model (the server sends with UDP GSO from its event loop), not ${start.server.ioModel}`,
      );
    const client = control.remoteAddress === undefined ? undefined : plainAddress(control.remoteAddress);
    const { sendBufferSize, receiveBufferSize } = start.server;
    const role: UdpRole =
      start.service === 'udp-source'
        ? { kind: 'source', settings: start.udp!, shared: this.#sendBudget }
        : start.service === 'udp-echo'
          ? { kind: 'echo', shared: this.#sendBudget }
          : { kind: 'sink' };
    return new UdpSink(this.#dataHost(control), port, client, definedOnly({ sendBufferSize, receiveBufferSize }), role, {
      count: threads,
      affinity: start.server.affinity,
    });
  }

  #testServer(
    start: StartMessage & { service: BuiltinService },
    control: Socket,
    dataToken: Buffer | undefined,
    port: number,
  ): SocktuneServer {
    const { maxConnectionsPerTest, maxThreadsPerTest } = this.options;
    const common = {
      ...start.server,
      handler: start.service,
      closeTimeout: 1000,
      maxConnections: maxConnectionsPerTest,
      maxConnectionsPerIp: maxConnectionsPerTest,
      ipv6Prefix: this.options.ipv6Prefix,
      connectionPool: this.#pool!,
      maxBufferedBytes: this.#bufferBudget,
      ...(this.#sendBudget === undefined ? {} : { maxSendRate: this.#sendBudget }),
      ...(start.server.ioModel === 'thread-per-conn' ? { maxThreads: maxThreadsPerTest } : {}),
      ...(dataToken === undefined ? {} : { connectionToken: dataToken }),
      idleTimeout: start.maxDurationMs,
    };
    if (this.options.path !== undefined) return createServer({ ...common, path: this.#freeTestPath(this.options.path) });
    // Only the client's own address may make data connections.
    const client = control.remoteAddress === undefined ? undefined : plainAddress(control.remoteAddress);
    return createServer({
      ...common,
      host: this.#dataHost(control),
      port,
      ...(client === undefined ? {} : { allowedPeers: [client, ...(start.dataFrom ?? [])] }),
    });
  }

  /** Data connections and datagrams go to the address the client reached the control port on. */
  #dataHost(control: Socket): string {
    return plainAddress(control.localAddress ?? this.options.host);
  }

  /** The next `PATH.testN` with nothing there: a file left behind (or put there) does not fail a test. */
  #freeTestPath(path: string): string {
    for (let tries = 0; tries < 1000; tries++) {
      const candidate = `${path}.test${this.#nextTestId++}`;
      if (!existsSync(candidate)) return candidate;
    }
    throw new SocktuneError('SOCKTUNE_ERR_LISTEN', `${path}.test*: a thousand paths in a row are taken`);
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([this.#control.close(), ...[...this.#tests].map((test) => test.close())]);
  }
}
