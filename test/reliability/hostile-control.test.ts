import { Secret } from '../../src/core/secret.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { clientKey } from '../../src/core/client-key.ts';
import { ControlChannel } from '../../src/bench/control/control-channel.ts';
import { CONTROL_PROTOCOL_VERSION, type ReadyMessage } from '../../src/bench/control/control-protocol.ts';
import { RemoteTest } from '../../src/bench/control/remote-test.ts';
import { closed, connectedClient, echoes, readBytes, waitFor } from '../../testkit/helpers.ts';
import { start, withServer } from '../../testkit/control-messages.ts';

/** A control client that says exactly what the test wants, hostile or not. */
async function ask(port: number, message: Record<string, unknown>): Promise<{ reply: Record<string, unknown>; channel: ControlChannel }> {
  const socket = await connectedClient(port);
  socket.on('error', () => {});
  const channel = new ControlChannel(socket);
  channel.send(message);
  const reply = (await channel.next(10_000, 'reply')) as Record<string, unknown>;
  return { reply, channel };
}

function processThreads(): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A well-behaved client still gets a test while the hostile one is refused or served. */
async function goodClientServed(port: number): Promise<void> {
  const remote = await RemoteTest.start({ host: '127.0.0.1', port }, 'echo', {}, 10_000);
  const data = 'host' in remote.data ? remote.data : undefined;
  const socket = await connectedClient(data!.port);
  assert.equal(await echoes(socket, 'still here'), true, 'a good client is served');
  socket.destroy();
  await remote.finish();
}

