import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { SocktuneError } from '../core/errors.ts';
import { openFilesLimit, raiseOpenFilesLimit } from '../core/limits.ts';
import { plainAddress } from '../transport/admission.ts';
import { createServer, type ServerAddress, type SocktuneServer } from '../transport/server.ts';
import { authChallenge, authProofValid } from './auth.ts';
import { ControlChannel } from './control-channel.ts';
import { parseClientMessage, serverMemory, type ResultMessage, type StartMessage } from './control-protocol.ts';
import { collectEnvironment } from './environment.ts';
import { round } from './self-check.ts';

export interface BenchServerOptions {
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
  /** Tests at once from one client address; the next is refused. @default 8 */
  maxTestsPerPeer?: number;
  /** Longest a test may last, in ms, the client's grace periods included (a 10 s stream asks for 20 s); longer asks are refused. @default 600000 */
  maxTestDurationMs?: number;
  /** Shared secret: clients must answer an HMAC-SHA256 challenge with it before any test. @default undefined (no auth) */
  authToken?: string;
  /** Data connections one test may open (stream -P, rr -C, conns --target). @default 100000 */
  maxConnectionsPerTest?: number;
  /** Bytes per second a test's server may send (reverse and bidir tests): not a free traffic cannon. @default undefined (no cap) */
  maxSendRate?: number;
}

export const BENCH_SERVER_DEFAULTS: Readonly<Required<Omit<BenchServerOptions, 'path' | 'authToken' | 'maxSendRate'>>> = Object.freeze({
  host: '127.0.0.1',
  port: 5210,
  maxTests: 16,
  oneOff: false,
  handshakeTimeoutMs: 10_000,
  maxTestsPerPeer: 8,
  maxTestDurationMs: 600_000,
  maxConnectionsPerTest: 100_000,
});

/** Grace beyond a test's own maximum duration before the server ends it. */
const FINISH_GRACE_MS = 10_000;

export interface TestLog {
  peer: string;
  service: string;
  ioModel: string;
  outcome: 'done' | 'failed';
  error?: string;
  bytesIn?: number;
  bytesOut?: number;
}

/**
 * `socktune server`: one control port; each client's test gets a server of its own on a fresh
 * port with the I/O model and socket options it asked for, so several clients can test at once.
 *
 * Events: 'test' (TestLog) when a test ends, 'done' when a one-off server has served its test.
 */
export class BenchServer extends EventEmitter {
  readonly options: Required<Omit<BenchServerOptions, 'path' | 'authToken' | 'maxSendRate'>> & Pick<BenchServerOptions, 'path' | 'authToken' | 'maxSendRate'>;
  readonly #control: SocktuneServer;
  readonly #tests = new Set<SocktuneServer>();
  /** Open control connections by client address, handshaking or testing. */
  readonly #perPeer = new Map<string, number>();
  #nextTestId = 0;
  #closing = false;

  constructor(options: BenchServerOptions = {}) {
    super();
    this.options = { ...BENCH_SERVER_DEFAULTS, ...options };
    const { host, port, path } = this.options;
    // A control connection is quiet while its test runs; the handshake timeout and the test's own end bound it instead.
    this.#control = createServer({ host, port, ...(path === undefined ? {} : { path }), closeTimeout: 1000, idleTimeout: 0 }, (socket) => void this.#serve(socket));
  }

  /** Listens on the control port; the soft open-files limit goes up to the hard one, as servers holding many connections need. */
  listen(): Promise<ServerAddress> {
    raiseOpenFilesLimit(openFilesLimit().hard);
    return this.#control.listen();
  }

  address(): ServerAddress | null {
    return this.#control.address();
  }

  get testsRunning(): number {
    return this.#tests.size;
  }

