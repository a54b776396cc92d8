import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { isSocktuneError, SocktuneError } from '../../core/errors.ts';
import { ByteReader } from '../../framing/byte-reader.ts';
import { createServer, type ServerAddress, type SocktuneServer } from '../../transport/server.ts';
import { COOKIE_BYTES, cookieKey, MAX_JSON_BYTES, STATE, stateByte } from './codec.ts';
import { Iperf3TestSession, type TestOutcome } from './test-session.ts';
import { withTimeout } from '../../core/timeout.ts';

export const IPERF3_DEFAULT_PORT = 5201;

export interface Iperf3ServerOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 5201 */
  port?: number;
  /** Tests at once; a client over the cap gets ACCESS_DENIED ("the server is busy"). @default 4 */
  maxTests?: number;
  /** Milliseconds a new connection has to send its cookie and parameters. @default 10000 */
  handshakeTimeoutMs?: number;
}

export interface Iperf3TestLog {
  peer: string;
  outcome: 'done' | 'failed' | 'refused';
  error?: string;
  summary?: string;
}

/**
 * Answers stock iperf3 clients (TCP). Unlike iperf3's own server it runs several tests at once:
 * data connections find their test by the cookie they send first.
 *
 * Events: 'test' (Iperf3TestLog) when a test ends.
 */
export class Iperf3Server extends EventEmitter {
  readonly options: Required<Iperf3ServerOptions>;
  readonly #server: SocktuneServer;
  readonly #awaitingStreams = new Map<string, Iperf3TestSession>();
  readonly #sessions = new Set<Iperf3TestSession>();

  constructor(options: Iperf3ServerOptions = {}) {
    super();
    this.options = { host: '127.0.0.1', port: IPERF3_DEFAULT_PORT, maxTests: 4, handshakeTimeoutMs: 10_000, ...options };
    // iperf3's control connection is quiet for a whole test; the test's own timeouts bound it.
    this.#server = createServer({ host: this.options.host, port: this.options.port, closeTimeout: 1000, idleTimeout: 0 }, (socket) => void this.#accept(socket));
  }

  listen(): Promise<ServerAddress> {
    return this.#server.listen();
  }

  get activeTests(): number {
    return this.#sessions.size;
  }

  async #accept(socket: Socket): Promise<void> {
    const reader = new ByteReader(MAX_JSON_BYTES + 1024);
    const feed = (chunk: Buffer): void => reader.push(chunk);
    socket.on('data', feed);
    socket.once('end', () => reader.end());
    socket.once('close', () => reader.end());
    socket.on('error', (error) => reader.end(new SocktuneError('SOCKTUNE_ERR_PEER_GONE', `connection failed: ${error.message}`)));
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    let cookie: Buffer;
    try {
      cookie = await withTimeout(reader.read(COOKIE_BYTES), this.options.handshakeTimeoutMs, 'iperf3 cookie');
    } catch (error) {
      socket.destroy();
      this.#log({ peer, outcome: 'failed', error: describe(error) });
      return;
    }
    const session = this.#awaitingStreams.get(cookieKey(cookie));
    if (session?.wantsStreams) {
      // Stop this socket's reads now: nothing may arrive between the cookie and the stream's own reader.
      socket.pause();
      socket.off('data', feed);
      session.addStream(socket, reader.drain());
      return;
    }
    if (this.#sessions.size >= this.options.maxTests) {
      socket.end(stateByte(STATE.ACCESS_DENIED));
      this.#log({ peer, outcome: 'refused', error: `server busy: ${this.#sessions.size} tests running (max ${this.options.maxTests})` });
      return;
    }
    await this.#runTest(socket, reader, cookie, peer);
  }

  async #runTest(socket: Socket, reader: ByteReader, cookie: Buffer, peer: string): Promise<void> {
    const session = new Iperf3TestSession(socket, reader);
    this.#sessions.add(session);
    const key = cookieKey(cookie);
    let summary = '';
    try {
      await session.exchangeParameters(this.options.handshakeTimeoutMs);
      this.#awaitingStreams.set(key, session);
      await session.createStreams();
      this.#awaitingStreams.delete(key);
      const cpuBefore = process.cpuUsage();
      const started = process.hrtime.bigint();
      await session.run();
      const cpu = process.cpuUsage(cpuBefore);
      const wallMicros = Number(process.hrtime.bigint() - started) / 1000;
      const outcome = await session.exchangeResults({ ...cpu, wallMicros }, () => describeOutcome(session.outcome(), wallMicros));
      summary = describeOutcome(outcome, wallMicros);
      socket.end();
      this.#log({ peer, outcome: 'done', summary });
    } catch (error) {
      session.destroy();
      this.#log({ peer, outcome: 'failed', error: describe(error) });
    } finally {
      this.#awaitingStreams.delete(key);
      this.#sessions.delete(session);
    }
  }

  #log(entry: Iperf3TestLog): void {
    this.emit('test', entry);
  }

  async close(): Promise<void> {
    for (const session of this.#sessions) session.destroy();
    await this.#server.close();
  }
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
