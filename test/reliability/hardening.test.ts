import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, constants as perfConstants, type PerformanceEntry } from 'node:perf_hooks';
import { ControlChannel } from '../../src/bench/control/control-channel.ts';
import { RemoteTest } from '../../src/bench/control/remote-test.ts';
import { runMsg } from '../../src/bench/engines/msg.ts';
import { runRr } from '../../src/bench/engines/rr.ts';
import { runUdpStream } from '../../src/bench/engines/udp-stream.ts';
import { AuthBackoff } from '../../src/core/auth-backoff.ts';
import { clientKey } from '../../src/core/client-key.ts';
import { Secret } from '../../src/core/secret.ts';
import { admit, PeerCounts } from '../../src/transport/server/admission.ts';
import { BufferBudget } from '../../src/transport/io/buffer-budget.ts';
import { createServer } from '../../src/transport/server/socktune-server.ts';
import { start, withServer } from '../../testkit/control-messages.ts';
import { connectedClient, echoes, readBytes, waitFor } from '../../testkit/helpers.ts';

const TOKEN = 'a shared secret of 32 characters';

/** A control client from `localAddress` that sends a start message and, when challenged, a wrong proof; resolves with the server's last word. */
async function strangerWithWrongProof(port: number, localAddress = '127.0.0.1'): Promise<Record<string, unknown>> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  const channel = new ControlChannel(socket);
  try {
    channel.send(start());
    const first = (await channel.next(10_000, 'challenge')) as Record<string, unknown>;
    if (first.type !== 'challenge') return first;
    channel.send({ type: 'auth', proof: 'ab'.repeat(32) });
    return (await channel.next(10_000, 'answer')) as Record<string, unknown>;
  } finally {
    socket.destroy();
  }
}

/** A client with the token runs an echo test to its end. */
async function goodClientServed(port: number, token?: string): Promise<void> {
  const remote = await RemoteTest.start(
    { host: '127.0.0.1', port, ...(token === undefined ? {} : { authToken: new Secret(token) }) },
    'echo',
    {},
    10_000,
  );
  const data = 'host' in remote.data ? remote.data : undefined;
  const socket = await connectedClient(data!.port);
  if (remote.data.preamble) socket.write(remote.data.preamble);
  assert.equal(await echoes(socket, 'still here'), true, 'a good client is served');
  socket.destroy();
  await remote.finish();
}

test('--one-off counts only a test that authenticated and ran: a stranger with a wrong proof does not end it', async () => {
  await withServer({ authToken: TOKEN, oneOff: true }, async (port, server) => {
    let done = false;
    server.once('done', () => (done = true));
    const answer = await strangerWithWrongProof(port);
    assert.equal(answer.code, 'SOCKTUNE_ERR_AUTH');
    assert.equal(done, false, 'the stranger ended the one-off server');
    await goodClientServed(port, TOKEN);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(done, true, 'the real test ends a one-off server');
  });
});

test("-A bounds the client: a test's threads may be pinned only to the server's own CPUs", async () => {
  await withServer({ allowedCpus: [1] }, async (port) => {
    const socket = await connectedClient(port);
    socket.on('error', () => {});
    const channel = new ControlChannel(socket);
    channel.send(start({ ioModel: 'workers', workers: 2, affinity: [0] }));
    const reply = (await channel.next(10_000, 'reply')) as Record<string, unknown>;
    socket.destroy();
    assert.equal(reply.code, 'SOCKTUNE_ERR_REFUSED');
    assert.match(String(reply.message), /affinity asks for CPU 0: this server runs its tests on CPUs 1 only/);
    const allowed = await RemoteTest.start({ host: '127.0.0.1', port }, 'echo', { ioModel: 'workers', workers: 1, affinity: [1] }, 10_000);
    await allowed.finish();
  });
});

