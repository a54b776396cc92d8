import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { connect, createServer, type ServerOptions } from '../../../src/index.ts';
import { patternBytes } from '../../../src/transport/services/pattern.ts';
import { closed, readBytes, waitFor } from '../../../testkit/helpers.ts';
import { assertSchema, runCli, startServer } from '../../../testkit/cli.ts';

function ioUringOff(): string | false {
  try {
    return readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim() === '0' ? false : 'io_uring is disabled on this host';
  } catch {
    return false;
  }
}
const skip = ioUringOff();

async function ringServer(t: { after: (fn: () => unknown) => void }, options: ServerOptions) {
  const server = createServer({ ioModel: 'io-uring', workers: 1, closeTimeout: 2000, ...options });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  return { server, port };
}

test('io-uring discard and verify: every byte counted; verify counts exactly the bytes off the pattern', { skip }, async (t) => {
  const { server: discard, port: discardPort } = await ringServer(t, { handler: 'discard' });
  const sent = randomBytes(3 * 1024 * 1024 + 17);
  const a = await connect({ port: discardPort });
  a.end(sent);
  await closed(a);
  assert.ok(await waitFor(() => discard.metrics().bytesIn === sent.length && discard.metrics().connectionsCurrent === 0));

  const { server: verify, port: verifyPort } = await ringServer(t, { handler: 'verify' });
  const stream = patternBytes(1024 * 1024);
  for (const at of [5, 70_000, 999_999]) stream[at] = stream[at]! ^ 0xff;
  const b = await connect({ port: verifyPort });
  b.end(stream);
  await closed(b);
  assert.ok(await waitFor(() => verify.metrics().bytesIn === stream.length && verify.metrics().connectionsCurrent === 0));
  assert.equal(verify.metrics().bytesCorrupted, 3);
});

test(
  'io-uring source: the pattern from its first byte on, in chunks of sourceChunkSize; a client that leaves is let go',
  { skip },
  async (t) => {
    const { server, port } = await ringServer(t, { handler: 'source', sourceChunkSize: 1000 });
    const socket = await connect({ port });
    const received = await readBytes(socket, 2_000_003);
    assert.ok(received.equals(patternBytes(received.length)), 'the bytes are the pattern at their stream offsets');
    socket.destroy();
    assert.ok(await waitFor(() => server.metrics().connectionsCurrent === 0), 'the connection was closed after the client left');
    assert.ok(server.metrics().bytesOut >= received.length);
  },
);

test('io-uring echo: a client that sends and never reads holds a few buffers, not the ring: the others are served', { skip }, async (t) => {
  const { server, port } = await ringServer(t, { handler: 'echo', sendBufferSize: 4096 });
  const hog = await new Promise<Socket>((resolve) => {
    const opened = netConnect({ port, host: '127.0.0.1' }, () => resolve(opened));
  });
  hog.on('error', () => {});
  hog.pause();
  t.after(() => hog.destroy());
  // 40 MiB would take most of the ring's 512 buffers of 64 KiB if the server kept receiving into them.
  const chunk = randomBytes(1024 * 1024);
  for (let i = 0; i < 40; i++) hog.write(chunk);
  const stalled = await waitFor(() => {
    const before = server.metrics().bytesIn;
    return before > 0 && hog.writableLength > 16 * 1024 * 1024;
  }, 10_000);
  assert.ok(stalled, `the hog's writes stalled (${hog.writableLength} bytes still queued at the client)`);
  assert.ok(
    server.metrics().bytesIn < 8 * 1024 * 1024,
    `the server took in ${server.metrics().bytesIn} bytes from a client that reads nothing`,
  );
  const healthy = await connect({ port });
  const payload = randomBytes(200_000);
  healthy.write(payload);
  assert.ok((await readBytes(healthy, payload.length)).equals(payload));
  healthy.destroy();
});

test(
  'io-uring echo: clients holding every buffer of the ring do not starve the others, who read into buffers of their own',
  { skip },
  async (t) => {
    // 300 clients × the two buffers each may hold are more than the ring's 512.
    const { server, port } = await ringServer(t, { handler: 'echo', sendBufferSize: 4096, receiveBufferSize: 4096 });
    const chunk = Buffer.alloc(256 * 1024, 7);
    const hogs = await Promise.all(
      Array.from(
        { length: 300 },
        () =>
          new Promise<Socket>((resolve) => {
            const opened = netConnect({ port, host: '127.0.0.1' }, () => resolve(opened));
            opened.on('error', () => {});
          }),
      ),
    );
    t.after(() => hogs.forEach((hog) => hog.destroy()));
    for (const hog of hogs) {
      hog.pause();
      hog.write(chunk);
    }
    // Each hog's echo waits for it to read, so the server keeps what it received: 300 × 2 buffers of 64 KiB.
    assert.ok(await waitFor(() => server.metrics().bytesIn >= 300 * 8 * 1024, 20_000), `bytes in: ${server.metrics().bytesIn}`);
    const healthy = await connect({ port });
    const payload = randomBytes(100_000);
    healthy.write(payload);
    assert.ok((await readBytes(healthy, payload.length, 20_000)).equals(payload));
    healthy.destroy();
  },
);

