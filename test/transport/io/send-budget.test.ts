import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { connect, createServer, type ServerOptions } from '../../../src/index.ts';
import { SendBudget } from '../../../src/transport/io/send-budget.ts';

test('SendBudget: takes are granted while the bucket is within a burst; past it, the wait and nothing booked', () => {
  const budget = new SendBudget(1_000_000);
  assert.equal(budget.burstBytes, 64 * 1024);
  assert.equal(budget.tryTake(60_000), 0, 'within the burst');
  assert.equal(budget.tryTake(60_000), 0, 'the take that ends past the burst: the one write it may overdraw by');
  const wait = budget.tryTake(60_000);
  assert.ok(wait >= 45 && wait <= 60, `waits until the bucket is no more than a burst behind: ${wait} ms`);
  const again = budget.tryTake(60_000);
  assert.ok(again > 0 && again <= wait, `a refused take booked nothing: ${again} ms, not ${wait} more`);
  assert.ok(budget.behind() <= wait);
});

test('SendBudget: a copy in another thread shares the same bucket; charges book what was already written', () => {
  const budget = new SendBudget(1_000_000);
  const twin = SendBudget.fromState(budget.state);
  budget.charge(64 * 1024 + 200_000);
  const wait = twin.behind();
  assert.ok(wait >= 180 && wait <= 215, `the twin sees the charge of the first: ${wait} ms`);
  assert.ok(twin.tryTake(1) > 0);
});

const RATE = 500_000;