test('settleMemory: clients together get at most one full garbage collection a second; a good client is served meanwhile', async () => {
  const majors: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR)
        majors.push(entry.startTime);
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    await withServer({}, async (port) => {
      const began = performance.now();
      for (let i = 0; i < 12; i++) {
        const remote = await RemoteTest.start({ host: '127.0.0.1', port }, 'echo', {}, 10_000, true);
        await remote.finish();
      }
      const seconds = (performance.now() - began) / 1000;
      await goodClientServed(port);
      await new Promise((resolve) => setImmediate(resolve));
      // 24 readings asked for a collection; the server ran one at most each second (plus V8's own, rare in so short a run).
      assert.ok(majors.length <= Math.ceil(seconds) + 2, `${majors.length} full collections in ${seconds.toFixed(1)} s`);
    });
  } finally {
    observer.disconnect();
  }
});

test('failed authentication: slowed, then refused before any proof is read, per client; another client is served meanwhile', async () => {
  const authBackoff = { freeFailures: 1, baseDelayMs: 100, maxDelayMs: 200, blockAfter: 3, blockMs: 60_000 };
  await withServer({ authToken: TOKEN, authBackoff }, async (port) => {
    for (let i = 0; i < 3; i++) {
      const before = performance.now();
      const answer = await strangerWithWrongProof(port, '127.0.0.7');
      assert.equal(answer.code, 'SOCKTUNE_ERR_AUTH');
      if (i > 0) assert.ok(performance.now() - before >= 90, `failure ${i + 1} was answered without its delay`);
    }
    // Blocked: refused at once, before any challenge.
    const blocked = await strangerWithWrongProof(port, '127.0.0.7');
    assert.equal(blocked.type, 'error');
    assert.match(String(blocked.message), /too many failed authentications from 127\.0\.0\.7: refused for \d+ s more/);
    await goodClientServed(port, TOKEN);
  });
});

test('AuthBackoff: free failures, doubling delays up to the cap, a block, a fresh start after success or quiet; memory bounded', () => {
  let now = 0;
  const backoff = new AuthBackoff(
    { freeFailures: 2, baseDelayMs: 100, maxDelayMs: 300, blockAfter: 5, blockMs: 1000, forgetAfterMs: 500, maxClients: 3 },
    () => now,
  );
  assert.deepEqual(
    [1, 2, 3, 4].map(() => backoff.failed('a')),
    [0, 0, 100, 200],
  );
  assert.equal(backoff.blockedFor('a'), 0);
  assert.equal(backoff.failed('a'), 300);
  assert.equal(backoff.blockedFor('a'), 1000);
  now += 600;
  assert.equal(backoff.blockedFor('a'), 400, 'a block outlives the quiet period');
  now += 500;
  assert.equal(backoff.blockedFor('a'), 0);
  assert.equal(backoff.failed('a'), 0, 'forgotten after the block and the quiet period');
  backoff.failed('b');
  backoff.succeeded('b');
  assert.equal(backoff.failed('b'), 0);
  for (const key of ['c', 'd', 'e', 'f']) backoff.failed(key);
  assert.equal(backoff.size, 3);
});

