import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import { ByteReader } from '../../src/framing/byte-reader.ts';
import { withTimeout } from '../../src/core/timeout.ts';
import { SendBudget } from '../../src/transport/send-budget.ts';
import { Iperf3Server, IPERF3_SERVER_DEFAULTS, type Iperf3ServerOptions, type Iperf3TestLog } from '../../src/protocols/iperf3/server.ts';
import { EINVAL, encodeJson, generateCookie, IPERF3_ERRNO, STATE } from '../../src/protocols/iperf3/codec.ts';
import { run, waitFor } from '../helpers.ts';

const haveIperf3 = ['/usr/bin/iperf3', '/usr/local/bin/iperf3'].some((path) => existsSync(path));
const skip = haveIperf3 ? false : 'iperf3 is not installed (.ci/run installs it)';

/** Anything that escapes to the top of the process fails the test that was running. */
const escaped: unknown[] = [];
process.on('uncaughtException', (error) => escaped.push(error));
process.on('unhandledRejection', (error) => escaped.push(error));
const assertNothingEscaped = (): void => assert.deepEqual(escaped.map(String), []);

/** What the stock client's parameters look like (iperf3 3.12, -t 1). */
const GOOD_PARAMS = Object.freeze({ tcp: true, omit: 0, time: 1, num: 0, blockcount: 0, parallel: 1, len: 131072, pacing_timer: 1000, client_version: '3.12' });

interface Started {
  server: Iperf3Server;
  port: number;
  logs: Iperf3TestLog[];
  /** Resolves with the next log entry after `seen` entries. */
  nextLog: (seen: number, timeoutMs?: number) => Promise<Iperf3TestLog>;
}

async function startServer(options: Iperf3ServerOptions = {}): Promise<Started> {
  const server = new Iperf3Server({ port: 0, ...options });
  const logs: Iperf3TestLog[] = [];
  server.on('test', (entry: Iperf3TestLog) => logs.push(entry));
  const address = await server.listen();
  assert.ok(address.family !== 'unix');
  const nextLog = (seen: number, timeoutMs = 15_000): Promise<Iperf3TestLog> =>
    withTimeout(
      new Promise<Iperf3TestLog>((resolve) => {
        if (logs.length > seen) return resolve(logs[seen]!);
        const onTest = (): void => {
          if (logs.length <= seen) return;
          server.off('test', onTest);
          resolve(logs[seen]!);
        };
        server.on('test', onTest);
      }),
      timeoutMs,
      'iperf3 server log line',
    );
  return { server, port: address.port, logs, nextLog };
}

interface StockResult {
  code: number;
  json: { error?: string; end?: { sum_received?: { bytes: number; seconds: number }; sum_sent?: { bytes: number }; sum_received_bidir_reverse?: { bytes: number; seconds: number } } };
}

