import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ByteReader } from '../../../../src/framing/byte-reader.ts';
import { withTimeout } from '../../../../src/core/timeout.ts';
import { SendBudget } from '../../../../src/transport/io/send-budget.ts';
import {
  Iperf3Server,
  IPERF3_SERVER_DEFAULTS,
  type Iperf3ServerOptions,
  type Iperf3TestLog,
} from '../../../../src/bench/servers/iperf3/iperf3-server.ts';
import { EINVAL, encodeJson, generateCookie, IPERF3_ERRNO, STATE } from '../../../../src/protocols/iperf3/codec.ts';
import { MIN_SEND_CHUNK_BYTES, sendChunkBytes } from '../../../../src/bench/servers/iperf3/iperf3-session.ts';
import { closed, run, waitFor } from '../../../../testkit/helpers.ts';

const haveIperf3 = ['/usr/bin/iperf3', '/usr/local/bin/iperf3'].some((path) => existsSync(path));
const skip = haveIperf3 ? false : 'iperf3 is not installed (.ci/run installs it)';

/** Anything that escapes to the top of the process fails the test that was running. */
const escaped: unknown[] = [];
process.on('uncaughtException', (error) => escaped.push(error));
process.on('unhandledRejection', (error) => escaped.push(error));
const assertNothingEscaped = (): void => assert.deepEqual(escaped.map(String), []);

/** What the stock client's parameters look like (iperf3 3.12, -t 1). */
const GOOD_PARAMS = Object.freeze({
  tcp: true,
  omit: 0,
  time: 1,
  num: 0,
  blockcount: 0,
  parallel: 1,
  len: 131072,
  pacing_timer: 1000,
  client_version: '3.12',
});

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
  json: {
    error?: string;
    end?: {
      sum_received?: { bytes: number; seconds: number };
      sum_sent?: { bytes: number };
      sum_received_bidir_reverse?: { bytes: number; seconds: number };
    };
  };
}

async function stockClient(port: number, args: string[], timeoutMs = 60_000): Promise<StockResult> {
  const result = await run('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-J', ...args], { timeout: timeoutMs }).then(
    (output) => ({ code: 0, stdout: output.stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  return { code: result.code, json: JSON.parse(result.stdout) as StockResult['json'] };
}

type Reply =
  | { kind: 'server-error'; iperfErrno: number; errno: number }
  | { kind: 'access-denied' }
  | { kind: 'create-streams' }
  | { kind: 'state'; state: number };

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
        const socket = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () =>
          resolve(new RawClient(socket)),
        );
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

  test(
    "window 2^32, 1e308 and -1: SERVER_ERROR with iperf3's buffer-size error; a stock client is served afterwards",
    { timeout: 60_000 },
    async () => {
      for (const window of [2 ** 32, 1e308, -1]) {
        const seen = started.logs.length;
        assert.deepEqual(
          await handshakeOnce(started.port, { ...GOOD_PARAMS, window }),
          serverError(IPERF3_ERRNO.BUF_SIZE),
          `window ${window}`,
        );
        const entry = await started.nextLog(seen);
        assert.equal(entry.outcome, 'failed');
        assert.match(entry.error ?? '', /^SOCKTUNE_ERR_PROTOCOL: iperf3 window must be 0 to 536870912 bytes/);
      }
      const { code, json } = await stockClient(started.port, ['-t', '1']);
      assert.equal(code, 0, json.error);
      assertNothingEscaped();
    },
  );

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
  test(
    'each reply is SERVER_ERROR, ACCESS_DENIED or CREATE_STREAMS; nothing escapes; a stock client succeeds at the end',
    { timeout: 110_000 },
    async (t) => {
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
    },
  );
});