test('every per-client limit keys IPv4 by address and IPv6 by prefix (default /64, or --ipv6-prefix)', () => {
  assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8:1:2:3:4:5:6', 48), '2001:db8:1::/48');
  assert.equal(clientKey('2001:db8:1:2ff:3:4:5:6', 56), '2001:db8:1:200::/56');
  assert.equal(clientKey('2001:db8::1', 128), '2001:db8:0:0:0:0:0:1');
  assert.equal(clientKey('::ffff:198.18.0.7'), '198.18.0.7');
  assert.equal(clientKey('64:ff9b::198.18.0.7', 128), '64:ff9b:0:0:0:0:c612:7');
  assert.equal(clientKey(undefined), '');
  // The transport's admission: two addresses of one /64 share one count, another /64 has its own.
  const peers = new PeerCounts(PeerCounts.allocate(), 2);
  const from = (remoteAddress: string): net.Socket => ({ remoteAddress }) as net.Socket;
  const limits = { maxConnections: 100, peers };
  assert.deepEqual(admit(from('2001:db8::1'), 0, limits), { peer: '2001:db8:0:0::/64' });
  assert.deepEqual(admit(from('2001:db8::2'), 1, limits), { peer: '2001:db8:0:0::/64' });
  assert.deepEqual(admit(from('2001:db8::3'), 2, limits), { refusal: 'SOCKTUNE_ERR_MAX_CONNECTIONS' });
  assert.deepEqual(admit(from('2001:db8:0:1::3'), 2, limits), { peer: '2001:db8:0:1::/64' });
  const perAddress = new PeerCounts(PeerCounts.allocate(128), 1);
  assert.deepEqual(admit(from('2001:db8::1'), 0, { maxConnections: 100, peers: perAddress }), { peer: '2001:db8:0:0:0:0:0:1' });
  assert.deepEqual(admit(from('2001:db8::2'), 1, { maxConnections: 100, peers: perAddress }), { peer: '2001:db8:0:0:0:0:0:2' });
});

/** A fake control server that answers every start message with `reply` (a hostile server, to test the client). */
async function withFakeServer(reply: Record<string, unknown>, body: (port: number) => Promise<void>): Promise<void> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.write(`${JSON.stringify(reply)}\n`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await body((server.address() as net.AddressInfo).port);
  } finally {
    server.close();
  }
}

/** What every client engine is given, against a control port on loopback. */
function clientRun(port: number, durationSec: number) {
  return { target: { host: '127.0.0.1', port }, durationSec, omitSec: 0, intervalSec: 1, client: {}, server: {} };
}

const GOOD_READY = {
  type: 'ready',
  dataPort: 9,
  effective: { sendBufferSize: 1, receiveBufferSize: 1, noDelay: true, keepAlive: false },
  warnings: [],
  environment: {
    node: 'v24.0.0',
    platform: 'linux',
    kernel: '6',
    cpus: 2,
    cpuAffinity: '0-1',
    cpuModel: 'x',
    sysctl: {},
    limits: { openFiles: '1024' },
  },
  memory: { rssBytes: 1, heapUsedBytes: 1 },
};

test('a hostile server cannot send the client to a local socket, make it write what it likes, or paint its terminal', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...GOOD_READY, dataPath: '/var/run/docker.sock' }, /named a Unix socket or no port for a test reached over TCP/],
    [{ ...GOOD_READY, dataToken: Buffer.from('POST /containers/create HTTP/1.1\r\n\r\n').toString('hex') }, /dataToken.*32 hex digits/],
    [{ ...GOOD_READY, dataPort: 70_000 }, /dataPort/],
    [{ ...GOOD_READY, effective: { sendBufferSize: '<script>', receiveBufferSize: 1, noDelay: true, keepAlive: false } }, /effective/],
    [{ ...GOOD_READY, environment: { ...GOOD_READY.environment, node: '\u001b[31mRED' } }, /environment/],
    [{ type: 'error', code: 'SOCKTUNE_ERR_REFUSED', message: '\u001b[2J\u001b]0;pwned\u0007 all good' }, /error message is malformed/],
    [{ type: 'error', code: 'SOCKTUNE_ERR_REFUSED', message: { nested: true } }, /error message is malformed/],
  ];
  for (const [reply, reason] of cases) {
    await withFakeServer(reply, async (port) => {
      await assert.rejects(RemoteTest.start({ host: '127.0.0.1', port }, 'echo', {}, 10_000), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'SOCKTUNE_ERR_PROTOCOL', error.message);
        assert.match(error.message, reason);
        assert.ok(!error.message.includes(String.fromCharCode(0x1b)), 'no escape character reaches the message');
        return true;
      });
    });
  }
});