async function stockClient(port: number, args: string[], timeoutMs = 60_000): Promise<StockResult> {
  const result = await run('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-J', ...args], { timeout: timeoutMs }).then(
    (output) => ({ code: 0, stdout: output.stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  return { code: result.code, json: JSON.parse(result.stdout) as StockResult['json'] };
}

type Reply = { kind: 'server-error'; iperfErrno: number; errno: number } | { kind: 'access-denied' } | { kind: 'create-streams' } | { kind: 'state'; state: number };

/** A client written by hand: cookie, PARAM_EXCHANGE, parameters, reply; every read under a deadline. */
class RawClient {
  readonly socket: net.Socket;
  readonly cookie = generateCookie();
  readonly #reader = new ByteReader();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#reader.push(chunk));
    socket.on('end', () => this.#reader.end());
    socket.on('close', () => this.#reader.end());
    socket.on('error', () => this.#reader.end());
  }

  static connect(port: number, localAddress?: string): Promise<RawClient> {
    return withTimeout(
      new Promise<RawClient>((resolve, reject) => {
        const socket = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () => resolve(new RawClient(socket)));
        socket.once('error', reject);
      }),
      5000,
      'connection to the iperf3 server',
    );
  }

  async readState(timeoutMs = 5000): Promise<number> {
    return (await withTimeout(this.#reader.read(1), timeoutMs, 'a state byte')).readInt8(0);
  }

  /** The next state byte, with the numbers that follow SERVER_ERROR. */
  async readReply(timeoutMs = 5000): Promise<Reply> {
    return this.#reply(await this.readState(timeoutMs));
  }

  async #reply(state: number): Promise<Reply> {
    if (state === STATE.SERVER_ERROR) {
      const numbers = await withTimeout(this.#reader.read(8), 5000, 'SERVER_ERROR numbers');
      return { kind: 'server-error', iperfErrno: numbers.readInt32BE(0), errno: numbers.readInt32BE(4) };
    }
    if (state === STATE.ACCESS_DENIED) return { kind: 'access-denied' };
    if (state === STATE.CREATE_STREAMS) return { kind: 'create-streams' };
    return { kind: 'state', state };
  }

  /** Cookie, then the parameters as given (any JSON value per key), then the server's answer. */
  async handshake(params: Record<string, unknown>): Promise<Reply> {
    this.socket.write(this.cookie);
    const first = await this.readState();
    if (first !== STATE.PARAM_EXCHANGE) return this.#reply(first);
    this.socket.write(encodeJson(params));
    return this.#reply(await this.readState());
  }

  /** A data connection of this test: the same cookie. */
  openStream(port: number): Promise<net.Socket> {
    return withTimeout(
      new Promise<net.Socket>((resolve, reject) => {
        const stream = net.connect({ port, host: '127.0.0.1' }, () => {
          stream.write(this.cookie);
          resolve(stream);
        });
        stream.on('error', reject);
      }),
      5000,
      'a data connection',
    );
  }

  close(): void {
    this.socket.destroy();
  }
}

async function handshakeOnce(port: number, params: Record<string, unknown>): Promise<Reply> {
  const client = await RawClient.connect(port);
  try {
    return await client.handshake(params);
  } finally {
    client.close();
  }
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

const serverError = (iperfErrno: number, errno = 0): Reply => ({ kind: 'server-error', iperfErrno, errno });

describe('finding 1: a window that does not fit an int is refused, not thrown', { skip }, () => {
  let started: Started;
  before(async () => (started = await startServer()));
  after(() => started.server.close());

  test('window 2^32, 1e308 and -1: SERVER_ERROR with iperf3\'s buffer-size error; a stock client is served afterwards', { timeout: 60_000 }, async () => {
    for (const window of [2 ** 32, 1e308, -1]) {
      const seen = started.logs.length;
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, window }), serverError(IPERF3_ERRNO.BUF_SIZE), `window ${window}`);
      const entry = await started.nextLog(seen);
      assert.equal(entry.outcome, 'failed');
      assert.match(entry.error ?? '', /^SOCKTUNE_ERR_PROTOCOL: iperf3 window must be 0 to 536870912 bytes/);
    }
    const { code, json } = await stockClient(started.port, ['-t', '1']);
    assert.equal(code, 0, json.error);
    assertNothingEscaped();
  });

  test('a window in range still reaches its data connection (the set-up path the crash was on)', { timeout: 30_000 }, async () => {
    const client = await RawClient.connect(started.port);
    try {
      assert.deepEqual(await client.handshake({ ...GOOD_PARAMS, window: 65536 }), { kind: 'create-streams' });
      const stream = await client.openStream(started.port);
      assert.equal(await client.readState(), STATE.TEST_START);
      stream.destroy();
    } finally {
      client.close();
    }
    assertNothingEscaped();
  });
});

describe('finding 2: fuzzing every numeric parameter against one live server', { skip }, () => {
  test('each reply is SERVER_ERROR, ACCESS_DENIED or CREATE_STREAMS; nothing escapes; a stock client succeeds at the end', { timeout: 110_000 }, async (t) => {
    const started = await startServer();
    const keys = ['time', 'omit', 'num', 'blockcount', 'parallel', 'len', 'window', 'MSS'];
    const values: unknown[] = [0, -1, 2 ** 31, 2 ** 32, 2 ** 53, 1e308, 'NaN', 'x', {}, [], null, true];
    const tally = { 'server-error': 0, 'access-denied': 0, 'create-streams': 0 };
    try {
      for (const key of keys) {
        for (const value of values) {
          const seen = started.logs.length;
          const client = await RawClient.connect(started.port);
          try {
            const reply = await client.handshake({ ...GOOD_PARAMS, [key]: value });
            const what = `${key}: ${JSON.stringify(value)} → ${JSON.stringify(reply)}`;
            assert.ok(reply.kind !== 'state', what);
            tally[reply.kind]++;
            if (typeof value !== 'number') assert.deepEqual(reply, serverError(IPERF3_ERRNO.RECV_PARAMS, EINVAL), what);
            if (reply.kind === 'create-streams') {
              // Accepted: the value goes on through the stream set-up and the start of the test.
              const stream = await client.openStream(started.port);
              assert.equal(await client.readState(), STATE.TEST_START, what);
              stream.destroy();
            }
          } finally {
            client.close();
          }
          await started.nextLog(seen);
        }
      }
      t.diagnostic(`${keys.length * values.length} parameter sets: ${JSON.stringify(tally)}`);
      assert.equal(started.server.activeTests, 0);
      const { code, json } = await stockClient(started.port, ['-t', '1']);
      assert.equal(code, 0, json.error);
    } finally {
      await started.server.close();
    }
    assertNothingEscaped();
  });
});

describe('finding 3: server-side caps', { skip }, () => {
  test('options: a frozen defaults object; a cap that no timer could hold is refused up front', () => {
    assert.ok(Object.isFrozen(IPERF3_SERVER_DEFAULTS));
    assert.equal(IPERF3_SERVER_DEFAULTS.maxDurationMs, 600_000);
    assert.throws(() => new Iperf3Server({ maxDurationMs: 2 ** 31 }), { code: 'SOCKTUNE_ERR_INVALID_OPTION', message: /options\.maxDurationMs must be an integer from 1000 to 2147483647/ });
    assert.throws(() => new Iperf3Server({ maxWindow: 2 ** 32 }), { code: 'SOCKTUNE_ERR_INVALID_OPTION' });
    assert.throws(() => new Iperf3Server({ sendBudget: 1e6 as unknown as SendBudget }), { code: 'SOCKTUNE_ERR_INVALID_OPTION', message: /options\.sendBudget must be a SendBudget/ });
    assert.throws(() => new Iperf3Server({ maxTestPerClient: 2 } as Iperf3ServerOptions), { code: 'SOCKTUNE_ERR_INVALID_OPTION', message: /options\.maxTestPerClient is not a known option/ });
  });

  test('maxDurationMs: time 2000000 is refused, never a timer; a stock -t 700 client is told the duration is too long', { timeout: 60_000 }, async () => {
    const started = await startServer();
    try {
      const seen = started.logs.length;
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, time: 2_000_000 }), serverError(IPERF3_ERRNO.DURATION));
      const entry = await started.nextLog(seen);
      assert.equal(entry.outcome, 'refused');
      assert.match(entry.error ?? '', /^SOCKTUNE_ERR_REFUSED: iperf3 test of 2000000 s .* is over the server's maximum of 600 s/);
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, time: 595 }), { kind: 'create-streams' });
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, time: 596 }), serverError(IPERF3_ERRNO.DURATION));
      const { json } = await stockClient(started.port, ['-t', '700']);
      assert.match(json.error ?? '', /test duration too long/);
    } finally {
      await started.server.close();
    }
    assertNothingEscaped();
  });

  test('maxDurationMs: a -n test with no time ends at the maximum, and the stock client hears SERVER_TERMINATE', { timeout: 60_000 }, async () => {
    const started = await startServer({ maxDurationMs: 2000 });
    try {
      const seen = started.logs.length;
      const began = performance.now();
      // -b keeps the client from finishing 10 GB first.
      // With -J, iperf3 3.12 exits 0 even then: the error is in its JSON.
      const { json } = await stockClient(started.port, ['-n', '10G', '-b', '8M']);
      const elapsed = performance.now() - began;
      assert.match(json.error ?? '', /the server has terminated/);
      assert.ok(elapsed < 10_000, `the test took ${elapsed} ms`);
      const entry = await started.nextLog(seen);
      assert.match(entry.error ?? '', /SOCKTUNE_ERR_TIMEOUT: no TEST_END from the iperf3 client within 2000 ms/);
    } finally {
      await started.server.close();
    }
    assertNothingEscaped();
  });

  test('maxStreams counts parallel × 2 with --bidir; the stock client is told there are too many streams', { timeout: 60_000 }, async () => {
    const started = await startServer({ maxStreams: 4 });
    try {
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, parallel: 3, bidirectional: true }), serverError(IPERF3_ERRNO.NUM_STREAMS));
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, parallel: 2, bidirectional: true }), { kind: 'create-streams' });
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, parallel: 5 }), serverError(IPERF3_ERRNO.NUM_STREAMS));
      const { json } = await stockClient(started.port, ['-t', '1', '-P', '3', '--bidir']);
      assert.match(json.error ?? '', /number of parallel streams too large/);
    } finally {
      await started.server.close();
    }
    assertNothingEscaped();
  });

  test('maxBlockLength and maxWindow: a larger -l or -w is refused with iperf3\'s block-size and buffer-size errors', { timeout: 60_000 }, async () => {
    const started = await startServer({ maxBlockLength: 64 * 1024 });
    try {
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, len: 64 * 1024 + 1 }), serverError(IPERF3_ERRNO.BLOCK_SIZE));
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, len: 64 * 1024 }), { kind: 'create-streams' });
      assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, window: 16 * 1024 * 1024 + 1 }), serverError(IPERF3_ERRNO.BUF_SIZE));
      const long = await stockClient(started.port, ['-t', '1', '-l', '128K']);
      assert.match(long.json.error ?? '', /block size too large/);
      const wide = await stockClient(started.port, ['-t', '1', '-w', '32M']);
      assert.match(wide.json.error ?? '', /socket buffer size too large/);
    } finally {
      await started.server.close();
    }
    assertNothingEscaped();
  });

  test('maxTestsPerClient: a second test from one address is told the server is busy; another address is served', { timeout: 60_000 }, async () => {
    const started = await startServer({ maxTestsPerClient: 1 });
    const holder = await RawClient.connect(started.port);
    try {
      assert.deepEqual(await holder.handshake(GOOD_PARAMS), { kind: 'create-streams' });
      assert.equal(started.server.activeTests, 1);
      const same = await stockClient(started.port, ['-t', '1']);
      assert.match(same.json.error ?? '', /the server is busy/);
      assert.match(started.logs.at(-1)?.error ?? '', /^SOCKTUNE_ERR_REFUSED: server busy: 1 tests running from 127\.0\.0\.1 \(max 1 per client\)/);
      const other = await stockClient(started.port, ['-t', '1', '-B', '127.0.0.2']);
      assert.equal(other.code, 0, other.json.error);
    } finally {
      holder.close();
      await started.server.close();
    }
    assertNothingEscaped();
  });
});