describe('finding 3: server-side caps', { skip }, () => {
  test('options: a frozen defaults object; a cap that no timer could hold is refused up front', () => {
    assert.ok(Object.isFrozen(IPERF3_SERVER_DEFAULTS));
    assert.equal(IPERF3_SERVER_DEFAULTS.maxDurationMs, 600_000);
    assert.throws(() => new Iperf3Server({ maxDurationMs: 2 ** 31 }), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.maxDurationMs must be an integer from 1000 to 2147483647/,
    });
    assert.throws(() => new Iperf3Server({ maxWindow: 2 ** 32 }), { code: 'SOCKTUNE_ERR_INVALID_OPTION' });
    assert.throws(() => new Iperf3Server({ sendBudget: 1e6 as unknown as SendBudget }), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.sendBudget must be a SendBudget/,
    });
    assert.throws(() => new Iperf3Server({ maxTestPerClient: 2 } as Iperf3ServerOptions), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.maxTestPerClient is not a known option/,
    });
  });

  test(
    'maxDurationMs: time 2000000 is refused, never a timer; a stock -t 700 client is told the duration is too long',
    { timeout: 60_000 },
    async () => {
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
    },
  );

  test(
    'maxDurationMs: a -n test with no time ends at the maximum, and the stock client hears SERVER_TERMINATE',
    { timeout: 60_000 },
    async () => {
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
        // What was left of the test's 2 s from its accept, cut from the run's own (unlimited) time.
        const waited = /SOCKTUNE_ERR_TIMEOUT: no TEST_END from the iperf3 client within (\d+) ms/.exec(entry.error ?? '');
        assert.ok(waited && Number(waited[1]) <= 2000, entry.error);
      } finally {
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );

  test(
    'maxStreams counts parallel × 2 with --bidir; the stock client is told there are too many streams',
    { timeout: 60_000 },
    async () => {
      const started = await startServer({ maxStreams: 4 });
      try {
        assert.deepEqual(
          await handshakeOnce(started.port, { ...GOOD_PARAMS, parallel: 3, bidirectional: true }),
          serverError(IPERF3_ERRNO.NUM_STREAMS),
        );
        assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, parallel: 2, bidirectional: true }), {
          kind: 'create-streams',
        });
        assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, parallel: 5 }), serverError(IPERF3_ERRNO.NUM_STREAMS));
        const { json } = await stockClient(started.port, ['-t', '1', '-P', '3', '--bidir']);
        assert.match(json.error ?? '', /number of parallel streams too large/);
      } finally {
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );

  test(
    "maxBlockLength and maxWindow: a larger -l or -w is refused with iperf3's block-size and buffer-size errors",
    { timeout: 60_000 },
    async () => {
      const started = await startServer({ maxBlockLength: 64 * 1024 });
      try {
        assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, len: 64 * 1024 + 1 }), serverError(IPERF3_ERRNO.BLOCK_SIZE));
        assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, len: 64 * 1024 }), { kind: 'create-streams' });
        assert.deepEqual(
          await handshakeOnce(started.port, { ...GOOD_PARAMS, window: 16 * 1024 * 1024 + 1 }),
          serverError(IPERF3_ERRNO.BUF_SIZE),
        );
        const long = await stockClient(started.port, ['-t', '1', '-l', '128K']);
        assert.match(long.json.error ?? '', /block size too large/);
        const wide = await stockClient(started.port, ['-t', '1', '-w', '32M']);
        assert.match(wide.json.error ?? '', /socket buffer size too large/);
      } finally {
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );

  test(
    'maxTestsPerClient: a second test from one address is told the server is busy; another address is served',
    { timeout: 60_000 },
    async () => {
      const started = await startServer({ maxTestsPerClient: 1 });
      const holder = await RawClient.connect(started.port);
      try {
        assert.deepEqual(await holder.handshake(GOOD_PARAMS), { kind: 'create-streams' });
        assert.equal(started.server.activeTests, 1);
        const same = await stockClient(started.port, ['-t', '1']);
        assert.match(same.json.error ?? '', /the server is busy/);
        assert.match(
          started.logs.at(-1)?.error ?? '',
          /^SOCKTUNE_ERR_REFUSED: server busy: 1 tests running from 127\.0\.0\.1 \(max 1 per client\)/,
        );
        const other = await stockClient(started.port, ['-t', '1', '-B', '127.0.0.2']);
        assert.equal(other.code, 0, other.json.error);
      } finally {
        holder.close();
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );
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
      const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER_SCRIPT, String(started.port), '200'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
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
          "the holder process's report",
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
  test(
    'out of descriptors for dup(): that client gets SERVER_ERROR "unable to create a new stream", another test goes on',
    { timeout: 60_000 },
    async () => {
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
    },
  );
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
      t.diagnostic(
        `--bidir: ${fromServer.bytes} bytes from the server in ${fromServer.seconds.toFixed(3)} s, bound ${Math.round(bidirBound)}`,
      );
      assert.ok(fromServer.bytes > 0 && fromServer.bytes <= bidirBound, `${fromServer.bytes} > ${bidirBound}`);
    } finally {
      await started.server.close();
    }
    assertNothingEscaped();
  });
});