  async #serve(socket: Socket): Promise<void> {
    const channel = new ControlChannel(socket);
    const peer = `${socket.remoteAddress ?? 'local'}:${socket.remotePort ?? ''}`;
    const address = socket.remoteAddress ?? 'local';
    const fromPeer = (this.#perPeer.get(address) ?? 0) + 1;
    this.#perPeer.set(address, fromPeer);
    let testServer: SocktuneServer | undefined;
    let start: StartMessage | undefined;
    try {
      if (fromPeer > this.options.maxTestsPerPeer) {
        throw new SocktuneError('SOCKTUNE_ERR_REFUSED', `too many connections from ${address}: ${fromPeer - 1} open (max ${this.options.maxTestsPerPeer} per client address)`);
      }
      const first = parseClientMessage(await channel.next(this.options.handshakeTimeoutMs, 'start message'));
      if (first.type !== 'start') throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'expected a start message first');
      start = first;
      if (this.options.authToken !== undefined) await this.#authenticate(channel, this.options.authToken);
      if (this.#closing) throw new SocktuneError('SOCKTUNE_ERR_REFUSED', 'server is shutting down');
      if (start.maxDurationMs > this.options.maxTestDurationMs) {
        throw new SocktuneError('SOCKTUNE_ERR_REFUSED', `the test would last up to ${Math.ceil(start.maxDurationMs / 1000)} s (its time plus the client's grace); this server allows at most ${this.options.maxTestDurationMs / 1000} s`);
      }
      if (this.#tests.size >= this.options.maxTests) {
        throw new SocktuneError('SOCKTUNE_ERR_REFUSED', `server busy: ${this.#tests.size} tests running (max ${this.options.maxTests})`);
      }
      testServer = this.#testServer(start, socket);
      this.#tests.add(testServer);
      const listening = await testServer.listen();
      const cpuBefore = process.cpuUsage();
      const startedAt = process.hrtime.bigint();
      channel.send({
        type: 'ready',
        dataPort: listening.family === 'unix' ? 0 : listening.port,
        ...(listening.family === 'unix' ? { dataPath: listening.path } : {}),
        effective: testServer.effectiveSocketOptions(),
        warnings: testServer.warnings.map((warning) => warning.message),
        environment: collectEnvironment(),
        memory: serverMemory(start.settleMemory),
      });
      const finish = parseClientMessage(await channel.next(start.maxDurationMs + FINISH_GRACE_MS, 'finish message'));
      if (finish.type !== 'finish') throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'expected a finish message');
      const cpu = process.cpuUsage(cpuBefore);
      const wallMicros = Number(process.hrtime.bigint() - startedAt) / 1000;
      const metrics = testServer.metrics();
      const result: ResultMessage = { type: 'result', metrics, cpuPercent: round(((cpu.user + cpu.system) / wallMicros) * 100, 1), memory: serverMemory(start.settleMemory) };
      channel.send(result);
      channel.close();
      this.emit('test', { peer, service: start.service, ioModel: start.server.ioModel ?? 'loop', outcome: 'done', bytesIn: metrics.bytesIn, bytesOut: metrics.bytesOut } satisfies TestLog);
    } catch (error) {
      const failure = error instanceof SocktuneError ? error : new SocktuneError('SOCKTUNE_ERR_PROTOCOL', String(error));
      channel.send({ type: 'error', code: failure.code, message: failure.message });
      channel.close();
      this.emit('test', {
        peer,
        service: start?.service ?? '?',
        ioModel: start?.server.ioModel ?? '?',
        outcome: 'failed',
        error: `${failure.code}: ${failure.message}`,
      } satisfies TestLog);
    } finally {
      const left = (this.#perPeer.get(address) ?? 1) - 1;
      if (left > 0) this.#perPeer.set(address, left);
      else this.#perPeer.delete(address);
      if (testServer) {
        await testServer.close();
        this.#tests.delete(testServer);
      }
      if (this.options.oneOff && start) this.emit('done');
    }
  }

  /** HMAC challenge-response: the client proves it knows the token without sending it. */
  async #authenticate(channel: ControlChannel, token: string): Promise<void> {
    const nonce = authChallenge();
    channel.send({ type: 'challenge', nonce });
    const answer = parseClientMessage(await channel.next(this.options.handshakeTimeoutMs, 'auth message'));
    if (answer.type !== 'auth' || !authProofValid(token, nonce, answer.proof)) {
      throw new SocktuneError('SOCKTUNE_ERR_AUTH', 'authentication failed: wrong or missing auth token');
    }
  }

  #testServer(start: StartMessage, control: Socket): SocktuneServer {
    const { maxSendRate } = this.options;
    if (maxSendRate !== undefined && start.service === 'source' && start.server.ioModel === 'thread-per-conn') {
      throw new SocktuneError('SOCKTUNE_ERR_REFUSED', 'this server caps its sending rate, which thread-per-conn cannot pace: ask for --io-model loop or workers');
    }
    const paced = maxSendRate !== undefined && start.service === 'source' ? { maxSendRate } : {};
    const common = { ...start.server, ...paced, handler: start.service, closeTimeout: 1000, maxConnections: this.options.maxConnectionsPerTest, maxConnectionsPerIp: this.options.maxConnectionsPerTest, idleTimeout: start.maxDurationMs };
    if (this.options.path !== undefined) return createServer({ ...common, path: `${this.options.path}.test${this.#nextTestId++}` });
    // Data connections go to the address the client reached the control port on, and only the client's own address may make them.
    const host = plainAddress(control.localAddress ?? this.options.host);
    const client = control.remoteAddress === undefined ? undefined : plainAddress(control.remoteAddress);
    return createServer({ ...common, host, port: 0, ...(client === undefined ? {} : { allowedPeers: [client, ...(start.dataFrom ?? [])] }) });
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([this.#control.close(), ...[...this.#tests].map((test) => test.close())]);
  }
}