/** 200 clients in another process that send a cookie, read one byte and never close; it reports what they saw. */
const HOLDER_SCRIPT = `
import net from 'node:net';
const [port, count] = process.argv.slice(1).map(Number);
const cookie = Buffer.concat([Buffer.from('b'.repeat(36)), Buffer.from([0])]);
const seen = { denied: 0, closedByServer: 0, other: 0 };
let settled = 0;
const settle = () => { if (++settled === count) console.log(JSON.stringify(seen)); };
for (let i = 0; i < count; i++) {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => socket.write(cookie));
  let first = true, done = false;
  const finish = () => { if (!done) { done = true; settle(); } };
  socket.on('data', (chunk) => { if (first) { first = false; chunk[0] === 0xff ? seen.denied++ : seen.other++; } });
  socket.on('end', () => { seen.closedByServer++; finish(); });
  socket.on('error', () => { seen.other++; finish(); });
}
setTimeout(() => { console.log(JSON.stringify({ ...seen, timedOut: true })); }, 20000).unref();
process.stdin.resume();
`;

describe('finding 4: refusals close their sockets', { skip }, () => {
  test('200 busy refusals to clients that never close their side leave no descriptor behind', { timeout: 60_000 }, async () => {
    const started = await startServer({ maxTests: 1 });
    const holder = await RawClient.connect(started.port);
    try {
      assert.deepEqual(await holder.handshake(GOOD_PARAMS), { kind: 'create-streams' });
      const fdsBefore = openFds();
      const seen = started.logs.length;
      const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER_SCRIPT, String(started.port), '200'], { stdio: ['pipe', 'pipe', 'inherit'] });
      try {
        const report = await withTimeout(
          new Promise<string>((resolve) => {
            let out = '';
            child.stdout.on('data', (chunk: Buffer) => {
              out += chunk.toString();
              if (out.includes('\n')) resolve(out.trim());
            });
          }),
          30_000,
          'the holder process\'s report',
        );
        assert.deepEqual(JSON.parse(report), { denied: 200, closedByServer: 200, other: 0 });
        assert.equal(started.logs.slice(seen).filter((entry) => entry.outcome === 'refused').length, 200);
        // The child still holds its 200 sockets open; ours are gone (the child's pipes cost a few).
        assert.ok(await waitFor(() => openFds() <= fdsBefore + 8, 2000), `fds ${openFds()} vs ${fdsBefore} before`);
      } finally {
        // Its pipes close when it is gone; the next test counts descriptors.
        const gone = new Promise((resolve) => child.once('close', resolve));
        child.kill();
        await withTimeout(gone, 10_000, 'the holder process to exit');
      }
    } finally {
      holder.close();
      await started.server.close();
    }
    assertNothingEscaped();
  });
});