/** A connection that sends nothing unless told, and keeps what the server does with it. */
class Watcher {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  /** performance.now() when the server closed its side (FIN or reset), if it has. */
  endedAt: number | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    const ended = (): void => {
      this.endedAt ??= performance.now();
    };
    socket.on('end', ended);
    socket.on('close', ended);
    socket.on('error', ended);
  }

  static open(port: number, localAddress = '127.0.0.1'): Promise<Watcher> {
    return withTimeout(
      new Promise<Watcher>((resolve, reject) => {
        const socket = net.connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true }, () => resolve(new Watcher(socket)));
        socket.once('error', reject);
      }),
      5000,
      'a connection to the iperf3 server',
    );
  }
}

describe('review 2, item 3: a connection holds a test only once its parameters are accepted', { skip }, () => {
  test('options: one address may run fewer tests than the server; pending pool and deadlines are options; handshakeTimeoutMs is gone', () => {
    const defaults = IPERF3_SERVER_DEFAULTS;
    assert.ok(defaults.maxTestsPerClient < defaults.maxTests, `${defaults.maxTestsPerClient} of ${defaults.maxTests}`);
    assert.deepEqual(
      [defaults.maxPending, defaults.maxPendingPerClient, defaults.cookieTimeoutMs, defaults.parametersTimeoutMs, defaults.maxTotalStreams],
      [16, 2, 3000, 3000, 256],
    );
    // One address cannot take every stream: -P 128 works, and leaves as many for everyone else.
    assert.equal(defaults.maxStreamsPerClient, defaults.maxStreams);
    assert.ok(defaults.maxStreamsPerClient < defaults.maxTotalStreams);
    assert.throws(() => new Iperf3Server({ maxPendingPerClient: 0 }), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.maxPendingPerClient must be an integer from 1/,
    });
    assert.throws(() => new Iperf3Server({ cookieTimeoutMs: 2 ** 31 }), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.cookieTimeoutMs/,
    });
    assert.throws(() => new Iperf3Server({ handshakeTimeoutMs: 1000 } as Iperf3ServerOptions), {
      code: 'SOCKTUNE_ERR_INVALID_OPTION',
      message: /options\.handshakeTimeoutMs is not a known option/,
    });
  });

  test(
    'connections that stop after their cookie hold no test: a stock client is served; over its pending share an address is told "busy" at once',
    { timeout: 60_000 },
    async () => {
      const started = await startServer({ maxTests: 1, maxTestsPerClient: 1, parametersTimeoutMs: 20_000 });
      const holders: RawClient[] = [];
      try {
        for (const address of ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3']) {
          const holder = await RawClient.connect(started.port, address);
          holders.push(holder);
          holder.socket.write(holder.cookie);
          assert.equal(await holder.readState(), STATE.PARAM_EXCHANGE);
        }
        assert.equal(started.server.activeTests, 0);
        assert.equal(started.server.pendingConnections, 4);
        const seen = started.logs.length;
        // The third from 127.0.0.2 has sent nothing yet: it is turned away as it connects.
        const third = await RawClient.connect(started.port, '127.0.0.2');
        assert.deepEqual(await third.readReply(), { kind: 'access-denied' });
        third.close();
        const entry = await started.nextLog(seen);
        assert.equal(entry.outcome, 'refused');
        assert.equal(entry.code, 'SOCKTUNE_ERR_REFUSED');
        assert.match(entry.error ?? '', /server busy: 2 connections from 127\.0\.0\.2 before their parameters \(max 2 per client\)/);
        // The only test slot is free for a client whose parameters come.
        const { code, json } = await stockClient(started.port, ['-t', '1']);
        assert.equal(code, 0, json.error);
        assert.equal(started.server.pendingConnections, 4);
      } finally {
        holders.forEach((holder) => holder.close());
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );

  test(
    'maxPending: connections before their parameters from every address together; over it the oldest gives way',
    { timeout: 30_000 },
    async () => {
      const started = await startServer({ maxPending: 3, cookieTimeoutMs: 20_000 });
      const watchers: Watcher[] = [];
      try {
        for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) watchers.push(await Watcher.open(started.port, address));
        assert.ok(await waitFor(() => started.server.pendingConnections === 3, 5000));
        const fourth = await Watcher.open(started.port, '127.0.0.5');
        watchers.push(fourth);
        // Silent holders from many addresses cannot keep a newcomer out: the one that waited longest is closed.
        assert.ok(
          await waitFor(() => watchers[0]!.socket.readableEnded || watchers[0]!.socket.destroyed, 5000),
          'the oldest pending connection is closed',
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.deepEqual([...fourth.received], [], 'the newcomer is not refused');
        assert.equal(started.server.pendingConnections, 3);
      } finally {
        watchers.forEach((watcher) => watcher.socket.destroy());
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );

  test(
    'parametersTimeoutMs: a client that sends its cookie and then nothing is closed after it, with a log line',
    { timeout: 30_000 },
    async () => {
      const started = await startServer({ parametersTimeoutMs: 300 });
      const holder = await RawClient.connect(started.port);
      try {
        const seen = started.logs.length;
        const began = performance.now();
        holder.socket.write(holder.cookie);
        assert.equal(await holder.readState(), STATE.PARAM_EXCHANGE);
        await withTimeout(closed(holder.socket), 5000, 'the server to close the connection');
        const elapsed = performance.now() - began;
        assert.ok(elapsed < 2500, `closed after ${elapsed} ms`);
        const entry = await started.nextLog(seen);
        assert.equal(entry.code, 'SOCKTUNE_ERR_TIMEOUT');
        assert.match(entry.error ?? '', /no iperf3 parameters within 300 ms/);
        assert.equal(started.server.pendingConnections, 0);
        assert.equal(started.server.activeTests, 0);
      } finally {
        holder.close();
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );

  test(
    'two handshakes for the last slot: the first parameters win, the second client is told "busy" after its parameters',
    { timeout: 30_000 },
    async () => {
      const started = await startServer({ maxTests: 1 });
      const first = await RawClient.connect(started.port);
      const second = await RawClient.connect(started.port);
      try {
        for (const client of [first, second]) {
          client.socket.write(client.cookie);
          assert.equal(await client.readState(), STATE.PARAM_EXCHANGE);
        }
        first.socket.write(encodeJson(GOOD_PARAMS));
        assert.deepEqual(await first.readReply(), { kind: 'create-streams' });
        const seen = started.logs.length;
        second.socket.write(encodeJson(GOOD_PARAMS));
        assert.deepEqual(await second.readReply(), { kind: 'access-denied' });
        assert.match((await started.nextLog(seen)).error ?? '', /^SOCKTUNE_ERR_REFUSED: server busy: 1 tests running \(max 1\)/);
        assert.equal(started.server.activeTests, 1);
      } finally {
        first.close();
        second.close();
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );

  test(
    'the data connections a test waits for come on top of the pending pool: stock -P 8 and -P 4 --bidir with a pool of 1',
    { timeout: 60_000 },
    async () => {
      const started = await startServer({ maxPending: 1, maxPendingPerClient: 1 });
      try {
        for (const args of [
          ['-P', '8'],
          ['-P', '4', '--bidir'],
        ]) {
          const { code, json } = await stockClient(started.port, ['-t', '1', ...args]);
          assert.equal(code, 0, `${args.join(' ')}: ${json.error}`);
        }
        assert.deepEqual(
          started.logs.map((entry) => entry.outcome),
          ['done', 'done'],
        );
      } finally {
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );
});

describe('review 2, item 4: silent connections before the cookie', { skip }, () => {
  test('cookieTimeoutMs: a connection that never sends its cookie is closed after it, with a log line', { timeout: 30_000 }, async () => {
    const started = await startServer({ cookieTimeoutMs: 300 });
    try {
      const seen = started.logs.length;
      const silent = await Watcher.open(started.port);
      const began = performance.now();
      assert.ok(await waitFor(() => silent.endedAt !== undefined, 5000), 'the server never closed the silent connection');
      assert.ok(silent.endedAt! - began < 2500, `closed after ${silent.endedAt! - began} ms`);
      assert.equal(silent.received.length, 0);
      assert.match((await started.nextLog(seen)).error ?? '', /^SOCKTUNE_ERR_TIMEOUT: no iperf3 cookie within 300 ms/);
      silent.socket.destroy();
    } finally {
      await started.server.close();
    }
    assertNothingEscaped();
  });

  test(
    '300 silent connections from one address: 2 wait, the rest are told "busy" at once and closed; other addresses are served meanwhile',
    { timeout: 60_000 },
    async () => {
      const started = await startServer({ cookieTimeoutMs: 2000 });
      const watchers: Watcher[] = [];
      try {
        const seen = started.logs.length;
        for (let i = 0; i < 300; i++) watchers.push(await Watcher.open(started.port));
        assert.ok(
          await waitFor(() => watchers.filter((watcher) => watcher.endedAt !== undefined).length >= 298, 10_000),
          'the refused connections were not closed',
        );
        const denied = watchers.filter((watcher) => watcher.received.length === 1 && watcher.received[0] === 0xff).length;
        assert.equal(denied, 298);
        assert.ok(started.server.pendingConnections <= 2, `${started.server.pendingConnections} pending`);
        const refusals = started.logs.slice(seen).filter((entry) => entry.outcome === 'refused');
        assert.equal(refusals.length, 298);
        const { code, json } = await stockClient(started.port, ['-t', '1', '-B', '127.0.0.2']);
        assert.equal(code, 0, json.error);
        // The two that waited time out; then 127.0.0.1 is served too.
        assert.ok(
          await waitFor(() => watchers.every((watcher) => watcher.endedAt !== undefined), 10_000),
          'the waiting connections outlived the cookie deadline',
        );
        const again = await stockClient(started.port, ['-t', '1']);
        assert.equal(again.code, 0, again.json.error);
      } finally {
        watchers.forEach((watcher) => watcher.socket.destroy());
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );

  test(
    'maxConnections and maxConnectionsPerIp reach the transport: over them a connection is closed without a byte',
    { timeout: 30_000 },
    async () => {
      const started = await startServer({ maxConnections: 3, maxConnectionsPerIp: 2, maxPendingPerClient: 5, cookieTimeoutMs: 20_000 });
      const watchers: Watcher[] = [];
      try {
        assert.deepEqual([started.server.options.maxConnections, started.server.options.maxConnectionsPerIp], [3, 2]);
        for (let i = 0; i < 2; i++) watchers.push(await Watcher.open(started.port));
        assert.ok(await waitFor(() => started.server.pendingConnections === 2, 5000));
        const overAddress = await Watcher.open(started.port);
        watchers.push(overAddress);
        assert.ok(await waitFor(() => overAddress.endedAt !== undefined, 5000), 'a third connection from one address was kept');
        assert.equal(overAddress.received.length, 0);
        watchers.push(await Watcher.open(started.port, '127.0.0.2'));
        assert.ok(await waitFor(() => started.server.pendingConnections === 3, 5000));
        const overTotal = await Watcher.open(started.port, '127.0.0.3');
        watchers.push(overTotal);
        assert.ok(await waitFor(() => overTotal.endedAt !== undefined, 5000), 'a fourth connection in all was kept');
        assert.equal(overTotal.received.length, 0);
      } finally {
        watchers.forEach((watcher) => watcher.socket.destroy());
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );
});

describe('review 2, item 5: one deadline per test, from accept to close', { skip }, () => {
  test(
    'a client that takes its time at every phase is closed at maxDurationMs, whatever the timers of the phases',
    { timeout: 30_000 },
    async () => {
      // Each phase's own timer (parameters 10 s, streams 10 s, results 10 s) is longer than the whole test may last.
      const started = await startServer({ maxDurationMs: 4000, cookieTimeoutMs: 10_000, parametersTimeoutMs: 10_000 });
      const client = await RawClient.connect(started.port);
      try {
        const seen = started.logs.length;
        const began = performance.now();
        await sleep(700);
        client.socket.write(client.cookie);
        assert.equal(await client.readState(), STATE.PARAM_EXCHANGE);
        await sleep(700);
        client.socket.write(encodeJson({ ...GOOD_PARAMS, time: 0, num: 1024 }));
        assert.deepEqual(await client.readReply(), { kind: 'create-streams' });
        await sleep(700);
        const stream = await client.openStream(started.port);
        assert.equal(await client.readState(), STATE.TEST_START);
        assert.equal(await client.readState(), STATE.TEST_RUNNING);
        client.socket.write(Buffer.from([STATE.TEST_END]));
        assert.equal(await client.readState(), STATE.EXCHANGE_RESULTS);
        // No results: the server's 10 s wait for them is cut to what is left of the 4 s.
        await withTimeout(closed(client.socket), 10_000, 'the server to close the control connection');
        const elapsed = performance.now() - began;
        stream.destroy();
        assert.ok(elapsed > 3000 && elapsed < 5500, `the test held its connection for ${Math.round(elapsed)} ms`);
        const entry = await started.nextLog(seen);
        const waited = /no the iperf3 client's results within (\d+) ms/.exec(entry.error ?? '');
        assert.ok(waited && Number(waited[1]) < 2500, entry.error);
        assert.equal(started.server.activeTests, 0);
      } finally {
        client.close();
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );
});

describe('review 2, item 6: streams of every test together', { skip }, () => {
  test(
    'maxTotalStreams: a test that would go over is told "busy" after its parameters; one that fits runs',
    { timeout: 60_000 },
    async () => {
      const started = await startServer({ maxTotalStreams: 4 });
      const holder = await RawClient.connect(started.port);
      try {
        assert.deepEqual(await holder.handshake({ ...GOOD_PARAMS, parallel: 3 }), { kind: 'create-streams' });
        const seen = started.logs.length;
        assert.deepEqual(await handshakeOnce(started.port, { ...GOOD_PARAMS, parallel: 1, bidirectional: true }), {
          kind: 'access-denied',
        });
        const entry = await started.nextLog(seen);
        assert.equal(entry.outcome, 'refused');
        assert.match(entry.error ?? '', /server busy: 3 streams open, this test asks for 2 \(max 4, every test together\)/);
        const stock = await stockClient(started.port, ['-t', '1', '-P', '2']);
        assert.match(stock.json.error ?? '', /the server is busy/);
        const fits = await stockClient(started.port, ['-t', '1', '-B', '127.0.0.2']);
        assert.equal(fits.code, 0, fits.json.error);
      } finally {
        holder.close();
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );
});

describe('a stranger’s pass: streams of one address together', { skip }, () => {
  test('maxStreamsPerClient: one address over it is told "busy"; another address still runs', { timeout: 60_000 }, async () => {
    const started = await startServer({ maxTotalStreams: 8, maxStreamsPerClient: 4 });
    const holder = await RawClient.connect(started.port);
    try {
      assert.deepEqual(await holder.handshake({ ...GOOD_PARAMS, parallel: 3 }), { kind: 'create-streams' });
      const seen = started.logs.length;
      const sameAddress = await stockClient(started.port, ['-t', '1', '-P', '2']);
      assert.match(sameAddress.json.error ?? '', /the server is busy/);
      const entry = await started.nextLog(seen);
      assert.match(entry.error ?? '', /server busy: 3 streams open from 127\.0\.0\.1, this test asks for 2 \(max 4 per client\)/);
      const otherAddress = await stockClient(started.port, ['-t', '1', '-P', '2', '-B', '127.0.0.2']);
      assert.equal(otherAddress.code, 0, otherAddress.json.error);
    } finally {
      holder.close();
      await started.server.close();
    }
    assertNothingEscaped();
  });
});

/** Records the length of every write of sender data (chunks of 0x69, as the server fills them) made in this process. */
function spyOnSenderWrites(): { sizes: number[]; restore: () => void } {
  const prototype = net.Socket.prototype as unknown as { write: (...args: unknown[]) => boolean };
  const original = prototype.write;
  const sizes: number[] = [];
  prototype.write = function (this: net.Socket, ...args: unknown[]): boolean {
    const [chunk] = args;
    if (Buffer.isBuffer(chunk) && chunk.length > 0 && chunk[0] === 0x69 && chunk[chunk.length - 1] === 0x69) sizes.push(chunk.length);
    return original.apply(this, args);
  };
  return { sizes, restore: () => void (prototype.write = original) };
}

describe('review 2, item 1: the sender writes whole blocks in chunks of 64 KiB or more', { skip }, () => {
  test('sendChunkBytes: a whole number of blocks, at least MIN_SEND_CHUNK_BYTES', () => {
    for (const length of [1, 3, 7, 1000, 65_535, 65_536, 65_537, 100_000, 1024 * 1024]) {
      const chunk = sendChunkBytes(length);
      assert.equal(chunk % length, 0, `-l ${length}`);
      assert.ok(chunk >= MIN_SEND_CHUNK_BYTES && chunk - length < MIN_SEND_CHUNK_BYTES, `-l ${length}: ${chunk}`);
    }
  });

  test(
    'stock iperf3 -R -l 1, the event loop writing: the test completes, every write is 64 KiB or more, and the event loop never stalls a second',
    { timeout: 60_000 },
    async (t) => {
      // No bulk thread: the event loop's writes are what this looks at (sendfile's calls are cut the same way, sendChunkBytes).
      const started = await startServer({ bulkThreads: 0 });
      const spy = spyOnSenderWrites();
      const loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
      try {
        const { code, json } = await stockClient(started.port, ['-R', '-l', '1', '-t', '2']);
        loopDelay.disable();
        assert.equal(code, 0, json.error);
        const worstMs = loopDelay.max / 1e6;
        t.diagnostic(
          `${spy.sizes.length} writes of ${Math.min(...spy.sizes)} to ${Math.max(...spy.sizes)} bytes; worst event-loop delay ${worstMs.toFixed(1)} ms`,
        );
        assert.ok(spy.sizes.length > 0);
        assert.ok(
          spy.sizes.every((size) => size >= MIN_SEND_CHUNK_BYTES),
          'a write under 64 KiB',
        );
        assert.ok(worstMs < 1000, `the event loop stalled ${worstMs} ms`);
      } finally {
        loopDelay.disable();
        spy.restore();
        await started.server.close();
      }
      assertNothingEscaped();
    },
  );

  /** A reverse test by hand: reads every stream until the server stops sending, returns what it received. */
  async function reverseTest(port: number, params: Record<string, unknown>, expected: number): Promise<number> {
    const client = await RawClient.connect(port);
    const streams: net.Socket[] = [];
    let received = 0;
    try {
      assert.deepEqual(await client.handshake({ ...GOOD_PARAMS, time: 0, reverse: true, ...params }), { kind: 'create-streams' });
      for (let i = 0; i < Number(params.parallel ?? 1); i++) {
        const stream = await client.openStream(port);
        stream.on('data', (chunk: Buffer) => (received += chunk.length));
        streams.push(stream);
      }
      assert.equal(await client.readState(), STATE.TEST_START);
      assert.equal(await client.readState(), STATE.TEST_RUNNING);
      assert.ok(await waitFor(() => received >= expected, 20_000), `received ${received} of ${expected}`);
      // Anything past the limit would arrive within this.
      await sleep(300);
      client.socket.write(Buffer.from([STATE.TEST_END]));
      assert.equal(await client.readState(), STATE.EXCHANGE_RESULTS);
      return received;
    } finally {
      streams.forEach((stream) => stream.destroy());
      client.close();
    }
  }

  test(
    '-n and -k still hold exactly over several streams, unpaced and paced: the write that reaches the limit is cut to it',
    { timeout: 60_000 },
    async () => {
      const unpaced = await startServer();
      const paced = await startServer({ sendBudget: new SendBudget(4_000_000) });
      const spy = spyOnSenderWrites();
      try {
        const cases: [Started, Record<string, unknown>, number][] = [
          [unpaced, { num: 100_003, len: 7, parallel: 3 }, 100_003],
          [unpaced, { blockcount: 20_000, len: 7, parallel: 2 }, 140_000],
          [paced, { num: 300_001, len: 3, parallel: 2 }, 300_001],
        ];
        for (const [started, params, expected] of cases) {
          spy.sizes.length = 0;
          assert.equal(await reverseTest(started.port, params, expected), expected, JSON.stringify(params));
          assert.equal(
            spy.sizes.reduce((sum, size) => sum + size, 0),
            expected,
            JSON.stringify(params),
          );
          // Paced writes are cut to the budget's largest write; unpaced, only the last one is short.
          if (started === unpaced)
            assert.ok(
              spy.sizes.filter((size) => size < MIN_SEND_CHUNK_BYTES).length <= 1,
              `${JSON.stringify(params)}: ${spy.sizes.join(',')}`,
            );
        }
      } finally {
        spy.restore();
        await unpaced.server.close();
        await paced.server.close();
      }
      assertNothingEscaped();
    },
  );
});

describe('bulk threads: the TCP streams of a test move on threads granted from the server’s quota', { skip }, () => {
  test(
    'a -R client killed mid-test: its sendfile threads end and close their descriptors, and the next test runs',
    { timeout: 60_000 },
    async (t) => {
      const started = await startServer();
      t.after(() => started.server.close());
      // A first test opens what stays open for good (the FFI's library, the threads' plumbing).
      assert.equal((await stockClient(started.port, ['-R', '-t', '1'])).code, 0);
      const fdsBefore = openFds();
      const child = spawn('iperf3', ['-c', '127.0.0.1', '-p', String(started.port), '-R', '-P', '3', '-t', '30'], { stdio: 'ignore' });
      t.after(() => child.kill('SIGKILL'));
      // Killed once the data flows: the server's threads are sending into connections that reset.
      assert.ok(await waitFor(() => openFds() >= fdsBefore + 4, 10_000), 'the test opened its streams');
      await sleep(300);
      child.kill('SIGKILL');
      const log = await started.nextLog(1, 30_000);
      assert.equal(log.outcome, 'failed');
      assert.ok(await waitFor(() => openFds() <= fdsBefore, 10_000), `fds ${openFds()} vs ${fdsBefore} before`);
      const next = await stockClient(started.port, ['-R', '-t', '1']);
      assert.equal(next.code, 0, next.json.error);
      assert.ok(next.json.end!.sum_received!.bytes > 0);
      assertNothingEscaped();
    },
  );

  test(
    '-R and --bidir -b: the server paces each stream it sends on at the client’s rate, on a thread or on the event loop',
    { timeout: 60_000 },
    async (t) => {
      for (const bulkThreads of [2, 0]) {
        const started = await startServer({ bulkThreads });
        t.after(() => started.server.close());
        for (const args of [['-R', '-P', '2'], ['--bidir']]) {
          const { code, json } = await stockClient(started.port, [...args, '-t', '1', '-b', '20M', '-l', '16K']);
          assert.equal(code, 0, json.error);
          const end = json.end!;
          // What the server sent: all of -R, the reverse half of --bidir; each stream paced at 20 Mbit/s (a slow machine only makes it less).
          const fromServer = args[0] === '-R' ? end.sum_received!.bytes : end.sum_received_bidir_reverse!.bytes;
          const streams = args[0] === '-R' ? 2 : 1;
          const ceiling = streams * ((20e6 / 8) * 1.5 + 256 * 1024);
          assert.ok(fromServer > 0 && fromServer <= ceiling, `${bulkThreads} thread(s), ${args.join(' ')}: ${fromServer} bytes`);
        }
      }
      assertNothingEscaped();
    },
  );

  test(
    'a quota too small for every stream: what gets no thread stays on the event loop, and every count agrees',
    { timeout: 60_000 },
    async (t) => {
      for (const bulkThreads of [0, 1]) {
        const started = await startServer({ bulkThreads });
        t.after(() => started.server.close());
        for (const args of [
          ['--bidir', '-t', '1', '-P', '2'],
          ['-t', '1', '-P', '2'],
        ]) {
          const { code, json } = await stockClient(started.port, args);
          assert.equal(code, 0, `${bulkThreads} thread(s), ${args.join(' ')}: ${json.error}`);
          const sent = json.end!.sum_sent!;
          const received = json.end!.sum_received!;
          assert.ok(sent.bytes > 0 && received.bytes > 0);
          assert.ok(
            Math.abs(sent.bytes - received.bytes) <= Math.max(sent.bytes * 0.02, 16 * 1024 * 1024),
            `${sent.bytes} vs ${received.bytes}`,
          );
        }
      }
      assertNothingEscaped();
    },
  );
});