/** Bytes the clients received in ~1 s from a paced server, and the ceiling the budget allows. */
async function receivedFrom(options: ServerOptions, clients: number, send?: Buffer): Promise<{ received: number; ceiling: number }> {
  const budget = new SendBudget(RATE);
  const server = createServer({ ...options, maxSendRate: budget });
  const { port } = (await server.listen()) as AddressInfo;
  const started = performance.now();
  let received = 0;
  const sockets = Array.from({ length: clients }, () => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('error', () => {});
    if (send) {
      // An echo client that never stops sending: only the budget holds the server back.
      const pump = (): void => {
        while (!socket.destroyed && socket.write(send));
      };
      socket.on('connect', pump).on('drain', pump);
    }
    return socket;
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const seconds = (performance.now() - started) / 1000;
  for (const socket of sockets) socket.destroy();
  await server.close();
  // Documented bound: the rate over the time, two bursts, and one read's answer per connection for read-driven services.
  const ceiling = RATE * seconds + 2 * budget.burstBytes + (send ? clients * 64 * 1024 : 0);
  return { received, ceiling };
}

for (const [ioModel, blocking] of [
  ['loop', false],
  ['workers', false],
  ['thread-per-conn', false],
  ['thread-per-conn', true],
] as const) {
  const label = `${ioModel}${blocking ? ', blocking' : ''}`;
  test(`maxSendRate (${label}): the source service, every connection and thread together, stays under the cap`, async () => {
    const { received, ceiling } = await receivedFrom({ ioModel, blocking, workers: 2, handler: 'source', sourceChunkSize: 1024 * 1024 }, 3);
    assert.ok(received > 0 && received <= ceiling, `${received} bytes (ceiling ${Math.round(ceiling)})`);
  });

  test(`maxSendRate (${label}): echo is paced too`, async () => {
    const { received, ceiling } = await receivedFrom({ ioModel, blocking, workers: 2, handler: 'echo' }, 3, Buffer.alloc(16 * 1024, 7));
    assert.ok(received > 0 && received <= ceiling, `${received} bytes echoed (ceiling ${Math.round(ceiling)})`);
  });
}

test('maxSendRate: one SendBudget shared by two servers holds for both together', async () => {
  const budget = new SendBudget(RATE);
  const servers = [
    createServer({ handler: 'source', maxSendRate: budget }),
    createServer({ ioModel: 'workers', workers: 2, handler: 'source', maxSendRate: budget }),
  ];
  const ports = await Promise.all(servers.map(async (server) => ((await server.listen()) as AddressInfo).port));
  const started = performance.now();
  let received = 0;
  const sockets = ports.flatMap((port) =>
    [0, 1].map(() => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      socket.on('error', () => {});
      return socket;
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const seconds = (performance.now() - started) / 1000;
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => server.close()));
  const ceiling = RATE * seconds + 2 * budget.burstBytes;
  assert.ok(received > 0 && received <= ceiling, `${received} bytes from two servers (ceiling ${Math.round(ceiling)})`);
});

test('maxSendRate: a client that floods and leaves leaves no debt: the next client is served at once', async () => {
  const server = createServer({ handler: 'echo', maxSendRate: new SendBudget(RATE) });
  const { port } = (await server.listen()) as AddressInfo;
  try {
    const flood = Array.from({ length: 100 }, () => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.on('error', () => {});
      socket.on('connect', () => socket.write(Buffer.alloc(64 * 1024)));
      return socket;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const socket of flood) socket.destroy();
    const client = await new Promise<net.Socket>((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' }, () => resolve(socket));
    });
    const began = performance.now();
    const answered = new Promise((resolve) => client.once('data', resolve));
    client.write('hello');
    await answered;
    client.destroy();
    // 100 × 64 KiB at 500 kB/s would be 13 s of debt; what may be owed is one burst and what answers were under way.
    assert.ok(performance.now() - began < 2000, `answered after ${Math.round(performance.now() - began)} ms`);
  } finally {
    await server.close();
  }
});

test('maxSendRate: a client that sends but never reads cannot grow what the server queues, while others keep the budget busy', async () => {
  const budget = new SendBudget(50_000_000);
  const echo = createServer({ handler: 'echo', maxSendRate: budget });
  const source = createServer({ handler: 'source', maxSendRate: budget });
  const echoPort = ((await echo.listen()) as AddressInfo).port;
  const sourcePort = ((await source.listen()) as AddressInfo).port;
  // A reader of the source service keeps the shared budget behind all the time.
  const reader = net.connect({ port: sourcePort, host: '127.0.0.1' });
  reader.on('data', () => {});
  reader.on('error', () => {});
  const mute = await connect({ port: echoPort, receiveBufferSize: 64 * 1024 });
  mute.pause();
  mute.on('error', () => {});
  const chunk = Buffer.alloc(64 * 1024);
  let offered = 0;
  const flood = setInterval(() => {
    for (let i = 0; i < 16 && mute.writableLength < 8 * 1024 * 1024; i++) {
      mute.write(chunk);
      offered += chunk.length;
    }
  }, 5);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  clearInterval(flood);
  const queued = echo.metrics().bytesOut;
  reader.destroy();
  mute.destroy();
  await Promise.all([echo.close(), source.close()]);
  // What the server echoed is what the kernel buffers of both ends and one write queue hold, not what was offered.
  assert.ok(offered > 8 * 1024 * 1024, `the client offered ${offered} bytes`);
  assert.ok(queued < 12 * 1024 * 1024, `the server echoed ${queued} bytes to a client that never reads`);
});

for (const [ioModel, blocking] of [
  ['loop', false],
  ['thread-per-conn', false],
  ['thread-per-conn', true],
] as const) {
  test(`maxSendRate (${ioModel}${blocking ? ', blocking' : ''}): a 4 MiB msg-echo answer goes out at the rate, slice by slice, not in one burst`, async () => {
    const budget = new SendBudget(RATE);
    const server = createServer({ ioModel, blocking, handler: 'msg-echo', maxSendRate: budget });
    const { port } = (await server.listen()) as AddressInfo;
    const started = performance.now();
    let received = 0;
    const clients = [0, 1].map(() => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      socket.on('error', () => {});
      const frame = Buffer.alloc(4 + 4 * 1024 * 1024);
      frame.writeUInt32BE(4 * 1024 * 1024);
      socket.write(frame);
      return socket;
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const seconds = (performance.now() - started) / 1000;
    for (const socket of clients) socket.destroy();
    await server.close();
    // Two 4 MiB answers owed: at 500 kB/s only the rate's worth and two bursts may have gone out.
    const ceiling = RATE * seconds + 2 * budget.burstBytes;
    assert.ok(received > 0 && received <= ceiling, `${received} bytes in ${seconds.toFixed(2)} s (ceiling ${Math.round(ceiling)})`);
  });
}