test('threads: a client cannot ask for more than --max-threads-per-test, nor all tests together for more than --max-threads; threads come back', async () => {
  const threadsBefore = processThreads();
  // Every client here is 127.0.0.1: the per-client share (hardening.test.ts) is lifted to the whole server.
  await withServer({ maxThreads: 4, maxThreadsPerTest: 2, maxThreadsPerClient: 4 }, async (port, server) => {
    const greedy = await ask(port, start({ ioModel: 'workers', workers: 256 }));
    assert.equal(greedy.reply.type, 'error');
    assert.equal(greedy.reply.code, 'SOCKTUNE_ERR_REFUSED');
    assert.match(String(greedy.reply.message), /workers 256 is over this server's 2 threads per test/);
    const first = await ask(port, start({ ioModel: 'workers', workers: 2 }));
    const second = await ask(port, start({ ioModel: 'thread-per-conn' }));
    assert.equal(first.reply.type, 'ready');
    assert.equal(second.reply.type, 'ready');
    assert.equal(server.threadsInUse, 4);
    const third = await ask(port, start({ ioModel: 'workers', workers: 1 }));
    assert.equal(third.reply.code, 'SOCKTUNE_ERR_REFUSED');
    assert.match(String(third.reply.message), /needs 1 threads and 4 of 4 are in use/);
    await goodClientServed(port);
    first.channel.socket.destroy();
    second.channel.socket.destroy();
    assert.ok(await waitFor(() => server.threadsInUse === 0 && server.testsRunning === 0, 10_000), 'the reservations are released');
  });
  assert.ok(await waitFor(() => processThreads() <= threadsBefore, 10_000), `threads back to ${threadsBefore} (now ${processThreads()})`);
});

test('sizes: socket buffers and chunk sizes over the server limits are refused before anything is allocated', async () => {
  await withServer({ maxSocketBuffer: 1024 * 1024, maxChunkSize: 64 * 1024 }, async (port) => {
    for (const [settings, pattern] of [
      [{ sendBufferSize: 2 ** 31 - 1 }, /sendBufferSize 2147483647 is over this server's 1048576-byte limit/],
      [{ receiveBufferSize: 4 * 1024 * 1024 }, /receiveBufferSize 4194304 is over/],
      [{ sourceChunkSize: 16 * 1024 * 1024 }, /sourceChunkSize 16777216 is over this server's 65536-byte limit/],
    ] as const) {
      const { reply, channel } = await ask(port, start(settings));
      assert.equal(reply.code, 'SOCKTUNE_ERR_REFUSED', JSON.stringify(settings));
      assert.match(String(reply.message), pattern);
      channel.socket.destroy();
    }
    const fits = await ask(port, start({ sendBufferSize: 1024 * 1024, sourceChunkSize: 64 * 1024 }, { service: 'source' }));
    assert.equal(fits.reply.type, 'ready');
    fits.channel.socket.destroy();
  });
});

test('connections: one test holds at most --max-connections-per-test, every test together at most --max-connections; the rest are closed at once', async () => {
  await withServer({ maxConnectionsPerTest: 5, maxConnections: 7 }, async (port) => {
    const a = await ask(port, start());
    const b = await ask(port, start({}, { dataFrom: ['127.0.0.2'] }));
    const portOf = (reply: Record<string, unknown>): number => (reply as unknown as ReadyMessage).dataPort;
    const open = async (dataPort: number, count: number, localAddress: string): Promise<number> => {
      const sockets = await Promise.all(
        Array.from(
          { length: count },
          () =>
            new Promise<net.Socket>((resolve, reject) => {
              const socket = net.connect({ port: dataPort, host: '127.0.0.1', localAddress }, () => resolve(socket));
              socket.once('error', reject);
            }),
        ),
      );
      const served = await Promise.all(sockets.map((socket) => echoes(socket, 'x')));
      return served.filter(Boolean).length;
    };
    assert.equal(await open(portOf(a.reply), 8, '127.0.0.1'), 5, 'per test (and per client address across tests)');
    assert.equal(await open(portOf(b.reply), 8, '127.0.0.1'), 0, 'the address already has its share, whatever the test');
    assert.equal(await open(portOf(b.reply), 8, '127.0.0.2'), 2, 'what is left of the server-wide cap');
    a.channel.socket.destroy();
    b.channel.socket.destroy();
  });
});

test('memory: partly received messages of every test together stay within --max-buffered; the budget comes back', async () => {
  await withServer({ maxBufferedBytes: 2 * 1024 * 1024 }, async (port, server) => {
    const { reply, channel } = await ask(port, start({}, { service: 'msg-sink' }));
    const dataPort = (reply as unknown as ReadyMessage).dataPort;
    // Each sends 300 KiB of a 400 KiB message (memory follows the bytes sent): one client may hold half of the
    // 2 MiB once over its quarter, so two fit, the third does not.
    const senders = await Promise.all([0, 1, 2].map(() => connectedClient(dataPort)));
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(400 * 1024);
    for (const socket of senders) {
      socket.on('error', () => {});
      socket.write(Buffer.concat([prefix, Buffer.alloc(300 * 1024)]));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await closed(senders[2]!);
    assert.equal(senders[0]!.destroyed || senders[1]!.destroyed, false, 'the first two are still served');
    for (const socket of senders) socket.destroy();
    // With the first two gone, their reservations are free: a whole 400 KiB message goes through again.
    const late = await connectedClient(dataPort);
    late.write(Buffer.concat([prefix, Buffer.alloc(400 * 1024)]));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(late.destroyed, false);
    late.destroy();
    channel.send({ type: 'finish' });
    const result = (await channel.next(10_000, 'result')) as { metrics: { errors: Record<string, number>; messagesIn: number } };
    assert.equal(result.metrics.errors.SOCKTUNE_ERR_BUFFER_BUDGET, 1);
    assert.equal(result.metrics.messagesIn, 1);
    assert.equal(server.testsRunning <= 1, true);
  });
});

test('memory: announcing large messages without sending them holds next to nothing of the budget', async () => {
  await withServer({ maxBufferedBytes: 4 * 1024 * 1024 }, async (port) => {
    const { reply, channel } = await ask(port, start({}, { service: 'msg-echo' }));
    const dataPort = (reply as unknown as ReadyMessage).dataPort;
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(16 * 1024 * 1024);
    // 16 connections × 16 MiB announced = 256 MiB, far over the 4 MiB budget, in 80 bytes.
    const announcers = await Promise.all(Array.from({ length: 16 }, () => connectedClient(dataPort)));
    for (const socket of announcers) {
      socket.on('error', () => {});
      socket.write(Buffer.concat([prefix, Buffer.alloc(1)]));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    // A good client's message that spans several reads still goes through.
    const good = await connectedClient(dataPort);
    const message = Buffer.alloc(512 * 1024, 9);
    const frame = Buffer.alloc(4);
    frame.writeUInt32BE(message.length);
    good.write(Buffer.concat([frame, message]));
    const echoed = await readBytes(good, 4 + message.length);
    assert.equal(echoed.length, 4 + message.length);
    assert.ok(
      announcers.every((socket) => !socket.destroyed),
      'the announcers were not cut either: they hold only what they sent',
    );
    for (const socket of [...announcers, good]) socket.destroy();
    channel.socket.destroy();
  });
});

test('handshakes: silent control connections from many addresses cannot keep a good client out; the oldest handshake gives way', async () => {
  await withServer({ maxHandshakes: 4, handshakeTimeoutMs: 10_000 }, async (port) => {
    const silent: net.Socket[] = [];
    for (let i = 0; i < 12; i++) {
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        const connection = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.${1 + (i >> 8)}.${2 + (i & 255)}` }, () =>
          resolve(connection),
        );
        connection.once('error', reject);
      });
      socket.on('error', () => {});
      silent.push(socket);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(silent.filter((socket) => socket.destroyed || socket.readableEnded).length >= 8, true, 'all but the newest 4 were let go');
    await goodClientServed(port);
    for (const socket of silent) socket.destroy();
  });
});

test('clients over IPv6 are counted per /64: one host cannot take a fresh address for every connection', () => {
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientKey('2001:DB8:0:0:ffff::7'), '2001:db8:0:0::/64');
  assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
  assert.equal(clientKey('::ffff:198.18.0.7'), '198.18.0.7');
  assert.equal(clientKey('127.0.0.1'), '127.0.0.1');
});

test('slots: a test with no traffic is ended after --test-idle-timeout, and its slot is free again', async () => {
  await withServer({ maxTests: 1, testIdleTimeoutMs: 1500 }, async (port, server) => {
    const idle = await ask(port, start());
    assert.equal(idle.reply.type, 'ready');
    const busy = await ask(port, start());
    assert.match(String(busy.reply.message), /server busy: 1 tests running/);
    const ended = (await idle.channel.next(5000, 'the idle verdict')) as Record<string, unknown>;
    assert.equal(ended.code, 'SOCKTUNE_ERR_TIMEOUT');
    assert.match(String(ended.message), /test idle for 2 s/);
    assert.ok(await waitFor(() => server.testsRunning === 0, 5000));
    await goodClientServed(port);
  });
});

test("deadline: a test ends at the server's --max-duration, not later, whatever the client asked", async () => {
  await withServer({ maxTestDurationMs: 2000 }, async (port) => {
    const began = performance.now();
    const { reply, channel } = await ask(port, start({}, { maxDurationMs: 2000 }));
    assert.equal(reply.type, 'ready');
    const data = await connectedClient((reply as unknown as ReadyMessage).dataPort);
    data.on('error', () => {});
    // Traffic keeps the idle timeout away: only the deadline can end it.
    const ticker = setInterval(() => data.write('.'), 100);
    const ended = (await channel.next(8000, 'the deadline')) as Record<string, unknown>;
    clearInterval(ticker);
    data.destroy();
    const elapsed = performance.now() - began;
    assert.equal(ended.code, 'SOCKTUNE_ERR_TIMEOUT');
    assert.ok(elapsed < 3500, `ended after ${Math.round(elapsed)} ms (max 2000 ms + scheduling)`);
  });
});

test('wire values: dataFrom must be addresses; "__proto__" and unknown keys get an invalid-option error, not an internal one', async () => {
  await withServer({}, async (port) => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [start({}, { dataFrom: ['not-an-address'] }), /start\.dataFrom must be up to 1024 IP addresses/],
      [
        JSON.parse(
          `{"type":"start","protocol":${CONTROL_PROTOCOL_VERSION},"service":"echo","maxDurationMs":1000,"server":{"__proto__":{"workers":256}}}`,
        ),
        /start\.server\.__proto__ is not a known option/,
      ],
      [
        JSON.parse(`{"type":"start","protocol":${CONTROL_PROTOCOL_VERSION},"service":"echo","maxDurationMs":1000,"__proto__":1}`),
        /start\.__proto__ is not a known option/,
      ],
    ];
    for (const [message, pattern] of cases) {
      const { reply, channel } = await ask(port, message);
      assert.equal(reply.code, 'SOCKTUNE_ERR_INVALID_OPTION');
      assert.match(String(reply.message), pattern);
      channel.socket.destroy();
    }
  });
});

test('fuzz: every number a control client sends, at its extremes, gets a SocktuneError or a test; the server keeps answering', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown): void => void uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const fdsBefore = openFds();
  const extremes: unknown[] = [
    0,
    -1,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    1e308,
    -1e308,
    0.5,
    'NaN',
    '12',
    {},
    [],
    null,
    true,
    { nested: { deep: 1 } },
  ];
  const fields: [string, (value: unknown) => Record<string, unknown>][] = [
    ...['workers', 'sendBufferSize', 'receiveBufferSize', 'sourceChunkSize', 'ioModel', 'blocking', 'noDelay'].map(
      (field) =>
        [`server.${field}`, (value: unknown) => start({ [field]: value })] as [string, (value: unknown) => Record<string, unknown>],
    ),
    ['maxDurationMs', (value) => start({}, { maxDurationMs: value })],
    ['protocol', (value) => start({}, { protocol: value })],
    ['settleMemory', (value) => start({}, { settleMemory: value })],
    ['dataFrom', (value) => start({}, { dataFrom: value })],
    ['server', (value) => start({}, { server: value })],
  ];
  try {
    await withServer({ maxThreadsPerTest: 4 }, async (port) => {
      for (const [field, make] of fields) {
        for (const value of extremes) {
          const { reply, channel } = await ask(port, make(value));
          assert.ok(
            reply.type === 'ready' || (reply.type === 'error' && /^SOCKTUNE_ERR_/.test(String(reply.code))),
            `${field} = ${JSON.stringify(value)}: ${JSON.stringify(reply)}`,
          );
          channel.socket.destroy();
        }
      }
      await goodClientServed(port);
    });
  } finally {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  }
  assert.deepEqual(uncaught, []);
  assert.ok(await waitFor(() => openFds() <= fdsBefore, 10_000), `descriptors back to ${fdsBefore} (now ${openFds()})`);
});

test("auth: a data connection from the client's own address that does not carry the test's token is closed", async () => {
  const token = 'a shared secret of 32 characters';
  await withServer({ authToken: token }, async (port) => {
    const remote = await RemoteTest.start({ host: '127.0.0.1', port, authToken: new Secret(token) }, 'echo', {}, 10_000);
    const target = remote.data as { host: string; port: number; preamble?: Uint8Array };
    assert.equal(target.preamble?.length, 16, 'the ready message carries a data token');
    const stranger = net.connect({ port: target.port, host: '127.0.0.1' });
    stranger.on('error', () => {});
    stranger.write('0123456789abcdefhello');
    let answered = 0;
    stranger.on('data', (chunk: Buffer) => (answered += chunk.length));
    await closed(stranger);
    assert.equal(answered, 0);
    const member = net.connect({ port: target.port, host: '127.0.0.1' });
    member.write(Buffer.concat([target.preamble, Buffer.from('hello')]));
    assert.equal((await readBytes(member, 5)).toString(), 'hello');
    assert.equal(await echoes(member, ' again'), true);
    member.destroy();
    const result = await remote.finish();
    assert.equal(result.metrics.errors.SOCKTUNE_ERR_AUTH, 1);
  });
});

test('rate: --max-rate is one budget for the whole server, not one per test', async () => {
  const rate = 500_000;
  await withServer({ maxSendRate: rate }, async (port) => {
    const tests = await Promise.all([0, 1, 2].map(() => ask(port, start({ ioModel: 'workers', workers: 2 }, { service: 'source' }))));
    const began = performance.now();
    let received = 0;
    const sockets = tests.flatMap(({ reply }) =>
      [0, 1].map(() => {
        const socket = net.connect({ port: (reply as unknown as ReadyMessage).dataPort, host: '127.0.0.1' });
        socket.on('data', (chunk: Buffer) => (received += chunk.length));
        socket.on('error', () => {});
        return socket;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const elapsed = (performance.now() - began) / 1000;
    for (const socket of sockets) socket.destroy();
    for (const { channel } of tests) channel.socket.destroy();
    // The rate over the time and two bursts of 64 KiB: three tests, six connections, six threads share them.
    const ceiling = rate * elapsed + 2 * 64 * 1024;
    assert.ok(received > 0 && received <= ceiling, `${received} bytes in ${elapsed.toFixed(2)} s (ceiling ${Math.round(ceiling)})`);
  });
});

test('a start message without its server object is a test with no server settings, for every service, with auth failed or not', async () => {
  const bare = (service: string): Record<string, unknown> => {
    const message = start({}, { service });
    delete message.server;
    return message;
  };
  await withServer({ host: '127.0.0.1' }, async (port) => {
    for (const service of ['udp-sink', 'discard']) {
      const { reply, channel } = await ask(port, bare(service));
      assert.equal(reply.type, 'ready', JSON.stringify(reply));
      channel.close();
    }
    await goodClientServed(port);
  });
  await withServer({ host: '127.0.0.1', authToken: new Secret('sixteen or more characters') }, async (port) => {
    const { reply, channel } = await ask(port, bare('udp-sink'));
    assert.equal(reply.type, 'challenge');
    channel.send({ type: 'auth', proof: '00' });
    const refused = (await channel.next(10_000, 'reply')) as Record<string, unknown>;
    assert.equal(refused.code, 'SOCKTUNE_ERR_AUTH');
    channel.close();
    const remote = await RemoteTest.start(
      { host: '127.0.0.1', port, authToken: new Secret('sixteen or more characters') },
      'udp-sink',
      {},
      10_000,
    );
    await remote.finish();
  });
});