test('buffer budget: one client fills at most half of it past its share; another client’s messages still fit', async (t) => {
  const budget = new BufferBudget(1000);
  const greedy = budget.forClient('198.18.0.2');
  assert.equal(greedy.tryReserve(400), true);
  assert.equal(greedy.tryReserve(200), false, 'past its share, a client stops at half the budget');
  const other = budget.forClient('198.18.0.3');
  assert.equal(other.tryReserve(250), true, 'within its share (a quarter), a client may use the rest');
  greedy.release(400);
  other.release(250);
  assert.equal(budget.usedBytes, 0);

  // The same on the wire: a msg-echo server whose budget one address tries to hold with half-sent messages.
  const server = createServer({ handler: 'msg-echo', maxBufferedBytes: 8 * 1024 * 1024 });
  const { port } = (await server.listen()) as { port: number };
  const holders: net.Socket[] = [];
  t.after(async () => {
    for (const socket of holders) socket.destroy();
    await server.close();
  });
  for (let i = 0; i < 4; i++) {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    const header = Buffer.alloc(4);
    header.writeUInt32BE(4 * 1024 * 1024);
    socket.write(Buffer.concat([header, Buffer.alloc(1536 * 1024, 1)]));
    holders.push(socket);
  }
  await waitFor(() => server.metrics().bytesIn >= 3 * 1536 * 1024, 10_000);
  const good = net.connect({ port, host: '127.0.0.1' });
  good.on('error', () => {});
  const size = 512 * 1024;
  const message = Buffer.alloc(4 + size, 7);
  message.writeUInt32BE(size);
  good.write(message.subarray(0, 100_000));
  setImmediate(() => good.write(message.subarray(100_000)));
  const echoed = await readBytes(good, message.length, 10_000);
  good.destroy();
  assert.equal(echoed.length, message.length, 'the good client’s split message was gathered and echoed');
  assert.ok((server.metrics().errors.SOCKTUNE_ERR_BUFFER_BUDGET ?? 0) >= 1, 'the greedy address was the one refused');
});

test('threads: one client address holds at most its share of the server threads, its tests together; another address gets the rest', async () => {
  await withServer({ maxThreads: 8, maxThreadsPerTest: 4, maxThreadsPerClient: 4 }, async (port, server) => {
    const first = await RemoteTest.start({ host: '127.0.0.1', port }, 'echo', { ioModel: 'workers', workers: 4 }, 10_000);
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    const channel = new ControlChannel(socket);
    channel.send(start({ ioModel: 'workers', workers: 2 }));
    const reply = (await channel.next(10_000, 'reply')) as Record<string, unknown>;
    socket.destroy();
    assert.equal(reply.code, 'SOCKTUNE_ERR_REFUSED');
    assert.match(String(reply.message), /127\.0\.0\.1 holds 4 of the 4 one client may hold \(--max-threads-per-client\)/);
    // Another address gets the rest.
    const stranger = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    stranger.on('error', () => {});
    await new Promise((resolve) => stranger.once('connect', resolve));
    const strangerChannel = new ControlChannel(stranger);
    strangerChannel.send(start({ ioModel: 'workers', workers: 4 }));
    const ready = (await strangerChannel.next(10_000, 'ready')) as Record<string, unknown>;
    assert.equal(ready.type, 'ready', JSON.stringify(ready));
    stranger.destroy();
    await first.finish();
    assert.ok(await waitFor(() => server.threadsInUse === 0, 10_000), 'threads come back when the tests end');
    const again = await RemoteTest.start({ host: '127.0.0.1', port }, 'echo', { ioModel: 'workers', workers: 4 }, 10_000);
    await again.finish();
  });
});