test('io-uring close while clients read in bursts: every connection ended and counted, no thread lost', { skip }, async () => {
  for (let round = 0; round < 3; round++) {
    const server = createServer({ ioModel: 'io-uring', workers: 2, closeTimeout: 300, handler: 'echo' });
    const crashes: Error[] = [];
    server.on('workerCrash', (error: Error) => crashes.push(error));
    const { port } = (await server.listen()) as AddressInfo;
    const chunk = randomBytes(64 * 1024);
    // allowHalfOpen: these clients do not end their side when the server ends its own; they keep writing until cut.
    const clients = await Promise.all(
      Array.from(
        { length: 12 },
        () =>
          new Promise<Socket>((resolve) => {
            const opened = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(opened));
          }),
      ),
    );
    const timers = clients.map((client) => {
      client.on('error', () => {});
      client.on('data', () => {});
      const pump = (): void => {
        while (client.writable && client.write(chunk));
      };
      client.on('drain', pump);
      pump();
      // Reads in bursts: the server's sends stall and resume, some complete while it closes.
      return setInterval(() => (client.isPaused() ? client.resume() : client.pause()), 3);
    });
    // Every connection taken by a ring (one still in the listen queue at close would be reset, not destroyed), and data flowing.
    assert.ok(await waitFor(() => server.metrics().connectionsCurrent === 12 && server.metrics().bytesOut > 4 * 1024 * 1024, 10_000));
    const { destroyed } = await server.close();
    timers.forEach(clearInterval);
    clients.forEach((client) => client.destroy());
    assert.equal(
      destroyed,
      12,
      `round ${round}: the connections still open at the deadline; errors ${JSON.stringify(server.metrics().errors)}`,
    );
    assert.equal(server.metrics().connectionsCurrent, 0);
    assert.deepEqual(crashes, []);
  }
});

test('io-uring refuses what a ring does not serve, naming the option', () => {
  assert.throws(() => createServer({ ioModel: 'io-uring', handler: 'msg-echo' }), {
    code: 'SOCKTUNE_ERR_INVALID_OPTION',
    message: /options\.handler.*echo, discard, verify, source.*io-uring/,
  });
  assert.throws(() => createServer({ ioModel: 'io-uring', handler: { module: './handler.js' } }), {
    code: 'SOCKTUNE_ERR_INVALID_OPTION',
    message: /options\.handler/,
  });
  assert.throws(() => createServer({ ioModel: 'io-uring', maxSendRate: 1e6 }), {
    code: 'SOCKTUNE_ERR_INVALID_OPTION',
    message: /options\.maxSendRate is not available with ioModel 'io-uring'/,
  });
});

test(
  'CLI: rr, crr and stream both ways with --io-model io-uring against socktune server; msg and UDP are refused by name',
  { skip },
  async (t) => {
    const server = await startServer(['--json']);
    t.after(() => server.stop());
    const target = ['-c', '127.0.0.1', '-p', String(server.port), '--io-model', 'io-uring', '--json'];
    const rr = await runCli(['rr', '-t', '0.3', '-C', '3', '--size', '70000', ...target]);
    assert.equal(rr.code, 0, rr.stderr);
    const rrResult = JSON.parse(rr.stdout);
    assertSchema(rrResult);
    assert.equal(rrResult.options.server.ioModel, 'io-uring');
    assert.ok(rrResult.summary.requests > 0);
    for (const args of [
      ['crr', '-t', '0.3'],
      ['stream', '-t', '0.3', '--verify'],
      ['stream', '-t', '0.3', '-R', '--verify'],
    ]) {
      const result = await runCli([...args, ...target]);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      const parsed = JSON.parse(result.stdout);
      assertSchema(parsed);
      if (parsed.summary.verify) assert.equal(parsed.summary.verify.bytesCorrupted + parsed.summary.verify.bytesLost, 0, args.join(' '));
    }
    for (const [args, refusal] of [
      [['msg', '-t', '0.3'], /--io-model io-uring serves bytes \(stream, rr, crr, conns\), not length-prefixed messages/],
      [['stream', '-u', '-t', '0.3'], /--io-model io-uring serves TCP tests, not UDP \(-u\)/],
    ] as const) {
      const result = await runCli([...args, ...target]);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, refusal, args.join(' '));
    }
    for (const [args, refusal] of [
      [['msg-echo'], /--io-model io-uring serves echo, discard, verify, source, not msg-echo/],
      [['echo', '--max-rate', '100M'], /--max-rate: --io-model io-uring does not pace what echo sends/],
    ] as const) {
      const result = await runCli(['server', 'service', ...args, '-p', '0', '--io-model', 'io-uring']);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, refusal);
    }
    const sockperf = await runCli(['server', 'sockperf', '-p', '0', '--io-model', 'io-uring']);
    assert.equal(sockperf.code, 2);
    assert.match(sockperf.stderr, /sockperf's protocol needs loop, workers or thread-per-conn/);
  },
);

test(
  'CLI: a server that caps what it sends (--max-rate) runs io-uring tests where it only receives, and refuses those where it sends',
  { skip },
  async (t) => {
    const server = await startServer(['--max-rate', '100M', '--json']);
    t.after(() => server.stop());
    const target = ['-c', '127.0.0.1', '-p', String(server.port), '--io-model', 'io-uring', '--json'];
    const stream = await runCli(['stream', '-t', '0.3', ...target]);
    assert.equal(stream.code, 0, stream.stderr);
    const rr = await runCli(['rr', '-t', '0.3', ...target]);
    assert.notEqual(rr.code, 0);
    assert.match(rr.stderr, /--io-model io-uring does not pace what it sends \(echo\)/);
  },
);