/** Opens /dev/null until the process is out of descriptors, then frees `spare` of them. */
function exhaustDescriptors(spare: number): number[] {
  const held: number[] = [];
  try {
    for (;;) held.push(openSync('/dev/null', 'r'));
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'EMFILE');
  }
  for (const fd of held.splice(-spare)) closeSync(fd);
  return held;
}

describe('finding 1 (stream set-up): a failure there ends only that test', { skip }, () => {
  test('out of descriptors for dup(): that client gets SERVER_ERROR "unable to create a new stream", another test goes on', { timeout: 60_000 }, async () => {
    const started = await startServer();
    const failing = await RawClient.connect(started.port);
    const other = await RawClient.connect(started.port);
    let held: number[] = [];
    try {
      assert.deepEqual(await other.handshake(GOOD_PARAMS), { kind: 'create-streams' });
      assert.deepEqual(await failing.handshake(GOOD_PARAMS), { kind: 'create-streams' });
      const seen = started.logs.length;
      // Descriptors closed in the background (handles of earlier tests) must not free one meanwhile.
      await new Promise((resolve) => setImmediate(resolve));
      // Two descriptors left: one for our data connection, one for the server's accept; none for its dup.
      held = exhaustDescriptors(2);
      const stream = await failing.openStream(started.port);
      stream.on('error', () => {});
      const reply = await failing.readReply(10_000);
      held.forEach((fd) => closeSync(fd));
      held = [];
      assert.deepEqual(reply, serverError(IPERF3_ERRNO.CREATE_STREAM, osConstants.errno.EMFILE));
      const entry = await started.nextLog(seen);
      assert.equal(entry.outcome, 'failed');
      assert.match(entry.error ?? '', /^SOCKTUNE_ERR_SOCKOPT: iperf3 data connection set-up failed: dup\(\) failed: EMFILE/);
      stream.destroy();
      // The other test was never touched: its stream arrives, and it starts.
      const otherStream = await other.openStream(started.port);
      assert.equal(await other.readState(), STATE.TEST_START);
      otherStream.destroy();
      other.close();
      const { code, json } = await stockClient(started.port, ['-t', '1']);
      assert.equal(code, 0, json.error);
    } finally {
      held.forEach((fd) => closeSync(fd));
      failing.close();
      other.close();
      await started.server.close();
    }
    assertNothingEscaped();
  });
});