test('rr against a server that floods its data connection: stopped with a protocol error, not fake latencies or unbounded memory', async (t) => {
  // The data port answers what nobody asked, and never reads; bounded: 64 MiB at most.
  const flood = net.createServer((socket) => {
    socket.on('error', () => {});
    let left = 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const push = (): void => {
      while (left-- > 0) if (!socket.write(chunk)) return void socket.once('drain', push);
    };
    push();
  });
  await new Promise<void>((resolve) => flood.listen(0, '127.0.0.1', resolve));
  t.after(() => flood.close());
  const floodPort = (flood.address() as net.AddressInfo).port;
  await withFakeServer({ ...GOOD_READY, dataPort: floodPort }, async (port) => {
    await assert.rejects(
      runRr({
        ...clientRun(port, 1),
        size: 64,
        connections: 1,
        depth: 1,
      }),
      { code: 'SOCKTUNE_ERR_PROTOCOL', message: /responses to requests that were not made/ },
    );
  });
});

test(
  'msg against a server whose data connection breaks the framing: the data connection’s own error, at once, no hang',
  { timeout: 30_000 },
  async (t) => {
    const bad = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.resume();
      socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    });
    await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', resolve));
    t.after(() => bad.close());
    await withFakeServer({ ...GOOD_READY, dataPort: (bad.address() as net.AddressInfo).port }, async (port) => {
      await assert.rejects(
        runMsg({
          ...clientRun(port, 5),
          size: 64,
          connections: 1,
          mode: 'echo',
          batch: 'auto',
          depth: 1,
        }),
        { code: 'SOCKTUNE_ERR_FRAME_TOO_LARGE' },
      );
    });
  },
);

test('on --unix, files already at PATH.testN do not fail tests: the next free path is taken', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'socktune-testpaths-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'control.sock');
  for (const n of [0, 1, 2]) writeFileSync(`${path}.test${n}`, '');
  await withServer({ path }, async () => {
    const remote = await RemoteTest.start({ host: '127.0.0.1', port: 0, path }, 'echo', {}, 10_000);
    assert.equal('path' in remote.data && remote.data.path, `${path}.test3`);
    await remote.finish();
  });
});

test('stream -u against a hostile server: no token or absurd counts end the run with a protocol error, at once; datagrams go to the control address', async () => {
  const udp = (port: number) => ({
    ...clientRun(port, 0.3),
    direction: 'forward' as const,
    datagramBytes: 100,
    bitsPerSecond: 1e6,
    parallel: 1,
  });
  await withFakeServer(GOOD_READY, async (port) => {
    const started = performance.now();
    await assert.rejects(runUdpStream(udp(port)), /ready message for a UDP test has no dataToken/);
    assert.ok(performance.now() - started < 5000, 'ended at once, not after a test or a timeout');
  });
  // A server that says it received more than was sent: answered at finish with counts no client could have caused.
  const sink = await new Promise<UdpSocket>((resolve) => {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1', () => resolve(socket));
  });
  let datagramsAtSink = 0;
  sink.on('message', () => datagramsAtSink++);
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let said = false;
    socket.on('data', () => {
      if (said) {
        const counts = { received: 1e9, expected: 1e9, outOfOrder: 0, duplicates: 0, jitterUs: 0, bytes: 1e11 };
        const datagrams = { streams: [counts], socketDrops: 0, hostReceiveBufferErrors: 0, foreign: 0 };
        const result = {
          type: 'result',
          metrics: { connectionsCurrent: 0, connectionsTotal: 0, bytesIn: 0, bytesOut: 0, bytesCorrupted: 0, messagesIn: 0, errors: {} },
          datagrams,
          cpuPercent: 0,
          memory: GOOD_READY.memory,
        };
        socket.end(`${JSON.stringify(result)}\n`);
      } else socket.write(`${JSON.stringify({ ...GOOD_READY, dataPort: sink.address().port, dataToken: '00'.repeat(16) })}\n`);
      said = true;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await assert.rejects(
      runUdpStream(udp((server.address() as net.AddressInfo).port)),
      /the server counted 1000000000 datagrams in 1 streams; this client sent \d+ in 1/,
    );
    assert.ok(datagramsAtSink > 0, 'the datagrams went to the address the control connection reached, at the port it named');
  } finally {
    server.close();
    sink.close();
  }
});