describe('finding 6: sendBudget paces what the server sends', { skip }, () => {
  test('with SendBudget(1 MB/s), -R and --bidir clients receive at most rate × seconds + 2 bursts', { timeout: 60_000 }, async (t) => {
    const budget = new SendBudget(1_000_000);
    const started = await startServer({ sendBudget: budget });
    try {
      const reverse = await stockClient(started.port, ['-R', '-t', '2']);
      assert.equal(reverse.code, 0, reverse.json.error);
      const received = reverse.json.end!.sum_received!;
      const bound = budget.bytesPerSecond * received.seconds + 2 * budget.burstBytes;
      t.diagnostic(`-R: ${received.bytes} bytes in ${received.seconds.toFixed(3)} s, bound ${Math.round(bound)}`);
      assert.ok(received.bytes > 0 && received.bytes <= bound, `${received.bytes} > ${bound}`);
      const bidir = await stockClient(started.port, ['--bidir', '-t', '2']);
      assert.equal(bidir.code, 0, bidir.json.error);
      const fromServer = bidir.json.end!.sum_received_bidir_reverse!;
      const bidirBound = budget.bytesPerSecond * fromServer.seconds + 2 * budget.burstBytes;
      t.diagnostic(`--bidir: ${fromServer.bytes} bytes from the server in ${fromServer.seconds.toFixed(3)} s, bound ${Math.round(bidirBound)}`);
      assert.ok(fromServer.bytes > 0 && fromServer.bytes <= bidirBound, `${fromServer.bytes} > ${bidirBound}`);
    } finally {
      await started.server.close();
    }
    assertNothingEscaped();
  });
});
